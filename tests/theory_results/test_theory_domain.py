"""theory/: every result refuses values outside its symbols' domains (issue 13 item 7), and still evaluates inside.

The domains are declared once per symbol (``theory.symbols.DOMAINS``; a result may narrow one, e.g. ``d > 1``
for the Beta law of the sphere).  Expected values are computed here by hand from the paper's formulas, not
from the code under test.
"""

import math

import numpy as np
import pytest

import theory
from theory import symbols as S

#: A point inside every result's hypotheses (eta > 4 for the bounded-data forms; gamma = 1/sqrt(2 beta) for 6.1).
VALID = dict(N=8, L=2.0, mu=0.5, alpha=0.05, eta=0.5, T=10, Delta0=1.0, epsilon=0.3, beta=2, width=64, d=16,
             kappa=2.0, r=1e-3, gamma=0.5, delta=0.1, c=1.0, c1=1.0, c2=1.0, inner_min=-0.2, residual_i=0.3,
             residual_j=-0.4, x_inner=0.1, tau=0.2, data_norm=1.0, weight_norm=1.0, excess=40.0,
             floor_probability=1e-9)
#: The symbol whose out-of-domain value each result is probed with: the first of these it uses.
PRIORITY = ("width", "beta", "N", "d", "T", "eta", "alpha", "L", "mu", "Delta0", "epsilon", "kappa", "r", "gamma",
            "delta", "zeta0")

PUBLIC_RESULTS = sorted((name for name in theory.__all__ if isinstance(getattr(theory, name), theory.Result)))


def _names(result):
    used = {x.name for x in result.resolved.free_symbols}
    return used | {x.name for h in result.hypotheses for x in h._symbols}


def _point(result):
    point = {k: v for k, v in VALID.items() if k in _names(result)}
    if "bounded" in result.key:
        point["eta"] = 5.0
    return point


def _probe(result):
    """The relevant symbol of ``result`` (one with a lower bound), or ``width`` for results that use none."""
    used = _names(result)
    return next((name for name in PRIORITY if name in used), "width")


def test_every_public_result_is_in_results_and_every_symbol_declares_a_domain():
    assert set(PUBLIC_RESULTS) == set(theory.RESULTS)
    assert set(S.DOMAINS) == set(S.ALL.values())


@pytest.mark.parametrize("key", PUBLIC_RESULTS)
def test_valid_point_evaluates_finite_with_no_failing_hypothesis(key):
    result = theory.RESULTS[key]
    prediction = result(**_point(result))
    assert prediction.failures == []
    if result.kind != "definition":
        assert np.all(np.isfinite(np.asarray(prediction.value, dtype=float)))


@pytest.mark.parametrize("key", PUBLIC_RESULTS)
def test_negative_value_of_the_relevant_symbol_is_refused_by_name(key):
    result = theory.RESULTS[key]
    name = _probe(result)
    point = dict(_point(result), **{name: -5})
    message = rf"{key}: argument '{name}' must be a finite real number (>|>=) "
    with pytest.raises(ValueError, match=message):
        result.evaluate(**point)
    with pytest.raises(ValueError, match=message):
        result(**point)
    with pytest.raises(ValueError, match=message):
        result.check_hypotheses(**point)
    with pytest.raises(ValueError, match=message):
        result.evaluate_exact(**point)
    if result.rate is not None:
        with pytest.raises(ValueError, match=message):
            result.evaluate_rate(**point)


