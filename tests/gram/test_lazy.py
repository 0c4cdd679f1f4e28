"""Lazy exact sampling agrees in law with dense sampling; exact moments and identities hold per draw."""

import numpy as np
import pytest
from scipy import stats

import montecarlo as mc
from montecarlo.testing import (DENSE, LAZY_GAUSSIAN, LAZY_ORTHOGONAL, NormalSource, draw_layers, gram_blocks,
                                lazy_layers)

STATISTICS = ("eta_star", "min_cosine", "grad_norm_sq_mean")


def test_which_layers_are_lazy():
    net = mc.MLP(64, 512, 3)
    assert lazy_layers(net, 16) == (LAZY_GAUSSIAN,) * 3 + (DENSE,)  # the 1 x width output row stays dense
    assert lazy_layers(net, 64) == (DENSE,) + (LAZY_GAUSSIAN,) * 2 + (DENSE,)  # fan-in d = 64 is not > N
    assert lazy_layers(net, 600) == (DENSE,) * 4
    assert lazy_layers(net.replace(init="orthogonal"), 16) == (LAZY_ORTHOGONAL,) * 3 + (DENSE,)
    # a wide orthogonal first layer (width < d) is drawn densely
    assert lazy_layers(mc.MLP(600, 512, 2, init="orthogonal"), 16) == (DENSE, LAZY_ORTHOGONAL, DENSE)
    assert lazy_layers(net, 16, "dense") == (DENSE,) * 4


def _grams(net, X, y, trials, seed, method, loss="square"):
    """Gram blocks of ``trials`` draws on fixed data, dense or lazy, from the package's own draw code."""
    modes = lazy_layers(net, X.shape[0], method)
    layers, biases = draw_layers(net, X.shape[0], NormalSource.numpy(seed), (trials,), modes)
    return np.stack(gram_blocks(np, net, layers, biases, X, y, loss), axis=-3)


def _two_sample(a, b):
    for key in STATISTICS:
        x, y = a[key], b[key]
        x, y = x[~np.isnan(x)], y[~np.isnan(y)]
        assert stats.ks_2samp(x, y).pvalue > 1e-3, key
        assert stats.anderson_ksamp([x, y]).pvalue > 1e-3, key


CONFIGURATIONS = [
    # (input_dim, width, depth, activation, init, bias, N)
    (24, 40, 3, "tanh", "gaussian", False, 8),
    (24, 40, 3, "tanh", "orthogonal", False, 8),
    (24, 48, 2, "relu", "gaussian", True, 8),  # relu zeros: rank-deficient layer inputs
    (16, 32, 3, "sigmoid", "orthogonal", True, 6),
    (3, 30, 3, "linear", "gaussian", False, 8),  # d < N: every hidden input has rank 3 < N
    (3, 30, 3, "linear", "orthogonal", False, 8),
]


@pytest.mark.parametrize("d,width,depth,activation,init,bias,N", CONFIGURATIONS)
def test_lazy_and_dense_sampling_agree_in_law(d, width, depth, activation, init, bias, N):
    """sample_confusion with method='lazy' vs 'dense': KS and Anderson-Darling on eta*, min cosine and |g|^2."""
    net = mc.MLP(d, width, depth, activation=activation, init=init, bias=bias, bias_std=0.3, gain=1.1)
    assert any(mode != DENSE for mode in lazy_layers(net, N))
    args = dict(labels="tanh", loss="square")
    lazy = mc.sample_confusion(net, N, 1500, seed=1, method="lazy", **args)
    dense = mc.sample_confusion(net, N, 1500, seed=2, method="dense", **args)
    assert lazy.meta["method"].startswith("lazy") and dense.meta["method"].startswith("dense")
    _two_sample(lazy.stats, dense.stats)


def test_lazy_agrees_in_law_on_near_degenerate_inputs():
    """Two data points 1e-9 apart make every layer input nearly rank-deficient."""
    net = mc.MLP(20, 32, 3, activation="tanh")
    rng = np.random.default_rng(0)
    X = mc.sample_sphere(6, 20, rng)
    X[1] = X[0] + 1e-9 * rng.standard_normal(20)
    X[1] /= np.linalg.norm(X[1])
    y = mc.TanhTeacher()(X, rng)
    lazy = mc.gram_statistics(_grams(net, X, y, 2000, 1, "lazy").sum(-3))
    dense = mc.gram_statistics(_grams(net, X, y, 2000, 2, "dense").sum(-3))
    assert all(np.isfinite(lazy[key]).all() for key in ("eta_star", "grad_norm_sq_mean"))
    _two_sample(lazy, dense)


