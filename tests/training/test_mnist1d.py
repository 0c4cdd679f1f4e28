"""MNIST-1D (load_dataset("mnist1d")): the package's own generator, standardised; the global generators untouched."""

import functools
import random
import sys

import numpy as np
import pytest
import torch

import montecarlo as mc
from montecarlo.testing import SETTING_DEFAULTS, TRAIN_DEFAULTS

mnist1d_data = pytest.importorskip("mnist1d.data")
MAKE_DATASET = mnist1d_data.make_dataset  # the package's own, whatever a test patches in


def _generated(seed):
    """The package's generator called directly, as its documentation shows (the global generators saved here)."""
    args = mnist1d_data.get_dataset_args()
    args.seed = seed
    state, python_state = np.random.get_state(), random.getstate()
    try:
        return MAKE_DATASET(args)
    finally:
        np.random.set_state(state)
        random.setstate(python_state)


def test_the_dataset_is_the_generators_standardised_with_training_statistics():
    data = mc.load_dataset("mnist1d", seed=0)
    raw = _generated(0)
    assert data.name == "mnist1d" and data.num_classes == 10 and data.shape == (1, 1, 40)
    assert data.train_x.shape == (4000, 1, 1, 40) and data.test_x.shape == (1000, 1, 1, 40)
    np.testing.assert_array_equal(data.train_y, raw["y"])
    np.testing.assert_array_equal(data.test_y, raw["y_test"])
    mean, std = raw["x"].mean(), raw["x"].std()
    np.testing.assert_allclose(data.train_x[:, 0, 0], (raw["x"] - mean) / std, rtol=0, atol=1e-12)
    np.testing.assert_allclose(data.test_x[:, 0, 0], (raw["x_test"] - mean) / std, rtol=0, atol=1e-12)
    assert set(np.unique(data.train_y)) == set(range(10)) and data.train_y.dtype == np.int64
    assert abs(data.train_x.mean()) < 1e-12 and data.train_x.std() == pytest.approx(1, abs=1e-12)


