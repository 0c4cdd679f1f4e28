"""``MLPTrial``: a trial of the paper's network (eq. 4) with data uniform on the sphere, on the Gram backends.

Its weights are drawn layer by layer -- densely, or lazily (exact in law
without the wide weight matrices: ``gram/lazy.py``) -- then ``N`` points
uniform on ``S^{d-1}``, then their labels; its Gram blocks come from a
backend of ``gram.GRAM_BACKENDS``.  The memory a batch of such trials needs is
estimated here (:func:`estimated_peak_bytes`).
"""

from __future__ import annotations


import numba
import numpy as np

from .. import validation
from ..draw.data import make_labels, sample_sphere
from ..draw.elementwise import LOSSES, activation_record
from ..draw.layers import DENSE, LAZY_GAUSSIAN, MODE_NAMES, describe_modes, draw_layers, lazy_layers
from ..draw.network import MLP
from ..draw.random_source import SEED_BLOCK
from ..gram import layer_blocks, resolve_backend
from ..gram.lazy import hidden_norms
from ..gram.memory import mlp_batch_bytes
from .base import MEMORY_PER_BATCH, Trial, TrialDraw

RANDOM_SOURCES = ("numpy", "torch")
METHODS = ("auto", "lazy", "dense")
MERGE_LIMIT = 2**17  # numbers drawn per trial below which a batch is computed in one call


def drawn_numbers(net: MLP, n_samples: int, modes) -> int:
    """Normals drawn per trial for the weights (``draw.layers.draw_layers``).

    ``m n`` per dense layer; ``(m + n) N`` per lazy Gaussian one (``A`` and
    ``G_1``); ``m N + m k`` per lazy orthogonal one (the frame, ``G_1`` and
    ``G_2``, ``k = min(N, m - N)``).
    """
    def count(m, n, mode):
        if mode == DENSE:
            return m * n
        if mode == LAZY_GAUSSIAN:
            return (m + n) * n_samples
        return m * n_samples + m * min(n_samples, m - n_samples)

    return sum(count(m, n, mode) for (m, n), mode in zip(net.layer_shapes, modes))