@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
def test_every_gram_entry_has_the_dense_mean_and_second_moment(init):
    """Fixed data: each entry of each layer's block, first and second moments, lazy vs dense within 4.5 s.e."""
    net = mc.MLP(7, 9, 3, activation="tanh", init=init, gain=0.9)
    X = mc.sample_sphere(4, 7, 0)
    y = mc.TanhTeacher()(X, 1)
    a, b = _grams(net, X, y, 60000, 1, "lazy"), _grams(net, X, y, 60000, 2, "dense")
    for power in (1, 2):
        pa, pb = a**power, b**power
        z = (pa.mean(0) - pb.mean(0)) / np.sqrt(pa.var(0) / len(pa) + pb.var(0) / len(pb))
        assert np.max(np.abs(z)) < 4.5, (power, np.max(np.abs(z)))


@pytest.mark.parametrize("method", ["lazy", "dense"])
def test_exact_mean_squared_gradient_norm_of_a_linear_two_layer_network(method):
    """g(x) = w_1^T W_0 x, W_0 ~ N(0, 1/d), w_1 ~ N(0, 1/(kappa m)), y = 0, |x| = 1:
    E|grad f_i|^2 = E[g^2 |w_1|^2] + E[g^2 |W_0 x|^2] = (1 + 2/m) / (d kappa^2) + (m + 2) / (kappa d^2)."""
    d, m, kappa, N = 20, 24, 2.0, 5
    net = mc.MLP(d, m, 1, activation="linear", kappa=kappa)
    assert (lazy_layers(net, N, method)[0] != DENSE) == (method == "lazy")
    zeros = lambda X, rng: np.zeros(X.shape[:-1])  # noqa: E731
    sample = mc.sample_confusion(net, N, 40000, labels=zeros, loss="square", seed=3, method=method)
    values = sample.stats["grad_norm_sq_mean"]
    exact = (1 + 2 / m) / (d * kappa**2) + (m + 2) / (kappa * d**2)
    assert abs(values.mean() - exact) < 4 * values.std() / np.sqrt(values.size)


def test_orthogonal_deep_linear_identity_holds_for_every_lazy_draw():
    """Theorem 6.1 reconstruction: cos(grad f_i, grad f_j)^2 = <x_i, x_j>^2 exactly, for each draw (not only in law)."""
    net = mc.MLP(12, 12, 3, activation="linear", init="orthogonal", gamma=0.4)
    assert lazy_layers(net, 4) == (LAZY_ORTHOGONAL,) * 3 + (DENSE,)
    X = mc.sample_sphere(4, 12, 0)
    y = mc.TanhTeacher()(X, 1)
    G = _grams(net, X, y, 50, 2, "lazy").sum(-3)
    cos = mc.cosine_matrix(G)
    np.testing.assert_allclose(cos**2, np.broadcast_to((X @ X.T) ** 2, cos.shape), atol=1e-10)


@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
def test_lazy_backends_fed_the_same_draws_agree_to_rounding(init):
    net = mc.MLP(10, 20, 3, activation="tanh", init=init, bias=True, bias_std=0.2)
    args = dict(labels="tanh", loss="logistic", seed=4, method="lazy")
    reference = mc.sample_confusion(net, 6, 24, backend="numpy", **args)
    assert reference.meta["method"] == "lazy: layers [0, 1, 2]; dense: layers [3]"
    for backend in (b for b in mc.BACKENDS if b not in ("auto", "numpy")):
        other = mc.sample_confusion(net, 6, 24, backend=backend, **args)
        for key in STATISTICS:
            np.testing.assert_allclose(other.stats[key], reference.stats[key], rtol=1e-9, err_msg=key)


