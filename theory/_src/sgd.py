"""SGD under gradient confusion: Theorems 3.1 and 3.2 and what follows from them.

Section 3 of the paper (ICLR-verbatim; both ICML notes report identical
statements).  SGD ``w_{k+1} = w_k - alpha grad f_{i_k}(w_k)`` on
``F = (1/N) sum_i f_i`` with each ``f_i`` L-smooth, and confusion bound ``eta``
along the path.

Verdict of the scale test (rescale every ``f_i`` to ``s f_i``): Theorem 3.1
passes; Theorem 3.2 AS PRINTED FAILS -- its first term ``rho (F(w_1) - F*) / T``
scales as ``s`` while ``|grad F|^2`` scales as ``s^2``.  Counterexample: N = 2,
``f_i(w) = 4 w_i^2`` on R^2 (L = 8, orthogonal gradients so eta = 0),
alpha = 1/16, T = 1, w_1 = (1, 0): left side 16, printed bound 8.  The
re-derived form ``(rho / alpha)(F(w_1) - F*) / T + rho eta`` passes (128 here).
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from scipy import optimize
from sympy.codegen.cfunctions import log1p

from . import symbols as S
from .result import PAPER, Hypothesis, Result, Source

P = S.plain
N, L, mu, alpha, eta, T, Delta0 = S.N, S.L, S.mu, S.alpha, S.eta, S.T, S.Delta0

_STEP = Hypothesis(sp.And(P.alpha > 0, P.alpha < 2 / (P.N * P.L)), "step size 0 < alpha < 2/(N L)")
_CONFUSION = Hypothesis(P.eta >= 0, "gradient confusion bound eta >= 0 holds at every point of the SGD path")
_SAMPLES = Hypothesis(P.N >= 1, "N >= 1 objectives")
_SMOOTH = Hypothesis(P.L > 0, "each f_i is L-smooth, L > 0 (A1)")

_SECTION3 = dict(
    paper=PAPER,
    version="ICML 2020 (arXiv v5)",
    section="section 3",
    provenance="ICLR-verbatim; both ICML notes report the same statement",
    other_versions="identical in the ICLR 2020 submission (arXiv v3)",
)

#: rho of Theorem 3.1: 1 - (2 mu / N)(alpha - N L alpha^2 / 2).
rho_3_1 = 1 - (2 * mu / N) * (alpha - N * L * alpha**2 / 2)
#: rho of Theorem 3.2: 2N / (2 - N L alpha).
rho_3_2 = 2 * N / (2 - N * L * alpha)

contraction_factor = Result(
    key="contraction_factor",
    name="Theorem 3.1, contraction factor rho",
    source=Source(numbering="Theorem 3.1", **_SECTION3),
    kind="derived",
    lhs=r"\rho =",
    statement=rho_3_1,
    hypotheses=(_STEP, Hypothesis(P.mu <= P.L, "mu <= L (PL constant at most the smoothness constant)")),
    meaning="rho in [0, 1) exactly when 0 < alpha < 2/(N L), given 0 < mu <= L",
)

theorem_3_1 = Result(
    key="theorem_3_1",
    name="Theorem 3.1",
    source=Source(numbering="Theorem 3.1", **_SECTION3),
    kind="upper_bound",
    lhs=r"\mathbb{E}[F(w_T) - F^\star] \le",
    statement=rho_3_1**T * Delta0 + alpha * eta / (1 - rho_3_1),
    hypotheses=(
        _STEP,
        _SMOOTH,
        Hypothesis(P.mu > 0, "each f_i satisfies the PL inequality individually with mu > 0 (A2)"),
        Hypothesis(P.mu <= P.L, "mu <= L (implied by A1 and A2)"),
        _CONFUSION,
        _SAMPLES,
        Hypothesis(P.Delta0 >= 0, "Delta0 = F(w_0) - F* >= 0"),
    ),
    meaning="linear convergence at rate rho to a neighbourhood of size alpha eta / (1 - rho)",
    scale_degree=1,
    verdicts="scale test: consistent (both terms scale as s, like F(w_T) - F*).",
)

_THEOREM_3_2_HYPOTHESES = (_STEP, _SMOOTH, _CONFUSION, _SAMPLES, Hypothesis(P.Delta0 >= 0, "Delta0 = F(w_1) - F* >= 0"))
_LHS_3_2 = r"\min_{k=1,\dots,T} \mathbb{E}\|\nabla F(w_k)\|^2 \le"

#: The counterexample to the printed Theorem 3.2 (see its verdict); tests rebuild it from scratch.
THEOREM_3_2_COUNTEREXAMPLE = dict(N=2, L=8.0, alpha=1 / 16, T=1, eta=0.0, Delta0=2.0, lhs=16.0)

theorem_3_2_printed = Result(
    key="theorem_3_2_printed",
    name="Theorem 3.2 (as printed)",
    source=Source(numbering="Theorem 3.2", **_SECTION3),
    kind="upper_bound",
    lhs=_LHS_3_2,
    statement=rho_3_2 * Delta0 / T + rho_3_2 * eta,
    hypotheses=_THEOREM_3_2_HYPOTHESES,
    meaning="smooth non-convex: convergence to a neighbourhood of size rho eta, printed constants",
    scale_degree=2,
    verdicts=(
        "scale test: FAILS.  Under f_i -> s f_i (so L -> sL, eta -> s^2 eta, alpha -> alpha/s, "
        "Delta0 -> s Delta0; the SGD iterates are unchanged) the left side scales as s^2 but the first "
        "term rho Delta0 / T only as s, so the bound cannot hold for all s.  Counterexample: N = 2, "
        "f_i(w) = 4 w_i^2 on R^2 (L = 8; gradients orthogonal everywhere, so eta = 0), alpha = 1/16, "
        "T = 1, w_1 = (1, 0): the left side is |grad F(w_1)|^2 = 16 while the printed bound is "
        "rho (F(w_1) - F*) = 4 * 2 = 8.  The re-derived form gives 128 >= 16."
    ),
)

theorem_3_2_rederived = Result(
    key="theorem_3_2_rederived",
    name="Theorem 3.2 (re-derived)",
    source=Source(
        paper=PAPER,
        version="our re-derivation (digest section 2.1)",
        section="section 3",
        numbering="Theorem 3.2",
        provenance="RECONSTRUCTION, sympy-checked",
        other_versions="the printed form lacks the 1/alpha of the first term",
    ),
    kind="upper_bound",
    lhs=_LHS_3_2,
    statement=(rho_3_2 / alpha) * Delta0 / T + rho_3_2 * eta,
    hypotheses=_THEOREM_3_2_HYPOTHESES,
    meaning="smooth non-convex: from E F_{k+1} <= F_k - (alpha/rho) |grad F_k|^2 + alpha eta summed over k",
    scale_degree=2,
    verdicts="scale test: consistent (both terms scale as s^2, like |grad F|^2).",
)

# -- derived results -----------------------------------------------------------------------------

_noise_floor_expr = sp.simplify(alpha * eta / (1 - rho_3_1))
_DERIVED_3_1 = Source(
    paper=PAPER, version="derived from Theorem 3.1", section="section 3", numbering="Theorem 3.1",
    provenance="RECONSTRUCTION, symbolic",
)


def _derived(key, name, lhs, statement, hypotheses, meaning) -> Result:
    return Result(key=key, name=f"Theorem 3.1, {name}", source=_DERIVED_3_1, kind="derived", lhs=lhs,
                  statement=statement, hypotheses=hypotheses, meaning=meaning)


noise_floor = _derived(
    "noise_floor", "noise floor", r"\frac{\alpha \eta}{1 - \rho} =", _noise_floor_expr, theorem_3_1.hypotheses,
    "the neighbourhood SGD converges to: N eta / (mu (2 - N L alpha)), linear in eta",
)

noise_floor_small_step = _derived(
    "noise_floor_small_step", "noise floor as alpha -> 0", r"\lim_{\alpha \to 0} \frac{\alpha \eta}{1 - \rho} =",
    sp.limit(_noise_floor_expr, alpha, 0), (_CONFUSION, Hypothesis(P.mu > 0, "mu > 0")),
    "N eta / (2 mu): unlike a variance floor, it does not vanish with the step size",
)

iterations_to_floor = _derived(
    "iterations_to_floor", "iterations to reach floor + epsilon", r"T_\epsilon =",
    # log rho = log1p(-(1 - rho)) keeps full precision when rho is within 1e-8 of 1.  At rho = 0 (N = 1,
    # mu = L, alpha = 1/L) log rho = -inf and the ratio is 0, but T = 0 leaves rho^0 Delta0 = Delta0 > epsilon:
    # one step is needed (and enough), hence the Max; with epsilon >= Delta0 no step is needed at all.
    sp.Piecewise(
        (0, S.epsilon >= Delta0),
        (sp.Max(1, sp.ceiling(sp.log(S.epsilon / Delta0) / log1p(-sp.factor(1 - rho_3_1)))), True),
    ),
    (
        Hypothesis(sp.And(P.alpha > 0, P.alpha < 2 / (P.N * P.L)), "step size 0 < alpha < 2/(N L) (so rho < 1)"),
        Hypothesis(P.mu <= P.L, "mu <= L (so rho >= 0)"),
        Hypothesis(P.epsilon < P.Delta0, "epsilon < Delta0 (otherwise no iteration is needed: T = 0)"),
    ),
    "smallest T with rho^T Delta0 <= epsilon, so the Theorem 3.1 bound is at most floor + epsilon: "
    "ceil(log(epsilon/Delta0) / log rho), and 1 at rho = 0 (0^0 = 1, so T = 0 does not reach the floor)",
)

step_size_condition = _derived(
    "step_size_condition", "first-order condition for the best step size",
    r"\frac{\partial}{\partial \alpha}\Big[\rho^T \Delta_0 + \frac{\alpha\eta}{1-\rho}\Big] =",
    sp.diff(theorem_3_1.statement, alpha), theorem_3_1.hypotheses,
    "zero at the step size that minimises the Theorem 3.1 bound at horizon T (see optimal_step_size)",
)


def optimal_step_size(N, L, mu, eta, T, Delta0, grid: int = 400):
    """Step size in ``(0, 2/(N L))`` minimising the Theorem 3.1 bound at horizon ``T``.

    The bound ``rho(alpha)^T Delta0 + N eta / (mu (2 - N L alpha))`` has no closed-form
    minimiser; a log-spaced grid finds the basin and bounded Brent refines it, so
    the result is the global minimiser to about 1e-10 relative.  Vectorised over
    broadcast array arguments (one minimisation per point).  At the minimiser
    ``step_size_condition`` vanishes (unless the minimum is at the edge).
    """
    bound = theorem_3_1.evaluate
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (N, L, mu, eta, T, Delta0)))
    out = np.empty(arrays[0].shape)
    for index in np.ndindex(out.shape):
        n, l_, m, e, t, d0 = (a[index] for a in arrays)
        upper = 2 / (n * l_)

        def objective(a, n=n, l_=l_, m=m, e=e, t=t, d0=d0):
            return bound(N=n, L=l_, mu=m, alpha=a, eta=e, T=t, Delta0=d0)

        candidates = upper * np.geomspace(1e-9, 1 - 1e-9, grid)
        values = objective(candidates)
        k = int(np.argmin(values))
        low, high = candidates[max(k - 1, 0)], candidates[min(k + 1, grid - 1)]
        found = optimize.minimize_scalar(objective, bounds=(low, high), method="bounded",
                                         options={"xatol": 1e-14 * upper})
        out[index] = found.x if found.fun <= values[k] else candidates[k]
    return out[()] if out.ndim == 0 else out


# -- the scale test ---------------------------------------------------------------------------------

#: Rescaling every f_i to s f_i: L, mu scale as s, inner products of gradients (so eta) as s^2, the
#: admissible step size as 1/s (alpha s is invariant, so the SGD iterates are unchanged), and F - F* as s.
SCALING = {L: S.s * L, mu: S.s * mu, eta: S.s**2 * eta, alpha: alpha / S.s, Delta0: S.s * Delta0}


def scale_test(result: Result) -> tuple[bool, sp.Basic]:
    """Does ``result`` transform like its left-hand side when every ``f_i`` becomes ``s f_i``?

    Returns ``(consistent, defect)`` where ``defect = B(scaled) - s^k B`` (``k`` =
    ``result.scale_degree``) simplifies to 0 exactly when the bound is
    consistent.  A correct bound must pass: SGD on ``s f_i`` with step ``alpha/s``
    visits the same points, so both sides must scale alike.
    """
    if not isinstance(result, Result):
        raise TypeError(f"argument 'result' must be a theory Result (e.g. theory.theorem_3_2), got {result!r}")
    if result.scale_degree is None:
        raise ValueError(f"{result.key} has no scale degree: the scale test applies to the SGD bounds")
    defect = sp.simplify(result.statement.subs(SCALING, simultaneous=True) - S.s**result.scale_degree * result.statement)
    return defect == 0, defect
