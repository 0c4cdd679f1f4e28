"""Sphere sampling and labelling functions against their exact laws and assumptions."""

import numpy as np
import pytest
from scipy import stats

import montecarlo as mc


@pytest.mark.parametrize("d", [2, 3, 10, 50])
def test_sphere_is_uniform(d):
    """Unit norm; (1 + x_1)/2 ~ Beta((d-1)/2, (d-1)/2); E<x, y>^2 = 1/d for independent points."""
    X = mc.sample_sphere(20000, d, np.random.default_rng(d))
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-12)
    law = stats.beta((d - 1) / 2, (d - 1) / 2)
    assert stats.kstest((1 + X[:, 0]) / 2, law.cdf).pvalue > 1e-3
    t = np.sum(X[:10000] * X[10000:], axis=1)
    assert abs(np.mean(t**2) - 1 / d) < 4 * np.std(t**2) / np.sqrt(t.size)


def test_sphere_batch_and_seed():
    a = mc.sample_sphere(5, 3, np.random.default_rng(1), batch=4)
    b = mc.sample_sphere(5, 3, np.random.default_rng(1), batch=4)
    assert a.shape == (4, 5, 3)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("teacher", [mc.LinearTeacher, mc.TanhTeacher])
def test_teachers_are_bounded_and_1_lipschitz_on_the_ball(teacher):
    """|C(x)| <= 1 and |grad C(x)| <= 1 for |x| <= 1 (the theorems' assumption), by central differences."""
    rng = np.random.default_rng(0)
    d = 7
    v = mc.sample_sphere(1, d, rng)[0]
    C = teacher(v=v)
    radii = rng.uniform(0, 1, size=(500, 1)) ** (1 / d)
    X = mc.sample_sphere(500, d, rng) * radii
    assert np.all(np.abs(C(X)) <= 1 + 1e-12)
    h = 1e-6
    grads = np.stack([(C(X + h * e) - C(X - h * e)) / (2 * h) for e in np.eye(d)], axis=-1)
    assert np.max(np.linalg.norm(grads, axis=-1)) <= 1 + 1e-6
    assert C.within_assumptions


def test_teacher_draws_a_fresh_unit_direction_per_data_set():
    rng = np.random.default_rng(3)
    X = mc.sample_sphere(4, 5, rng, batch=2)
    y = mc.LinearTeacher()(X, np.random.default_rng(9))
    v = mc.sample_sphere(1, 5, np.random.default_rng(9), batch=2)[..., 0, :]
    np.testing.assert_allclose(y, np.einsum("tnd,td->tn", X, v))


def test_random_signs_are_pm1_and_marked_outside_the_assumptions():
    y = mc.RandomSigns()(np.zeros((3000, 4)), np.random.default_rng(0))
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert abs(y.mean()) < 4 / np.sqrt(y.size)
    assert not mc.RandomSigns.within_assumptions
    assert mc.make_labels("tanh").name == "tanh"