def default_batch_size(net: MLP, n_samples: int, modes) -> int:
    """Trials per compute batch: as many as keep a batch's arrays under ``MEMORY_PER_BATCH``, in whole seed blocks.

    Per trial: the drawn numbers, the activations (``3 N width`` per layer) and
    the Gram blocks (``2 N^2`` per layer).
    """
    drawn = drawn_numbers(net, n_samples, modes)
    per_trial = 8 * (drawn + net.n_layers * (3 * n_samples * max(net.width, net.input_dim) + 2 * n_samples**2))
    return SEED_BLOCK * max(1, min(64, MEMORY_PER_BATCH // (SEED_BLOCK * per_trial)))


def estimated_peak_bytes(net: MLP, n_samples: int, modes, batch_trials: int, *, dtype="float64",
                         backend: str = "numba", merged: bool | None = None, threads: int | None = None) -> int:
    """Estimated peak bytes of one compute batch of ``batch_trials`` trials (a multiple of ``SEED_BLOCK``).

    An estimate for refusing sizes that cannot fit before anything is drawn,
    not a measurement: ``gram.memory.mlp_batch_bytes``, the one home of the
    byte counts (the drawing phase and the computing phase, the larger
    counts; its docstring says what each holds), with the weight normals of
    :func:`drawn_numbers`.

    Parameters
    ----------
    net : MLP
    n_samples : int
        ``N``.
    modes : tuple
        Sampling mode of each layer (``draw.layers.lazy_layers``).
    batch_trials : int
        Trials per compute batch.
    dtype : "float64" or "float32"
    backend : "numba", "numpy" or "torch"
    merged : bool, optional
        Whether a batch's blocks are computed in one call; by default as
        ``sample_confusion`` decides (torch, or at most ``MERGE_LIMIT`` numbers per trial).
    threads : int, optional
        Trials numba computes at once (default: its thread count).

    Returns
    -------
    int
        Bytes.
    """
    drawn = drawn_numbers(net, n_samples, modes)
    if merged is None:
        merged = backend == "torch" or drawn <= MERGE_LIMIT
    threads = numba.get_num_threads() if threads is None else threads
    return mlp_batch_bytes(net, n_samples, modes, drawn, batch_trials, seed_block=SEED_BLOCK, backend=backend,
                           merged=merged, threads=threads, itemsize=np.dtype(dtype).itemsize)


def check_data(data, n_samples: int, input_dim: int):
    """``(X, y)`` of fixed data (``N x d`` and ``N``), validated; None stays None."""
    if data is None:
        return None
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError("argument 'data' must be a pair (X, y) of fixed data, or None")
    X = validation.finite_array("X", data[0], ndim=(2,))
    y = validation.finite_array("y", data[1], ndim=(1,))
    if X.shape != (n_samples, input_dim) or y.shape != (n_samples,):
        raise ValueError(f"argument 'data' must hold X of shape ({n_samples}, {input_dim}) and y of shape "
                         f"({n_samples},), got {X.shape} and {y.shape}")
    return X, y


class MLPTrial(Trial):
    """A trial of the paper's network ``net``: weights from its initialisation, ``N`` sphere points, labels.

    Parameters
    ----------
    net : MLP
    n_samples : int >= 2
        ``N``, examples per trial.
    labels : "linear", "tanh", "random_sign" or a callable ``labels(X, source)``
    loss : "square", "logistic" or "output"
    method : "auto" (= "lazy"), "lazy" or "dense"
        "lazy" samples every layer whose fan-in and fan-out exceed ``N``
        exactly in law without drawing its weight matrix (``gram/lazy.py``),
        the others densely; "dense" draws every weight.
    backend : "auto" or a name in ``gram.GRAM_BACKENDS``
        "auto" follows ``gram.resolve_backend`` (numba on the CPU, torch on a
        CUDA device or with ``random_source="torch"``, numpy on the CPU for an
        activation added by ``register_activation``).
    dtype : "float64" or "float32"
        Precision of the Gram computation.
    random_source : "numpy" or "torch"
        The sources the engines draw this trial from ("torch": on ``device``).
    device : torch device for the torch backend.
    data : optional pair ``(X, y)`` used by every trial instead of fresh
        sphere data (the randomness is then over the network only).

    Notes
    -----
    A trial draws, in this order: the layers (and biases) of
    ``draw.layers.draw_layers``, ``N`` points uniform on ``S^{d-1}``, their labels.
    """

    def __init__(self, net, n_samples, *, labels, loss, method="auto", backend="auto", dtype="float64",
                 random_source="numpy", device=None, data=None):
        if not isinstance(net, MLP):
            raise TypeError(f"argument 'net' must be a montecarlo.MLP, got {type(net).__name__}")
        self.net = net
        self.n_samples = validation.integer("n_samples", n_samples, minimum=2)
        self.loss = validation.choice("loss", loss, LOSSES)
        self.dtype = validation.dtype("dtype", dtype)
        self.random_source = validation.choice("random_source", random_source, RANDOM_SOURCES)
        self.method = validation.choice("method", method, METHODS)
        self.modes = lazy_layers(net, self.n_samples, "dense" if self.method == "dense" else "lazy")
        self.labels = make_labels(labels)
        self.backend, self.device = resolve_backend(backend, device, self.random_source, net.activation)
        self.data = check_data(data, self.n_samples, net.input_dim)

    def config(self) -> dict:
        """The network's arguments, ``n_samples``, labels, loss, dtype; with a registered activation its
        functions' digest (``activation_source``), so that another function under the same name is another result."""
        return {**self.net.config(), **activation_record(self.net.activation), "n_samples": self.n_samples,
                "labels": getattr(self.labels, "name", repr(self.labels)), "loss": self.loss,
                "dtype": self.dtype.name}

    def meta(self) -> dict:
        return {"backend": self.backend, "random_source": self.random_source,
                "device": None if self.device is None else str(self.device), "method": describe_modes(self.modes),
                "layer_modes": [MODE_NAMES[mode] for mode in self.modes],
                "weight_normals_per_trial": drawn_numbers(self.net, self.n_samples, self.modes)}

    def block_names(self) -> tuple:
        return tuple(f"W_{p}" for p in range(self.net.n_layers))

    def draw(self, source, count: int) -> TrialDraw:
        layers, biases = draw_layers(self.net, self.n_samples, source, (count,), self.modes)
        if self.data is not None:
            return TrialDraw((layers, biases), *self.data)
        X = sample_sphere(self.n_samples, self.net.input_dim, source, batch=count)
        return TrialDraw((layers, biases), X, self.labels(X, source))

    def blocks(self, draw: TrialDraw) -> np.ndarray:
        layers, biases = draw.network
        return layer_blocks(self.backend, self.net, layers, biases, draw.X, draw.y, self.loss, self.dtype,
                            self.device)

    def merge_batches(self) -> bool:
        return self.backend == "torch" or drawn_numbers(self.net, self.n_samples, self.modes) <= MERGE_LIMIT

    def peak_bytes(self, batch_trials: int) -> int:
        return estimated_peak_bytes(self.net, self.n_samples, self.modes, batch_trials, dtype=self.dtype,
                                    backend=self.backend)

    def size_description(self) -> str:
        return (f"'net' of width {self.net.width}, depth {self.net.depth} and input_dim {self.net.input_dim} with "
                f"'n_samples' = {self.n_samples}")

    def default_batch_size(self) -> int:
        return default_batch_size(self.net, self.n_samples, self.modes)

    def draw_statistics(self) -> dict:
        return {"norm_ratio": self.norm_ratio}

    def norm_ratio(self, draw: TrialDraw) -> np.ndarray:
        """``|z_(beta-1)|^2 / |z_0|^2`` of each trial's first example: its first and last hidden pre-activations.

        Pre-activations include the bias.  For a linear network with Strategy
        4.1 weights (``kappa = 1``) this is a product of ``beta - 1``
        independent ``chi^2_width / width`` factors (``theory.chi_square_products``).
        """
        if self.net.depth < 2:
            raise ValueError(f"argument 'statistic' = 'norm_ratio' (|z_(beta-1)|^2 / |z_0|^2) needs depth >= 2, "
                             f"got depth {self.net.depth}")
        (layers, biases), X = draw.network, draw.X
        first, last = hidden_norms(self.net.activation, layers, biases, X, self.net.depth, np)
        first, last = first[..., 0], last[..., 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            return last / first


def as_trial(net, n_samples, *, labels, loss, method=None, backend=None, dtype=None, random_source=None,
             device=None, data=None) -> Trial:
    """The :class:`Trial` an engine runs: ``net`` itself when it is one, else the :class:`MLPTrial` of an ``MLP``.

    With a Trial, everything that defines it (``n_samples``, ``labels``,
    ``loss``, ``method``, ``backend``, ``dtype``, ``random_source``,
    ``device``, ``data``) belongs to the Trial and must be left out here.
    """
    given = {"n_samples": n_samples, "labels": labels, "loss": loss, "method": method, "backend": backend,
             "dtype": dtype, "random_source": random_source, "device": device, "data": data}
    if isinstance(net, Trial):
        extra = [name for name, value in given.items() if value is not None]
        if extra:
            raise ValueError(f"argument(s) {', '.join(map(repr, extra))} belong to the Trial: give them to "
                             f"{type(net).__name__}(...), not here")
        return net
    missing = [name for name in ("n_samples", "labels", "loss") if given[name] is None]
    if missing:
        raise TypeError(f"argument(s) {', '.join(map(repr, missing))} are required with an MLP "
                        f"(or give a montecarlo.Trial, which carries them)")
    defaults = {"method": "auto", "backend": "auto", "dtype": "float64", "random_source": "numpy"}
    settings = {k: defaults[k] if given[k] is None else given[k] for k in defaults}
    if not isinstance(net, MLP):
        raise TypeError(f"argument 'net' must be a montecarlo.MLP or a montecarlo.Trial, got {type(net).__name__}")
    return MLPTrial(net, n_samples, labels=labels, loss=loss, device=device, data=data, **settings)
