"""Datasets for training, all available offline: scikit-learn's digits, MNIST and CIFAR-10 from local files, sphere data.

Nothing is downloaded.  MNIST is read from the four IDX files of
http://yann.lecun.com/exdb/mnist/ (optionally gzipped) and CIFAR-10 from the
"python version" pickle batches (``data_batch_1..5``, ``test_batch``), in a
folder the user gives; a missing file gets a message saying which files to
put where.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import validation
from .data import sample_sphere

DATASETS = ("digits", "mnist", "cifar10", "sphere")
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


@dataclass(frozen=True)
class Dataset:
    """Images (``N x C x H x W`` float64, standardised with training statistics) and integer labels."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int

    @property
    def shape(self) -> tuple:
        return tuple(self.train_x.shape[1:])


def _standardise(train, test):
    mean, std = train.mean(), train.std()
    return (train - mean) / std, (test - mean) / std


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images, 10 classes), split at random by ``seed``."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = bunch.images.astype(np.float64)[:, None] / 16.0
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,))).permutation(len(images))
    n_test = int(round(test_fraction * len(images)))
    test, train = order[:n_test], order[n_test:]
    train_x, test_x = _standardise(images[train], images[test])
    return Dataset("digits", train_x, bunch.target[train].astype(np.int64), test_x, bunch.target[test].astype(np.int64), 10)


def _missing(name: str, directory: Path, files: list[str]) -> FileNotFoundError:
    listing = "\n  ".join(files)
    return FileNotFoundError(
        f"{name} needs these files in {directory} (nothing is downloaded at run time):\n  {listing}\n"
        f"get them from the dataset's official page and pass the folder with --data-dir (or data_dir=)"
    )


def _open_maybe_gzip(directory: Path, stem: str):
    for candidate in (directory / stem, directory / (stem + ".gz")):
        if candidate.exists():
            return gzip.open(candidate, "rb") if candidate.suffix == ".gz" else open(candidate, "rb")
    return None


def read_idx(handle) -> np.ndarray:
    """An IDX array (MNIST's format): magic ``0x0000 08 ndim`` (unsigned bytes), big-endian dimensions, data."""
    zero, dtype_code, ndim = struct.unpack(">HBB", handle.read(4))
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"not an unsigned-byte IDX file (magic {zero:#06x}, type {dtype_code:#04x})")
    shape = struct.unpack(f">{ndim}I", handle.read(4 * ndim))
    data = np.frombuffer(handle.read(), dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"IDX file holds {data.size} values, its header says {shape}")
    return data.reshape(shape)


def load_mnist(directory) -> Dataset:
    """MNIST from the four IDX files (optionally ``.gz``) in ``directory``."""
    directory = Path(directory)
    arrays = {}
    for key, stem in MNIST_FILES.items():
        handle = _open_maybe_gzip(directory, stem)
        if handle is None:
            raise _missing("MNIST", directory, [f"{s} (or {s}.gz)" for s in MNIST_FILES.values()])
        with handle:
            arrays[key] = read_idx(handle)
    train_x, test_x = _standardise(arrays["train_images"][:, None] / 255.0, arrays["test_images"][:, None] / 255.0)
    return Dataset("mnist", train_x, arrays["train_labels"].astype(np.int64), test_x,
                   arrays["test_labels"].astype(np.int64), 10)


def load_cifar10(directory) -> Dataset:
    """CIFAR-10 from its python pickle batches in ``directory`` (or its ``cifar-10-batches-py`` subfolder)."""
    directory = Path(directory)
    if (directory / "cifar-10-batches-py").is_dir():
        directory = directory / "cifar-10-batches-py"
    batches = {}
    for name in CIFAR_FILES:
        path = directory / name
        if not path.exists():
            raise _missing("CIFAR-10", directory, CIFAR_FILES)
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        batches[name] = (np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32),
                         np.asarray(batch[b"labels"], dtype=np.int64))
    train_x = np.concatenate([batches[n][0] for n in CIFAR_FILES[:-1]]) / 255.0
    train_y = np.concatenate([batches[n][1] for n in CIFAR_FILES[:-1]])
    train_x, test_x = _standardise(train_x, batches["test_batch"][0] / 255.0)
    return Dataset("cifar10", train_x, train_y, test_x, batches["test_batch"][1], 10)


def sphere_classification(n: int = 1000, d: int = 16, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """Points uniform on ``S^{d-1}`` labelled by the sign of a linear teacher (2 classes), as ``N x 1 x 1 x d``."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(8,)))
    X = sample_sphere(n, d, rng)
    teacher = sample_sphere(1, d, rng)[0]
    y = (X @ teacher > 0).astype(np.int64)
    n_test = int(round(test_fraction * n))
    return Dataset("sphere", X[n_test:, None, None, :], y[n_test:], X[:n_test, None, None, :], y[:n_test], 2)


def load_dataset(name: str, data_dir=None, seed: int = 0) -> Dataset:
    """``"digits"`` (bundled), ``"mnist"``/``"cifar10"`` (from ``data_dir``) or ``"sphere"`` (generated)."""
    validation.choice("data", name, DATASETS)
    if name == "digits":
        return load_digits(seed)
    if name == "sphere":
        return sphere_classification(seed=seed)
    if data_dir is None:
        files = list(MNIST_FILES.values()) if name == "mnist" else CIFAR_FILES
        raise _missing(name.upper() if name == "mnist" else "CIFAR-10", Path("<data_dir>"), files)
    return load_mnist(data_dir) if name == "mnist" else load_cifar10(data_dir)
