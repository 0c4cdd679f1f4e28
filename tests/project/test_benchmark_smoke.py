"""Smoke version of benchmarks/gram_methods.py: its reference methods compute the same Gram, and it runs end to end."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import montecarlo as mc

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import gram_methods  # noqa: E402


@pytest.fixture
def problem():
    net = gram_methods.network(12, 2, 6)
    rng = np.random.default_rng(0)
    params = net.init(rng)
    X = mc.sample_sphere(5, 6, rng)
    return net, params, X, mc.TanhTeacher()(X, rng)


def test_vmap_reference_is_the_same_gram(problem):
    """The benchmark compares like with like: vmap(grad) + J J^T equals the factorised Gram."""
    net, params, X, y = problem
    expected = mc.gradient_gram(net, params, X, y, backend="numpy")
    got = gram_methods.vmap_gram([torch.from_numpy(w) for w in params.weights], torch.from_numpy(X), torch.from_numpy(y))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-14)


def test_backpack_reference_is_the_same_gram(problem):
    pytest.importorskip("backpack")
    net, params, X, y = problem
    expected = mc.gradient_gram(net, params, X, y, backend="numpy")
    got = gram_methods.backpack_gram([torch.from_numpy(w) for w in params.weights], torch.from_numpy(X),
                                     torch.from_numpy(y))
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-10, atol=1e-14)


def test_lazy_flop_count_is_below_dense_where_lazy_applies():
    from montecarlo.testing import DENSE, lazy_layers

    for N, width, depth, d in gram_methods.CONFIGS:
        config = (N, width, depth, d)
        lazy, dense = gram_methods.flops("lazy_numba", config), gram_methods.flops("dense_numba", config)
        if all(mode == DENSE for mode in lazy_layers(gram_methods.network(width, depth, d), N)):
            assert lazy == dense
        else:
            assert lazy < dense
        assert dense < gram_methods.flops("vmap_grad", config)


def test_benchmark_runs_end_to_end(tmp_path, monkeypatch, capsys):
    """The script's ``main`` with its command line, in this process (the module is imported above already)."""
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / "gram_methods.py"), "--smoke", "--out", str(tmp_path)])
    gram_methods.main()
    assert "trials/s" in capsys.readouterr().out
    result = json.loads((tmp_path / "gram_methods.json").read_text())
    methods = {row["method"] for row in result["rows"]}
    assert methods == set(gram_methods.METHODS)
    assert all(row["trials_per_second"] > 0 for row in result["rows"] if row["status"] == "ok")
    assert "| (4, 12, 2, 6) | lazy_numba |" in (tmp_path / "gram_methods.md").read_text()


@pytest.mark.parametrize("method, config", [("lazy_numba", (4, 12, 2, 6)), ("dense_numba", (4, 12, 2, 6)),
                                            ("lazy_numba", (8, 64, 3, 16))])
def test_the_random_number_floor_counts_what_a_trial_draws(method, config):
    """normals/trial equals the count of normals the drawing code asks for (the rare-event engine's replay count)."""
    N, width, depth, d = config
    trial = mc.MLPTrial(gram_methods.network(width, depth, d), N, labels="tanh", loss="square",
                        method=method.split("_")[0], backend="numpy")
    assert gram_methods.normals_per_trial(method, config) == trial.normals_per_trial()
