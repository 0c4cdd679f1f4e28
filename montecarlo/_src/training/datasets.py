"""Datasets for training, all available offline: scikit-learn's digits, MNIST-1D (generated), MNIST and CIFAR-10
from local files, sphere data.

Nothing is downloaded.  MNIST-1D (Greydanus 2020, the ``mnist1d`` package) is
generated procedurally by ``mnist1d.data.make_dataset`` with the package's
default arguments (``get_dataset_args()``: 5000 sequences of 40 points, 4000
for training) and the dataset's ``seed`` set to ours; ``get_dataset``, which
downloads or unpickles a cached file, is never called.  ``make_dataset`` seeds
numpy's and Python's global random generators; :func:`load_mnist1d` restores
both afterwards, so the rest of a program's randomness is untouched.  MNIST is read from the four IDX files of
http://yann.lecun.com/exdb/mnist/ (optionally gzipped) and CIFAR-10 from the
"python version" pickle batches (``data_batch_1..5``, ``test_batch``), in a
folder the user gives; a missing file gets a message saying which files to
put where.

The MNIST files are checked as the CIFAR batches are, each refusal naming
the file: an unsigned-byte IDX header whose dimensions match the bytes that
follow (a truncated or extended file is refused, not reshaped), images of
shape ``(n, rows, cols)`` with as many labels as images, labels 0..9, test
images of the training images' size.  For every dataset the standardised
pixels must be finite (pixels that are all one value cannot be
standardised).

The CIFAR-10 batches are pickles from the user's disk, and unpickling runs
whatever callables the file names.  They are therefore read with
:class:`CifarUnpickler`, which admits only the globals that a batch of dicts,
lists, bytes, ints and uint8 numpy arrays needs (``CIFAR_GLOBALS``) and
refuses anything else, before any of it is called; the content is then checked
(keys ``b'data'`` and ``b'labels'``, uint8 data of shape ``(n, 3072)``, labels
0..9, as many labels as images), and every refusal names the file.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
# numpy's own array reconstructors, which a pickled ndarray names (numpy >= 2 is required, so _core exists)
from numpy._core.multiarray import _reconstruct
from numpy._core.numeric import _frombuffer

from .. import validation
from ..draw.data import sample_sphere

DATASETS = ("digits", "mnist1d", "mnist", "cifar10", "sphere")
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


def _standardise(train, test, where="the training images"):
    """Both sets standardised with the training set's mean and deviation; refused (naming ``where``) unless finite."""
    mean, std = train.mean(), train.std()
    # one value everywhere: the deviation is 0, or a rounding residue that would blow the pixels up to noise
    if not (np.isfinite(mean) and np.isfinite(std) and std > 0) or train.min() == train.max():
        raise ValueError(f"{where}: the training pixels cannot be standardised (mean {mean:g}, standard deviation "
                         f"{std:g}): every pixel has the same value, or some are not finite")
    train, test = (train - mean) / std, (test - mean) / std
    if not (np.isfinite(train).all() and np.isfinite(test).all()):
        raise ValueError(f"{where}: some standardised pixels are not finite")
    return train, test


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


#: The generator of MNIST-1D, as its errors name it.
MNIST1D_GENERATOR = "mnist1d.data.make_dataset"
#: The MNIST-1D arrays generated in this process, by seed (generating takes about a second; copies are handed out).
_MNIST1D_MADE: dict[int, dict] = {}
_MNIST1D_KEPT = 4


