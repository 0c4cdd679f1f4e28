"""theory/: every result renders, evaluates on arrays exactly as sympy does, and names failing hypotheses."""

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import theory

REQUIRED = {
    "definition_2_1", "theorem_3_1", "theorem_3_2_printed", "theorem_3_2_rederived", "theorem_4_1_bounded",
    "theorem_4_1_sphere", "theorem_5_1", "corollary_5_1", "theorem_6_1", "sphere_inner_product_cdf",
    "sphere_inner_product_tail", "sphere_union_bound", "noise_floor", "noise_floor_small_step",
    "iterations_to_floor", "step_size_condition", "width_sufficient", "iso_confusion_exponent",
}


def test_import_theory_lists_every_result():
    assert REQUIRED <= set(theory.RESULTS)
    assert all(name in theory.__all__ for name in theory.RESULTS)
    for result in theory.RESULTS.values():
        assert isinstance(result, theory.Result)
        assert result.source.provenance and result.source.numbering


def test_iclr_and_icml_forms_are_both_present_and_labelled():
    assert "ICML" in theory.theorem_4_1_sphere.source.version
    assert "ICLR" in theory.theorem_4_2_sphere_iclr.source.version
    assert "Theorem 4.2" in theory.theorem_4_1_sphere.source.other_versions
    # The ICLR form has no width in its exponent; the ICML form does.
    assert theory.symbols.width not in theory.theorem_4_2_sphere_iclr.rate.free_symbols
    assert theory.symbols.width in theory.theorem_4_1_sphere.rate.free_symbols


@pytest.mark.parametrize("key", sorted(theory.RESULTS))
def test_latex_renders_statement_and_left_side(key):
    result = theory.RESULTS[key]
    text = result.latex()
    assert text.startswith(result.lhs)
    assert sp.latex(result.statement, symbol_names=theory.symbols.LATEX_NAMES) in text
    assert result._repr_latex_().startswith("$")


def _draw_point(draw, result):
    """Values inside every result's hypotheses, drawn per symbol."""
    names = {x.name for x in result.statement.free_symbols} | {k.name for k in result.defaults}
    pos = lambda lo, hi: draw(st.floats(lo, hi, allow_nan=False))  # noqa: E731
    v = {}
    v["N"] = draw(st.integers(2, 200))
    v["L"] = pos(0.1, 10)
    v["mu"] = v["L"] * pos(0.01, 1.0)
    v["alpha"] = (2 / (v["N"] * v["L"])) * pos(0.01, 0.99)
    v["eta"] = pos(4.01, 9.0) if "bounded" in result.key else pos(0.01, 3.0)
    v["T"] = draw(st.integers(1, 300))
    v["Delta0"] = pos(0.5, 10)
    v["epsilon"] = v["Delta0"] * pos(0.001, 0.9)
    v.update(beta=draw(st.integers(1, 30)), width=draw(st.integers(1, 4096)), d=draw(st.integers(2, 500)))
    v.update(kappa=pos(0.25, 8), r=pos(1e-4, 1.0), gamma=pos(0.05, 2), delta=pos(1e-6, 0.5))
    v.update(c=pos(1e-3, 1e3), c1=pos(1e-3, 10), c2=pos(1e-3, 1e3))
    v.update(inner_min=pos(-2, 2), residual_i=pos(-2, 2), residual_j=pos(-2, 2), x_inner=pos(-1, 1), tau=pos(-1, 1))
    v.update(excess=pos(-200, 500), floor_probability=pos(1e-12, 1.0))  # the finite-width law
    if "sphere_inner" in result.key or "union" in result.key or "subgaussian" in result.key:
        v["epsilon"] = pos(0.01, 0.99)
    return {k: val for k, val in v.items() if k in names}


@pytest.mark.parametrize("key", sorted(k for k, r in theory.RESULTS.items() if r.kind != "definition"))
@settings(max_examples=25)
@given(st.data())
def test_numeric_evaluation_equals_sympy_evalf(key, data):
    """lambdify (numpy/scipy) against sympy's evalf at 30 digits, to 1e-12, at random points of every result."""
    result = theory.RESULTS[key]
    point = _draw_point(data.draw, result)
    fast = float(result.evaluate(**point))
    exact = float(result.evaluate_exact(**point))
    if math.isinf(exact):
        assert fast == exact
    else:
        assert fast == pytest.approx(exact, rel=1e-12, abs=1e-13), point


