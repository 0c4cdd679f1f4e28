r"""How a rare tail approaches its floor and how fast it falls: the rate fits behind figures F16 and F17.

A tail estimated at several sizes (widths, depths, thresholds) is summarised by a rate fitted to the estimates
with their standard errors.  Beside ``fit_power_decay`` (``decay.py``: ``log(Pr_l / floor) = C l^(-a)``):

* :func:`log_excess`: ``y = log(Pr / floor)``, the excess of a tail over its floor (the infinite-width limit,
  ``theory.infinite_width_cosine_floor``), with its standard error by the delta method,
  ``se_y^2 = (se_Pr / Pr)^2 + (se_floor / floor)^2`` (independent estimates; the second term is 0 for an exact
  floor).
* :func:`fit_weighted_line`: ``y = b_0 + b_1 x`` by weighted least squares (minimise
  ``chi^2 = sum_i ((y_i - b_0 - b_1 x_i) / s_i)^2``), the slope of a tail's excess against depth for example.
* :func:`fit_width_law`: the finite-width law ``log(Pr_l / floor) = C / l - D / l^2``
  (``theory.finite_width_cosine_law`` to first order in ``1/l``, plus the next order), fitted as the straight line
  ``l log(Pr_l / floor) = C - D / l`` in ``1/l``: ``C`` is the limit of ``l log(Pr_l / floor)``.
* :func:`fit_tail_power`: the power ``q`` of ``-log Pr(x) = A x^q`` over a tail (a Gaussian tail in ``x`` has
  ``q = 2``), from independent repeats of a tail curve (subset simulation's), with a bootstrap interval.

The weighted fits take the given errors at their word for the parameters' standard errors
(``(X^T S^{-2} X)^{-1}``, ``S = diag(s_i)``) and report the reduced chi-square's Birge factor
``scale = max(1, sqrt(chi^2 / (n - 2)))`` beside them, by which a caller multiplies the standard errors when the
scatter about the line exceeds what the errors explain; ``p_value`` is the chi-square test of the line itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def log_excess(probability, se, floor, floor_se=None):
    """``log(Pr / floor)`` and its standard error by the delta method (module docstring).

    Parameters
    ----------
    probability, se : array_like
        Estimates of ``Pr`` (``> 0`` for a finite log) and their standard errors.
    floor : array_like
        The floor (``> 0``): exact, or an estimate with standard errors ``floor_se``.
    floor_se : array_like or None
        ``None`` for an exact floor (then ``se_y = se / Pr``); otherwise the floor's standard errors, the two
        estimates independent (``se_y = sqrt((se / Pr)^2 + (floor_se / floor)^2)``).

    Returns
    -------
    (y, se_y) : arrays (or pandas Series, as given)
    """
    y = np.log(probability / floor)
    relative = se / probability
    if floor_se is None:
        return y, relative
    return y, np.sqrt(relative**2 + (floor_se / floor) ** 2)


def _inputs(x, y, se) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, se = (np.asarray(v, dtype=float).ravel() for v in (x, y, se))
    if not x.shape == y.shape == se.shape:
        raise ValueError(f"arguments 'x', 'y' and 'se' must have one entry each per point, got lengths "
                         f"{x.size}, {y.size}, {se.size}")
    if np.unique(x).size < 3:
        raise ValueError(f"argument 'x' must hold at least 3 distinct values (two points fix any line), got "
                         f"{np.unique(x).tolist()}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("arguments 'x' and 'y' must be finite")
    if not (np.all(np.isfinite(se)) and np.all(se > 0)):
        raise ValueError("argument 'se' must hold finite standard errors > 0")
    return x, y, se


def _weighted_least_squares(columns, y, se):
    """``(coefficients, covariance from the given errors, chi^2, dof)`` of ``y = columns @ b`` with errors ``se``."""
    design = np.vstack(columns).T / se[:, None]
    coef, *_ = np.linalg.lstsq(design, y / se, rcond=None)
    cov = np.linalg.inv(design.T @ design)
    chi2 = float(np.sum((design @ coef - y / se) ** 2))
    return coef, cov, chi2, y.size - len(columns)


def _quality(chi2: float, dof: int) -> tuple[float, float]:
    """``(p_value, scale)``: the chi-square test of the fit and the Birge factor ``max(1, sqrt(chi^2 / dof))``."""
    if dof <= 0:
        return float("nan"), 1.0
    return float(stats.chi2.sf(chi2, dof)), max(1.0, float(np.sqrt(chi2 / dof)))


def _interval(value: float, se: float, scale: float, dof: int, confidence: float) -> tuple[float, float]:
    """Wald interval: the normal quantile while the errors explain the scatter, Student's t on ``dof`` once the
    standard error is scaled by the residuals (then estimated), as in ``fit_power_decay``."""
    q = stats.norm.ppf(0.5 + confidence / 2) if scale == 1 else stats.t.ppf(0.5 + confidence / 2, dof)
    return value - q * se * scale, value + q * se * scale


@dataclass(frozen=True)
class LineFit:
    """``y = intercept + slope x`` by weighted least squares (module docstring).

    Attributes
    ----------
    intercept, slope : float
    intercept_se, slope_se : float
        Standard errors from the given errors alone; multiply by ``scale`` to account for excess scatter.
    chi2 : float
        ``sum ((y - intercept - slope x) / se)^2`` at the optimum.
    dof : int
        ``n - 2``.
    p_value : float
        ``Pr[chi^2_dof >= chi2]``: whether a straight line fits at all.
    scale : float
        ``max(1, sqrt(chi2 / dof))`` (Birge's factor).
    x, y, se : arrays
        The data fitted.
    """

    intercept: float
    slope: float
    intercept_se: float
    slope_se: float
    chi2: float
    dof: int
    p_value: float
    scale: float
    x: np.ndarray
    y: np.ndarray
    se: np.ndarray

    def slope_interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Wald interval of the slope, its standard error scaled by ``scale`` (``t`` on ``dof`` once scaled)."""
        return _interval(self.slope, self.slope_se, self.scale, self.dof, confidence)

    def intercept_interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Wald interval of the intercept, as :meth:`slope_interval`."""
        return _interval(self.intercept, self.intercept_se, self.scale, self.dof, confidence)

    def predict(self, x) -> np.ndarray:
        """``intercept + slope x``."""
        return self.intercept + self.slope * np.asarray(x, dtype=float)


def fit_weighted_line(x, y, se) -> LineFit:
    """Fit ``y = b_0 + b_1 x`` to estimates with standard errors: minimise ``sum ((y - b_0 - b_1 x) / se)^2``.

    Parameters
    ----------
    x : array of n >= 3 values (at least 3 distinct)
    y : array of n finite estimates
    se : array of n standard errors > 0 (independent estimates)

    Returns
    -------
    LineFit
    """
    x, y, se = _inputs(x, y, se)
    coef, cov, chi2, dof = _weighted_least_squares([np.ones_like(x), x], y, se)
    p_value, scale = _quality(chi2, dof)
    return LineFit(float(coef[0]), float(coef[1]), float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1])), chi2, dof,
                   p_value, scale, x, y, se)


@dataclass(frozen=True)
class WidthLawFit:
    """``log(Pr_l / floor) = C / l - D / l^2``, fitted as ``l log(Pr_l / floor) = C - D / l`` (module docstring).

    Attributes
    ----------
    C, D : float
    C_se, D_se : float
        Standard errors from the given errors alone; multiply by ``scale`` to account for excess scatter.
    chi2, dof, p_value, scale : as in :class:`LineFit`
    width, excess, se : arrays
        The data fitted: widths, ``log(Pr_l / floor)`` and its standard errors.
    """

    C: float
    D: float
    C_se: float
    D_se: float
    chi2: float
    dof: int
    p_value: float
    scale: float
    width: np.ndarray
    excess: np.ndarray
    se: np.ndarray

    def C_interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Wald interval of ``C``, its standard error scaled by ``scale`` (``t`` on ``dof`` once scaled)."""
        return _interval(self.C, self.C_se, self.scale, self.dof, confidence)

    def predict(self, width) -> np.ndarray:
        """``log(Pr_l / floor) = C / l - D / l^2`` at ``width``."""
        inverse = 1 / np.asarray(width, dtype=float)
        return (self.C - self.D * inverse) * inverse


def fit_width_law(width, excess, se) -> WidthLawFit:
    """Fit the finite-width law ``log(Pr_l / floor) = C / l - D / l^2`` to measured excesses over the floor.

    ``theory.finite_width_cosine_law`` says ``log(Pr_l / floor) = C / l + O(1 / l^2)``; with the next order kept,
    ``l log(Pr_l / floor) = C - D / l`` is a straight line in ``1 / l`` whose intercept ``C`` is the limit of
    ``l log(Pr_l / floor)``, so that the measured ``C`` is compared with the prediction at infinite width, not at
    one width.  Weighted least squares with the errors ``l se`` (module docstring).

    Parameters
    ----------
    width : array of n >= 3 widths (at least 3 distinct, > 0)
    excess : array of n values of ``log(Pr_l / floor)`` (:func:`log_excess`)
    se : array of n standard errors > 0 of ``excess`` (independent estimates, e.g. networks drawn per width)

    Returns
    -------
    WidthLawFit
    """
    width, excess, se = _inputs(width, excess, se)
    if np.any(width <= 0):
        raise ValueError("argument 'width' must hold widths > 0")
    coef, cov, chi2, dof = _weighted_least_squares([np.ones_like(width), -1 / width], width * excess, width * se)
    p_value, scale = _quality(chi2, dof)
    return WidthLawFit(float(coef[0]), float(coef[1]), float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1])), chi2,
                       dof, p_value, scale, width, excess, se)


