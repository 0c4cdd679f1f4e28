"""Every backend of gradient_gram against brute-force autograd and finite differences."""

import itertools

import numpy as np
import pytest

import montecarlo as mc
from autograd_reference import finite_difference_gradients, per_example_gradients

BACKENDS = tuple(b for b in mc.BACKENDS if b != "auto")  # every backend of the package table
CASES = list(itertools.product(mc.ACTIVATIONS, mc.LOSSES, (True, False), (True, False)))


def relative_error(G, reference):
    """Max-norm error relative to the reference's largest entry (absolute if the reference is 0)."""
    scale = np.max(np.abs(reference))
    return np.max(np.abs(G - reference)) / (scale if scale > 0 else 1.0)


def _problem(activation, loss, output_activation, bias, depth=3, seed=0):
    """A small random problem in which at least 3 of the 6 examples have a non-zero gradient.

    (A relu output is 0 with probability 1/2 per example, so some draws have
    almost no gradient at all; the first seed from ``seed`` up that has
    enough is used, deterministically.)
    """
    net = mc.MLP(5, 7, depth, activation=activation, output_activation=output_activation, bias=bias,
                 bias_std=0.3 if bias else 0.0)
    while True:
        rng = np.random.default_rng(seed)
        params = net.init(rng)
        X = mc.sample_sphere(6, 5, rng)
        # Random signs reach both branches of the logistic loss; a tanh teacher is used for the square loss.
        y = mc.RandomSigns()(X, rng) if loss == "logistic" else mc.TanhTeacher()(X, rng)
        J, _ = per_example_gradients(net, params, X, y, loss)
        if np.count_nonzero(np.abs(J).sum(axis=1)) >= 3:
            return net, params, X, y
        seed += 1000


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation,loss,output_activation,bias", CASES)
def test_gram_equals_autograd_per_example_gradients(backend, activation, loss, output_activation, bias):
    net, params, X, y = _problem(activation, loss, output_activation, bias)
    J, ranges = per_example_gradients(net, params, X, y, loss)
    G, blocks = mc.gradient_gram(net, params, X, y, loss=loss, backend=backend, per_layer=True)
    assert relative_error(G, J @ J.T) < 1e-10
    for p, (start, stop) in enumerate(ranges):
        Jp = J[:, start:stop]
        assert relative_error(blocks[p], Jp @ Jp.T) < 1e-10, f"layer {p}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("depth", [0, 1, 2])
def test_gram_equals_finite_differences(backend, depth):
    net, params, X, y = _problem("tanh", "square", True, True, depth=depth, seed=depth)
    J = finite_difference_gradients(net, params, X, y, "square")
    G = mc.gradient_gram(net, params, X, y, backend=backend)
    assert relative_error(G, J @ J.T) < 1e-7


@pytest.mark.parametrize("backend", BACKENDS)
def test_relu_gram_equals_finite_differences(backend):
    # Away from kinks relu is smooth; a step of 1e-6 does not cross one for these seeds.
    net, params, X, y = _problem("relu", "logistic", True, False, depth=2, seed=3)
    J = finite_difference_gradients(net, params, X, y, "logistic", step=1e-6)
    G = mc.gradient_gram(net, params, X, y, loss="logistic", backend=backend)
    assert relative_error(G, J @ J.T) < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shared_data", [False, True])
def test_batched_trials_equal_one_trial_at_a_time(backend, shared_data):
    """A trial axis on weights (and on data, or data shared by every trial) gives each trial's own Gram."""
    net = mc.MLP(6, 9, 2, activation="sigmoid", bias=True, bias_std=0.5)
    rng = np.random.default_rng(7)
    params = net.init(rng, batch=4)
    X = mc.sample_sphere(5, 6, rng, batch=None if shared_data else 4)
    y = mc.LinearTeacher()(X, rng)
    G = mc.gradient_gram(net, params, X, y, backend=backend)
    assert G.shape == (4, 5, 5)
    for t in range(4):
        one = mc.Parameters(tuple(w[t] for w in params.weights), tuple(b[t] for b in params.biases))
        Xt, yt = (X, y) if shared_data else (X[t], y[t])
        J, _ = per_example_gradients(net, one, Xt, yt, "square")
        assert relative_error(G[t], J @ J.T) < 1e-10


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_is_float32_and_close_to_float64(backend):
    net = mc.MLP(16, 32, 3, activation="tanh")
    rng = np.random.default_rng(2)
    params = net.init(rng, batch=2)
    X = mc.sample_sphere(8, 16, rng)
    y = mc.TanhTeacher()(X, rng)
    G64 = mc.gradient_gram(net, params, X, y, backend=backend)
    G32 = mc.gradient_gram(net, params, X, y, backend=backend, dtype="float32")
    assert G32.dtype == np.float32 and G64.dtype == np.float64
    error = relative_error(G32.astype(np.float64), G64)
    assert 0 < error < 1e-5  # float32 rounding is visible but small
