"""Corrections to theory/ (issue 15 item 3), each checked against something computed here independently.

Each test failed before its fix: iterations_to_floor gave 0 steps at rho = 0; ntk_relative_variance divided by
zero at depth 0; theorem_6_1 had no bounded-residual hypothesis; the chi-square product's median had only the
exp(E log R) form, which stays 11% off at n = 4 however deep; failure_bound lost every bound below 1e-16.
"""

import math

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

import montecarlo as mc
import theory

# -- iterations_to_floor ------------------------------------------------------------------------------------------


def test_iterations_to_floor_is_one_step_when_rho_is_zero():
    # rho = 1 - (2 mu / N)(alpha - N L alpha^2 / 2) = 0 at N = 1, mu = L, alpha = 1/L
    point = dict(N=1, L=2.0, mu=2.0, alpha=0.5)
    assert theory.contraction_factor.evaluate(**point) == 0.0
    T = theory.iterations_to_floor.evaluate(epsilon=0.3, Delta0=1.0, **point)
    # rho^0 Delta0 = 1 > 0.3 (0^0 = 1), rho^1 Delta0 = 0 <= 0.3: the first T that reaches the floor is 1
    assert T == 1
    assert float(theory.iterations_to_floor.evaluate_exact(epsilon=0.3, Delta0=1.0, **point)) == 1


def test_iterations_to_floor_is_zero_not_negative_when_already_at_the_floor():
    # rho = 1 - (2 * 0.5)(1 - 1/2) = 0.5 here; epsilon >= Delta0 needs no step (the formula gave ceil(-1) = -1)
    point = dict(N=1, L=1.0, mu=0.5, alpha=1.0, Delta0=1.0)
    assert theory.contraction_factor.evaluate(N=1, L=1.0, mu=0.5, alpha=1.0) == 0.5
    assert theory.iterations_to_floor.evaluate(epsilon=2.0, **point) == 0
    # and just below Delta0: the smallest T with 0.5^T <= 0.9 is 1; with 0.5^T <= 0.1 it is 4
    assert theory.iterations_to_floor.evaluate(epsilon=0.9, **point) == 1
    assert theory.iterations_to_floor.evaluate(epsilon=0.1, **point) == 4


# -- ntk_relative_variance ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_ntk_relative_variance_at_depth_zero_is_the_deterministic_kernels_zero(activation):
    assert theory.ntk_relative_variance(0, activation) == 0.0
    # depth 0 is z = W_0 x: the tangent kernel is |x|^2, the same for every draw of W_0 (measured here)
    X = mc.sample_sphere(2, 16, 0)
    net = mc.MLP(16, 64, 0, activation=activation, output_activation=False)
    theta = mc.sample_grams(net, 2, 200, labels="tanh", loss="output", seed=1, data=(X, np.zeros(2))).G[:, 0, 0]
    assert theta.var() / theta.mean() ** 2 < 1e-24
    # the formula itself is unchanged at depth >= 1: 5 at depth 1 for relu, 2 for the identity
    assert theory.ntk_relative_variance(1, activation) == {"relu": 5.0, "linear": 2.0}[activation]


@pytest.mark.parametrize("depth", [-1, 1.5])
def test_ntk_relative_variance_refuses_a_depth_that_is_not_a_count(depth):
    with pytest.raises(ValueError, match="argument 'depth' must be an integer >= 0"):
        theory.ntk_relative_variance(depth, "relu")


# -- Theorem 6.1 needs bounded residuals ------------------------------------------------------------------------


def test_theorem_6_1_states_the_bounded_residual_hypothesis_its_identity_needs():
    point = dict(gamma=0.25, beta=8, N=4, eta=0.1, weight_norm=1.0, data_norm=1.0)
    assert theory.theorem_6_1.check_hypotheses(residual_max=1.2, **point) == []
    failing = theory.theorem_6_1.check_hypotheses(residual_max=5.0, **point)
    assert len(failing) == 1 and failing[0].startswith("bounded residuals")
    # why it is needed: by the identity the inner product scales as r_i r_j at fixed <x_i, x_j>, so residuals 10x
    # larger turn a pair inside the confusion bound (-0.03 >= -0.1) into one outside it (-3 < -0.1)
    inner = lambda r: theory.theorem_6_1_identity.evaluate(  # noqa: E731
        beta=8, gamma=0.25, residual_i=r, residual_j=-r, x_inner=0.06)
    assert inner(1.0) == pytest.approx(-(9 / 16) * 0.06) and inner(1.0) > -0.1
    assert inner(10.0) == pytest.approx(100 * inner(1.0)) and inner(10.0) < -0.1


# -- failure bounds below 1e-16 ---------------------------------------------------------------------------------