@dataclass(frozen=True)
class TailPowerFit:
    """The power ``q`` of ``-log Pr(x) = A x^q`` over a tail, with a bootstrap interval over the repeats.

    Attributes
    ----------
    q : float
        Fitted on the repeats' mean curve.
    lower, upper : float
        Percentile bootstrap interval (NaN when no resample gave a fit).
    points : int
        Grid points of the mean curve in the tail (``0 < Pr < max_probability``).
    decades : float
        ``-log10`` of the smallest probability among them.
    repeats, resamples : int
        Independent repeats behind the curve; bootstrap resamples drawn.
    confidence : float
    """

    q: float
    lower: float
    upper: float
    points: int
    decades: float
    repeats: int
    resamples: int
    confidence: float


def _tail_power(x, curve, max_probability):
    """Least-squares line ``log(-log Pr) = log A + q log x`` over ``0 < Pr < max_probability``; NaN with < 3 points."""
    keep = (curve > 0) & (curve < max_probability)
    if np.unique(x[keep]).size < 3:
        return np.nan
    return float(np.polyfit(np.log(x[keep]), np.log(-np.log(curve[keep])), 1)[0])


def fit_tail_power(x, curves, *, max_probability: float = 1e-2, resamples: int = 400, seed=0,
                   confidence: float = 0.95) -> TailPowerFit:
    """The power ``q`` of ``-log Pr(x) = A x^q`` over a tail, from independent repeats of the tail curve.

    Fitted as the least-squares line ``log(-log Pr) = log A + q log x`` on the repeats' mean curve where
    ``0 < Pr < max_probability``.  The interval is a percentile bootstrap over the repeats (the independent unit):
    resample the repeats with replacement, average their curves, refit.  Never fitted repeat by repeat: single
    repeats of subset simulation are biased low (their median is below the truth), so per-repeat logs are biased.
    A Gaussian tail in ``x`` has ``q = 2``; ``q < 2`` is a heavier tail, ``q > 2`` a lighter one.

    Parameters
    ----------
    x : array of the grid (> 0 where the tail is fitted)
    curves : array, repeats x grid
        Each repeat's ``Pr[statistic > x]`` (or ``<``) on the grid.
    max_probability : float in (0, 1]
        The tail's upper end.
    resamples : int >= 1
    seed : int, sequence or numpy Generator
        The bootstrap's draws (``numpy.random.default_rng(seed)``).
    confidence : float in (0, 1)

    Returns
    -------
    TailPowerFit

    Raises
    ------
    ValueError
        When the mean curve has fewer than 3 distinct grid points in the tail (no power to fit).
    """
    x = np.asarray(x, dtype=float).ravel()
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    if curves.shape[1] != x.size:
        raise ValueError(f"argument 'curves' must have one column per grid point of 'x' ({x.size}), got shape "
                         f"{curves.shape}")
    if not 0 < max_probability <= 1:
        raise ValueError(f"argument 'max_probability' must be in (0, 1], got {max_probability!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"argument 'confidence' must be in (0, 1), got {confidence!r}")
    if isinstance(resamples, bool) or int(resamples) != resamples or resamples < 1:
        raise ValueError(f"argument 'resamples' must be an integer >= 1, got {resamples!r}")
    mean = curves.mean(axis=0)
    q = _tail_power(x, mean, max_probability)
    if not np.isfinite(q):
        raise ValueError(f"the mean curve has fewer than 3 distinct grid points with 0 < Pr < {max_probability:g}: "
                         "no power to fit")
    rng = np.random.default_rng(seed)
    repeats = len(curves)
    boot = [_tail_power(x, curves[rng.integers(0, repeats, repeats)].mean(axis=0), max_probability)
            for _ in range(int(resamples))]
    boot = np.asarray(boot)[np.isfinite(boot)]
    # percentiles rounded to 1e-10, so that 0.95 gives exactly 2.5 and 97.5 (1 - 0.95 is not 0.05 in binary)
    percentiles = np.round([50 * (1 - confidence), 50 * (1 + confidence)], 10)
    lower, upper = np.percentile(boot, percentiles) if boot.size else (np.nan, np.nan)
    keep = (mean > 0) & (mean < max_probability)
    return TailPowerFit(q, float(lower), float(upper), int(keep.sum()), float(-np.log10(mean[keep].min())), repeats,
                        int(resamples), confidence)
