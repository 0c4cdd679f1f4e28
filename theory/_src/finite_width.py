r"""The finite-width law of the confusion tail: how fast width brings ``Pr[min cos < -tau]`` down to its floor.

Derivation (our own; the steps are on the documentation page "The finite-width law"):

Setting of the floor (``infinite_width.infinite_width_cosine_floor``): random ``+-1`` labels independent of the
data and ``sign(a_i) = -y_i``, so ``cos(grad f_i, grad f_j) = y_i y_j k_l(t)`` with ``k_l`` the width-``l`` tangent
kernel cosine of two unit inputs at inner product ``t``, ``t`` distributed with the Beta density ``rho`` of
``<x_i, x_j>``.  At infinite width ``k_l(t) -> f(t)`` (deterministic).  At width ``l`` (the tangent kernel's 1/width
fluctuations, Hanin & Nica 2020; Roberts, Yaida & Hanin 2022, chapters 8-9)

    k_l(t) = f(t) + mu(t) / l + s(t) Z / sqrt(l) + o(1/l),     Z ~ N(0, 1) to leading order,

so with ``h = 1/l`` the pair event's side ``{k > tau}`` is ``{w > tau}`` for ``w = v + mu h + s sqrt(h) Z``,
``v = f(t)``.  The density of ``v`` is ``g(v) = sum over branches rho(t) / |f'(t)|`` (``t`` on the branch with
``f(t) = v``), and a small-noise (Kramers-Moyal) expansion of the density of ``w`` gives, branch by branch,

    g_w = g - h (mu g)' + (h/2) (s^2 g)'' + O(h^2)   =>   Pr[w > tau] = F(tau) + h [mu g - (s^2 g)'/2](tau) + O(h^2),

``F(tau) = Pr[f(t) > tau]`` the floor's side (the Beta density vanishes at ``t = +-1`` for ``d >= 4``, so the
branches' ends add nothing).  In ``t`` at a crossing ``t_c`` (``f(t_c) = tau``), with ``lambda = rho'/rho``:

    [mu g - (s^2 g)'/2] = rho/|f'| mu - rho / (2 f' |f'|) [ (s^2)' + s^2 (lambda - f''/f') ].

The other side ``{k < -tau}`` is the same with ``f -> -f``, ``mu -> -mu``.  The pair probability is the average of
the two sides (the two label branches), so to first order in ``1/l``

    log(Pr_l / floor) = C(tau) / l,   C = sum over crossings [a_mu mu + a_s2 s^2 + a_ds2 (s^2)'] / (F_+ + F_-),

``a_mu = +-rho/|f'|``, ``a_s2 = -rho (lambda - f''/f') / (2 f'|f'|)``, ``a_ds2 = -rho / (2 f'|f'|)`` (the sign of
``a_mu`` is that of the side).  In the exponential-tail picture (``g`` locally ``e^{Lambda (v - tau)}``) this is
``C = Lambda^2 s^2 / 2 - Lambda mu + Lambda (s^2)'_v / 2``: a Gaussian smoothing of a steep density raises its tail.
``N`` points: ``Pr[min cos < -tau] = M p`` up to the Bonferroni term, of relative size ``O(M p)``, so the same
``C``.  The expansion needs ``|C| / l`` small (its ``O(1/l^2)`` term is ``C^2/(2 l^2)`` and more); it breaks
down as ``tau -> 1`` (``C`` grows like ``1/(1 - t_c)``: ``Lambda ~ -(d-3)/(1 - t_c)`` and ``s^2 ~ 1 - t_c``) and
for ``d < 4``.

What is exact and what is supplied: ``f``, ``f'``, ``f''`` (central differences of the kernel recursion, errors
below 1e-8), ``rho``, ``F`` and the crossings are computed here; ``s^2(t)``, ``(s^2)'(t)`` and ``mu(t)`` are
supplied (``montecarlo.cosine_fluctuations`` estimates them with intervals), and ``C`` is linear in them, so
their errors propagate exactly through the coefficients (``ExcessConstant.terms``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from scipy import optimize, special

from . import symbols as S
from .infinite_width import (
    _check_sphere_law,
    _unit_sphere_cosine,
    _unit_sphere_cosine_table,
    infinite_width_cosine_floor,
)
from .result import Hypothesis, Result, Source

P = S.plain

finite_width_cosine_law = Result(
    key="finite_width_cosine_law",
    name="Finite-width law of the normalised confusion tail (our derivation)",
    source=Source(paper="this toolkit", version="-", section="docs: the finite-width law",
                  numbering="finite_width_cosine_law", provenance="RECONSTRUCTION",
                  other_versions="not in the paper: Theorem 4.1's exp(-c l^2) cannot hold for the cosine, whose tail "
                                 "tends to a positive floor"),
    kind="derived",
    lhs=r"\Pr_\ell[\min_{i\neq j}\cos < -\tau] \approx",
    statement=S.floor_probability * sp.exp(S.excess / S.width),
    hypotheses=(
        Hypothesis(None, "labels iid +-1 independent of the data, and sign(a_i) = -y_i (square loss with |g| < 1 or "
                         "the logistic loss, a positive output slope)"),
        Hypothesis(None, "data iid uniform on the sphere S^{d-1}; Strategy 4.1 (Gaussian layers), no biases"),
        Hypothesis(None, "the cosine's fluctuation k_l(t) - f(t) = mu(t)/l + s(t) Z/sqrt(l) + o(1/l), Z ~ N(0, 1) to "
                         "leading order (the tangent kernel's 1/width fluctuations)"),
        Hypothesis(P.d >= 4, "d >= 4: the Beta density of <x_i, x_j> vanishes at +-1 (no boundary term)"),
        Hypothesis(sp.And(P.tau >= 0, P.tau < 1), "0 <= tau < 1"),
        Hypothesis(P.width >= sp.Abs(P.excess), "width >= |C|: the expansion's first order dominates"),
    ),
    meaning="log(Pr_l / floor) = C(tau) / width + O(1/width^2), C from the fluctuation constants s^2, (s^2)', mu at "
            "the crossings f(t_c) = +-tau, the kernel map f and the Beta density (theory.finite_width_excess)",
    domains={S.d: S.Domain(3.0, integer=True, meaning="the input dimension"),
             S.tau: S.Domain(0.0, 1.0, high_open=True, meaning="a threshold on a cosine")},
)


@dataclass(frozen=True)
class ExcessConstant:
    """``C(tau)`` of ``log(Pr_l / floor) = C / l`` (:func:`finite_width_excess`), per threshold.

    Attributes
    ----------
    tau : (T,) array
    C : (T,) array
        The constant, from the fluctuation functions supplied (NaN where none was).
    floor : (T,) array
        The pair floor ``(F_+ + F_-) / 2`` (``infinite_width_cosine_floor(...).pair``).
    terms : list of T lists of dicts
        Per threshold, one entry per crossing: ``t`` (the crossing), ``side`` (+1 for ``f = tau``, -1 for
        ``f = -tau``), ``slope`` (``f'``), ``curvature`` (``f''``), and the coefficients ``a_mu``, ``a_s2``,
        ``a_ds2``, already divided by ``F_+ + F_-``: ``C = sum (a_mu mu + a_s2 s^2 + a_ds2 (s^2)')`` at the
        crossings.  Linear in the fluctuation constants, so their covariance propagates exactly.
    config : dict
    """

    tau: np.ndarray
    C: np.ndarray
    floor: np.ndarray
    terms: list
    config: dict = field(default_factory=dict)

    def constant(self, fluctuation) -> np.ndarray:
        """``C`` for another fluctuation model: ``fluctuation(t) -> (s2, ds2, mu)`` (arrays like ``t``)."""
        out = np.full(self.tau.shape, np.nan)
        for n, terms in enumerate(self.terms):
            if not terms:
                continue
            t = np.array([term["t"] for term in terms])
            s2, ds2, mu = (np.asarray(v, dtype=float) for v in fluctuation(t))
            out[n] = sum(term["a_mu"] * m + term["a_s2"] * a + term["a_ds2"] * b
                         for term, m, a, b in zip(terms, np.broadcast_to(mu, t.shape), np.broadcast_to(s2, t.shape),
                                                  np.broadcast_to(ds2, t.shape)))
        return out

    def predict(self, width) -> np.ndarray:
        """``floor * exp(C / width)`` (pair probabilities), the law at the given widths (rows) and each tau."""
        width = np.atleast_1d(np.asarray(width, dtype=float))[:, None]
        return self.floor[None, :] * np.exp(self.C[None, :] / width)


def beta_density(t, d: int) -> np.ndarray:
    """The density of ``<x_1, x_2>`` for independent uniform points on ``S^{d-1}``: ``(1 - t^2)^((d-3)/2) / norm``."""
    t = np.asarray(t, dtype=float)
    a = (d - 1) / 2
    return np.exp((a - 1) * np.log1p(-t * t) - (d - 2) * np.log(2.0) - special.betaln(a, a))


def _derivatives(f, t, h1=1e-5, h2=1e-4):
    """``f'(t)`` and ``f''(t)`` by central differences (steps chosen for errors below 1e-8 on the kernel map)."""
    t = np.asarray(t, dtype=float)
    slope = (f(t + h1) - f(t - h1)) / (2 * h1)
    curvature = (f(t + h2) - 2 * f(t) + f(t - h2)) / h2**2
    return slope, curvature


def finite_width_excess(tau, depth: int, activation: str, d: int, kappa: float = 1.0,
                        fluctuation=None) -> ExcessConstant:
    r"""``C(tau)`` of the finite-width law ``log(Pr_l / floor) = C / l`` (module docstring; ``finite_width_cosine_law``).

    Parameters
    ----------
    tau : float or 1-d array in [0, 1)
    depth : int >= 1
    activation : str
        A name of ``theory``'s activation registry.
    d : int >= 4
    kappa : float > 0
    fluctuation : callable, optional
        ``fluctuation(t) -> (s2, ds2, mu)``: ``s^2(t) = lim l Var k_l(t)``, its derivative in ``t``, and
        ``mu(t) = lim l (E k_l(t) - f(t))`` at the inner products ``t`` (an array).  Without it ``C`` is NaN and
        only the coefficients (``ExcessConstant.terms``) are given.

    Returns
    -------
    ExcessConstant
    """
    depth, d = _check_sphere_law(depth, activation, kappa, d, minimum_d=4,
                                 why_d=" (below, the Beta density does not vanish at +-1 and the expansion gains "
                                       "boundary terms)")
    taus = np.atleast_1d(np.asarray(tau, dtype=float))
    if taus.ndim != 1 or not np.all((taus >= 0) & (taus < 1)):
        raise ValueError(f"argument 'tau' must be a number or a 1-d array of numbers in [0, 1), got {tau!r}")
    if fluctuation is not None and not callable(fluctuation):
        raise ValueError(f"argument 'fluctuation' must be a callable t -> (s2, ds2, mu), got {fluctuation!r}")
    kappa = float(kappa)
    grid, values, _ = _unit_sphere_cosine_table(depth, activation, kappa, d)
    f = lambda t: _unit_sphere_cosine(depth, activation, kappa, d, t)  # noqa: E731
    floor = infinite_width_cosine_floor(taus, depth, activation, d, kappa=kappa, n_samples=2)
    total = 2 * np.atleast_1d(floor.pair)  # F_+ + F_-
    terms = []
    for n, level in enumerate(taus):
        found = []
        for side in (+1, -1):
            g = side * values - level  # > 0 inside the side's set
            for k in np.nonzero(np.sign(g[:-1]) != np.sign(g[1:]))[0]:
                if g[k] == 0:
                    continue
                root = optimize.brentq(lambda x: side * float(f(x)[0]) - level, grid[k], grid[k + 1], xtol=1e-14,
                                       rtol=1e-14)
                slope, curvature = (float(v[0]) for v in _derivatives(f, np.array([root])))
                # the side's map is side * f, its drift side * mu, its variance s^2 (unchanged)
                fs, fc = side * slope, side * curvature
                rho = float(beta_density(root, d))
                lam = -(d - 3) * root / (1 - root * root)
                found.append(dict(t=root, side=side, slope=slope, curvature=curvature,
                                  a_mu=side * rho / abs(fs) / total[n],
                                  a_s2=-rho * (lam - fc / fs) / (2 * fs * abs(fs)) / total[n],
                                  a_ds2=-rho / (2 * fs * abs(fs)) / total[n]))
        terms.append(found)
    result = ExcessConstant(tau=taus, C=np.full(taus.shape, np.nan), floor=np.atleast_1d(floor.pair), terms=terms,
                            config=dict(depth=depth, activation=activation, d=d, kappa=kappa))
    if fluctuation is not None:
        result = ExcessConstant(tau=taus, C=result.constant(fluctuation), floor=result.floor, terms=terms,
                                config=result.config)
    return result
