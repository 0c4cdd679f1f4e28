"""Hooks for the Monte Carlo side: fit the free constants of a bound to empirical failure probabilities.

A probability bound ``Pr[eta* > eta] <= B(c)`` with an unspecified absolute
constant ``c`` decreases in ``c``.  Given Clopper-Pearson lower limits
``p_lo`` of the empirical failure probabilities on a grid, the bound
dominates a point for exactly the ``c`` with ``B(c) >= p_lo``, an interval
``(0, c_i]``; it dominates the whole grid for ``c <= min_i c_i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp
from scipy import optimize

from . import symbols as S
from .result import Result


@dataclass(frozen=True)
class ConstantFit:
    """The largest value of one free constant for which a bound dominates every grid point.

    ``upper`` is that value (``inf`` if every value works, 0 if none does);
    ``exists`` says whether some positive value works; ``binding`` is the index
    of the grid point that sets ``upper``; ``per_point`` holds each point's own
    largest admissible value.
    """

    result: str
    constant: str
    upper: float
    exists: bool
    binding: int | None
    per_point: np.ndarray
    grid: dict

    def describe(self) -> str:
        """One sentence for a figure legend or the report."""
        if not self.exists:
            where = ", ".join(f"{k}={v[self.binding]:g}" for k, v in self.grid.items())
            return f"no {self.constant} > 0 makes {self.result} hold at ({where})"
        if np.isinf(self.upper):
            return f"{self.result} holds on this grid for every {self.constant} > 0"
        return f"{self.result} holds on this grid with {self.constant} <= {self.upper:.3g}"


def _largest_admissible(failure, target: float, low: float = 1e-300, high: float = 1e300) -> float:
    """Largest c with failure(c) >= target, for failure decreasing in c."""
    if target <= 0 or failure(high) >= target:
        return np.inf
    if failure(low) < target:
        return 0.0
    root = optimize.brentq(lambda logc: failure(np.exp(logc)) - target, np.log(low), np.log(high), xtol=1e-12)
    return float(np.exp(root))


def fit_constant(result: Result, constant: str, p_lower, fixed: dict | None = None, **grid) -> ConstantFit:
    """Largest value of ``constant`` for which ``result``'s failure bound dominates every point.

    ``p_lower`` (length M) are lower confidence limits of the empirical
    failure probabilities ``Pr[eta* > eta]``; ``grid`` gives each symbol's value
    at the M points (arrays of length M, or scalars); ``fixed`` gives the other
    constants (``np.inf`` switches a term ``exp(-c1 ...)`` off).
    """
    if result.kind != "probability_lower_bound":
        raise ValueError(f"{result.key} is a {result.kind}; fit_constant needs a probability lower bound")
    if constant not in {x.name for x in result.constants}:
        names = ", ".join(x.name for x in result.constants) or "none"
        raise ValueError(f"{result.key} has no free constant {constant!r} (it has: {names})")
    p_lower = np.atleast_1d(np.asarray(p_lower, dtype=float))
    arrays = {k: np.broadcast_to(np.asarray(v, dtype=float), p_lower.shape) for k, v in grid.items()}
    fixed = dict(fixed or {})
    per_point = np.empty(p_lower.shape)
    for m in range(p_lower.size):
        point = {k: v[m] for k, v in arrays.items()} | fixed

        def failure(value, point=point):
            return float(result.failure_bound(**point, **{constant: value}))

        per_point[m] = _largest_admissible(failure, p_lower[m])
    upper = float(per_point.min())
    binding = int(np.argmin(per_point)) if np.isfinite(upper) else None
    return ConstantFit(result.key, constant, upper, upper > 0, binding, per_point, arrays)


def implied_exponent(result: Result, variable: str, **point):
    """``d log(rate) / d log(variable)`` at ``point``: how fast ``-log Pr[failure]`` grows with ``variable``.

    For Theorem 4.1 (sphere) this is ``(l d + 2 l^2 beta) / (l d + l^2 beta)`` in the
    width (between 1 and 2), and 0 for the ICLR form.  Vectorised over arrays.
    """
    if result.rate is None:
        raise ValueError(f"{result.key} has no exponential rate")
    if variable not in S.ALL:
        raise ValueError(f"argument 'variable' must name a symbol ({', '.join(sorted(S.ALL))}); got {variable!r}")
    result.check_domain(**point)  # the same domains as every evaluation of the result
    x = S.ALL[variable]
    rate = result.rate.subs({k: v for k, v in result.defaults.items() if k.name not in point})
    elasticity = sp.simplify(sp.diff(rate, x) * x / rate)
    args = tuple(sorted(elasticity.free_symbols, key=lambda z: z.name))
    missing = [a.name for a in args if a.name not in point]
    if missing:
        raise ValueError(f"implied_exponent needs values for {', '.join(missing)}")
    return sp.lambdify(args, elasticity, modules="numpy")(*[np.asarray(point[a.name], dtype=float) for a in args])
