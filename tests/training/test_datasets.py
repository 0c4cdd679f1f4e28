"""Datasets: tiny MNIST IDX files and CIFAR-10 pickle batches written here, in their real formats; digits offline."""

import gzip
import pickle
import struct

import numpy as np
import pytest

from montecarlo import load_dataset
from montecarlo.testing import load_cifar10, load_digits, load_mnist, read_idx


def write_idx(path, array, compress=False):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


def test_mnist_idx_files_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28))
    labels = rng.integers(0, 10, size=7)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels, compress=True)  # gzipped works too
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images[:3])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels[:3])
    data = load_mnist(tmp_path)
    assert data.train_x.shape == (7, 1, 28, 28) and data.test_x.shape == (3, 1, 28, 28)
    np.testing.assert_array_equal(data.train_y, labels)
    # standardised with the training statistics: an affine map of the raw pixels
    raw = images[:, None] / 255.0
    np.testing.assert_allclose(data.train_x, (raw - raw.mean()) / raw.std(), rtol=1e-12)
    with open(tmp_path / "train-images-idx3-ubyte", "rb") as handle:
        np.testing.assert_array_equal(read_idx(handle), images)


def test_cifar10_pickle_batches(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(2, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=2).tolist()
        batches[name] = (data, labels)
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, handle)
    data = load_cifar10(tmp_path)  # finds the cifar-10-batches-py subfolder
    assert data.train_x.shape == (10, 3, 32, 32) and data.test_x.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(data.train_y, sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), []))
    # the first image's red channel is the first 1024 bytes of its row (CIFAR's channel-major layout)
    raw = batches["data_batch_1"][0][0, :1024].reshape(32, 32) / 255.0
    all_raw = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)]) / 255.0
    np.testing.assert_allclose(data.train_x[0, 0], (raw - all_raw.mean()) / all_raw.std(), rtol=1e-12)


def test_missing_files_say_which_files_to_put_where(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)MNIST needs these files in .*train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"(?s)CIFAR-10 needs these files in .*data_batch_1.*test_batch"):
        load_cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nothing is downloaded"):
        load_dataset("mnist")


def test_digits_are_bundled_and_split_reproducibly():
    a, b = load_digits(0), load_digits(0)
    assert a.train_x.shape[1:] == (1, 8, 8) and len(a.train_x) + len(a.test_x) == 1797
    np.testing.assert_array_equal(a.train_y, b.train_y)
    assert abs(a.train_x.mean()) < 1e-12 and abs(a.train_x.std() - 1) < 1e-12


def test_sphere_data_are_labelled_by_a_linear_teacher():
    data = load_dataset("sphere", seed=3)
    X = data.train_x.reshape(len(data.train_x), -1)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-12)
    # a separating hyperplane through the origin exists: the linear program s_i <w, x_i> >= 1 is feasible
    from scipy.optimize import linprog

    signs = 2.0 * data.train_y - 1
    found = linprog(np.zeros(X.shape[1]), A_ub=-(signs[:, None] * X), b_ub=-np.ones(len(X)),
                    bounds=[(None, None)] * X.shape[1])
    assert found.status == 0
    assert 0.3 < data.train_y.mean() < 0.7
