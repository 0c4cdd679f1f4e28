"""Tail probabilities with exact Clopper-Pearson intervals, scaling-exponent fits, and bound fits.

* ``clopper_pearson(k, n)``: the exact (conservative) binomial interval.
* ``exceedance(values, thresholds)``: ``Pr[value > t]`` (or ``< t``) on a grid,
  with counts and intervals; ``confusion_tail`` and ``cosine_tail`` apply it
  to ``eta*`` and to the minimum cosine (``cosine_tail`` says what it is
  conditional on: trials with an undefined minimum cosine count as not
  confused, or with ``conditional=True`` are left out).
* ``undefined_cosines``: in how many trials the minimum cosine is undefined
  and how many pairs the cosine statistics leave out, with an interval.
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


#: What ``exceedance`` does with a NaN value: leave it out of both counts (the tail is then conditional on a
#: defined value), or count it in ``n`` and never in ``k`` (the event does not happen).
UNDEFINED_RULES = ("leave_out", "not_in_event")


def exceedance(values, thresholds, *, above: bool = True, confidence: float = 0.95,
               undefined: str = "leave_out") -> pd.DataFrame:
    """``Pr[value > t]`` (``above``) or ``Pr[value < t]`` for each threshold ``t``, with exact intervals.

    NaN values (for example the minimum cosine of a trial in which at most
    one gradient is non-zero) are left out of both counts with ``undefined =
    "leave_out"`` (the default: the probability is conditional on a defined
    value), or counted as trials in which the event does not happen with
    ``"not_in_event"``.  Columns: ``threshold, k, n, p, lower, upper,
    undefined`` (how many values were NaN, whichever the rule).
    """
    values = np.asarray(values, dtype=float).ravel()
    undefined = validation.choice("undefined", undefined, UNDEFINED_RULES)
    missing = int(np.isnan(values).sum())
    total = values.size if undefined == "not_in_event" else values.size - missing
    values = values[~np.isnan(values)]
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if total == 0:
        raise ValueError("exceedance needs at least one non-NaN value" if undefined == "leave_out"
                         else "exceedance needs at least one value")
    hits = values[None, :] > thresholds[:, None] if above else values[None, :] < thresholds[:, None]
    k = hits.sum(axis=1)
    n = np.full_like(k, total)
    lower, upper = clopper_pearson(k, n, confidence)
    return pd.DataFrame({"threshold": thresholds, "k": k, "n": n, "p": k / n, "lower": lower, "upper": upper,
                         "undefined": missing})


def confusion_tail(sample, etas, confidence: float = 0.95) -> pd.DataFrame:
    """``Pr[eta* > eta]`` on a grid of ``eta`` (a ConfusionSample or an array of eta* values)."""
    values = sample.stats["eta_star"] if hasattr(sample, "stats") else sample
    return exceedance(values, etas, above=True, confidence=confidence).rename(columns={"threshold": "eta"})


def cosine_tail(sample, taus, confidence: float = 0.95, *, conditional: bool = False) -> pd.DataFrame:
    """``Pr[min cosine < -tau]`` on a grid of ``tau`` (a ConfusionSample or an array of minimum cosines).

    A trial's minimum cosine is undefined (NaN) when at most one of its
    per-example gradients is non-zero (``gram_statistics.min_cosine``); with
    relu at the output, the default network, that is common (an example's
    gradient vanishes whenever its output pre-activation is negative).  Two
    tails, chosen by ``conditional``:

    * ``False`` (default), unconditional: such a trial counts, as a trial in
      which no pair is confused.  This is what the paper's definition says.
      Definition 2.1 (eq. 3) is about inner products: a pair is confused at
      level ``eta`` when ``<grad f_i, grad f_j> < -eta``, and a zero gradient
      has inner product 0 with every gradient, so it is never confused; the
      normalised event ``<grad f_i, grad f_j> < -tau |grad f_i| |grad f_j|``
      is likewise false for it (``0 < 0``).  The tail is then the
      probability of that event over every draw of network and data.
    * ``True``, conditional: such trials are left out, so the tail is
      ``Pr[min cos < -tau | some pair's cosine is defined]``.

    On the same trials the two have the same ``k`` and satisfy
    ``P_unconditional = P_conditional * (1 - undefined / trials)``.  Either
    way, within a trial the minimum is over the pairs whose cosine is defined,
    which for the event above is exact, not an approximation.  Columns:
    ``tau, k, n, p, lower, upper, undefined`` (trials with an undefined
    minimum cosine) and ``conditional``.
    """
    values = sample.stats["min_cosine"] if hasattr(sample, "stats") else sample
    conditional = validation.flag("conditional", conditional)
    table = exceedance(values, -np.asarray(taus, dtype=float), above=False, confidence=confidence,
                       undefined="leave_out" if conditional else "not_in_event")
    return (table.rename(columns={"threshold": "tau"})
            .assign(tau=np.atleast_1d(np.asarray(taus, dtype=float)), conditional=conditional))


#: From this share of trials with an undefined minimum cosine, or of pairs with an undefined cosine, up, a run says
#: so (``UndefinedCosines.noticeable``; the command line prints a warning line).
NOTICEABLE_UNDEFINED = 0.01


@dataclass(frozen=True)
class UndefinedCosines:
    """What the cosine statistics of ``trials`` trials of ``n_samples`` examples are conditional on.

    ``undefined_trials`` is the number of trials whose minimum cosine is
    undefined (at most one non-zero gradient), with the Clopper-Pearson
    interval ``(lower, upper)`` of its share; ``undefined_pairs`` the number
    of pairs ``i < j``, over all trials, whose cosine is undefined (a zero
    gradient among the two) and which the minimum and the quantiles leave
    out, of ``pairs = trials N (N - 1) / 2``.  Exact counts; the interval is
    for the probability that a trial's minimum cosine is undefined.
    """

    trials: int
    undefined_trials: int
    n_samples: int
    pairs: int
    undefined_pairs: int
    lower: float
    upper: float
    confidence: float

    @property
    def fraction(self) -> float:
        """Share of trials whose minimum cosine is undefined."""
        return self.undefined_trials / self.trials

    @property
    def pair_fraction(self) -> float:
        """Share of pairs whose cosine is undefined."""
        return self.undefined_pairs / self.pairs

    @property
    def noticeable(self) -> bool:
        """Whether either share reaches ``NOTICEABLE_UNDEFINED`` (1%)."""
        return max(self.fraction, self.pair_fraction) >= NOTICEABLE_UNDEFINED

    def to_dict(self) -> dict:
        return {"trials": self.trials, "undefined_trials": self.undefined_trials, "n_samples": self.n_samples,
                "pairs": self.pairs, "undefined_pairs": self.undefined_pairs, "lower": self.lower,
                "upper": self.upper, "confidence": self.confidence}

    def describe(self) -> str:
        """One line: the two counts with their shares (and the interval of the trial share)."""
        return (f"minimum cosine undefined in {self.undefined_trials}/{self.trials} trials "
                f"({self.fraction:.1%}, {self.confidence:.0%} CI [{self.lower:.1%}, {self.upper:.1%}]); "
                f"{self.undefined_pairs}/{self.pairs} pairs ({self.pair_fraction:.1%}) have a zero gradient and an "
                f"undefined cosine")


def undefined_cosines(sample, n_samples: int | None = None, confidence: float = 0.95) -> UndefinedCosines:
    """How many trials have an undefined minimum cosine and how many pairs the cosine statistics leave out.

    ``sample`` is a ConfusionSample (its ``config`` gives ``N``), or a
    mapping or DataFrame of per-trial statistics (a sweep point's frame) with
    the columns ``min_cosine`` and ``undefined_cosine_pairs``, and then
    ``n_samples`` is required.
    """
    stats = sample.stats if hasattr(sample, "stats") else sample
    if n_samples is None:
        if not hasattr(sample, "config"):
            raise ValueError("argument 'n_samples' is required unless 'sample' is a ConfusionSample")
        n_samples = sample.config["n_samples"]
    n_samples = validation.integer("n_samples", n_samples, minimum=2)
    minimum = np.asarray(stats["min_cosine"], dtype=float)
    trials = int(minimum.size)
    if trials == 0:
        raise ValueError("undefined_cosines needs at least one trial")
    undefined = int(np.isnan(minimum).sum())
    pairs = int(np.asarray(stats["undefined_cosine_pairs"], dtype=float).sum())
    lower, upper = clopper_pearson(undefined, trials, confidence)
    return UndefinedCosines(trials, undefined, n_samples, trials * n_samples * (n_samples - 1) // 2, pairs,
                            float(lower), float(upper), confidence)


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


#: How a table's columns map to the symbols of ``theory``: the one translation, used by ``fit_bound_constant`` and
#: by the figures' bounds.  A sweep's columns (``width``, ``depth``, ``d``, ``n_samples``, ``kappa``, ``eta``; in
#: this order a fit names a point), then the figures' (``N`` for ``n_samples``, ``gamma``, ``gain``, the weight
#: norm of Theorem 5.1, and the radius ``r`` of Corollary 5.1).
THEORY_SYMBOLS = {"width": "width", "depth": "beta", "d": "d", "n_samples": "N", "kappa": "kappa", "eta": "eta",
                  "N": "N", "gamma": "gamma", "gain": "weight_norm", "r": "r"}


def fit_bound_constant(table: pd.DataFrame, result, constant: str, fixed: dict | None = None):
    """Apply ``theory.fit_constant`` to a tail table: the largest constant for which the bound dominates.

    ``table`` has one row per (grid point, eta) with the sweep's columns
    (``width``, ``depth``, ``d``, ``n_samples``, ``kappa``, ``eta``; any column of
    ``THEORY_SYMBOLS`` is read, under its symbol, where the bound's expression has it) and the
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
