"""montecarlo.mean_se and mean_interval: the mean of independent draws, its standard error and its t interval, against a
hand computation and scipy."""

import numpy as np
import pytest
from scipy import stats

import montecarlo as mc


def test_hand_computation_on_four_values():
    # mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, s^2 = 5/3, se = sqrt(5/3 / 4) = sqrt(5/12)
    mean, se = mc.mean_se([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert se == pytest.approx(np.sqrt(5 / 12), rel=1e-15)


def test_matches_scipy_sem_along_an_axis():
    values = np.random.default_rng(3).normal(size=(30, 4))
    mean, se = mc.mean_se(values, axis=0)
    np.testing.assert_allclose(mean, values.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(se, stats.sem(values, axis=0), rtol=1e-14)
    mean, se = mc.mean_se(values.T, axis=1)
    np.testing.assert_allclose(se, stats.sem(values, axis=0), rtol=1e-14)


def test_one_draw_has_no_standard_error_and_none_is_refused():
    mean, se = mc.mean_se([0.7])
    assert mean == 0.7 and np.isnan(se)
    mean, se = mc.mean_se(np.ones((1, 3)), axis=0)
    assert mean.shape == se.shape == (3,) and np.all(np.isnan(se))
    with pytest.raises(ValueError, match="argument 'values'"):
        mc.mean_se([])


@pytest.mark.parametrize("confidence", [0.95, 0.8])
def test_mean_interval_is_scipys_t_interval_along_an_axis(confidence):
    rng = np.random.default_rng(3)
    values = rng.normal(2.0, 0.5, size=(6, 3))
    mean, se, half = mc.mean_interval(values, axis=0, confidence=confidence)
    for j in range(3):
        lo, hi = stats.t.interval(confidence, 5, loc=values[:, j].mean(), scale=stats.sem(values[:, j]))
        assert mean[j] - half[j] == pytest.approx(lo, rel=1e-13) and mean[j] + half[j] == pytest.approx(hi, rel=1e-13)
        assert se[j] == pytest.approx(stats.sem(values[:, j]), rel=1e-13)


def test_mean_interval_of_one_draw_has_no_width_and_a_bad_confidence_is_named():
    mean, se, half = mc.mean_interval([0.3])
    assert mean == 0.3 and np.isnan(se) and np.isnan(half)
    for bad in (0, 1, 1.5, True, "0.95"):
        with pytest.raises(ValueError, match="argument 'confidence'"):
            mc.mean_interval([1.0, 2.0], confidence=bad)
