"""Hypothesis property tests of the Gram: exact identities that hold for every network and data set."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import montecarlo as mc
from autograd_reference import per_example_gradients

BACKENDS = tuple(b for b in mc.BACKENDS if b != "auto")  # every backend of the package table


@st.composite
def problems(draw, max_depth=3):
    d = draw(st.integers(2, 6))
    net = mc.MLP(
        d,
        draw(st.integers(1, 8)),
        draw(st.integers(0, max_depth)),
        activation=draw(st.sampled_from(mc.ACTIVATIONS)),
        output_activation=draw(st.booleans()),
        bias=draw(st.booleans()),
        init=draw(st.sampled_from(mc.INITS)),
        kappa=draw(st.floats(0.25, 4.0)),
        gamma=draw(st.floats(0.1, 3.0)),
        bias_std=0.5,
    )
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(2, 7))
    X = mc.sample_sphere(n, d, rng)
    y = mc.TanhTeacher()(X, rng)
    return net, net.init(rng), X, y, draw(st.sampled_from(mc.LOSSES)), draw(st.sampled_from(BACKENDS))


@given(problems())
def test_gram_is_symmetric_and_positive_semidefinite(problem):
    net, params, X, y, loss, backend = problem
    G = mc.gradient_gram(net, params, X, y, loss=loss, backend=backend)
    scale = max(np.max(np.abs(G)), 1e-300)
    np.testing.assert_allclose(G, G.T, rtol=0, atol=1e-13 * scale)
    assert np.linalg.eigvalsh(G).min() >= -1e-12 * scale


@given(problems())
def test_diagonal_is_squared_gradient_norm(problem):
    net, params, X, y, loss, backend = problem
    G = mc.gradient_gram(net, params, X, y, loss=loss, backend=backend)
    J, _ = per_example_gradients(net, params, X, y, loss)
    norms_sq = np.sum(J**2, axis=1)
    np.testing.assert_allclose(mc.squared_gradient_norms(G), norms_sq, rtol=1e-10, atol=1e-14 * max(norms_sq.max(), 1e-300))


@given(problems(), st.randoms(use_true_random=False))
def test_permuting_examples_permutes_the_gram(problem, random):
    net, params, X, y, loss, backend = problem
    perm = np.array(random.sample(range(len(X)), len(X)))
    G = mc.gradient_gram(net, params, X, y, loss=loss, backend=backend)
    G_perm = mc.gradient_gram(net, params, X[perm], y[perm], loss=loss, backend=backend)
    np.testing.assert_allclose(G_perm, G[np.ix_(perm, perm)], rtol=1e-12, atol=1e-14 * max(np.abs(G).max(), 1e-300))


@given(
    st.integers(2, 8), st.sampled_from(mc.ACTIVATIONS), st.sampled_from(mc.LOSSES),
    st.booleans(), st.integers(0, 2**32 - 1), st.sampled_from(BACKENDS),
)
def test_orthogonal_inputs_give_a_diagonal_gram_at_depth_0(d, activation, loss, output_activation, seed, backend):
    """Depth 0: grad f_i = gamma l'_i s'(z_i) x_i, so orthogonal x_i give G_ij = 0 for i != j (paper section 2)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, d + 1))
    X = mc.MLP(d, d, 2, init="orthogonal").init(rng).weights[1][:n]  # n orthonormal rows
    net = mc.MLP(d, 1, 0, activation=activation, output_activation=output_activation, gamma=1.5)
    y = mc.RandomSigns()(X, rng)
    G = mc.gradient_gram(net, net.init(rng), X, y, loss=loss, backend=backend)
    off = G - np.diag(np.diag(G))
    assert np.max(np.abs(off)) <= 1e-14 * max(np.max(np.abs(G)), 1e-300)


@given(
    st.integers(2, 8), st.integers(1, 6), st.integers(2, 7), st.floats(0.05, 2.0),
    st.integers(0, 2**32 - 1), st.sampled_from(BACKENDS),
)
def test_orthogonal_deep_linear_network_identity(d, depth, n, gamma, seed, backend):
    """Square orthogonal layers, linear activation, square loss: G_ij = (beta+1) gamma^2 r_i r_j <x_i, x_j>.

    (Theorem 6.1 reconstruction, paper digest section 2.3; r = g - y is the residual.)
    """
    rng = np.random.default_rng(seed)
    net = mc.MLP(d, d, depth, activation="linear", init="orthogonal", gamma=gamma)
    params = net.init(rng)
    X = mc.sample_sphere(n, d, rng)
    y = mc.TanhTeacher()(X, rng)
    h = X
    for w in params.weights:
        h = h @ w.T
    r = gamma * h[:, 0] - y
    expected = (depth + 1) * gamma**2 * np.outer(r, r) * (X @ X.T)
    G = mc.gradient_gram(net, params, X, y, backend=backend)
    np.testing.assert_allclose(G, expected, rtol=0, atol=1e-12 * np.max(np.abs(expected)))
