"""Tail probabilities with exact Clopper-Pearson intervals, scaling-exponent fits, and bound fits.

* ``clopper_pearson(k, n)``: the exact (conservative) binomial interval.
* ``exceedance(values, thresholds)``: ``Pr[value > t]`` (or ``< t``) on a grid,
  with counts and intervals; ``confusion_tail`` and ``cosine_tail`` apply it
  to ``eta*`` and to the minimum cosine.
* ``fit_tail_exponent``: maximum-likelihood fit of ``Pr = exp(a - b x)`` to
  binomial counts (``x`` = width, width^2, ...) with a profile-likelihood
  interval for the slope ``b`` of ``-log Pr``.
* ``fit_bound_constant``: the hook of ``theory.fit_constant`` applied to a
  table of tails from a sweep.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .. import validation


def clopper_pearson(k, n, confidence: float = 0.95):
    """Exact two-sided Clopper-Pearson interval ``(lower, upper)`` for ``k`` successes in ``n`` trials.

    ``lower = B(alpha/2; k, n-k+1)`` and ``upper = B(1-alpha/2; k+1, n-k)`` with
    ``B`` the Beta quantile (0 and 1 at the edges).  Its coverage is at least
    ``confidence`` for every true probability.  Vectorised.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    if np.any((k < 0) | (k > n)) or np.any(n < 1):
        raise ValueError("clopper_pearson needs 0 <= k <= n and n >= 1")
    if not 0 < confidence < 1:
        raise ValueError(f"argument 'confidence' must be in (0, 1), got {confidence!r}")
    half = (1 - confidence) / 2
    with np.errstate(invalid="ignore"):
        lower = np.where(k > 0, stats.beta.ppf(half, k, n - k + 1), 0.0)
        upper = np.where(k < n, stats.beta.ppf(1 - half, k + 1, n - k), 1.0)
    return lower, upper


