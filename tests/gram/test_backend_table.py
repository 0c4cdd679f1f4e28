"""The Gram backends are one table: a new backend is one file and one line, and every entry point takes it.

The toy backend "numpy_again" is a new file (written into a temporary folder
on ``sys.path``) whose ``layer_blocks`` delegates to the numpy backend, and one
line added to ``GRAM_BACKENDS`` at test time; ``gradient_gram``,
``sample_confusion`` and the command line then accept it with no other edit,
and give exactly the numpy backend's numbers.  The registration is undone at
the end of each test.
"""

import re
import sys

import numpy as np
import pytest
import torch

import montecarlo as mc
from montecarlo.__main__ import main, parser
from montecarlo.testing import GRAM_BACKENDS, Backend, backend_names, resolve_backend

TOY_FILE = '''"""A toy backend: the numpy backend under another name, counting its calls."""
from montecarlo.testing import numpy_backend

calls = []


def layer_blocks(net, layers, biases, X, y, loss, *, dtype, device=None, per_layer=True):
    calls.append(len(layers))
    return numpy_backend.layer_blocks(net, layers, biases, X, y, loss, dtype=dtype, device=device,
                                      per_layer=per_layer)
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """Register "numpy_again" (one new file + one table line); monkeypatch undoes both after the test."""
    (tmp_path / "numpy_again_backend.py").write_text(TOY_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "numpy_again_backend", raising=False)
    monkeypatch.setitem(GRAM_BACKENDS, "numpy_again", Backend("numpy_again_backend"))  # the one table line
    yield __import__("numpy_again_backend")
    sys.modules.pop("numpy_again_backend", None)


def _problem():
    net = mc.MLP(5, 7, 2, activation="tanh", bias=True, bias_std=0.3)
    rng = np.random.default_rng(0)
    params = net.init(rng)
    X = mc.sample_sphere(6, 5, rng)
    return net, params, X, mc.TanhTeacher()(X, rng)


def test_the_public_list_and_the_command_line_come_from_the_table(capsys):
    assert mc.BACKENDS == ("auto", *GRAM_BACKENDS) == backend_names()
    for command in ("sweep", "tail"):
        with pytest.raises(SystemExit):
            parser().parse_args([command, "--help"])
        (choices,) = re.findall(r"^ +--backend \{([^}]*)\}", capsys.readouterr().out, re.MULTILINE)
        assert tuple(choices.split(",")) == backend_names()


def test_gradient_gram_takes_a_new_backend(toy):
    net, params, X, y = _problem()
    G, blocks = mc.gradient_gram(net, params, X, y, backend="numpy_again", per_layer=True)
    G_ref, blocks_ref = mc.gradient_gram(net, params, X, y, backend="numpy", per_layer=True)
    assert toy.calls == [net.n_layers]
    np.testing.assert_array_equal(G, G_ref)
    np.testing.assert_array_equal(blocks, blocks_ref)
    with pytest.raises(ValueError, match=r"argument 'device' applies only to backend='torch'"):
        mc.gradient_gram(net, params, X, y, backend="numpy_again", device="cpu")


def test_sample_confusion_and_sample_grams_take_a_new_backend(toy):
    net = mc.MLP(6, 12, 2, activation="relu", init="orthogonal")
    args = dict(labels="tanh", loss="logistic", seed=3)
    sample = mc.sample_confusion(net, 4, 24, backend="numpy_again", **args)
    reference = mc.sample_confusion(net, 4, 24, backend="numpy", **args)
    assert sample.meta["backend"] == "numpy_again" and toy.calls
    for key, values in reference.stats.items():
        np.testing.assert_array_equal(sample.stats[key], values, err_msg=key)
    grams = mc.sample_grams(net, 4, 8, backend="numpy_again", **args)
    np.testing.assert_array_equal(grams.G, mc.sample_grams(net, 4, 8, backend="numpy", **args).G)
    with pytest.raises(ValueError, match=r"random_source='torch' needs backend='torch' \(or 'auto'\)"):
        mc.sample_confusion(net, 4, 8, backend="numpy_again", random_source="torch", **args)


def test_the_command_line_takes_a_new_backend(toy, tmp_path, capsys):
    argv = ["tail", "--width", "8", "--depth", "1", "--d", "4", "--n-samples", "3", "--activation", "tanh",
            "--statistic", "eta_star", "--threshold", "1", "--population", "100", "--repeats", "2", "--seed", "5"]
    estimate = re.compile(r"Pr\[eta_star > 1\] = .* evaluations")  # estimate, intervals, CoV; not the seconds
    assert main([*argv, "--backend", "numpy_again", "--out", str(tmp_path / "toy")]) == 0
    toy_line = estimate.search(capsys.readouterr().out).group(0)
    assert toy.calls
    assert main([*argv, "--backend", "numpy", "--out", str(tmp_path / "numpy")]) == 0
    assert estimate.search(capsys.readouterr().out).group(0) == toy_line


def test_a_sweep_takes_a_new_backend(toy, tmp_path):
    """run_sweep read a backend tuple frozen at import: a backend registered later was refused by name."""
    spec = mc.SweepSpec.from_mapping({"width": [8], "depth": 1, "d": 4, "n_samples": 3, "activation": "tanh",
                                      "trials": 16, "seed": 2})
    toy_store = mc.run_sweep(spec, tmp_path / "toy", backend="numpy_again", progress=False)
    assert toy.calls
    numpy_store = mc.run_sweep(spec, tmp_path / "numpy", backend="numpy", progress=False)
    (key,) = toy_store.done()
    np.testing.assert_array_equal(toy_store.read_point(key)[0]["eta_star"], numpy_store.read_point(key)[0]["eta_star"])


def test_the_registration_is_undone():
    assert "numpy_again" not in GRAM_BACKENDS and "numpy_again_backend" not in sys.modules
    with pytest.raises(ValueError, match=r"argument 'backend' must be one of .*; got 'numpy_again'"):
        resolve_backend("numpy_again")


def test_one_auto_rule_everywhere():
    """"auto" is numba on the CPU, torch for a torch random source or a CUDA device, in every entry point."""
    assert resolve_backend("auto") == ("numba", None)
    assert resolve_backend("auto", "cpu") == ("numba", None)
    assert resolve_backend("auto", None, "torch") == ("torch", None)
    net = mc.MLP(4, 6, 1)
    args = dict(labels="linear", loss="square", seed=0)
    assert mc.sample_confusion(net, 3, 8, device="cpu", **args).meta["backend"] == "numba"
    assert mc.sample_confusion(net, 3, 8, **args).meta["backend"] == "numba"
    assert mc.sample_confusion(net, 3, 8, random_source="torch", **args).meta["backend"] == "torch"
    if torch.cuda.is_available():
        assert resolve_backend("auto", "cuda")[0] == "torch"
        assert mc.sample_confusion(net, 3, 8, device="cuda", **args).meta["backend"] == "torch"
