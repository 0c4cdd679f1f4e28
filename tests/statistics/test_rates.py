"""The rate fits of rare tails (montecarlo.log_excess, fit_weighted_line, fit_width_law, fit_tail_power) against
hand computations and closed forms (Numerical Recipes' weighted straight line), never against their own output."""

import numpy as np
import pytest
from scipy import stats

import montecarlo as mc


def closed_form_line(x, y, se):
    """Weighted straight line by the normal equations in closed form (Press et al., Numerical Recipes, 15.2)."""
    w = 1 / np.asarray(se, dtype=float) ** 2
    S, Sx, Sy, Sxx, Sxy = w.sum(), (w * x).sum(), (w * y).sum(), (w * x * x).sum(), (w * x * y).sum()
    delta = S * Sxx - Sx**2
    b0, b1 = (Sxx * Sy - Sx * Sxy) / delta, (S * Sxy - Sx * Sy) / delta
    chi2 = float((w * (y - b0 - b1 * x) ** 2).sum())
    return b0, b1, np.sqrt(Sxx / delta), np.sqrt(S / delta), chi2


def test_log_excess_by_hand():
    # log(0.2 / 0.1) = log 2; relative error 0.01 / 0.2 = 0.05; with the floor's 0.002 / 0.1 = 0.02 added in quadrature
    y, se = mc.log_excess(0.2, 0.01, 0.1)
    assert y == pytest.approx(np.log(2), rel=1e-15) and se == pytest.approx(0.05, rel=1e-15)
    y, se = mc.log_excess(np.array([0.2]), np.array([0.01]), 0.1, 0.002)
    assert se[0] == pytest.approx(np.hypot(0.05, 0.02), rel=1e-15)


def test_log_excess_standard_error_is_the_spread_of_the_log_ratio():
    # the delta method against the spread of log(p_hat / floor) over many independent estimates
    rng = np.random.default_rng(4)
    p, floor, n, n_floor = 0.3, 0.05, 20000, 50000
    p_hat, f_hat = rng.binomial(n, p, 4000) / n, rng.binomial(n_floor, floor, 4000) / n_floor
    _, se = mc.log_excess(p, np.sqrt(p * (1 - p) / n), floor, np.sqrt(floor * (1 - floor) / n_floor))
    assert np.log(p_hat / f_hat).std() == pytest.approx(se, rel=0.05)


def test_weighted_line_is_the_closed_form():
    rng = np.random.default_rng(1)
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    se = np.array([0.1, 0.2, 0.15, 0.3, 0.25])
    y = 0.5 - 0.2 * x + se * rng.normal(size=x.size)
    fit = mc.fit_weighted_line(x, y, se)
    b0, b1, s0, s1, chi2 = closed_form_line(x, y, se)
    assert (fit.intercept, fit.slope) == pytest.approx((b0, b1), rel=1e-12)
    assert (fit.intercept_se, fit.slope_se) == pytest.approx((s0, s1), rel=1e-12)
    assert fit.chi2 == pytest.approx(chi2, rel=1e-10) and fit.dof == 3
    assert fit.p_value == pytest.approx(stats.chi2.sf(chi2, 3), rel=1e-10)
    assert fit.scale == pytest.approx(max(1.0, np.sqrt(chi2 / 3)), rel=1e-12)
    np.testing.assert_allclose(fit.predict(x), b0 + b1 * x, rtol=1e-12)


def test_weighted_line_through_exact_points_and_its_interval():
    x = np.arange(1.0, 6.0)
    fit = mc.fit_weighted_line(x, 3 - 2 * x, np.full(5, 0.5))
    assert (fit.intercept, fit.slope) == pytest.approx((3, -2), abs=1e-12)
    assert fit.chi2 == pytest.approx(0, abs=1e-20) and fit.scale == 1
    # errors 0.5 on 5 points at x = 1..5: var(slope) = 0.25 / sum (x - 3)^2 = 0.025; normal quantile (scale 1)
    low, high = fit.slope_interval()
    assert (high - low) / 2 == pytest.approx(stats.norm.ppf(0.975) * np.sqrt(0.025), rel=1e-12)


def test_weighted_line_refuses_two_points_and_bad_errors():
    with pytest.raises(ValueError, match="at least 3 distinct"):
        mc.fit_weighted_line([1, 2, 2], [1, 2, 3], [1, 1, 1])
    with pytest.raises(ValueError, match="argument 'se'"):
        mc.fit_weighted_line([1, 2, 3], [1, 2, 3], [1, 0, 1])


def test_width_law_recovers_C_and_D_from_the_law():
    widths = np.array([64.0, 128.0, 256.0, 512.0, 1024.0])
    C, D = 40.0, 900.0
    excess = C / widths - D / widths**2
    fit = mc.fit_width_law(widths, excess, 0.01 * np.ones(5))
    assert (fit.C, fit.D) == pytest.approx((C, D), rel=1e-10)
    np.testing.assert_allclose(fit.predict(widths), excess, rtol=1e-10)


def test_width_law_is_the_weighted_line_of_l_log_ratio_in_one_over_l():
    rng = np.random.default_rng(2)
    widths = np.array([64.0, 128.0, 256.0, 512.0, 1024.0])
    se = np.array([0.05, 0.03, 0.02, 0.02, 0.01])
    excess = 30 / widths - 500 / widths**2 + se * rng.normal(size=5)
    fit = mc.fit_width_law(widths, excess, se)
    b0, b1, s0, s1, chi2 = closed_form_line(1 / widths, widths * excess, widths * se)
    assert (fit.C, fit.D, fit.C_se, fit.D_se) == pytest.approx((b0, -b1, s0, s1), rel=1e-10)
    assert fit.chi2 == pytest.approx(chi2, rel=1e-9) and fit.dof == 3


def test_tail_power_of_an_exact_power_tail():
    # -log Pr = 0.5 x^2 exactly: q = 2, and identical repeats leave the bootstrap nothing to vary
    x = np.linspace(1.0, 6.0, 40)
    curve = np.exp(-0.5 * x**2)
    fit = mc.fit_tail_power(x, np.tile(curve, (5, 1)), resamples=20, seed=0)
    assert fit.q == pytest.approx(2, abs=1e-12)
    assert (fit.lower, fit.upper) == pytest.approx((2, 2), abs=1e-12)
    keep = curve < 1e-2  # by hand: the tail starts where 0.5 x^2 > log 100
    assert fit.points == keep.sum() and fit.repeats == 5 and fit.resamples == 20
    assert fit.decades == pytest.approx(0.5 * 36 / np.log(10), rel=1e-12)


def test_tail_power_interval_covers_the_power_of_noisy_repeats():
    rng = np.random.default_rng(5)
    x = np.linspace(1.0, 4.0, 30)
    truth = np.exp(-1.5 * x**1.5)
    repeats = truth * np.exp(0.3 * rng.normal(size=(10, x.size)))  # independent repeats, noisy in log
    fit = mc.fit_tail_power(x, repeats, resamples=200, seed=1)
    assert fit.lower < fit.q < fit.upper
    assert abs(fit.q - 1.5) < 0.1


def test_tail_power_refuses_a_curve_without_a_tail():
    with pytest.raises(ValueError, match="fewer than 3"):
        mc.fit_tail_power([1.0, 2.0, 3.0], [[0.5, 0.2, 0.005]])
