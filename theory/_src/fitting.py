"""Hooks for the Monte Carlo side: fit the free constants of a bound to empirical failure probabilities, and say
what the fit is worth.

A probability bound ``Pr[eta* > eta] <= B(c)`` with an unspecified absolute
constant ``c`` decreases in ``c``.  Given Clopper-Pearson lower limits
``p_lo`` of the empirical failure probabilities on a grid, the bound
dominates a point for exactly the ``c`` with ``B(c) >= p_lo``, an interval
``(0, c_i]``; it dominates the whole grid for ``c <= min_i c_i``.

That interval is never empty: as ``c -> 0`` every bound of the paper tends to
``N^2 >= 1`` (or more), which dominates any probability.  So "some ``c > 0``
works" is no evidence for a theorem, and ``fit_constant`` classifies the fit
(``ConstantFit.verdict``, in order of precedence):

* ``"hypotheses-fail"``: a hypothesis of the result fails at some grid point
  (``Result.failing_points``), so the fit there tests nothing the theorem says;
* ``"contradicted"``: along some axis of the grid (all other coordinates
  equal) the bound's failure probability falls while the measured one rises
  with non-overlapping confidence intervals (``p_lower`` at the larger value
  above ``p_upper`` at the smaller), at two points where the bound at the
  fitted constant is below 1 (``CONTRADICTION_BELOW``: a bound >= 1 says
  nothing, so its fall between two such points claims nothing the data could
  contradict): no single constant can keep up as the axis grows, whatever the
  grid says at its ends (needs ``p_upper``);
* ``"vacuous"``: at ``c = upper`` the bound is ``< 1`` at no more than half
  of the ``n`` grid points (``NON_VACUOUS_SHARE``); ``describe()`` says
  "vacuous at m of n points", ``m`` the points where it is ``>= 1`` (it holds
  there only because it says nothing, e.g. a ``beta exp(-c1 kappa^2 l^2) >= 1``
  term that no ``c2`` can lower, or an exponent too small at the fitted
  constant);
* ``"non-vacuous"``: the bound at ``c = upper`` is ``< 1`` at ``k`` of the
  ``n`` points with ``k > n / 2`` (most of the grid).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from scipy import optimize

from . import symbols as S
from .result import Result

#: The machine-readable classes of a fit, in order of precedence (see the module docstring): "vacuous" and
#: "non-vacuous" by ``NON_VACUOUS_SHARE``, "contradicted" only between points below ``CONTRADICTION_BELOW``.
VERDICTS = ("hypotheses-fail", "contradicted", "vacuous", "non-vacuous")

#: "non-vacuous" needs the bound at the fitted constant below 1 at more than this share of the grid's points (a
#: strict majority); at no more than half of them the fit is "vacuous" (it says nothing at most points).
NON_VACUOUS_SHARE = 0.5

#: A contradiction is shown only between two points where the bound at the fitted constant is below this value.
CONTRADICTION_BELOW = 1.0

#: The largest constant tried (``_largest_admissible``); the bound "at c = inf" is evaluated here.
_HIGH = 1e300


def _digits(factor: float) -> int:
    """Significant digits that show a factor near 1 as different from 1: 3, plus one per decade of ``|factor - 1|``
    below 0.1 (1.0006 -> 6 digits, "1.0006"; 12.3456 -> 3, "12.3")."""
    gap = abs(factor - 1)
    if not np.isfinite(factor) or gap == 0 or gap >= 0.1:
        return 3
    return min(15, 2 + int(np.ceil(-np.log10(gap))))


def _majority(bound: np.ndarray) -> bool:
    """Is the bound below 1 at more than ``NON_VACUOUS_SHARE`` of the points (the rule for "non-vacuous")?"""
    return int(np.count_nonzero(bound < 1)) > NON_VACUOUS_SHARE * bound.size


@dataclass(frozen=True)
class Contradiction:
    """Along ``axis``, from ``low`` to ``high`` (other coordinates ``at``), the bound falls and the data rise.

    ``bound`` is the failure bound at the two points (at the fitted constant,
    or 1 where the fit leaves it unset), below 1 at both (``CONTRADICTION_BELOW``); ``interval_low``/``interval_high`` the
    ``(p_lower, p_upper)`` confidence intervals there, disjoint with the higher
    one at ``high``; ``points`` the two grid indices; ``pairs`` how many
    ordered pairs of this group contradict (this one rises most).
    """

    axis: str
    at: dict
    low: float
    high: float
    bound: tuple
    interval_low: tuple
    interval_high: tuple
    points: tuple
    pairs: int = 1

    @property
    def rise(self) -> float:
        """The least factor by which the failure probability rises: ``p_lower(high) / p_upper(low)``."""
        return self.interval_high[0] / self.interval_low[1] if self.interval_low[1] > 0 else np.inf

    @property
    def fall(self) -> float:
        """The factor by which the bound falls: ``B(low) / B(high)``."""
        return self.bound[0] / self.bound[1] if self.bound[1] > 0 else np.inf

    def describe(self) -> str:
        at = ", ".join(f"{k}={v:g}" for k, v in self.at.items())
        digits = _digits(self.fall)  # a fall of 1.0006 reads "1.0006-fold (0.5 -> 0.4997)", never "1-fold"
        return (f"from {self.axis}={self.low:g} to {self.axis}={self.high:g}" + (f" ({at})" if at else "")
                + f" the bound falls {self.fall:.{digits}g}-fold ({self.bound[0]:.{digits}g} -> "
                f"{self.bound[1]:.{digits}g}) while "
                f"Pr[failure] rises at least {self.rise:.3g}-fold ([{self.interval_low[0]:.3g}, {self.interval_low[1]:.3g}]"
                f" -> [{self.interval_high[0]:.3g}, {self.interval_high[1]:.3g}])")


@dataclass(frozen=True)
class ConstantFit:
    """The largest value of one free constant for which a bound dominates every grid point, and what it is worth.

    ``upper`` is that value (``inf`` if every value works, 0 if none does);
    ``exists`` says whether some positive value works; ``binding`` is the index
    of the grid point that sets ``upper``; ``per_point`` holds each point's own
    largest admissible value.  ``bound`` is the failure bound at ``c = upper``
    at each point; ``p_lower``/``p_upper`` the data (``p_upper`` is ``None`` when
    not given, and then ``contradictions`` is ``None``: not checked).
    ``hypothesis_failures`` maps each failing hypothesis to the grid indices
    where it fails; ``spread`` is ``max/min`` of the finite, positive
    ``per_point`` (how far from one constant the points are); ``verdict`` is
    one of ``VERDICTS`` (see the module docstring) and ``describe()`` says it
    in words.
    """

    result: str
    constant: str
    upper: float
    exists: bool
    binding: int | None
    per_point: np.ndarray
    grid: dict
    p_lower: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_upper: np.ndarray | None = None
    bound: np.ndarray = field(default_factory=lambda: np.empty(0))
    contradictions: tuple | None = None
    hypothesis_failures: dict = field(default_factory=dict)
    spread: float = np.nan
    verdict: str = "non-vacuous"

    @property
    def informative(self) -> np.ndarray:
        """Points with ``p_lower > 0``: the only ones that constrain the constant."""
        return self.p_lower > 0

    @property
    def non_vacuous(self) -> np.ndarray:
        """Points where the fitted bound says something: ``bound < 1``."""
        return self.bound < 1

    def _at(self, index: int) -> str:
        return ", ".join(f"{k}={v[index]:g}" for k, v in self.grid.items())

    def _consistency(self) -> str:
        if not self.exists:
            return f"no {self.constant} > 0 makes {self.result} hold at ({self._at(self.binding)})"
        n, k = self.p_lower.size, int(self.non_vacuous.sum())
        if np.isinf(self.upper):
            text = f"{self.result} holds on this grid for every {self.constant} > 0"
            if not self.informative.any():
                return text + " (no point has p_lower > 0: the data constrain nothing)"
        else:
            text = f"{self.result} holds on this grid with {self.constant} <= {self.upper:.3g}"
        # the rule of NON_VACUOUS_SHARE, stated with the word it decides
        need = int(np.floor(NON_VACUOUS_SHARE * n)) + 1
        if not _majority(self.bound):
            return (text + f": vacuous at {n - k} of {n} points (the fitted bound is >= 1 there and < 1 at {k}; "
                    f"'non-vacuous' needs a bound < 1 at more than half of the points, {need} of {n})")
        return (text + f": non-vacuous and consistent at {k} of {n} points (bound < 1 at more than half of the "
                f"points, {need} of {n} needed)")

    def describe(self) -> str:
        """The verdict in words, for a figure legend or the report: the class first, then the other findings."""
        clauses = []
        if self.hypothesis_failures:
            n = self.p_lower.size
            parts = [f"{label} fails at {len(where)} of {n} points (first at {self._at(where[0])})"
                     for label, where in self.hypothesis_failures.items()]
            clauses.append(f"{self.result}: hypotheses fail, so the fit there does not test the result: "
                           + "; ".join(parts))
        if self.contradictions:
            axes = sorted({x.axis for x in self.contradictions})
            worst = max(self.contradictions, key=lambda x: x.rise)
            groups = {a: sum(1 for x in self.contradictions if x.axis == a) for a in axes}
            clauses.append(f"{self.result} contradicted along {', '.join(axes)} ("
                           + ", ".join(f"{a}: {g} group{'s' if g > 1 else ''}" for a, g in groups.items())
                           + f"): {worst.describe()}")
        clauses.append(self._consistency())
        if np.isfinite(self.spread):
            finite = self.per_point[np.isfinite(self.per_point) & (self.per_point > 0)]
            clauses.append(f"per-point {self.constant} spans a factor of {self.spread:.3g} "
                           f"({finite.min():.3g} .. {finite.max():.3g})")
        if self.contradictions is None:
            clauses.append("direction not checked (no p_upper)")
        return "; ".join(clauses)


def _largest_admissible(failure, target: float, low: float = 1e-300, high: float = _HIGH) -> float:
    """Largest c with failure(c) >= target, for failure decreasing in c."""
    if target <= 0 or failure(high) >= target:
        return np.inf
    if failure(low) < target:
        return 0.0
    root = optimize.brentq(lambda logc: failure(np.exp(logc)) - target, np.log(low), np.log(high), xtol=1e-12)
    return float(np.exp(root))


def _contradictions(arrays: dict, bound: np.ndarray, p_lower: np.ndarray, p_upper: np.ndarray,
                    fitted: np.ndarray | None = None) -> tuple:
    """Every group (one axis varying, the rest equal) where the bound falls along the axis and the data rise.

    A pair ``a, b`` with ``x_a < x_b`` contradicts when ``B_b < B_a`` (the bound
    says failures get rarer), ``p_lower_b > p_upper_a`` (they measurably got
    more frequent) and the bound at the fitted constant (``fitted``, default
    ``bound``) is below ``CONTRADICTION_BELOW`` at both points: a bound >= 1
    says nothing there, and its fall from 64 to 63.96 is no claim the data
    could contradict.  The converse (bound rising, data falling) is only a
    loose bound, not a contradiction.  One entry per group: its pair with the
    largest least rise.
    """
    says = (bound if fitted is None else fitted) < CONTRADICTION_BELOW
    varying = [k for k, v in arrays.items() if np.unique(v).size > 1]
    found = []
    for axis in varying:
        others = [k for k in varying if k != axis]
        keys = [tuple(arrays[k][m] for k in others) for m in range(p_lower.size)]
        for key in dict.fromkeys(keys):
            members = [m for m in range(p_lower.size) if keys[m] == key]
            pairs = [(a, b) for a in members for b in members
                     if arrays[axis][a] < arrays[axis][b]
                     and says[a] and says[b]
                     and bound[b] < bound[a] * (1 - 1e-12)  # strictly falling, beyond rounding
                     and p_lower[b] > p_upper[a]]
            if not pairs:
                continue

            def rise(pair):
                a, b = pair
                return p_lower[b] / p_upper[a] if p_upper[a] > 0 else np.inf

            a, b = max(pairs, key=rise)
            found.append(Contradiction(
                axis=axis, at=dict(zip(others, (float(v) for v in key))), low=float(arrays[axis][a]),
                high=float(arrays[axis][b]), bound=(float(bound[a]), float(bound[b])),
                interval_low=(float(p_lower[a]), float(p_upper[a])),
                interval_high=(float(p_lower[b]), float(p_upper[b])), points=(a, b), pairs=len(pairs)))
    return tuple(found)


def _show(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reals(name: str, value, what: str) -> np.ndarray:
    """``value`` as a float array of at most one dimension, or a refusal naming ``name`` and what it holds."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must hold {what}, got {_show(value)}") from None
    if array.ndim > 1:
        raise ValueError(f"{name} must be a number or a one-dimensional array ({what}), got shape {array.shape}")
    return np.atleast_1d(array)


