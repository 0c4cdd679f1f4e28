"""Every bad input gets an error that names the argument and what is accepted."""

import re

import numpy as np
import pytest
import torch

import montecarlo as mc


@pytest.fixture
def problem():
    net = mc.MLP(4, 5, 2)
    rng = np.random.default_rng(0)
    X = mc.sample_sphere(3, 4, rng)
    return net, net.init(rng), X, mc.LinearTeacher()(X, rng)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(width=0), r"argument 'width' must be an integer >= 1, got 0"),
        (dict(width=2.5), r"argument 'width' must be an integer >= 1, got 2.5"),
        (dict(depth=-1), r"argument 'depth' must be an integer >= 0, got -1"),
        (dict(input_dim=1), r"argument 'input_dim' must be an integer >= 2, got 1"),
        (dict(activation="softmax"),
         rf"argument 'activation' must be one of {re.escape(', '.join(map(repr, mc.ACTIVATIONS)))}; got 'softmax'"),
        (dict(init="xavier"), r"argument 'init' must be one of 'gaussian', 'orthogonal'; got 'xavier'"),
        (dict(kappa=0.0), r"argument 'kappa' must be a finite real number > 0, got 0.0"),
        (dict(kappa=-2), r"argument 'kappa' must be a finite real number > 0, got -2"),
        (dict(gamma=float("nan")), r"argument 'gamma' must be a finite real number > 0, got nan"),
        (dict(gain=0), r"argument 'gain' must be a finite real number > 0, got 0"),
        (dict(bias="yes"), r"argument 'bias' must be True or False, got 'yes'"),
    ],
)
def test_bad_network_spec(kwargs, message):
    spec = dict(input_dim=4, width=5, depth=2) | kwargs
    with pytest.raises((ValueError, TypeError), match=message):
        mc.MLP(**spec)


def test_too_few_examples(problem):
    net, params, X, y = problem
    with pytest.raises(ValueError, match=r"argument 'X' must hold N >= 2 examples .* got N = 1"):
        mc.gradient_gram(net, params, X[:1], y[:1])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_data_and_labels(problem, bad):
    net, params, X, y = problem
    X_bad, y_bad = X.copy(), y.copy()
    X_bad[1, 2], y_bad[0] = bad, bad
    with pytest.raises(ValueError, match=r"argument 'X' must be finite, but 1 entries are NaN or infinite"):
        mc.gradient_gram(net, params, X_bad, y)
    with pytest.raises(ValueError, match=r"argument 'y' must be finite, but 1 entries are NaN or infinite"):
        mc.gradient_gram(net, params, X, y_bad)


def test_non_finite_weights(problem):
    net, params, X, y = problem
    weights = list(params.weights)
    weights[1] = weights[1].copy()
    weights[1][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"argument 'weights\[1\]' must be finite"):
        mc.gradient_gram(net, weights, X, y)


def test_shapes_that_do_not_match_the_spec(problem):
    net, params, X, y = problem
    with pytest.raises(ValueError, match=r"argument 'X' must have input_dim = 4 columns"):
        mc.gradient_gram(net, params, X[:, :3], y)
    with pytest.raises(ValueError, match=r"argument 'y' must have one label per row of X \(N = 3\)"):
        mc.gradient_gram(net, params, X, y[:2])
    with pytest.raises(ValueError, match=r"argument 'weights\[0\]' must have shape \(5, 4\)"):
        mc.gradient_gram(net, [params.weights[0].T, *params.weights[1:]], X, y)
    with pytest.raises(ValueError, match=r"must hold beta \+ 1 = 3 weight matrices for depth 2, got 2"):
        mc.gradient_gram(net, params.weights[:2], X, y)
    with pytest.raises(ValueError, match=r"argument 'weights' has no biases, but the network has bias=True"):
        mc.gradient_gram(net.replace(bias=True), params, X, y)
    with pytest.raises(ValueError, match=r"leading \(trial\) axes of 'weights', 'X' and 'y' disagree: \[2, 3\]"):
        mc.gradient_gram(net, net.init(0, batch=3), np.stack([X, X]), y)
    with pytest.raises(TypeError, match=r"argument 'net' must be a montecarlo.MLP"):
        mc.gradient_gram("mlp", params, X, y)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(loss="hinge"), r"argument 'loss' must be one of 'square', 'logistic', 'output'; got 'hinge'"),
        (dict(backend="jax"), r"argument 'backend' must be one of "
         + re.escape(", ".join(repr(b) for b in mc.BACKENDS)) + "; got 'jax'"),
        (dict(dtype="float16"), r"argument 'dtype' must be 'float64' or 'float32', got 'float16'"),
        (dict(dtype="int64"), r"argument 'dtype' must be 'float64' or 'float32', got 'int64'"),
        (dict(backend="numba", device="cpu"), r"argument 'device' applies only to backend='torch'"),
        (dict(backend="torch", device="tpu"), r"argument 'device' must be 'cpu', 'cuda' or 'cuda:<index>'"),
    ],
)
def test_bad_options(problem, kwargs, message):
    net, params, X, y = problem
    with pytest.raises(ValueError, match=message):
        mc.gradient_gram(net, params, X, y, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_cuda_requested_but_absent(problem):
    net, params, X, y = problem
    with pytest.raises(ValueError, match=r"argument 'device' asks for 'cuda', but CUDA is not available"):
        mc.gradient_gram(net, params, X, y, backend="torch", device="cuda")


def test_bad_data_and_teacher_arguments():
    with pytest.raises(ValueError, match=r"argument 'd' must be an integer >= 2, got 1"):
        mc.sample_sphere(3, 1, 0)
    with pytest.raises(ValueError, match=r"argument 'v' must be a unit vector \(\|v\| = 1\)"):
        mc.LinearTeacher(v=np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match=r"argument 'labels' must be one of 'linear', 'tanh', 'random_sign'"):
        mc.make_labels("xor")


def _tiny_spec():
    return mc.SweepSpec.from_mapping({"width": 4, "depth": 1, "d": 3, "n_samples": 3, "trials": 8})


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(scheduler="bogus"), ValueError, r"argument 'scheduler' must be None"),
    (dict(scheduler=8786), ValueError, r"argument 'scheduler' must be None"),
    (dict(backend="cuda"), ValueError, r"argument 'backend' must be one of"),
])
def test_a_refused_sweep_leaves_no_store_behind(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        mc.run_sweep(_tiny_spec(), tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()
    wider = mc.SweepSpec.from_mapping({"width": 5, "depth": 1, "d": 3, "n_samples": 3, "trials": 8})
    assert len(mc.run_sweep(wider, tmp_path / "out", backend="numpy", progress=False).done()) == 1


def test_run_sweep_names_a_wrong_spec_or_folder(tmp_path):
    with pytest.raises(TypeError, match=r"argument 'out' must be a folder path"):
        mc.run_sweep(_tiny_spec(), None)
    with pytest.raises(TypeError, match=r"argument 'spec' must be a SweepSpec"):
        mc.run_sweep({"trials": 8}, tmp_path / "x")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"argument 'out': .* is not a folder"):
        mc.run_sweep(_tiny_spec(), tmp_path / "file")


def test_nan_quantiles_and_a_non_result_are_named():
    import theory

    with pytest.raises(ValueError, match=r"argument 'quantiles'"):
        mc.sample_confusion(mc.MLP(4, 5, 1), 4, 8, labels="linear", loss="square", seed=0, quantiles=[float("nan")])
    with pytest.raises(TypeError, match=r"argument 'result' must be a theory Result"):
        theory.scale_test("x")