def test_evaluate_is_vectorised_over_arrays():
    widths = np.array([[64], [256]])
    depths = np.array([2, 4, 8])
    value = theory.theorem_4_1_sphere.evaluate(width=widths, beta=depths, d=32, N=16, eta=0.5, kappa=4, c1=1, c2=1)
    assert value.shape == (2, 3)
    for i, w in enumerate(widths[:, 0]):
        for j, b in enumerate(depths):
            assert value[i, j] == pytest.approx(float(theory.theorem_4_1_sphere.evaluate_exact(
                width=int(w), beta=int(b), d=32, N=16, eta=0.5, kappa=4, c1=1, c2=1)), rel=1e-12)


def test_definition_2_1_and_eta_star():
    inner = np.array([-0.3, 0.1])
    assert theory.definition_2_1.evaluate(inner_min=inner, eta=0.2).tolist() == [False, True]
    np.testing.assert_allclose(theory.eta_star.evaluate(inner_min=inner), [0.3, 0.0])


def test_default_zeta0_is_two_sqrt_beta_and_can_be_overridden():
    point = dict(beta=4, d=50, N=10, eta=0.5, c=2.0)
    assert theory.theorem_5_1.evaluate(**point) == pytest.approx(theory.theorem_5_1.evaluate(**point, zeta0=4.0))
    assert theory.theorem_5_1.evaluate(**point, zeta0=1.0) > theory.theorem_5_1.evaluate(**point)


def test_check_hypotheses_names_each_failing_assumption():
    failures = theory.theorem_3_1.check_hypotheses(N=10, L=1.0, mu=2.0, alpha=0.5, eta=0.1, T=5, Delta0=1.0)
    assert any(line.startswith("step size 0 < alpha < 2/(N L)") and "alpha=0.5" in line for line in failures)
    assert any(line.startswith("mu <= L") for line in failures)
    assert len(failures) == 2
    assert theory.theorem_3_1.check_hypotheses(N=10, L=1.0, mu=0.5, alpha=0.1, eta=0.1, T=5, Delta0=1.0) == []

    bounded = theory.theorem_4_1_bounded.check_hypotheses(eta=3.0, data_norm=1.5, beta=2, N=8, kappa=1.0)
    assert [line.split(" [")[0] for line in bounded] == ["eta > 4 (the bounded-data form)", "arbitrary bounded data, |x_i| <= 1"]

    wrong_gamma = theory.theorem_6_1.check_hypotheses(gamma=1.0, beta=8, N=4, eta=0.1, weight_norm=1.0, data_norm=1.0)
    assert len(wrong_gamma) == 1 and wrong_gamma[0].startswith("output rescaling gamma = 1/sqrt(2 beta)")
    assert theory.theorem_6_1.check_hypotheses(gamma=0.25, beta=8, N=4, eta=0.1, weight_norm=1.0, data_norm=1.0) == []

    on_grid = theory.theorem_5_1.check_hypotheses(weight_norm=np.array([0.5, 1.2, 0.9]), eta=0.1, beta=2, N=4)
    assert len(on_grid) == 1 and "fails at 1 of 3 points (weight_norm=1.2)" in on_grid[0]


def test_one_line_question_reports_value_failures_and_unchecked():
    answer = theory.theorem_4_1_sphere(width=512, beta=8, d=64, N=32, eta=0.5, kappa=4, c1=1, c2=1, data_norm=1.0)
    assert answer.value == pytest.approx(theory.theorem_4_1_sphere.evaluate(
        width=512, beta=8, d=64, N=32, eta=0.5, kappa=4, c1=1, c2=1))
    assert answer.failures == []
    assert any("(P1)-(P2)" in line for line in answer.unchecked)  # not a numeric condition


def test_bad_symbol_names_and_missing_values_are_refused():
    with pytest.raises(ValueError, match=r"unknown symbol 'depth'"):
        theory.theorem_5_1.evaluate(depth=3)
    with pytest.raises(ValueError, match=r"evaluate needs values for N, c, d, eta"):
        theory.theorem_5_1.evaluate(beta=3)
    with pytest.raises(ValueError, match=r"not a probability lower bound"):
        theory.theorem_3_1.failure_bound(N=2)


def test_theory_never_imports_montecarlo():
    """Theory stands apart from the simulation that tests it (STYLE: theory beside simulation)."""
    import subprocess
    import sys

    code = "import sys, theory; print('montecarlo' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