def _probabilities(name: str, value) -> np.ndarray:
    """Confidence limits of probabilities: a non-empty one-dimensional array of numbers in [0, 1]."""
    array = _reals(f"argument '{name}'", value, "probabilities in [0, 1], one per grid point")
    if array.size == 0:
        raise ValueError(f"argument '{name}' must hold one probability per grid point, at least one; got none")
    bad = ~((array >= 0) & (array <= 1))  # NaN fails both
    if bad.any():
        m = int(np.argmax(bad))
        raise ValueError(f"argument '{name}' must hold probabilities in [0, 1] (not NaN); at point {m} it is "
                         f"{array[m]:g}" + (f" ({int(bad.sum())} such points)" if bad.sum() > 1 else ""))
    return array


def _check_fit_arguments(result, constant, p_lower, p_upper, fixed, grid) -> tuple:
    """``fit_constant``'s arguments, validated: each refusal names the argument and says what is accepted."""
    if not isinstance(result, Result):
        raise TypeError(f"argument 'result' must be a theory result (e.g. theory.theorem_4_1_sphere), got "
                        f"{type(result).__name__}")
    if result.kind != "probability_lower_bound":
        raise ValueError(f"argument 'result' = {result.key} is a {result.kind}; fit_constant needs a probability "
                         f"lower bound (Pr[(3) holds] >= 1 - B(c))")
    free = [x.name for x in result.constants]
    if not isinstance(constant, str) or constant not in free:
        raise ValueError(f"argument 'constant' must name a free constant of {result.key} (one of "
                         f"{', '.join(map(repr, free)) or 'none: it has no free constant'}), got {_show(constant)}")
    p_lower = _probabilities("p_lower", p_lower)
    if p_upper is not None:
        p_upper = _probabilities("p_upper", p_upper)
        if p_upper.shape != p_lower.shape:
            raise ValueError(f"argument 'p_upper' must have the shape of 'p_lower': {p_lower.size} values, one per "
                             f"grid point; got {p_upper.size}")
        if np.any(p_upper < p_lower):
            m = int(np.argmax(p_upper < p_lower))
            raise ValueError(f"argument 'p_upper' must be >= 'p_lower'; at point {m} {p_upper[m]:g} < {p_lower[m]:g}")
    if fixed is None:
        fixed = {}
    if not isinstance(fixed, Mapping):
        raise TypeError(f"argument 'fixed' must be a dict of the other constants' values (e.g. {{'c1': np.inf}}), "
                        f"got {type(fixed).__name__}")
    others = [name for name in free if name != constant]
    unknown = [key for key in fixed if key not in S.ALL]
    if unknown:
        raise ValueError(f"argument 'fixed' has unknown key(s) {', '.join(map(_show, unknown))}: it takes the other "
                         f"constants of {result.key} ({', '.join(others) or 'none'}) or other symbols of theory "
                         f"(theory.symbols)")
    if constant in fixed:
        raise ValueError(f"argument 'fixed' must not give {constant!r}, the constant being fitted (argument "
                         f"'constant'); it takes the other constants ({', '.join(others) or 'none'})")
    checked = {}
    for key, value in fixed.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"argument 'fixed' must give each symbol one real number; {key!r} is {_show(value)}")
        checked[key] = float(value)
    arrays = {}
    for key, value in grid.items():
        if key not in S.ALL:
            raise ValueError(f"keyword argument {key!r} is not a symbol of theory: the grid's keywords are the "
                             f"symbols {', '.join(sorted(S.ALL))}")
        if key in fixed or key == constant:
            raise ValueError(f"keyword argument {key!r} is given as a grid value and as argument "
                             f"{'constant' if key == constant else 'fixed'}: give it once")
        array = _reals(f"keyword argument {key!r}", value, "real numbers, one per grid point or one for all")
        if array.size not in (1, p_lower.size):
            raise ValueError(f"keyword argument {key!r} holds {array.size} values, but 'p_lower' holds "
                             f"{p_lower.size} (one per grid point): give {p_lower.size} values or one")
        arrays[key] = np.broadcast_to(array if array.size > 1 else array[0], p_lower.shape)
    missing = [x.name for x in result.symbols if x.name != constant and x.name not in checked and x.name not in arrays]
    if missing:
        where = [f"{name!r} (in argument 'fixed')" if name in free else f"{name!r} (a grid keyword)" for name in missing]
        raise ValueError(f"fit_constant needs a value for every symbol of {result.key}'s bound besides {constant!r}; "
                         f"missing {', '.join(where)}")
    return constant, p_lower, p_upper, checked, arrays


