"""The SGD simulator against exact laws: constants, one step by hand, and E[F(w_T) - F*] in closed form."""

import numpy as np
import pytest

import montecarlo as mc
import theory
from montecarlo.testing import block_seed


def test_constants_and_gram_are_exact():
    problem = mc.least_squares(7, 5, 0, noise=0.3)
    norms = np.sum(problem.A**2, axis=1)
    assert problem.L == norms.max() and problem.mu == norms.min()
    w = np.random.default_rng(1).standard_normal(5)
    per_example = (problem.A @ w - problem.b)[:, None] * problem.A  # grad f_i = r_i a_i
    np.testing.assert_allclose(problem.gram(w), per_example @ per_example.T, rtol=1e-12)
    # F* from the normal equations; F* > 0 because d < N and the targets are noisy
    w_star = np.linalg.solve(problem.A.T @ problem.A, problem.A.T @ problem.b)
    assert problem.F_star == pytest.approx(0.5 * np.mean((problem.A @ w_star - problem.b) ** 2), rel=1e-10)
    assert problem.F_star > 0


def test_orthogonal_examples_have_zero_confusion_along_the_whole_path():
    problem = mc.least_squares(6, 10, 2, geometry="orthogonal")
    np.testing.assert_allclose(problem.A @ problem.A.T, np.eye(6), atol=1e-12)
    path = mc.simulate_sgd(problem, 0.3, 200, 4, seed=0, record_every=1)
    assert np.max(path.eta) < 1e-14


def test_first_steps_by_hand():
    """The documented index stream: run r uses block r // 8 of SeedSequence(seed), chunks of 1024 steps."""
    problem = mc.least_squares(5, 3, 4)
    alpha = 0.1
    path = mc.simulate_sgd(problem, alpha, 3, 10, seed=7, record_every=1)
    for run in (0, 9):
        rng = np.random.default_rng(block_seed(7, run // 8))
        indices = rng.integers(5, size=(1024, 8))[:, run % 8]
        w = np.zeros(3)
        for i in indices[:3]:
            w = w - alpha * (problem.A[i] @ w - problem.b[i]) * problem.A[i]
        assert path.loss[run, -1] == pytest.approx(0.5 * np.mean((problem.A @ w - problem.b) ** 2), rel=1e-12)


def test_fewer_runs_are_a_prefix_of_more():
    problem = mc.least_squares(5, 3, 4)
    few = mc.simulate_sgd(problem, 0.1, 50, 5, seed=1, record_every=10)
    many = mc.simulate_sgd(problem, 0.1, 50, 12, seed=1, record_every=10)
    np.testing.assert_array_equal(few.loss, many.loss[:5])


def test_expected_gap_matches_the_closed_form_for_orthonormal_examples():
    """Orthonormal a_i, w_0 = 0: each coordinate's error shrinks by (1 - alpha) when its example is drawn, so
    E[F(w_T) - F*] = (F(w_0) - F*) (1 - (2 alpha - alpha^2) / N)^T exactly; Theorem 3.1 (eta = 0) must be above it."""
    N, alpha = 8, 0.1
    problem = mc.least_squares(N, 12, 3, geometry="orthogonal")
    path = mc.simulate_sgd(problem, alpha, 120, 4000, seed=2, record_every=40)
    mean, se = path.mean_gap()
    exact = path.gap[0, 0] * (1 - (2 * alpha - alpha**2) / N) ** path.iterations
    assert np.all(np.abs(mean - exact) <= 4 * se + 1e-15)
    bound = theory.theorem_3_1.evaluate(N=N, L=problem.L, mu=problem.mu, alpha=alpha, eta=0.0,
                                        T=path.iterations, Delta0=path.gap[0, 0])
    assert np.all(exact <= bound * (1 + 1e-12))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"geometry='orthogonal' needs d >= N"):
        mc.least_squares(5, 3, 0, geometry="orthogonal")
    with pytest.raises(ValueError, match=r"argument 'alpha' must be a finite real number > 0"):
        mc.simulate_sgd(mc.least_squares(5, 3, 0), 0.0, 3, 2, seed=0)