@pytest.mark.parametrize("key", PUBLIC_RESULTS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(key, bad):
    result = theory.RESULTS[key]
    point = _point(result)
    name = sorted(point)[0] if point else "width"  # inner_min (eta_star), any real symbol, refuses NaN and inf too
    with pytest.raises(ValueError, match=rf"argument '{name}' must be a finite real number"):
        result.evaluate(**dict(point, **{name: bad}))


def test_domain_error_names_symbol_domain_and_the_bad_point_of_an_array():
    point = dict(beta=3, d=16, N=8, eta=0.5, kappa=2.0, c1=1.0, c2=1.0)
    with pytest.raises(ValueError, match=r"argument 'width' must be a finite real number >= 1 \(the number of units "
                                         r"per hidden layer; an integer in the paper\); got -5"):
        theory.theorem_4_1_sphere.evaluate(width=-5, **point)
    with pytest.raises(ValueError, match=r"argument 'width' .*; got 0 \(at 1 of 3 points\)"):
        theory.theorem_4_1_sphere.evaluate(width=np.array([8, 0, 16]), **point)
    with pytest.raises(ValueError, match=r"argument 'delta' must be a finite real number > 0 and <= 1"):
        theory.width_sufficient.evaluate(delta=1.5, **point)
    with pytest.raises(ValueError, match=r"argument 'width' must be a real number or an array of them"):
        theory.theorem_4_1_sphere.evaluate(width="wide", **point)
    with pytest.raises(ValueError, match=r"argument 'width'"):
        theory.implied_exponent(theory.theorem_4_1_sphere, "width", width=-3.0, d=32, beta=4, eta=0.5, c2=1.0)
    with pytest.raises(ValueError, match=r"argument 'kappa'"):
        theory.width_needed(0.1, 3, 32, 16, 0.5, -4.0, 1.0, 0.5)


def test_depth_zero_is_refused_where_the_formula_is_undefined_and_evaluated_where_it_is_defined():
    """beta = 0 (the generalised linear model) is a depth: the default zeta0 = 2 sqrt(beta) = 0 is not a gradient
    scale, and width_sufficient divides by beta; the chi-square product laws hold with no factors (R = 1)."""
    point = dict(width=64, d=16, N=8, eta=0.5, kappa=2.0, c1=1.0, c2=1.0)
    with pytest.raises(ValueError, match=r"'zeta0' \(by default 2\*sqrt\(beta\), from the given beta.*got 0"):
        theory.theorem_4_1_sphere.evaluate(beta=0, **point)
    # With zeta0 given the bound is finite at beta = 0, and its depth hypothesis is reported as failing.
    answer = theory.theorem_4_1_sphere(beta=0, zeta0=1.0, **point)
    rate = 1.0 * (64 * 16) * 0.25 / (16 * 1.0 * 2**4)  # c2 (l d + l^2 beta) eta^2 / (16 zeta0^4 (beta + 2)^4)
    assert answer.value == pytest.approx(1 - 0 - 64 * math.exp(-rate), rel=1e-12)
    assert any(line.startswith("depth beta >= 1") for line in answer.failures)
    with pytest.raises(ValueError, match=r"argument 'beta' must be a finite real number >= 1 \(the depth; the "
                                         r"formula divides by beta"):
        theory.width_sufficient.evaluate(beta=0, zeta0=1.0, delta=0.1, d=16, N=8, eta=0.5, kappa=2.0, c1=1.0, c2=1.0)
    assert theory.chi_square_product_mean.evaluate(beta=0, width=8) == 1.0
    assert theory.chi_square_product_variance.evaluate(beta=0, width=8) == 0.0  # (1 + 2/n)^0 - 1
    assert theory.chi_square_product_log_mean.evaluate(beta=0, width=8) == 0.0


def test_theorem_4_1_sphere_against_the_papers_formula_by_hand():
    """1 - beta exp(-c1 kappa^2 l^2) - N^2 exp(-c2 (l d + l^2 beta) eta^2 / (16 zeta0^4 (beta + 2)^4)),
    zeta0 = 2 sqrt(beta) so zeta0^4 = 16 beta^2; both terms non-negligible at this point."""
    l, beta, d, N, eta, kappa, c1, c2 = 64, 3, 16, 8, 0.5, 0.03, 1.0, 3000.0
    operator = beta * math.exp(-c1 * kappa**2 * l**2)
    rate = c2 * (l * d + l**2 * beta) * eta**2 / (16 * 16 * beta**2 * (beta + 2) ** 4)
    expected = 1 - operator - N**2 * math.exp(-rate)
    assert 0.05 < operator < 0.1 and 0.05 < N**2 * math.exp(-rate) < 0.1
    value = theory.theorem_4_1_sphere.evaluate(width=l, beta=beta, d=d, N=N, eta=eta, kappa=kappa, c1=c1, c2=c2)
    assert value == pytest.approx(expected, rel=1e-13)
    assert theory.theorem_4_1_sphere.evaluate_rate(width=l, beta=beta, d=d, eta=eta, c2=c2) == pytest.approx(
        rate, rel=1e-13)
    # c1 = +inf switches the operator-norm term off (how fit_constant uses it): allowed, and exactly that.
    off = theory.theorem_4_1_sphere.evaluate(width=l, beta=beta, d=d, N=N, eta=eta, kappa=kappa, c1=np.inf, c2=c2)
    assert off == pytest.approx(1 - N**2 * math.exp(-rate), rel=1e-13)


def test_theorem_3_1_against_the_papers_formula_by_hand():
    """rho^T Delta0 + alpha eta / (1 - rho) with rho = 1 - (2 mu / N)(alpha - N L alpha^2 / 2)."""
    N, L, mu, alpha, eta, T, Delta0 = 8, 2.0, 0.5, 0.05, 0.5, 10, 1.0
    rho = 1 - (2 * mu / N) * (alpha - N * L * alpha**2 / 2)
    expected = rho**T * Delta0 + alpha * eta / (1 - rho)
    value = theory.theorem_3_1.evaluate(N=N, L=L, mu=mu, alpha=alpha, eta=eta, T=T, Delta0=Delta0)
    assert value == pytest.approx(expected, rel=1e-13)
    with pytest.raises(ValueError, match=r"argument 'alpha' must be a finite real number > 0"):
        theory.theorem_3_1.evaluate(N=N, L=L, mu=mu, alpha=0.0, eta=eta, T=T, Delta0=Delta0)


def test_sphere_tail_at_d_3_is_archimedes_and_the_beta_law_refuses_d_1_and_epsilon_above_1():
    """d = 3: <x, y> is uniform on [-1, 1], so Pr(|t| >= eps) = 1 - eps.  d = 1 (Beta(0, 0)) and eps > 1 are
    outside the law's formula (scipy would return NaN): refused by name."""
    assert theory.sphere_inner_product_tail.evaluate(d=3, epsilon=0.25) == pytest.approx(0.75, rel=1e-13)
    with pytest.raises(ValueError, match=r"argument 'd' must be a finite real number > 1"):
        theory.sphere_inner_product_tail.evaluate(d=1, epsilon=0.25)
    with pytest.raises(ValueError, match=r"argument 'epsilon' must be a finite real number >= 0 and <= 1"):
        theory.sphere_union_bound_exact_pairs.evaluate(d=3, epsilon=1.5, N=4)
    with pytest.raises(ValueError, match=r"argument 'tau' must be a finite real number >= -1 and <= 1"):
        theory.sphere_inner_product_cdf.evaluate(d=3, tau=1.5)
    # The subgaussian bound is a formula at every eps > 0 and every d >= 1: not narrowed.
    assert theory.sphere_subgaussian_tail.evaluate(d=1, epsilon=2.0) == pytest.approx(2 * math.exp(-2.0), rel=1e-13)


def test_non_integer_counts_evaluate_but_are_flagged():
    """The real relaxation in width is what width_needed solves, so width = 100.5 evaluates (to the formula at
    100.5) and Result(...) lists it as a failing hypothesis."""
    point = dict(beta=3, d=16, N=8, eta=0.5, kappa=0.03, c1=1.0, c2=3000.0)
    answer = theory.theorem_4_1_sphere(width=100.5, **point)
    l = 100.5
    rate = 3000.0 * (l * 16 + l**2 * 3) * 0.25 / (16 * 16 * 9 * 5**4)
    assert answer.value == pytest.approx(1 - 3 * math.exp(-(0.03**2) * l**2) - 64 * math.exp(-rate), rel=1e-13)
    assert [line for line in answer.failures if line.startswith("width is an integer")] == [
        "width is an integer (the number of units per hidden layer) [width integer]: fails at this point (width=100.5)"]
    assert theory.theorem_4_1_sphere(width=100, **point).failures == []
    assert theory.width_needed(0.1, 3, 32, 16, 0.5, 4.0, 1.0, 0.5) >= 1


def test_strings_and_booleans_are_not_numbers():
    import theory

    good = dict(width=512, beta=2, d=16, N=8, eta=0.1, kappa=4.0, c1=1.0, c2=1.0)
    float(theory.theorem_4_1_sphere.evaluate(**good))
    for bad in ("512", True):
        with pytest.raises(ValueError, match=r"argument 'width' must be a real number"):
            theory.theorem_4_1_sphere.evaluate(**{**good, "width": bad})
