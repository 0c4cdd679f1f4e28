"""The MLP spec and its initialisations against their exact laws."""

import numpy as np
import pytest
from scipy import stats

import montecarlo as mc


def test_layer_shapes_follow_eq4():
    assert mc.MLP(5, 7, 0).layer_shapes == ((1, 5),)
    assert mc.MLP(5, 7, 1).layer_shapes == ((7, 5), (1, 7))
    assert mc.MLP(5, 7, 3).layer_shapes == ((7, 5), (7, 7), (7, 7), (1, 7))
    assert mc.MLP(5, 7, 3, bias=True).n_params == 7 * 5 + 2 * 49 + 7 + 3 * 7 + 1


def test_init_is_a_pure_function_of_the_seed():
    net = mc.MLP(4, 6, 3, init="orthogonal", bias=True, bias_std=1.0)
    a, b = net.init(np.random.default_rng(11)), net.init(np.random.default_rng(11))
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(x, y)
    assert all(w.dtype == np.float64 for w in a.weights)


@pytest.mark.parametrize("kappa", [0.5, 1.0, 4.0])
def test_gaussian_init_variances_are_strategy_4_1(kappa):
    """Entries of W_0 have variance 1/d, of W_p (p >= 1) 1/(kappa fan_in): chi-square test of the sample variance."""
    d, width, trials = 6, 10, 400
    net = mc.MLP(d, width, 3, kappa=kappa)
    params = net.init(np.random.default_rng(5), batch=trials)
    expected = [1 / d, 1 / (kappa * width), 1 / (kappa * width), 1 / (kappa * width)]
    for W, var in zip(params.weights, expected):
        entries = W.reshape(-1)
        n = entries.size
        statistic = np.sum(entries**2) / var  # chi-square with n degrees of freedom (mean is exactly 0)
        p_value = 2 * min(stats.chi2.cdf(statistic, n), stats.chi2.sf(statistic, n))
        assert p_value > 1e-4
        assert abs(entries.mean()) < 5 * np.sqrt(var / n)


@pytest.mark.parametrize("shape", [(7, 7), (9, 4), (4, 9), (1, 6)])
def test_orthogonal_init_is_semi_orthogonal_times_gain(shape):
    m, n = shape
    net_shapes = {(7, 7): mc.MLP(7, 7, 2), (9, 4): mc.MLP(4, 9, 1), (4, 9): mc.MLP(9, 4, 1), (1, 6): mc.MLP(6, 3, 0)}
    net = net_shapes[shape].replace(init="orthogonal", gain=0.7)
    W = net.init(np.random.default_rng(0), batch=5).weights[0]
    assert W.shape == (5, m, n)
    gram = W @ np.swapaxes(W, -1, -2) if m <= n else np.swapaxes(W, -1, -2) @ W
    np.testing.assert_allclose(gram, np.broadcast_to(0.49 * np.eye(min(m, n)), gram.shape), atol=1e-12)


def test_orthogonal_init_is_haar():
    """For Haar Q in O(n): E tr Q = 0 and E (tr Q)^2 = 1 (Diaconis & Shahshahani 1994).

    QR of a Gaussian matrix without the sign correction fails this (with
    LAPACK's signs, E tr Q is about -1.27 and E (tr Q)^2 about 2.1 at n = 6),
    so the test tells the two apart.
    """
    n, trials = 6, 20000
    Q = mc.MLP(n, n, 2, init="orthogonal").init(np.random.default_rng(3), batch=trials).weights[1]
    traces = np.trace(Q, axis1=-2, axis2=-1)
    se = traces.std() / np.sqrt(trials)
    assert abs(traces.mean()) < 4 * se
    second = traces**2
    assert abs(second.mean() - 1.0) < 4 * second.std() / np.sqrt(trials)


def test_orthogonal_last_row_is_uniform_on_the_sphere():
    """The 1 x width output row is a uniform unit vector: (1 + u_1)/2 ~ Beta((n-1)/2, (n-1)/2)."""
    width = 5
    rows = mc.MLP(3, width, 2, init="orthogonal").init(np.random.default_rng(4), batch=4000).weights[-1][:, 0, :]
    np.testing.assert_allclose(np.linalg.norm(rows, axis=-1), 1.0, atol=1e-12)
    beta = stats.beta((width - 1) / 2, (width - 1) / 2)
    assert stats.kstest((1 + rows[:, 0]) / 2, beta.cdf).pvalue > 1e-3


def test_mlp_is_immutable_and_compares_by_value():
    net = mc.MLP(4, 8, 2, activation="tanh")
    assert net == mc.MLP(4, 8, 2, activation="tanh") and hash(net) == hash(mc.MLP(4, 8, 2, activation="tanh"))
    assert net.replace(width=9).width == 9 and net.width == 8
    with pytest.raises(AttributeError):
        net.width = 3