@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
def test_one_layer_forward_and_backward_have_the_dense_law(init):
    """A single layer with fan-out above fan-in (so the orthogonal G_2 term is used), a fixed input H and a
    backward signal that depends on Z (as in a network): moments of Z and of Delta W, lazy vs dense."""
    from montecarlo.testing import lazy

    N, n, m, trials = 3, 6, 10, 100000
    net = mc.MLP(n, m, 1, init=init, gain=1.3)
    assert lazy_layers(net, N)[0] != DENSE
    H = np.random.default_rng(0).standard_normal((N, n))

    def draws(method, seed):
        layers, _ = draw_layers(net, N, NormalSource.numpy(seed), (trials,), lazy_layers(net, N, method))
        Z, U = lazy.pre_activation(np, layers[0], H)
        delta = np.tanh(Z) + 0.5 * Z**2  # depends on Z
        return np.concatenate([Z.reshape(trials, -1), lazy.input_gradient(np, layers[0], delta, U).reshape(trials, -1)], 1)

    a, b = draws("lazy", 1), draws("dense", 2)
    for power in (1, 2):
        pa, pb = a**power, b**power
        z = (pa.mean(0) - pb.mean(0)) / np.sqrt(pa.var(0) / trials + pb.var(0) / trials)
        assert np.max(np.abs(z)) < 4.5, (power, np.max(np.abs(z)))
    # a cross moment between the forward and the backward draw
    cross = lambda x: x[:, 0] * x[:, N * m]  # noqa: E731
    za = (cross(a).mean() - cross(b).mean()) / np.sqrt(cross(a).var() / trials + cross(b).var() / trials)
    assert abs(za) < 4.5


@pytest.mark.parametrize("backend", [b for b in mc.BACKENDS if b != "auto"])
def test_dead_relu_outputs_give_exactly_zero_gradients_when_lazy(backend):
    """With a relu output and no bias, each example's output is dead with probability exactly 1/2 (W_beta is
    symmetric), and its gradient is then exactly zero.  Lazy sampling must keep those zeros exact: rounding in
    the factor of Delta Delta^T used to leak ~sqrt(eps) noise into them (fraction 0.447 instead of 0.5)."""
    net = mc.MLP(16, 64, 2, activation="relu", output_activation=True)
    sample = mc.sample_confusion(net, 6, 2000, labels="tanh", loss="logistic", seed=6, method="lazy",
                                 backend=backend)
    assert sample.meta["method"].startswith("lazy")
    fraction = sample.stats["fraction_zero_gradient"]
    standard_error = fraction.std(ddof=1) / np.sqrt(fraction.size)
    assert abs(fraction.mean() - 0.5) < 4 * standard_error


@pytest.mark.parametrize("case", ["random", "ill_conditioned", "rank_deficient", "float32"])
def test_numba_frames_are_the_unique_positive_diagonal_qr(case):
    """The numba kernel's Cholesky QR2 (or its Householder fallback): H^T = U R, U orthonormal, diag R >= 0,
    and, for full-rank H, the same factor as numpy's Householder QR with that sign convention."""
    from montecarlo.testing import lazy, numba_frame

    rng = np.random.default_rng(3)
    h = rng.standard_normal((12, 300))
    if case == "ill_conditioned":  # singular values 1 .. 1e-9: beyond eps^-1/2, the fallback must take over
        u, _, vt = np.linalg.svd(h, full_matrices=False)
        h = (u * np.geomspace(1, 1e-9, 12)) @ vt
    elif case == "rank_deficient":  # a dead example (zero row) and a repeated one
        h[3] = 0.0
        h[7] = h[5]
    dtype = np.float32 if case == "float32" else np.float64
    h = h.astype(dtype)
    U, R, gram = numba_frame(h)
    eps = np.finfo(dtype).eps
    assert U.dtype == dtype and R.dtype == dtype
    np.testing.assert_allclose(U @ R, h.T, atol=50 * eps * np.abs(h).max())
    np.testing.assert_allclose(U.T @ U, np.eye(12), atol=100 * 12 * eps)
    assert np.all(np.diag(R) >= 0) and np.allclose(np.tril(R, -1), 0)
    np.testing.assert_allclose(gram, h @ h.T, rtol=10 * eps, atol=10 * eps * np.abs(h).max() ** 2 * 300)
    if case in ("random", "float32"):
        U_ref, R_ref = lazy.frame(np, h.astype(np.float64))
        np.testing.assert_allclose(U, U_ref, atol=1e3 * eps)
        np.testing.assert_allclose(R, R_ref, atol=1e3 * eps * np.abs(R_ref).max())
