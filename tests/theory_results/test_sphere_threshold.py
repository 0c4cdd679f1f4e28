"""theory.sphere_inner_product_threshold: the upper-tail quantile of <x_1, x_2> on S^{d-1}, against closed forms."""

import numpy as np
import pytest
from scipy import stats

import theory


@pytest.mark.parametrize("p", [0.5, 0.3, 1e-2, 1e-4])
def test_d3_is_archimedes_uniform_law(p):
    # on S^2 the inner product is uniform on [-1, 1] (Archimedes): Pr[t > s] = (1 - s) / 2, so s = 1 - 2p
    assert theory.sphere_inner_product_threshold(p, 3) == pytest.approx(1 - 2 * p, abs=1e-13)


@pytest.mark.parametrize("p", [0.5, 0.2, 1e-3, 1e-6])
def test_d2_is_the_arcsine_law(p):
    # on the circle the angle is uniform on [0, pi]: Pr[cos(angle) > s] = arccos(s) / pi, so s = cos(pi p)
    assert theory.sphere_inner_product_threshold(p, 2) == pytest.approx(np.cos(np.pi * p), abs=1e-12)


@pytest.mark.parametrize("d, p", [(16, 1e-4), (16, 1e-10), (32, 1e-10), (64, 0.05)])
def test_inverts_the_beta_tail_of_scipy(d, p):
    t = theory.sphere_inner_product_threshold(p, d)
    a = (d - 1) / 2
    # (1 + t) / 2 ~ Beta(a, a): the tail above t is scipy's survival function at (1 + t) / 2
    assert stats.beta.sf((1 + t) / 2, a, a) == pytest.approx(p, rel=1e-9)
    assert t == pytest.approx(2 * stats.beta.isf(p, a, a) - 1, abs=1e-10)


@pytest.mark.parametrize("p, d, message", [
    (0.0, 16, "argument 'p'"), (0.7, 16, "argument 'p'"), (float("nan"), 16, "argument 'p'"),
    (1e-300, 16, "at least"), (0.1, 1, "argument 'd'"), (0.1, 2.5, "argument 'd'"),
])
def test_refuses_what_has_no_threshold(p, d, message):
    with pytest.raises(ValueError, match=message):
        theory.sphere_inner_product_threshold(p, d)
