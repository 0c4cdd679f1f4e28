"""``montecarlo.fit_power_decay``: ``y = C x^-a`` with intervals, on synthetic data from the law."""

import numpy as np
import pytest

from montecarlo import fit_power_decay


X = np.array([64.0, 128, 256, 512, 1024])


def test_exact_data_give_the_law_back():
    fit = fit_power_decay(X, 100.0 * X**-1.0, np.full(X.size, 1e-3))
    assert fit.C == pytest.approx(100.0, rel=1e-8) and fit.a == pytest.approx(1.0, rel=1e-8)
    assert fit.chi2 == pytest.approx(0.0, abs=1e-12) and fit.scale == 1.0


@pytest.mark.parametrize("C, a", [(100.0, 1.0), (30.0, 0.7)])
def test_intervals_cover_the_true_constants_at_the_stated_rate(C, a):
    rng = np.random.default_rng(0)
    groups, covered_a, covered_C = 200, 0, 0
    for _ in range(groups):
        se = 0.03 + 0.05 * C * X**-a
        fit = fit_power_decay(X, C * X**-a + se * rng.standard_normal(X.size), se)
        covered_a += fit.a_interval[0] <= a <= fit.a_interval[1]
        covered_C += fit.C_interval[0] <= C <= fit.C_interval[1]
    # 95% nominal: a binomial(200, 0.95) count lies in [179, 199] with probability > 0.998
    assert 179 <= covered_a <= 199 and 179 <= covered_C <= 199, (covered_a, covered_C)


def test_intervals_keep_their_coverage_when_the_errors_are_understated():
    # the true scatter is 3x the stated errors: the chi-square scale factor must widen the intervals enough
    rng = np.random.default_rng(1)
    C, a, groups, covered = 100.0, 1.0, 200, 0
    for _ in range(groups):
        se = 0.03 + 0.05 * C * X**-a
        fit = fit_power_decay(X, C * X**-a + 3 * se * rng.standard_normal(X.size), se)
        covered += fit.a_interval[0] <= a <= fit.a_interval[1]
    assert covered >= 179, covered  # binomial(200, 0.95) >= 179 with probability > 0.998


def test_a_misfit_is_seen_by_the_chi_square_test_and_widens_the_intervals():
    y = 100.0 * X**-1.0 + np.array([0.3, -0.3, 0.3, -0.3, 0.3])  # off the law by 30 standard errors
    fit = fit_power_decay(X, y, np.full(X.size, 0.01))
    assert fit.p_value < 1e-6 and fit.scale > 10


@pytest.mark.parametrize("x, y, se, match", [
    ([64, 128], [1, 0.5], [0.1, 0.1], "3 distinct"),
    ([64, 128, 256], [1, 0.5], [0.1, 0.1, 0.1], "one entry each"),
    ([64, 128, 256], [-1, -0.5, -0.1], [0.1, 0.1, 0.1], "no positive"),
    ([64, 128, 256], [1, 0.5, 0.2], [0.1, 0, 0.1], "'se'"),
    ([0, 128, 256], [1, 0.5, 0.2], [0.1, 0.1, 0.1], "'x'"),
])
def test_bad_input_is_refused_naming_the_argument(x, y, se, match):
    with pytest.raises(ValueError, match=match):
        fit_power_decay(x, y, se)
