r"""How fast a quantity decays with a size: the fit ``y = C x^(-a)`` with intervals on ``C`` and ``a``.

Used for the finite-width excess of a tail over its infinite-width floor,
``y = log(Pr_l / floor)`` against the width ``l`` (F16): with a positive floor
``-log Pr`` cannot grow without bound, so the quantity that says how fast width
helps is the excess, not a power of ``-log Pr``.

Fit: weighted least squares of ``y_i`` on ``C x_i^(-a)`` with the given
standard errors ``s_i`` (independent estimates, e.g. one per width), in the
parameters ``(log C, a)`` (``C > 0``).  The covariance is the inverse of the
Gauss-Newton information ``J^T S^{-2} J`` at the optimum, multiplied by the
reduced chi-square ``chi^2 / (n - 2)`` when that exceeds 1 (the errors then
understate the scatter about the law: Birge's scale factor, as the Particle
Data Group inflates averages of inconsistent measurements); the 95% intervals
are Wald intervals on ``log C`` (so the interval of ``C`` is ``exp`` of it) and
on ``a``: with the normal quantile while the given errors explain the scatter,
with Student's t on ``n - 2`` degrees of freedom once they are rescaled (the
errors are then estimated from the residuals); their coverage on synthetic
data from the law, with right and with understated errors, is checked in the
tests.  ``p_value`` is the
chi-square test of the law itself: a small value says the law does not fit,
whatever the intervals say.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats


@dataclass(frozen=True)
class PowerDecayFit:
    """``y = C x^(-a)`` fitted to estimates with standard errors (module docstring).

    Attributes
    ----------
    C, a : float
    C_interval, a_interval : (float, float)
        95% intervals (``confidence``).
    chi2 : float
        Weighted residual sum of squares at the optimum.
    dof : int
        ``n - 2``.
    p_value : float
        ``Pr[chi^2_dof >= chi2]``: the law's goodness of fit.
    scale : float
        The factor applied to the standard errors of the parameters (``max(1, sqrt(chi2 / dof))``).
    x, y, se : arrays
        The data fitted.
    """

    C: float
    a: float
    C_interval: tuple
    a_interval: tuple
    chi2: float
    dof: int
    p_value: float
    scale: float
    x: np.ndarray
    y: np.ndarray
    se: np.ndarray

    def predict(self, x) -> np.ndarray:
        """``C x^(-a)``."""
        return self.C * np.asarray(x, dtype=float) ** (-self.a)

    def describe(self) -> str:
        """``C = .. [..], a = .. [..] (chi^2 = .. on .. dof, p = ..)``."""
        return (f"C = {self.C:.3g} [{self.C_interval[0]:.3g}, {self.C_interval[1]:.3g}], a = {self.a:.3g} "
                f"[{self.a_interval[0]:.3g}, {self.a_interval[1]:.3g}] (chi^2 = {self.chi2:.3g} on {self.dof} dof, "
                f"p = {self.p_value:.2g}{'' if self.scale == 1 else f'; errors scaled by {self.scale:.3g}'})")


def fit_power_decay(x, y, se, confidence: float = 0.95) -> PowerDecayFit:
    """Fit ``y = C x^(-a)`` (``C > 0``) to estimates ``y`` with standard errors ``se`` at sizes ``x > 0``.

    Parameters
    ----------
    x : array of n > 2 positive sizes (at least 3 distinct)
    y : array of n estimates (finite; individual values may be <= 0 through noise)
    se : array of n positive standard errors
    confidence : float in (0, 1)

    Returns
    -------
    PowerDecayFit

    Raises
    ------
    ValueError
        Fewer than 3 distinct sizes, non-positive sizes or errors, mismatched
        lengths, or data that no positive ``C`` describes (every ``y <= 0``).
    """
    x, y, se = (np.asarray(v, dtype=float).ravel() for v in (x, y, se))
    if not (x.shape == y.shape == se.shape):
        raise ValueError(f"arguments 'x', 'y' and 'se' must have one entry each per size, got lengths "
                         f"{x.size}, {y.size}, {se.size}")
    if np.unique(x).size < 3:
        raise ValueError(f"argument 'x' must hold at least 3 distinct sizes (two points fix any power law), got "
                         f"{np.unique(x).tolist()}")
    if not (np.all(np.isfinite(x)) and np.all(x > 0)):
        raise ValueError("argument 'x' must hold finite sizes > 0")
    if not (np.all(np.isfinite(se)) and np.all(se > 0)):
        raise ValueError("argument 'se' must hold finite standard errors > 0")
    if not np.all(np.isfinite(y)):
        raise ValueError("argument 'y' must hold finite estimates")
    if not np.any(y > 0):
        raise ValueError("argument 'y' has no positive estimate: no C > 0 describes these data")
    if not 0 < confidence < 1:
        raise ValueError(f"argument 'confidence' must be in (0, 1), got {confidence!r}")
    logx = np.log(x)

    def residuals(theta):
        return (y - np.exp(theta[0] - theta[1] * logx)) / se

    # start from a log-log line through the positive points (or a = 1)
    positive = y > 0
    if np.unique(x[positive]).size >= 2:
        slope, intercept = np.polyfit(logx[positive], np.log(y[positive]), 1, w=y[positive] / se[positive])
        start = np.array([intercept, -slope])
    else:
        start = np.array([np.log(y[positive].max() * x[positive][0]), 1.0])
    fit = optimize.least_squares(residuals, start, method="lm", xtol=1e-14, ftol=1e-14, gtol=1e-14)
    theta = fit.x
    J = fit.jac
    n = x.size
    dof = n - 2
    chi2 = float(np.sum(fit.fun ** 2))
    covariance = np.linalg.pinv(J.T @ J)
    scale = 1.0 if dof == 0 else max(1.0, float(np.sqrt(chi2 / dof)))
    errors = np.sqrt(np.diag(covariance)) * scale
    # given errors: a normal quantile; errors rescaled by the residuals: they are estimated, so Student's t with
    # n - 2 degrees of freedom (with the normal quantile, coverage fell to 0.87 when the errors were understated)
    q = stats.norm.ppf(0.5 + confidence / 2) if scale == 1 else stats.t.ppf(0.5 + confidence / 2, dof)
    logC, a = float(theta[0]), float(theta[1])
    return PowerDecayFit(
        C=float(np.exp(logC)), a=a, C_interval=(float(np.exp(logC - q * errors[0])), float(np.exp(logC + q * errors[0]))),
        a_interval=(a - q * errors[1], a + q * errors[1]), chi2=chi2, dof=dof,
        p_value=float(stats.chi2.sf(chi2, dof)) if dof > 0 else float("nan"), scale=scale, x=x, y=y, se=se)