def _make_mnist1d(seed: int) -> dict:
    """``make_dataset`` of the package's default arguments with ``seed``, the global generators restored after it."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as error:
        raise ImportError(f"the 'mnist1d' dataset needs the mnist1d package (pip install mnist1d==0.0.2.post1): "
                          f"{error}") from None
    args = get_dataset_args()
    args.seed = seed
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        return make_dataset(args)
    finally:  # make_dataset seeds numpy's and Python's global generators (mnist1d.utils.set_seed)
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def _mnist1d_part(raw, key: str, seed: int) -> np.ndarray:
    where = f"{MNIST1D_GENERATOR}(seed={seed})"
    if not isinstance(raw, dict) or key not in raw:
        got = f"a dict with keys {', '.join(map(repr, raw))}" if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(f"{where}: returned no {key!r} array (a dict with 'x', 'y', 'x_test' and 'y_test' was "
                         f"expected, got {got})")
    return np.asarray(raw[key])


def load_mnist1d(seed: int = 0) -> Dataset:
    """MNIST-1D generated by ``mnist1d.data.make_dataset`` (the package's default arguments, dataset seed ``seed``).

    Parameters
    ----------
    seed : int
        The dataset's seed (``args.seed`` of ``get_dataset_args()``), an
        integer from 0 to 2**32 - 1 (numpy's global seed range).

    Returns
    -------
    Dataset
        Sequences as ``N x 1 x 1 x L`` (4000 training and 1000 test
        sequences of 40 points for the default arguments) standardised with
        the training statistics, labels 0..9.

    Raises
    ------
    ImportError
        The ``mnist1d`` package is not installed.
    ValueError
        ``seed`` out of range, or the generator's output is not a dataset:
        ``x``/``x_test`` not of shape ``(n, L)`` with ``n >= 1``, labels not
        one per sequence or outside 0..9, values that are not finite; each
        refusal names the generator and the seed.

    Notes
    -----
    ``make_dataset`` seeds numpy's and Python's global generators; their
    states are saved before and restored after it.  The arrays are kept per
    seed in this process (a copy is returned each time).
    """
    seed = validation.integer("seed", seed, minimum=0)
    if seed >= 2**32:
        raise ValueError(f"argument 'seed' must be an integer from 0 to 2**32 - 1 for 'mnist1d' (the range of "
                         f"numpy's global seed, which its generator sets), got {seed}")
    if seed not in _MNIST1D_MADE:
        raw = _make_mnist1d(seed)
        where = f"{MNIST1D_GENERATOR}(seed={seed})"
        parts = {key: _mnist1d_part(raw, key, seed) for key in ("x", "y", "x_test", "y_test")}
        for x, y in (("x", "y"), ("x_test", "y_test")):
            xs, ys = parts[x], parts[y]
            if xs.ndim != 2 or xs.shape[0] == 0 or xs.shape[1] == 0 or xs.dtype.kind not in "fiu":
                raise ValueError(f"{where}: {x!r} must be real sequences of shape (n, length) with n >= 1, got "
                                 f"{xs.dtype} values of shape {xs.shape}")
            if not np.isfinite(xs).all():
                raise ValueError(f"{where}: {x!r} holds {int((~np.isfinite(xs)).sum())} values that are not finite")
            if ys.ndim != 1 or len(ys) != len(xs):
                raise ValueError(f"{where}: {y!r} must hold one label per sequence of {x!r} ({len(xs)}), got shape "
                                 f"{ys.shape}")
            if ys.dtype.kind not in "iu" or ys.min() < 0 or ys.max() > 9:
                raise ValueError(f"{where}: {y!r} must be integers 0..9 (10 classes), got {ys.dtype} values from "
                                 f"{ys.min()} to {ys.max()}")
        if parts["x_test"].shape[1] != parts["x"].shape[1]:
            raise ValueError(f"{where}: test sequences of length {parts['x_test'].shape[1]}, training sequences of "
                             f"length {parts['x'].shape[1]}")
        _MNIST1D_MADE[seed] = parts
        while len(_MNIST1D_MADE) > _MNIST1D_KEPT:
            _MNIST1D_MADE.pop(next(iter(_MNIST1D_MADE)))
    parts = _MNIST1D_MADE[seed]
    train_x, test_x = _standardise(parts["x"].astype(np.float64)[:, None, None, :],
                                   parts["x_test"].astype(np.float64)[:, None, None, :],
                                   f"{MNIST1D_GENERATOR}(seed={seed})")
    return Dataset("mnist1d", train_x, parts["y"].astype(np.int64), test_x, parts["y_test"].astype(np.int64), 10)


def _missing(name: str, directory: Path, files: list[str]) -> FileNotFoundError:
    listing = "\n  ".join(files)
    absent = "" if str(directory) == "<data_dir>" or directory.is_dir() else " (that folder does not exist)"
    return FileNotFoundError(
        f"{name} needs these files in {directory}{absent} (nothing is downloaded at run time):\n  {listing}\n"
        f"get them from the dataset's official page and pass the folder with --data-dir (or data_dir=)"
    )


def _find_maybe_gzip(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / (stem + ".gz")):
        if candidate.exists():
            return candidate
    return None


def read_idx(handle, path=None) -> np.ndarray:
    """An IDX array (MNIST's format): magic ``0x0000 08 ndim`` (unsigned bytes), big-endian dimensions, data.

    Parameters
    ----------
    handle : binary file
        The open file (plain or gzip).
    path : path-like, optional
        Its name in error messages (default: the handle's ``name``).

    Returns
    -------
    ndarray of uint8
        Of the shape the header gives.

    Raises
    ------
    ValueError
        Naming the file: not an unsigned-byte IDX file, a header cut short, or
        data bytes that do not match the header's dimensions.
    """
    where = path if path is not None else getattr(handle, "name", "IDX data")
    header = handle.read(4)
    if len(header) < 4:
        raise ValueError(f"{where}: not an IDX file ({len(header)} bytes; an IDX header has at least 4)")
    zero, dtype_code, ndim = struct.unpack(">HBB", header)
    if zero != 0 or dtype_code != 0x08 or ndim == 0:
        raise ValueError(f"{where}: not an unsigned-byte IDX file (magic {zero:#06x}, type {dtype_code:#04x}, "
                         f"{ndim} dimensions; MNIST's files have magic 0x0000, type 0x08 and 1 to 3 dimensions)")
    dims = handle.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"{where}: IDX header cut short ({4 + len(dims)} bytes; {ndim} dimensions need "
                         f"{4 + 4 * ndim})")
    shape = struct.unpack(f">{ndim}I", dims)
    data = np.frombuffer(handle.read(), dtype=np.uint8)
    expected = math.prod(shape)
    if data.size != expected:
        raise ValueError(f"{where}: its IDX header says shape {shape}, {expected} bytes of data after the "
                         f"{4 + 4 * ndim}-byte header, but {data.size} follow (truncated, extended or damaged)")
    return data.reshape(shape)


def _read_idx_file(path: Path) -> np.ndarray:
    """:func:`read_idx` of a file (gzipped if it ends in ``.gz``), a damaged compression refused naming it."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            return read_idx(handle, path)
    except (OSError, EOFError, zlib.error) as error:  # a damaged gzip stream fails inside the reads
        raise ValueError(f"{path}: not a readable IDX file ({type(error).__name__}: {error})") from None


def load_mnist(directory) -> Dataset:
    """MNIST from the four IDX files (optionally ``.gz``) in ``directory``.

    Parameters
    ----------
    directory : path-like
        The folder holding ``MNIST_FILES`` (each optionally gzipped).

    Returns
    -------
    Dataset
        The images standardised with the training statistics, labels 0..9.

    Raises
    ------
    FileNotFoundError
        A file is missing (the message lists the files to put there).
    ValueError
        Naming the file: not an unsigned-byte IDX file or one whose size does
        not match its header; images not of shape ``(n, rows, cols)`` with
        ``n >= 1``; labels not one per image or outside 0..9; test images of
        another size than the training images; pixels that cannot be
        standardised (all one value).
    """
    directory = Path(directory)
    paths = {key: _find_maybe_gzip(directory, stem) for key, stem in MNIST_FILES.items()}
    if any(path is None for path in paths.values()):
        raise _missing("MNIST", directory, [f"{s} (or {s}.gz)" for s in MNIST_FILES.values()])
    arrays = {key: _read_idx_file(path) for key, path in paths.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        image_path, label_path = paths[f"{part}_images"], paths[f"{part}_labels"]
        if images.ndim != 3 or images.shape[0] == 0:
            raise ValueError(f"{image_path}: MNIST images must have shape (n, rows, cols) with n >= 1, got "
                             f"{images.shape}")
        if labels.ndim != 1:
            raise ValueError(f"{label_path}: MNIST labels must have shape (n,), got {labels.shape}")
        if len(labels) != len(images):
            raise ValueError(f"{label_path}: {len(labels)} labels, but {image_path} holds {len(images)} images "
                             f"(one label per image)")
        if labels.max() > 9:
            raise ValueError(f"{label_path}: labels must be integers 0..9 (10 classes), got values from "
                             f"{labels.min()} to {labels.max()}")
    if arrays["test_images"].shape[1:] != arrays["train_images"].shape[1:]:
        raise ValueError(f"{paths['test_images']}: images of {arrays['test_images'].shape[1:]} pixels, but the "
                         f"training images ({paths['train_images']}) are {arrays['train_images'].shape[1:]}")
    train_x, test_x = _standardise(arrays["train_images"][:, None] / 255.0, arrays["test_images"][:, None] / 255.0,
                                   str(paths["train_images"]))
    return Dataset("mnist", train_x, arrays["train_labels"].astype(np.int64), test_x,
                   arrays["test_labels"].astype(np.int64), 10)


def _latin1_bytes(text, encoding):
    """``_codecs.encode`` as a pickle of protocol 2 written by Python 3 uses it (bytes as latin-1 text), and only so."""
    if not isinstance(text, str) or encoding != "latin1":
        raise ValueError(f"_codecs.encode is admitted only as encode(str, 'latin1'), got encoding {encoding!r}")
    return text.encode("latin1")


#: The only globals a CIFAR-10 batch may name, and what each resolves to.  The
#: original files (Python 2 cPickle, protocol 2) name the legacy ``numpy.core``
#: paths; numpy 2 writes ``numpy._core``; protocol 5 writes arrays through
#: ``_frombuffer``; protocol 2 written by Python 3 spells bytes as
#: ``_codecs.encode(text, 'latin1')``.  All of them only build arrays or bytes.
CIFAR_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _latin1_bytes,
}


class UnsafePickle(ValueError):
    """A pickle names a global outside the admitted ones (it could run code when loaded)."""


class CifarUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of ``CIFAR_GLOBALS`` and refuses every other one.

    Parameters
    ----------
    handle : binary file
        The open batch file.
    path : path-like
        Its name, for the error messages.
    """

    def __init__(self, handle, path):
        # encoding="bytes": the original batches are Python 2 pickles whose str keys must stay bytes (b'data')
        super().__init__(handle, encoding="bytes")
        self.path = path

    def find_class(self, module, name):
        # Called for every global the pickle names (GLOBAL, STACK_GLOBAL and the extension registry),
        # before anything is called: refusing here means the file's code never runs.
        try:
            return CIFAR_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickle(
                f"{self.path} is not a plain CIFAR-10 batch: it names the global {module}.{name}, which could run "
                f"code when loaded, so it was not loaded; a CIFAR-10 batch holds only dicts, lists, bytes, ints "
                f"and numpy arrays (admitted globals: {', '.join(f'{m}.{n}' for m, n in CIFAR_GLOBALS)})"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickle(f"{self.path} is not a plain CIFAR-10 batch: it uses persistent ids, which it never holds")


def read_cifar_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 "python version" batch, unpickled safely and checked.

    Parameters
    ----------
    path : path-like
        A batch file (``data_batch_1`` ... ``test_batch``).

    Returns
    -------
    images : ndarray of uint8, shape ``(n, 3, 32, 32)``
        The images, channel-major as CIFAR stores them.
    labels : ndarray of int64, shape ``(n,)``
        Their classes, 0..9.

    Raises
    ------
    ValueError
        Naming ``path``: the pickle names a global outside ``CIFAR_GLOBALS``
        (nothing it names is called), it is damaged, or its content is not
        a CIFAR-10 batch.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        try:
            batch = CifarUnpickler(handle, path).load()
        except UnsafePickle:
            raise
        except Exception as error:  # a damaged or foreign file can fail in many ways inside the unpickler
            raise ValueError(f"{path} is not a readable CIFAR-10 python batch ({type(error).__name__}: {error})") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path} is not a CIFAR-10 batch: it holds a {type(batch).__name__}, not a dict "
                         f"with keys b'data' and b'labels'")
    missing = [repr(k) for k in (b"data", b"labels") if k not in batch]
    if missing:
        raise ValueError(f"{path} is not a CIFAR-10 batch: it lacks the key(s) {', '.join(missing)} "
                         f"(it has {', '.join(map(repr, list(batch)[:8]))})")
    data = batch[b"data"]
    # no casting: a float or int64 array here is not CIFAR's data, and casting it would hide that
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 \
            or data.shape[0] == 0:
        shown = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: b'data' must be a uint8 array of shape (n, 3072) with n >= 1 "
                         f"(32 x 32 pixels x 3 channels per row), got a {shown}")
    raw_labels = batch[b"labels"]
    labels = np.asarray(raw_labels) if isinstance(raw_labels, (list, tuple, np.ndarray)) else None
    if labels is None or labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(f"{path}: b'labels' must be a list of integers 0..9, got "
                         f"{type(raw_labels).__name__ if labels is None else f'{labels.dtype} values of shape {labels.shape}'}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: b'labels' must be integers 0..9, got values from {labels.min()} to {labels.max()}")
    if len(labels) != len(data):
        raise ValueError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_cifar10(directory) -> Dataset:
    """CIFAR-10 from its python pickle batches in ``directory`` (or its ``cifar-10-batches-py`` subfolder).

    Parameters
    ----------
    directory : path-like
        The folder holding ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``.

    Returns
    -------
    Dataset
        50000 training and 10000 test images (for the real files), standardised
        with the training statistics.

    Raises
    ------
    FileNotFoundError
        A batch is missing (the message lists the files to put there).
    ValueError
        A batch is not a plain CIFAR-10 pickle (see :func:`read_cifar_batch`).
    """
    directory = Path(directory)
    if (directory / "cifar-10-batches-py").is_dir():
        directory = directory / "cifar-10-batches-py"
    for name in CIFAR_FILES:  # every file is looked for before any is read, so one message lists them all
        if not (directory / name).exists():
            raise _missing("CIFAR-10", directory, CIFAR_FILES)
    batches = {name: read_cifar_batch(directory / name) for name in CIFAR_FILES}
    train_x = np.concatenate([batches[n][0] for n in CIFAR_FILES[:-1]]) / 255.0
    train_y = np.concatenate([batches[n][1] for n in CIFAR_FILES[:-1]])
    train_x, test_x = _standardise(train_x, batches["test_batch"][0] / 255.0,
                                   f"{directory} ({', '.join(CIFAR_FILES[:-1])})")
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
    """``"digits"`` (bundled), ``"mnist1d"`` or ``"sphere"`` (generated), ``"mnist"``/``"cifar10"`` (from ``data_dir``).

    ``seed`` (an integer >= 0) splits digits, is MNIST-1D's dataset seed and draws the sphere data; ``data_dir`` is
    a folder path.  Every refusal names the argument, the file or the generator.
    """
    validation.choice("data", name, DATASETS)
    seed = validation.integer("seed", seed, minimum=0)
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"argument 'data_dir' must be a folder path (str or pathlib.Path), got {data_dir!r:.80}")
    if name == "digits":
        return load_digits(seed)
    if name == "mnist1d":
        return load_mnist1d(seed)
    if name == "sphere":
        return sphere_classification(seed=seed)
    if data_dir is None:
        files = list(MNIST_FILES.values()) if name == "mnist" else CIFAR_FILES
        raise _missing(name.upper() if name == "mnist" else "CIFAR-10", Path("<data_dir>"), files)
    return load_mnist(data_dir) if name == "mnist" else load_cifar10(data_dir)