def test_failure_bound_keeps_bounds_far_below_machine_epsilon():
    # N^2 exp(-c d eta^2) of Theorem 6.1 at c d eta^2 = 73: 64 e^{-73} = 1.2e-30, which 1 - (1 - B) rounds to 0
    value = theory.theorem_6_1.failure_bound(c=73.0, d=100, eta=0.1, N=8)
    assert value == pytest.approx(64 * math.exp(-73.0), rel=1e-12)
    # Corollary 5.1, penalised branch: N^2 exp(-rate + 8 d zeta0^2 r / eta), exponent kept whole (no inf * 0)
    # with the penalty 8 d zeta0^2 r / eta = 10240 and the rate 10290, each exponential alone over/underflows
    beta, d, eta, r = 2, 16, 0.1, 1.0
    zeta0 = 2 * math.sqrt(beta)
    scale = d * eta**2 / (64 * zeta0**4 * (beta + 2) ** 4)
    penalty = 8 * d * zeta0**2 * r / eta
    assert penalty == pytest.approx(10240)
    c = (penalty + 50) / scale
    got = theory.corollary_5_1.failure_bound(c=c, d=d, eta=eta, N=8, beta=beta, r=r)
    assert got == pytest.approx(64 * math.exp(-50), rel=1e-7)  # the exponent is ~1e4: 1e-12 of it is 1e-8


# -- median of the chi-square product ---------------------------------------------------------------------------


def _exact_log_median(n: int, L: int) -> float:
    """Median of S = sum of L independent log(chi^2_n / n), by Gil-Pelaez inversion of its exact characteristic function.

    log(chi^2_n / n) = log(2/n) + log G with G ~ Gamma(n/2), whose characteristic function is
    Gamma(n/2 + it) / Gamma(n/2); F(s) = 1/2 - (1/pi) int_0^inf Im(e^{-its} phi(t)) / t dt, solved for F = 1/2.
    """
    a = n / 2
    mean = L * (special.digamma(a) - np.log(a))
    sd = np.sqrt(L * special.polygamma(1, a))

    def half_minus_cdf(z):  # of the standardised (S - mean) / sd
        def integrand(t):
            u = t / sd
            log_phi = L * (special.loggamma(a + 1j * u) - special.loggamma(a)) + 1j * u * (L * np.log(2 / n) - mean)
            return (np.exp(-1j * t * z + log_phi)).imag / t
        return integrate.quad(integrand, 0, 60, limit=400, epsabs=1e-13, epsrel=1e-12)[0] / np.pi

    return mean + sd * optimize.brentq(half_minus_cdf, -1, 1, xtol=1e-13)


def test_the_inversion_reproduces_a_known_chi_square_median():
    # one factor: the median of log(chi^2_4 / 4) is log(chi2.ppf(0.5, 4) / 4), from scipy's own quantile function
    assert _exact_log_median(4, 1) == pytest.approx(np.log(stats.chi2.ppf(0.5, 4) / 4), abs=1e-9)


@pytest.mark.parametrize("L", [8, 16, 32, 64])
def test_skew_corrected_median_is_closer_to_the_exact_median(L):
    exact = _exact_log_median(4, L)
    plain = np.log(theory.chi_square_product_median.evaluate(beta=L, width=4))
    corrected = np.log(theory.chi_square_product_median_skew_corrected.evaluate(beta=L, width=4))
    # exp(E log R) stays a factor exp(-psi''(2) / (6 psi'(2))) = exp(0.1044) = 1.11 below the median at any depth
    limit = -special.polygamma(2, 2) / (6 * special.polygamma(1, 2))
    assert limit == pytest.approx(0.1044, abs=1e-4)
    assert exact - plain == pytest.approx(limit, abs=0.02 / L)
    # the skew-corrected form is off by O(1/L) only (measured: 0.011 / L), at least 50 times closer here
    assert abs(exact - corrected) < 0.02 / L
    assert abs(exact - corrected) < abs(exact - plain) / 50


def test_the_corollary_5_1_reading_and_the_fluctuation_explanation_are_stated():
    """Item 3's two textual corrections: the Corollary 5.1 parenthesisation is declared a choice, with the other
    reading's consequence, and the fluctuation factor's 11/3 is explained by partly correlated blocks (a per-block
    factor (1 + 5/n)^beta), not by a normalisation (the ratio is scale-free)."""
    import inspect

    import theory
    from theory._src import infinite_width

    notes = theory.corollary_5_1.notes
    assert "eta / (4 zeta0^2)" in notes and "(eta/4) zeta0^2" in notes and "16 beta^2" in notes
    text = inspect.getsource(infinite_width)
    assert "scale-free" in text and "(1 + 5/n)^beta" in text