def exceedance(values, thresholds, *, above: bool = True, confidence: float = 0.95) -> pd.DataFrame:
    """``Pr[value > t]`` (``above``) or ``Pr[value < t]`` for each threshold ``t``, with exact intervals.

    NaN values (for example the minimum cosine of a trial whose gradients all
    vanish) are left out of both counts.  Columns: ``threshold, k, n, p,
    lower, upper``.
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if values.size == 0:
        raise ValueError("exceedance needs at least one non-NaN value")
    hits = values[None, :] > thresholds[:, None] if above else values[None, :] < thresholds[:, None]
    k = hits.sum(axis=1)
    n = np.full_like(k, values.size)
    lower, upper = clopper_pearson(k, n, confidence)
    return pd.DataFrame({"threshold": thresholds, "k": k, "n": n, "p": k / n, "lower": lower, "upper": upper})


def confusion_tail(sample, etas, confidence: float = 0.95) -> pd.DataFrame:
    """``Pr[eta* > eta]`` on a grid of ``eta`` (a ConfusionSample or an array of eta* values)."""
    values = sample.stats["eta_star"] if hasattr(sample, "stats") else sample
    return exceedance(values, etas, above=True, confidence=confidence).rename(columns={"threshold": "eta"})


def cosine_tail(sample, taus, confidence: float = 0.95) -> pd.DataFrame:
    """``Pr[min cosine < -tau]`` on a grid of ``tau``."""
    values = sample.stats["min_cosine"] if hasattr(sample, "stats") else sample
    table = exceedance(values, -np.asarray(taus, dtype=float), above=False, confidence=confidence)
    return table.rename(columns={"threshold": "tau"}).assign(tau=np.atleast_1d(np.asarray(taus, dtype=float)))


@dataclass(frozen=True)
class ExponentFit:
    """Fit of ``Pr = exp(intercept - slope * x)``: ``slope`` with its ``(lower, upper)`` interval."""

    slope: float
    lower: float
    upper: float
    intercept: float
    confidence: float

    def describe(self, variable: str = "x") -> str:
        return f"-log Pr ~ {self.slope:.3g} {variable} [{self.lower:.3g}, {self.upper:.3g}]"


def _log_likelihood(a, b, xs, k, n):
    log_p = a - b * xs
    return float(np.sum(k * log_p + (n - k) * np.log(-np.expm1(log_p))))


def fit_tail_exponent(x, k, n, confidence: float = 0.95) -> ExponentFit:
    """Maximum-likelihood slope of ``-log Pr`` against ``x`` from binomial counts, with a profile interval.

    Model: ``k_i ~ Binomial(n_i, exp(a - b x_i))``.  The log-likelihood is
    jointly concave in ``(a, b)``, so the profile over ``a`` is concave in ``b``
    and its maximum and the interval ``{b : profile(b) >= max - chi2_1(conf)/2}``
    are found by bounded 1-d searches.  Points with ``k = 0`` count (they push
    the slope up); an interval end the data cannot bound is ``+-inf``
    (searched over ``|b| <= 200`` per unit range of ``x``).
    """
    x, k, n = (np.asarray(v, dtype=float) for v in (x, k, n))
    if x.size < 2 or np.unique(x).size < 2:
        raise ValueError("fit_tail_exponent needs at least two distinct x values")
    if np.any((k < 0) | (k > n)):
        raise ValueError("fit_tail_exponent needs 0 <= k <= n")
    if np.all(k == 0):
        return ExponentFit(np.nan, -np.inf, np.inf, -np.inf, confidence)
    low_x, scale = x.min(), np.ptp(x)
    xs = (x - low_x) / scale  # work on [0, 1]; report in the units of x
    limit = 200.0

    def profile(b):
        top = np.min(b * xs) - 1e-12  # Pr <= 1 at every point
        found = optimize.minimize_scalar(lambda a: -_log_likelihood(a, b, xs, k, n), bounds=(top - 80.0, top),
                                         method="bounded", options={"xatol": 1e-11})
        return -found.fun, found.x

    found = optimize.minimize_scalar(lambda b: -profile(b)[0], bounds=(-limit, limit), method="bounded",
                                     options={"xatol": 1e-10})
    b_hat, best = found.x, -found.fun
    cut = stats.chi2.ppf(confidence, 1) / 2

    def gap(b):
        return best - profile(b)[0] - cut

    lower = optimize.brentq(gap, -limit, b_hat) if gap(-limit) > 0 else -np.inf
    upper = optimize.brentq(gap, b_hat, limit) if gap(limit) > 0 else np.inf
    slope = b_hat if limit - abs(b_hat) > 1e-3 else np.sign(b_hat) * np.inf
    a_hat = profile(b_hat)[1]
    return ExponentFit(slope / scale, lower / scale, upper / scale, a_hat + b_hat * low_x / scale, confidence)


#: How a sweep's columns map to the symbols of ``theory``.
THEORY_SYMBOLS = {"width": "width", "depth": "beta", "d": "d", "n_samples": "N", "kappa": "kappa", "eta": "eta"}


def fit_bound_constant(table: pd.DataFrame, result, constant: str, fixed: dict | None = None):
    """Apply ``theory.fit_constant`` to a tail table: the largest constant for which the bound dominates.

    ``table`` has one row per (grid point, eta) with the sweep's columns
    (``width``, ``depth``, ``d``, ``n_samples``, ``kappa``, ``eta``) and the
    Clopper-Pearson ``lower`` limit of ``Pr[eta* > eta]`` (and, if present,
    the ``upper`` limit, which lets the fit detect a contradiction in
    direction: ``ConstantFit.verdict``); a sweep's ``tail_table`` is accepted
    as it is (its eta* rows are used).
    """
    from theory import fit_constant

    if "eta" not in table and "event" in table:
        table = table[table["event"] == "eta* > threshold"].rename(columns={"threshold": "eta"})

    validation.choice("constant", constant, [c.name for c in result.constants])
    names = {x.name for x in result.resolved.free_symbols}
    grid = {symbol: table[column].to_numpy(dtype=float) for column, symbol in THEORY_SYMBOLS.items()
            if symbol in names and column in table}
    upper = table["upper"].to_numpy(dtype=float) if "upper" in table else None
    return fit_constant(result, constant, table["lower"].to_numpy(dtype=float), fixed=fixed, p_upper=upper, **grid)