def fit_constant(result: Result, constant: str, p_lower, fixed: dict | None = None, p_upper=None,
                 **grid) -> ConstantFit:
    """Largest value of ``constant`` for which ``result``'s failure bound dominates every point, with its verdict.

    Parameters
    ----------
    result : Result
        A probability lower bound ``Pr[(3) holds] >= 1 - B(c)`` (Theorems
        4.1, 4.2, 5.1, 6.1, Corollary 5.1).
    constant : str
        The free constant to fit (``"c"``, ``"c1"`` or ``"c2"``).
    p_lower : array_like
        Lower confidence limits (length M) of the empirical failure
        probabilities ``Pr[eta* > eta]``.
    fixed : dict, optional
        The other constants (``np.inf`` switches a term ``exp(-c1 ...)`` off).
    p_upper : array_like, optional
        The matching upper confidence limits; needed to detect a
        contradiction in direction (``ConstantFit.contradictions``).
    **grid
        Each symbol's value at the M points (arrays of length M, or scalars).
        Symbols that only hypotheses use (``gamma``, ``weight_norm``,
        ``data_norm``) may be given too: they are checked, point by point.

    Returns
    -------
    ConstantFit
        ``upper = min_i c_i`` where ``B_i(c_i) = p_lower_i``, and the verdict
        (one of ``VERDICTS``; see the module docstring).

    Raises
    ------
    TypeError, ValueError
        Naming the argument and what is accepted: ``result`` not a
        probability lower bound; ``constant`` not one of its free constants;
        ``p_lower`` or ``p_upper`` empty, of more than one dimension, or with
        a value outside ``[0, 1]`` or NaN; ``p_upper`` of another length or
        below ``p_lower``; ``fixed`` not a dict, with a key that is no symbol,
        or giving ``constant``; a grid keyword that is no symbol, not numbers,
        or of a length other than ``p_lower``'s (or 1).  Grid values outside a
        symbol's domain are refused by the result (``Result.check_domain``).
    """
    constant, p_lower, p_upper, fixed, arrays = _check_fit_arguments(result, constant, p_lower, p_upper, fixed, grid)
    per_point = np.empty(p_lower.shape)
    for m in range(p_lower.size):
        point = {k: v[m] for k, v in arrays.items()} | fixed

        def failure(value, point=point):
            return float(result.failure_bound(**point, **{constant: value}))

        per_point[m] = _largest_admissible(failure, p_lower[m])
    upper = float(per_point.min())
    binding = int(np.argmin(per_point)) if np.isfinite(upper) else None
    # the bound the fit stands for; "c = inf" is the largest value the root search tries
    bound = np.asarray(result.failure_bound(**arrays, **fixed, **{constant: min(max(upper, 1e-300), _HIGH)}),
                       dtype=float) * np.ones(p_lower.shape)
    # the direction of the bound does not depend on the size of c (c scales the exponent), only where it is set
    reference = upper if 0 < upper < np.inf else 1.0
    direction = np.asarray(result.failure_bound(**arrays, **fixed, **{constant: reference}), dtype=float) \
        * np.ones(p_lower.shape)
    contradictions = None if p_upper is None else _contradictions(arrays, direction, p_lower, p_upper, bound)
    masks = result.failing_points(**arrays, **fixed)
    failures = {label: tuple(int(i) for i in np.flatnonzero(mask)) for label, mask in masks.items() if mask.any()}
    finite = per_point[np.isfinite(per_point) & (per_point > 0)]
    spread = float(finite.max() / finite.min()) if finite.size else np.nan
    if failures:
        verdict = "hypotheses-fail"
    elif contradictions:
        verdict = "contradicted"
    elif not _majority(bound):  # NON_VACUOUS_SHARE: below 1 at no more than half of the points
        verdict = "vacuous"
    else:
        verdict = "non-vacuous"
    return ConstantFit(result.key, constant, upper, upper > 0, binding, per_point, arrays, p_lower=p_lower,
                       p_upper=p_upper, bound=bound, contradictions=contradictions, hypothesis_failures=failures,
                       spread=spread, verdict=verdict)


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