def test_the_seed_is_the_datasets_seed_and_determines_it():
    first, again, other = (mc.load_dataset("mnist1d", seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(first.train_x, again.train_x)
    assert not np.array_equal(first.train_x, other.train_x)
    np.testing.assert_array_equal(other.train_y, _generated(2)["y"])
    first.train_x[:] = 0  # a copy each time: the kept arrays are not the caller's
    assert mc.load_dataset("mnist1d", seed=1).train_x.std() == pytest.approx(1)


def test_the_global_random_generators_are_left_as_they_were():
    np.random.seed(123)
    random.seed(456)
    expected = np.random.get_state()
    python_expected = random.getstate()
    mc.load_dataset("mnist1d", seed=77)  # a seed no other test generates: make_dataset runs here
    state = np.random.get_state()
    assert state[0] == expected[0] and np.array_equal(state[1], expected[1]) and state[2:] == expected[2:]
    assert random.getstate() == python_expected
    # the next draws are those of a program that never loaded it
    draws = np.random.random(3), random.random()
    np.random.seed(123)
    random.seed(456)
    assert np.array_equal(draws[0], np.random.random(3)) and draws[1] == random.random()


def test_the_cnn_is_one_dimensional_on_it_and_trains():
    model = mc.build_model("cnn", 10, 1, (1, 1, 40), 10, base=4, seed=0, dtype=torch.float32)
    kernels = {m.kernel_size for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)}
    assert kernels == {(1, 3)}
    assert {m.kernel_size for m in mc.build_model("cnn", 10, 1, (1, 8, 8), 10, base=4).modules()
            if isinstance(m, torch.nn.Conv2d)} == {(3, 3)}
    # He's fan-in counts the 3 inputs a unit sees (64 channels x 3 taps), not the 9 of a 3x3 kernel: variance 2 / 192
    wide = mc.build_model("cnn", 10, 1, (1, 1, 40), 10, base=64, seed=1)
    weights = wide.blocks[0].conv1.weight  # 64 x 64 x 1 x 3 (12288 draws: the sample variance within 4%)
    assert weights.shape == (64, 64, 1, 3) and weights.var().item() == pytest.approx(2 / 192, rel=0.04)
    settings = dict(data="mnist1d", epochs=1, batch_size=64, track_points=2, probe_size=4, pairs=2, pair_batch=16)
    run = dict(model="cnn", depth=10, width=1, base=4, lr=0.05, seed=0)
    frame = mc.train_run({**TRAIN_DEFAULTS, **run}, {**SETTING_DEFAULTS, **settings},
                         progress=False)
    assert list(frame["epoch"]) == [0, 1] and frame["train_loss"].iloc[-1] < frame["train_loss"].iloc[0]


@functools.lru_cache(maxsize=1)
def _seed_zero():
    return _generated(0)


def _patched(monkeypatch, change):
    """``make_dataset`` replaced by one returning ``change`` of seed 0's output (generated once for these tests)."""
    def make_dataset(args, **kwargs):
        return change(_seed_zero())

    monkeypatch.setattr(mnist1d_data, "make_dataset", make_dataset)


@pytest.mark.parametrize("seed, change, match", [
    (1001, lambda raw: {**raw, "y": raw["y"] + 1},
     r"'y' must be integers 0\.\.9 \(10 classes\), got int64 values from 1 to 10"),
    (1002, lambda raw: {**raw, "x": np.where(np.arange(40) == 3, np.nan, raw["x"])}, "'x' holds 4000 values that are "
                                                                                    "not finite"),
    (1003, lambda raw: {**raw, "y_test": raw["y_test"][:-1]}, "'y_test' must hold one label per sequence of 'x_test' "
                                                               r"\(1000\)"),
    (1004, lambda raw: {**raw, "x": raw["x"][:, :, None]}, r"'x' must be real sequences of shape \(n, length\)"),
    (1005, lambda raw: {**raw, "x_test": raw["x_test"][:, :20]}, "test sequences of length 20, training sequences of "
                                                                  "length 40"),
    (1006, lambda raw: {k: v for k, v in raw.items() if k != "y"}, "returned no 'y' array"),
    (1007, lambda raw: {**raw, "y": raw["y"].astype(float)}, "'y' must be integers 0..9"),
])
def test_output_that_is_not_a_dataset_is_refused_naming_the_generator(monkeypatch, seed, change, match):
    _patched(monkeypatch, change)
    with pytest.raises(ValueError, match=match) as caught:
        mc.load_dataset("mnist1d", seed=seed)
    assert str(caught.value).startswith(f"mnist1d.data.make_dataset(seed={seed}): ")


def test_constant_sequences_cannot_be_standardised(monkeypatch):
    _patched(monkeypatch, lambda raw: {**raw, "x": np.ones_like(raw["x"])})
    with pytest.raises(ValueError, match=r"mnist1d.data.make_dataset\(seed=1008\): the training pixels cannot be "
                                         "standardised"):
        mc.load_dataset("mnist1d", seed=1008)


@pytest.mark.parametrize("seed, error, match", [
    (-1, ValueError, "argument 'seed' must be an integer >= 0, got -1"),
    (2**32, ValueError, r"argument 'seed' must be an integer from 0 to 2\*\*32 - 1 for 'mnist1d'"),
    (1.5, TypeError, "argument 'seed' must be an integer >= 0"),
    (True, TypeError, "argument 'seed' must be an integer >= 0"),
])
def test_bad_seeds_are_refused(seed, error, match):
    with pytest.raises(error, match=match):
        mc.load_dataset("mnist1d", seed=seed)


def test_without_the_package_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)  # import mnist1d.data now raises ImportError
    with pytest.raises(ImportError, match=r"pip install mnist1d==0\.0\.2\.post1"):
        mc.load_dataset("mnist1d", seed=1009)
