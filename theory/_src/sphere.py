"""Data uniform on the sphere: the exact law of <x_i, x_j>, its tail and the union bound over pairs.

For ``x, y`` independent and uniform on ``S^{d-1}`` and ``t = <x, y>``:
``(1 + t)/2 ~ Beta((d-1)/2, (d-1)/2)`` exactly (textbook; digest section 1.3),
so ``E t = 0``, ``Var t = 1/d``, and ``Pr(|t| >= eps) = 2 I_{(1-eps)/2}(a, a)``
with ``a = (d-1)/2`` and ``I`` the regularised incomplete beta function
(written through the lower tail, so it keeps full relative precision far
into the tail).  The concentration bound ``Pr(|t| >= eps) <= 2 exp(-d eps^2 / 2)``
and the union bound over the ``N (N-1) / 2`` pairs give the paper's
``N^2 exp(-d eps^2 / 2)`` (Lemma B.1's role; its exact text was not recovered).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from . import symbols as S
from .result import Hypothesis, Result, Source

P = S.plain
d, N, eps = S.d, S.N, S.epsilon
_a = (d - 1) / 2

_TEXTBOOK = Source(
    paper="textbook (uniform measure on the sphere)", version="-", section="digest section 1.3",
    numbering="law of <x_i, x_j>", provenance="textbook",
    other_versions="the paper's Lemma B.1 plays this role; its statement was not recovered",
)
_DIM = Hypothesis(P.d >= 2, "d >= 2")
_EPS = Hypothesis(sp.And(P.epsilon > 0, P.epsilon < 1), "0 < epsilon < 1")
# Where the Beta((d-1)/2, (d-1)/2) law is evaluated: the regularised incomplete beta function needs a > 0 (d > 1)
# and its argument in [0, 1] (|t| <= 1); outside, scipy returns NaN, so these values are refused, not computed.
_D_LAW = S.Domain(1.0, low_open=True, integer=True, meaning="the input dimension; the Beta law needs d > 1")
_EPS_LAW = {d: _D_LAW, eps: S.Domain(0.0, 1.0, meaning="a threshold on an inner product of unit vectors")}

sphere_inner_product_cdf = Result(
    key="sphere_inner_product_cdf", name="Law of <x_i, x_j> on S^{d-1} (CDF)", source=_TEXTBOOK, kind="exact",
    lhs=r"\Pr(\langle x_i, x_j \rangle \le \tau) =",
    statement=sp.betainc_regularized(_a, _a, 0, (1 + S.tau) / 2),
    hypotheses=(_DIM, Hypothesis(sp.And(P.tau >= -1, P.tau <= 1), "-1 <= tau <= 1")),
    meaning="(1 + t)/2 ~ Beta((d-1)/2, (d-1)/2)",
    domains={d: _D_LAW, S.tau: S.Domain(-1.0, 1.0, meaning="an inner product of unit vectors")},
)

sphere_inner_product_variance = Result(
    key="sphere_inner_product_variance", name="Variance of <x_i, x_j> on S^{d-1}", source=_TEXTBOOK, kind="exact",
    lhs=r"\operatorname{Var}\langle x_i, x_j \rangle =",
    statement=sp.Integer(1) / d,
    hypotheses=(_DIM,),
    meaning="E t = 0 and Var t = 1/d exactly",
)

sphere_inner_product_tail = Result(
    key="sphere_inner_product_tail", name="Exact two-sided tail of <x_i, x_j>", source=_TEXTBOOK, kind="exact",
    lhs=r"\Pr(|\langle x_i, x_j \rangle| \ge \epsilon) =",
    statement=2 * sp.betainc_regularized(_a, _a, 0, (1 - eps) / 2),
    hypotheses=(_DIM, _EPS),
    meaning="by symmetry of Beta(a, a): twice the lower tail",
    domains=_EPS_LAW,
)

sphere_subgaussian_tail = Result(
    key="sphere_subgaussian_tail", name="Concentration of <x_i, x_j>", source=_TEXTBOOK, kind="upper_bound",
    lhs=r"\Pr(|\langle x_i, x_j \rangle| \ge \epsilon) \le",
    statement=2 * sp.exp(-d * eps**2 / 2),
    hypotheses=(_DIM, _EPS),
    meaning="spherical-cap bound (Ball 1997, Lemma 2.2) on each side",
)

sphere_union_bound = Result(
    key="sphere_union_bound", name="Union bound over pairs (paper's form)", source=_TEXTBOOK, kind="upper_bound",
    lhs=r"\Pr\big(\max_{i<j} |\langle x_i, x_j \rangle| \ge \epsilon\big) \le",
    statement=N**2 * sp.exp(-d * eps**2 / 2),
    hypotheses=(_DIM, _EPS, Hypothesis(P.N >= 2, "N >= 2 points")),
    meaning="N(N-1)/2 pairs times 2 exp(-d eps^2/2), rounded up to N^2: non-trivial once d eps^2 > 4 ln N",
)

sphere_union_bound_exact_pairs = Result(
    key="sphere_union_bound_exact_pairs", name="Union bound over pairs with the exact tail", source=_TEXTBOOK,
    kind="upper_bound",
    lhs=r"\Pr\big(\max_{i<j} |\langle x_i, x_j \rangle| \ge \epsilon\big) \le",
    statement=N * (N - 1) / 2 * sphere_inner_product_tail.statement,
    hypotheses=(_DIM, _EPS, Hypothesis(P.N >= 2, "N >= 2 points")),
    meaning="the tightest union bound: pairs times the exact tail",
    domains=_EPS_LAW,
)


def sphere_inner_product_measure(low, high, d: int):
    r"""``Pr[low < <x_1, x_2> < high]`` for independent uniform points on ``S^{d-1}`` (numeric, vectorised).

    The exact law of ``t = <x_1, x_2>``: ``(1 + t)/2 ~ Beta(a, a)``, ``a = (d - 1)/2``
    (:data:`sphere_inner_product_cdf`).  Each interval is measured from the
    tail on its own side -- ``I_{(1+high)/2} - I_{(1+low)/2}`` when it lies in
    ``t <= 0``, ``I_{(1-low)/2} - I_{(1-high)/2}`` otherwise (``I`` the
    regularised incomplete beta function, ``I_x(a, a) = 1 - I_{1-x}(a, a)``) --
    so that an interval deep in a tail keeps its relative precision (no
    difference of two numbers near 1); an interval that straddles 0 is split
    there.  Used by every exact Beta integral of the toolkit (the
    infinite-width floor, the conditional estimator of pair-cosine tails).

    Parameters
    ----------
    low, high : float or arrays (broadcast together), ``-1 <= low <= high <= 1``
    d : int >= 2

    Returns
    -------
    float or ndarray
        The probability of each interval (0 for an empty one).
    """
    from scipy import special

    if isinstance(d, bool) or int(d) != d or d < 2:
        raise ValueError(f"argument 'd' must be an integer >= 2, got {d!r}")
    low, high = np.broadcast_arrays(np.asarray(low, dtype=float), np.asarray(high, dtype=float))
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError("arguments 'low' and 'high' must be finite")
    if np.any(low < -1) or np.any(high > 1) or np.any(low > high):
        raise ValueError(f"arguments 'low' and 'high' must satisfy -1 <= low <= high <= 1, got {low!r}, {high!r}")
    a = (d - 1) / 2

    def below(t):  # Pr[u < t] for t <= 0
        return special.betainc(a, a, (1 + t) / 2)

    def above(t):  # Pr[u > t] for t >= 0
        return special.betainc(a, a, (1 - t) / 2)

    negative = below(np.minimum(high, 0.0)) - below(np.minimum(low, 0.0))
    positive = above(np.maximum(low, 0.0)) - above(np.maximum(high, 0.0))
    out = np.maximum(negative, 0.0) + np.maximum(positive, 0.0)
    return float(out) if out.ndim == 0 else out


def sphere_inner_product_threshold(p: float, d: int) -> float:
    r"""The ``t`` with ``Pr[<x_1, x_2> > t] = p`` for independent uniform points on ``S^{d-1}`` (upper-tail quantile).

    Inverts the exact upper tail ``Pr[<x_1, x_2> > t] = I_{(1-t)/2}(a, a)``, ``a = (d - 1)/2`` (the law of
    :data:`sphere_inner_product_cdf`, measured by :func:`sphere_inner_product_measure` ``(t, 1, d)``), by Brent's
    method on ``log Pr[<x_1, x_2> > t] - log p`` over ``0 <= t <= 1 - 1e-12`` (``xtol = 1e-14``): in logs, so that
    a probability of ``1e-12`` is found to the same relative precision as one of ``0.1``.  The threshold at which
    a rare-event method is checked against the exact Beta tail (figure F16, the subset-simulation benchmarks).

    Parameters
    ----------
    p : float, ``0 < p <= 1/2`` (the tail above ``t >= 0``), and not below the tail at ``t = 1 - 1e-12``
    d : int >= 2

    Returns
    -------
    float
        ``t`` in ``[0, 1)``.
    """
    from scipy import optimize

    if isinstance(d, bool) or int(d) != d or d < 2:
        raise ValueError(f"argument 'd' must be an integer >= 2, got {d!r}")
    if isinstance(p, bool) or not np.isfinite(p) or not 0 < p <= 0.5:
        raise ValueError(f"argument 'p' must be a probability in (0, 1/2] (the upper tail above t >= 0), got {p!r}")
    top = 1 - 1e-12
    smallest = float(sphere_inner_product_measure(top, 1.0, d))
    if p < smallest:
        raise ValueError(f"argument 'p' must be at least {smallest:.3g}, the tail at t = 1 - 1e-12 for d = {d} "
                         f"(below it the threshold is not resolved), got {p!r}")
    with np.errstate(divide="ignore"):  # the tail near t = 1 may underflow to 0 at large d: log 0 = -inf is below
        return optimize.brentq(lambda t: np.log(sphere_inner_product_measure(t, 1.0, d)) - np.log(p), 0.0, top,
                               xtol=1e-14)
