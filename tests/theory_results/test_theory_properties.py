"""Property tests of bound consistency (Hypothesis): the directions, limits and identities the paper implies."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st

import theory
from theory import symbols as S

floats = lambda lo, hi: st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)  # noqa: E731


@given(st.integers(1, 500), floats(0.01, 100), floats(0.0, 1.0), floats(-3.0, 3.0))
def test_rho_in_unit_interval_exactly_for_admissible_step(N, L, mu_fraction, alpha_scaled):
    """Given 0 < mu <= L: rho in [0, 1) iff 0 < alpha < 2/(N L) (Theorem 3.1), in exact arithmetic."""
    mu = max(mu_fraction, 1e-6) * L
    alpha = alpha_scaled * 2 / (N * L)
    exact = {S.N: N, S.L: sp.Rational(L), S.mu: sp.Rational(mu), S.alpha: sp.Rational(alpha)}  # binary values
    rho = theory.contraction_factor.statement.subs(exact)
    admissible = 0 < exact[S.alpha] < 2 / (N * exact[S.L])
    assert bool(0 <= rho < 1) == bool(admissible)


def test_rho_symbolically():
    """1 - rho = (mu alpha / N)(2 - N L alpha) > 0 iff alpha in (0, 2/(NL)); its minimum 1 - mu/(N^2 L) >= 0 iff mu <= N^2 L."""
    one_minus_rho = sp.factor(1 - theory.contraction_factor.statement)
    assert sp.simplify(one_minus_rho - S.mu * S.alpha * (2 - S.N * S.L * S.alpha) / S.N) == 0
    minimum = theory.contraction_factor.statement.subs(S.alpha, 1 / (S.N * S.L))
    assert sp.simplify(minimum - (1 - S.mu / (S.N**2 * S.L))) == 0


@st.composite
def sgd_points(draw):
    N = draw(st.integers(1, 200))
    L = draw(floats(0.1, 10))
    point = dict(N=N, L=L, mu=L * draw(floats(0.01, 1.0)), alpha=(2 / (N * L)) * draw(floats(0.01, 0.99)),
                 eta=draw(floats(0.0, 5.0)), T=draw(st.integers(0, 500)), Delta0=draw(floats(0.0, 10.0)))
    return point


@given(sgd_points())
def test_theorem_3_1_never_below_its_floor(point):
    bound = theory.theorem_3_1.evaluate(**point)
    floor = theory.noise_floor.evaluate(**{k: v for k, v in point.items() if k not in ("T", "Delta0")})
    assert bound >= floor * (1 - 1e-12)


@given(sgd_points(), floats(0.0, 5.0))
def test_theorem_3_1_increases_with_eta(point, extra):
    more = dict(point, eta=point["eta"] + extra)
    assert theory.theorem_3_1.evaluate(**more) >= theory.theorem_3_1.evaluate(**point) * (1 - 1e-12)


@given(sgd_points(), st.integers(1, 50))
def test_theorem_3_1_increases_with_N_at_a_step_admissible_for_both(point, extra):
    """More objectives at the same step size: slower contraction and a higher floor."""
    larger = dict(point, N=point["N"] + extra)
    assume(larger["alpha"] < 2 / (larger["N"] * larger["L"]))
    assert theory.theorem_3_1.evaluate(**larger) >= theory.theorem_3_1.evaluate(**point) * (1 - 1e-12)


def test_noise_floor_closed_form_and_small_step_limit():
    rho = theory.contraction_factor.statement
    assert sp.simplify(S.alpha * S.eta / (1 - rho) - S.N * S.eta / (S.mu * (2 - S.N * S.L * S.alpha))) == 0
    assert sp.simplify(theory.noise_floor.statement - S.N * S.eta / (S.mu * (2 - S.N * S.L * S.alpha))) == 0
    assert theory.noise_floor_small_step.statement == S.N * S.eta / (2 * S.mu)
    assert theory.noise_floor_small_step.statement != 0  # does not vanish with alpha


@given(sgd_points())
def test_iterations_to_floor_is_the_first_T_with_rho_T_delta0_below_epsilon(point):
    assume(point["Delta0"] > 0.01)
    epsilon = point["Delta0"] * 0.37
    values = {k: point[k] for k in ("N", "L", "mu", "alpha", "Delta0")}
    T = int(theory.iterations_to_floor.evaluate(epsilon=epsilon, **values))
    # log rho = log1p(-q) with q = 1 - rho = (mu alpha / N)(2 - N L alpha) (see test_rho_symbolically).
    q = point["mu"] * point["alpha"] * (2 - point["N"] * point["L"] * point["alpha"]) / point["N"]
    target = np.log(epsilon / point["Delta0"])
    assert T * np.log1p(-q) <= target * (1 - 1e-9)
    assert T == 0 or (T - 1) * np.log1p(-q) > target * (1 + 1e-9)


@pytest.mark.parametrize("N,L,mu,eta,T,Delta0,interior", [
    (10, 1.0, 0.5, 0.01, 50, 1.0, True),
    (50, 2.0, 0.1, 1e-3, 2000, 5.0, True),
    (5, 1.0, 1.0, 0.5, 3, 1.0, False),  # the floor dominates: the bound increases in alpha from alpha = 0
])
def test_optimal_step_size_minimises_the_bound(N, L, mu, eta, T, Delta0, interior):
    star = theory.optimal_step_size(N, L, mu, eta, T, Delta0)
    upper = 2 / (N * L)
    assert 0 < star < upper
    grid = np.linspace(upper * 1e-4, upper * (1 - 1e-4), 5001)
    values = theory.theorem_3_1.evaluate(N=N, L=L, mu=mu, alpha=grid, eta=eta, T=T, Delta0=Delta0)
    best = theory.theorem_3_1.evaluate(N=N, L=L, mu=mu, alpha=star, eta=eta, T=T, Delta0=Delta0)
    assert best <= values.min() * (1 + 1e-12)
    slope = theory.step_size_condition.evaluate(N=N, L=L, mu=mu, alpha=star, eta=eta, T=T, Delta0=Delta0)
    if interior:
        scale = abs(float(theory.step_size_condition.evaluate(N=N, L=L, mu=mu, alpha=star / 2, eta=eta, T=T, Delta0=Delta0)))
        assert abs(slope) <= 1e-5 * scale
    else:
        assert star < 1e-6 * upper and slope > 0


# -- scale test ---------------------------------------------------------------------------------------


def test_scale_test_verdicts():
    assert theory.scale_test(theory.theorem_3_1)[0]
    assert theory.scale_test(theory.theorem_3_2_rederived)[0]
    consistent, defect = theory.scale_test(theory.theorem_3_2_printed)
    assert not consistent and sp.simplify(defect) != 0
    assert "FAILS" in theory.theorem_3_2_printed.verdicts and "Counterexample" in theory.theorem_3_2_printed.verdicts


def test_printed_theorem_3_2_counterexample_from_scratch():
    """N = 2, f_i(w) = 4 w_i^2: gradients 8 w_i e_i are orthogonal everywhere (eta = 0), L = 8.

    With alpha = 1/16 < 2/(N L), T = 1 and w_1 = (1, 0), the left side of Theorem 3.2
    is |grad F(w_1)|^2 for F = (f_1 + f_2)/2; it exceeds the printed bound and not the re-derived one.
    """
    w1 = np.array([1.0, 0.0])
    grad_f = [np.array([8 * w1[0], 0.0]), np.array([0.0, 8 * w1[1]])]
    assert grad_f[0] @ grad_f[1] == 0.0  # eta = 0
    grad_F = (grad_f[0] + grad_f[1]) / 2
    F = (4 * w1[0] ** 2 + 4 * w1[1] ** 2) / 2  # F* = 0 at w = 0
    lhs = grad_F @ grad_F
    point = dict(N=2, L=8.0, alpha=1 / 16, T=1, eta=0.0, Delta0=F)
    assert theory.theorem_3_2_printed.check_hypotheses(**point) == []
    assert lhs > theory.theorem_3_2_printed.evaluate(**point)
    assert lhs <= theory.theorem_3_2_rederived.evaluate(**point)
    example = theory.THEOREM_3_2_COUNTEREXAMPLE
    assert example["lhs"] == lhs and example["Delta0"] == F


# -- probability bounds --------------------------------------------------------------------------------

PROBABILITY_BOUNDS = [r for r in theory.RESULTS.values() if r.kind == "probability_lower_bound"]


@st.composite
def architecture_points(draw, result):
    point = dict(N=draw(st.integers(2, 100)), beta=draw(st.integers(1, 20)), width=draw(st.integers(1, 2048)),
                 d=draw(st.integers(2, 1000)), kappa=draw(floats(0.25, 8)), r=draw(floats(1e-5, 1.0)),
                 eta=draw(floats(4.01, 10) if "bounded" in result.key else floats(0.01, 4)),
                 c=draw(floats(1e-3, 1e4)), c1=draw(floats(1e-3, 10)), c2=draw(floats(1e-3, 1e4)))
    names = {x.name for x in result.resolved.free_symbols}
    return {k: v for k, v in point.items() if k in names}


@pytest.mark.parametrize("result", PROBABILITY_BOUNDS, ids=lambda r: r.key)
@given(data=st.data())
def test_probability_bounds_are_at_most_one(result, data):
    assert result.evaluate(**data.draw(architecture_points(result))) <= 1.0


# Directions the paper states: more data dimension helps, more depth hurts, more width helps (or is neutral).
# A probability lower bound below 0 says nothing, so the property is about the informative part max(B, 0):
# in the vacuous regime of Corollary 5.1 (r above ~ c eta^3 / (512 zeta0^6 (beta+2)^4)) the raw expression
# falls with d, but it is negative there.
DIRECTIONS = [("d", +1), ("beta", -1), ("width", +1)]


@pytest.mark.parametrize("result", PROBABILITY_BOUNDS, ids=lambda r: r.key)
@pytest.mark.parametrize("variable,sign", DIRECTIONS)
@given(data=st.data(), step=st.integers(1, 50))
def test_probability_bounds_are_monotone_in_the_stated_directions(result, variable, sign, data, step):
    point = data.draw(architecture_points(result))
    if variable not in point:
        return  # the bound does not depend on it (e.g. width in Theorem 5.1)
    moved = dict(point, **{variable: point[variable] + step})
    before = max(float(result.evaluate(**point)), 0.0)
    after = max(float(result.evaluate(**moved)), 0.0)
    assert sign * (after - before) >= -1e-12


# -- sphere ---------------------------------------------------------------------------------------------


@given(st.integers(2, 2000), floats(0.001, 0.999))
def test_sphere_exact_tail_is_below_the_concentration_bound(d, epsilon):
    exact = theory.sphere_inner_product_tail.evaluate(d=d, epsilon=epsilon)
    assert 0 <= exact <= theory.sphere_subgaussian_tail.evaluate(d=d, epsilon=epsilon) * (1 + 1e-12)


@given(st.integers(2, 2000), floats(0.001, 0.999), st.integers(2, 500))
def test_union_bound_with_exact_pairs_is_below_the_papers_union_bound(d, epsilon, N):
    exact_pairs = theory.sphere_union_bound_exact_pairs.evaluate(d=d, epsilon=epsilon, N=N)
    assert exact_pairs <= theory.sphere_union_bound.evaluate(d=d, epsilon=epsilon, N=N) * (1 + 1e-12)


def test_sphere_law_special_cases():
    """d = 3: t is uniform on [-1, 1] (Archimedes); d = 2: t = cos(theta) with theta uniform."""
    eps = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(theory.sphere_inner_product_tail.evaluate(d=3, epsilon=eps), 1 - eps, rtol=1e-13)
    np.testing.assert_allclose(theory.sphere_inner_product_tail.evaluate(d=2, epsilon=eps), 2 * np.arccos(eps) / np.pi, rtol=1e-13)
    np.testing.assert_allclose(theory.sphere_inner_product_cdf.evaluate(d=3, tau=eps), (1 + eps) / 2, rtol=1e-13)
    # Var t = 1/d: integrate t^2 against the density of the Beta law.
    from scipy import integrate, stats

    for d in (2, 5, 40):
        law = stats.beta((d - 1) / 2, (d - 1) / 2)
        second, _ = integrate.quad(lambda u: (2 * u - 1) ** 2 * law.pdf(u), 0, 1)
        assert second == pytest.approx(float(theory.sphere_inner_product_variance.evaluate(d=d)), rel=1e-9)


# -- width needed, iso-confusion -----------------------------------------------------------------------

WIDTH_POINT = dict(d=32, N=16, eta=0.5, kappa=4.0, c1=1.0, c2=0.5)


@pytest.mark.parametrize("beta", [1, 3, 10])
@pytest.mark.parametrize("delta", [0.1, 1e-3])
def test_width_needed_meets_delta_exactly_and_width_sufficient_suffices(beta, delta):
    needed = theory.width_needed(delta, beta, **WIDTH_POINT)
    failure = lambda w: theory.theorem_4_1_sphere.failure_bound(width=w, beta=beta, **WIDTH_POINT)  # noqa: E731
    assert failure(needed) == pytest.approx(delta, rel=1e-8)
    assert failure(needed * (1 - 1e-6)) > delta
    sufficient = theory.width_sufficient.evaluate(delta=delta, beta=beta, **WIDTH_POINT)
    assert sufficient >= needed and failure(sufficient) <= delta


def test_iso_confusion_contour_grows_like_beta_to_five_halves():
    assert theory.iso_confusion_exponent.statement == sp.Rational(5, 2)
    betas = np.array([400.0, 800.0])
    widths = theory.width_needed(0.01, betas, **WIDTH_POINT)
    slope = np.diff(np.log(widths)) / np.diff(np.log(betas))
    assert slope[0] == pytest.approx(2.5, abs=0.02)


# -- fitting hooks --------------------------------------------------------------------------------------


def test_fit_constant_recovers_the_constant_that_generated_the_points():
    grid = dict(width=np.array([8.0, 16.0, 32.0]), beta=2, d=16, N=8, eta=0.5, kappa=4.0)
    c2_true = 3.0e4
    p = theory.theorem_4_1_sphere.failure_bound(c1=np.inf, c2=c2_true, **grid)
    fit = theory.fit_constant(theory.theorem_4_1_sphere, "c2", p, fixed={"c1": np.inf}, **grid)
    assert fit.upper == pytest.approx(c2_true, rel=1e-9) and fit.exists
    # One point failing more often than the bound allows at c2_true lowers the admissible constant there.
    raised = p.copy()
    raised[1] *= 1.5
    fit = theory.fit_constant(theory.theorem_4_1_sphere, "c2", raised, fixed={"c1": np.inf}, **grid)
    assert fit.upper < c2_true and fit.binding == 1
    assert fit.describe().startswith("theorem_4_1_sphere holds on this grid with c2 <= ")
    zero = theory.fit_constant(theory.theorem_4_1_sphere, "c2", np.zeros(3), fixed={"c1": np.inf}, **grid)
    assert np.isinf(zero.upper) and "every c2 > 0" in zero.describe()


def test_implied_exponent_matches_finite_differences_of_the_rate():
    point = dict(d=32, beta=4, eta=0.5, c2=1.0)
    width = np.array([3.0, 30.0, 3000.0])
    exponent = theory.implied_exponent(theory.theorem_4_1_sphere, "width", width=width, **point)
    rate = sp.lambdify((S.width,), theory.theorem_4_1_sphere.rate.subs(
        {S.zeta0: 2 * sp.sqrt(S.beta)}).subs({S.d: 32, S.beta: 4, S.eta: 0.5, S.c2: 1.0}))
    h = 1e-6
    numeric = (np.log(rate(width * (1 + h))) - np.log(rate(width * (1 - h)))) / (np.log(1 + h) - np.log(1 - h))
    np.testing.assert_allclose(exponent, numeric, rtol=1e-6)
    assert np.all((1 <= exponent) & (exponent <= 2))
    iclr = theory.implied_exponent(theory.theorem_4_2_sphere_iclr, "width", **point)
    assert iclr == 0
