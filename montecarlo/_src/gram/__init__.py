"""``gradient_gram``: the exact per-example gradient Gram of the paper's network, and the table of its backends.

Every entry point that computes a Gram (``gradient_gram``, ``sample_confusion``,
``sample_grams``, ``rare_tail``, the command line) picks its backend with
:func:`resolve_backend` and runs it through :data:`GRAM_BACKENDS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from .. import validation
from . import memory
from ..draw.elementwise import ACTIVATIONS, LOSSES, is_builtin
from ..draw.network import MLP, Parameters
from ..draw.layers import DENSE, LayerDraw


@dataclass(frozen=True)
class Backend:
    """One line of :data:`GRAM_BACKENDS`: where a backend's ``layer_blocks`` lives and what it takes.

    ``module`` is imported on first use (relative names from this package), so
    that numba and torch load only when asked for.  ``torch_devices`` says the
    backend runs on a torch ``device`` and takes arrays drawn by torch
    (``random_source="torch"``).  ``any_activation`` says it evaluates every
    activation of the registry, those added by ``register_activation``
    included; False for a backend that runs the built-ins only (the numba
    kernel, whose compiled dispatch knows ``elementwise.ACTIVATIONS``).

    The module's ``layer_blocks(net, layers, biases, X, y, loss, *, dtype, device, per_layer)``
    gets ``layers``, one ``lazy.LayerDraw`` per layer (a dense weight ``W`` is
    ``LayerDraw(DENSE, W)``), biases (or None), ``X`` (``(T|1, N, d)``, or ``(N, d)``
    shared), ``y`` to match, all with a leading trial axis of length 1 (shared)
    or ``T``; ``dtype`` a numpy float dtype.  It returns the per-layer Gram
    blocks as a numpy array ``(T, beta + 1, N, N)`` in ``dtype``, or, when
    ``per_layer`` is False, may return their sum as one block ``(T, 1, N, N)``.
    """

    module: str
    torch_devices: bool = False
    any_activation: bool = True

    def layer_blocks(self):
        return importlib.import_module(self.module, __package__).layer_blocks


#: Name -> backend: the one table every entry point (gradient_gram, sample_confusion, sample_grams,
#: rare_tail, the command line) reads.  A new backend is one file with ``layer_blocks`` and one line here.
GRAM_BACKENDS = {
    "numpy": Backend(".numpy_backend"),
    "numba": Backend(".numba_kernel", any_activation=False),
    "torch": Backend(".torch_backend", torch_devices=True),
}

#: What ``backend="auto"`` resolves to (:func:`resolve_backend`): numba on the CPU, torch on a CUDA device
#: or for a torch random source, and numpy on the CPU for an activation added by ``register_activation``
#: (which numba does not run).
AUTO_CPU, AUTO_TORCH, AUTO_REGISTERED = "numba", "torch", "numpy"

#: The backends shipped with the package ("auto" first), for the public ``montecarlo.BACKENDS``.
BACKENDS = ("auto", *GRAM_BACKENDS)


def backend_names() -> tuple:
    """Every accepted ``backend`` value now: "auto" and the lines of :data:`GRAM_BACKENDS`."""
    return ("auto", *GRAM_BACKENDS)


def _on_torch_devices() -> str:
    return " or ".join(f"backend={name!r}" for name, b in GRAM_BACKENDS.items() if b.torch_devices)


def resolve_backend(backend: str, device=None, random_source: str = "numpy", activation: str | None = None) -> tuple:
    """``(name, device)`` of the backend that will run: the one rule behind every ``backend="auto"``.

    "auto" is ``"numba"`` on the CPU, and ``"torch"`` when ``device`` is a CUDA
    device or the random source is torch (the draws are then torch tensors,
    possibly on the device already).  So ``device="cpu"`` with "auto" runs
    numba, and that device is dropped.  For an ``activation`` added by
    ``register_activation``, which numba does not run, "auto" on the CPU is
    ``"numpy"`` (:data:`AUTO_REGISTERED`), and a backend named explicitly that
    runs the built-ins only (``Backend.any_activation``) is refused.  A
    ``device``, and ``random_source="torch"``, are refused for a backend named
    explicitly unless it runs on torch devices (``Backend.torch_devices``).
    The device comes back as a ``torch.device`` (checked: CUDA must be present
    when asked for) or None (the backend's default, the CPU).
    """
    validation.choice("backend", backend, backend_names())
    random_source = validation.choice("random_source", random_source, ("numpy", "torch"))
    if device is not None:
        from .torch_backend import resolve_device

        device = resolve_device(device)
    name = backend
    if backend == "auto":
        name = AUTO_TORCH if random_source == "torch" or (device is not None and device.type == "cuda") else AUTO_CPU
        if not runs_activation(name, activation):
            name = AUTO_REGISTERED
    check_runs_activation(name, activation)
    if GRAM_BACKENDS[name].torch_devices:
        return name, device
    if random_source == "torch":
        raise ValueError(f"random_source='torch' needs {_on_torch_devices()} (or 'auto'), got backend={name!r}")
    if device is not None and backend != "auto":
        raise ValueError(f"argument 'device' applies only to {_on_torch_devices()}, got backend={name!r}")
    return name, None


def runs_activation(backend: str, activation: str | None) -> bool:
    """Whether the backend ``backend`` (a line of :data:`GRAM_BACKENDS`) evaluates ``activation`` (None: any)."""
    return activation is None or GRAM_BACKENDS[backend].any_activation or is_builtin(activation)


def check_runs_activation(backend: str, activation: str | None) -> None:
    """Refuse a backend that does not run ``activation`` (a registered one on numba), naming what would."""
    if runs_activation(backend, activation):
        return
    accepting = [repr(name) for name, line in GRAM_BACKENDS.items() if line.any_activation]
    raise ValueError(f"argument 'backend' = {backend!r} runs the built-in activations only "
                     f"({', '.join(ACTIVATIONS)}), not the registered activation {activation!r}: use backend="
                     f"{' or '.join(accepting)}, or 'auto' (which picks one of them)")


def layer_blocks(backend: str, net, layers, biases, X, y, loss, dtype, device=None, per_layer=True) -> np.ndarray:
    """The per-layer Gram blocks ``(T, beta + 1, N, N)`` of drawn layers on a resolved backend (``Backend``)."""
    check_runs_activation(backend, net.activation)
    return GRAM_BACKENDS[backend].layer_blocks()(net, layers, biases, X, y, loss, dtype=dtype, device=device,
                                                 per_layer=per_layer)


@dataclass(frozen=True)
class GramInputs:
    """Validated inputs; every array has a leading trial axis of length 1 (shared) or ``n_trials``."""

    weights: list
    biases: list | None
    X: np.ndarray
    y: np.ndarray
    n_trials: int
    batched: bool


def as_parameters(net: MLP, weights) -> Parameters:
    """Accept :class:`Parameters` or, for a network without biases, a sequence of weight arrays."""
    if isinstance(weights, Parameters):
        return weights
    if isinstance(weights, (list, tuple)) and not net.bias:
        return Parameters(tuple(weights), None)
    expected = "a montecarlo.Parameters (from net.init)" + (
        "" if net.bias else " or a list of the beta + 1 weight arrays"
    )
    raise TypeError(f"argument 'weights' must be {expected}, got {type(weights).__name__}")


def _leading(array: np.ndarray, core_ndim: int) -> np.ndarray:
    return array if array.ndim > core_ndim else array[None]


def check_inputs(net: MLP, weights, X, y) -> GramInputs:
    """Validate shapes and values against the network spec; refuse anything else with a clear message."""
    if not isinstance(net, MLP):
        raise TypeError(f"argument 'net' must be a montecarlo.MLP, got {type(net).__name__}")
    params = as_parameters(net, weights)
    if len(params.weights) != net.n_layers:
        raise ValueError(
            f"argument 'weights' must hold beta + 1 = {net.n_layers} weight matrices for depth {net.depth}, "
            f"got {len(params.weights)}"
        )
    if net.bias and params.biases is None:
        raise ValueError("argument 'weights' has no biases, but the network has bias=True")
    if not net.bias and params.biases is not None:
        raise ValueError("argument 'weights' carries biases, but the network has bias=False")
    trial_counts = set()
    weight_arrays, bias_arrays = [], []
    for p, shape in enumerate(net.layer_shapes):
        w = validation.finite_array(f"weights[{p}]", params.weights[p], ndim=(2, 3))
        if w.shape[-2:] != shape:
            raise ValueError(
                f"argument 'weights[{p}]' must have shape {shape} (or (T,) + {shape}) for "
                f"W_{p} of this network, got {w.shape}"
            )
        weight_arrays.append(_leading(w, 2))
        if w.ndim == 3:
            trial_counts.add(w.shape[0])
        if params.biases is not None:
            b = validation.finite_array(f"biases[{p}]", params.biases[p], ndim=(1, 2))
            if b.shape[-1] != shape[0]:
                raise ValueError(f"argument 'biases[{p}]' must have shape ({shape[0]},) or (T, {shape[0]}), got {b.shape}")
            bias_arrays.append(_leading(b, 1))
            if b.ndim == 2:
                trial_counts.add(b.shape[0])
    X = validation.finite_array("X", X, ndim=(2, 3))
    if X.shape[-1] != net.input_dim:
        raise ValueError(
            f"argument 'X' must have input_dim = {net.input_dim} columns (shape (N, {net.input_dim}) "
            f"or (T, N, {net.input_dim})), got shape {X.shape}"
        )
    n = X.shape[-2]
    if n < 2:
        raise ValueError(f"argument 'X' must hold N >= 2 examples (a Gram needs pairs), got N = {n}")
    y = validation.finite_array("y", y, ndim=(1, 2))
    if y.shape[-1] != n:
        raise ValueError(f"argument 'y' must have one label per row of X (N = {n}), got shape {y.shape}")
    if X.ndim == 3:
        trial_counts.add(X.shape[0])
    if y.ndim == 2:
        trial_counts.add(y.shape[0])
    if len(trial_counts) > 1:
        raise ValueError(
            f"the leading (trial) axes of 'weights', 'X' and 'y' disagree: {sorted(trial_counts)}"
        )
    return GramInputs(
        weights=weight_arrays,
        biases=bias_arrays if params.biases is not None else None,
        X=_leading(X, 2),
        y=_leading(y, 1),
        n_trials=next(iter(trial_counts), 1),
        batched=bool(trial_counts),
    )


def _check_memory(net: MLP, inputs: GramInputs, backend: str, dtype: np.dtype, per_layer: bool, device) -> None:
    """Refuse, before computing, Grams whose estimated peak (``memory.mlp_gram_bytes``) exceeds the memory available.

    The given arrays are the caller's; counted are the working arrays of the
    trials computed at once (all of them on numpy and torch, one per thread on
    numba), their blocks, ``G``, and a copy of the inputs in float32.
    """
    T, N = inputs.n_trials, inputs.X.shape[-2]
    at_once = T
    if backend == "numba":
        import numba

        at_once = min(T, numba.get_num_threads())
    modes = (DENSE,) * net.n_layers
    itemsize = dtype.itemsize
    estimate = memory.mlp_gram_bytes(net, N, modes, T, at_once, itemsize, blocks_kept=per_layer or backend != "numba")
    estimate += itemsize * T * N * N  # G, the blocks' sum
    if itemsize != 8:
        arrays = [*inputs.weights, *(inputs.biases or ()), inputs.X, inputs.y]
        estimate += itemsize * sum(a.size for a in arrays)
    what = (f"gradient_gram of 'net' of width {net.width}, depth {net.depth} and input_dim {net.input_dim} on N = {N} "
            f"examples (rows of 'X') x {T} trial(s) (the leading axis of 'weights', 'X' and 'y')")
    lower = "give fewer examples or fewer trials" + (", or per_layer=False" if per_layer else "")
    memory.refuse_if_too_large(estimate, what, lower, device)


def gradient_gram(net, weights, X, y, loss="square", per_layer=False, backend="auto", dtype="float64", device=None):
    """Exact Gram matrix of per-example gradients, ``G_ij = <grad_W f_i(W), grad_W f_j(W)>``.

    ``f_i(W) = l(g_W(x_i), y_i)`` for the network ``net`` (paper eq. 4) and the
    square or logistic loss of section 4(a).  Computed in factorised form,
    ``G = sum_p (Delta_p Delta_p^T) o (H_p H_p^T)`` (+ ``Delta_p Delta_p^T`` per
    bias), from one batched forward and backward pass: per-example gradients
    are never materialised.  Exact up to rounding in the requested precision.

    Parameters
    ----------
    net : MLP
    weights : Parameters or list of arrays
        From ``net.init``.  Arrays may carry a leading trial axis ``T``.
    X : array (N, d) or (T, N, d)
        Inputs, N >= 2, d = ``net.input_dim``.
    y : array (N,) or (T, N)
        Labels ``C(x_i)``.
    loss : {"square", "logistic"}
    per_layer : bool
        Also return each layer's block ``G_p`` (weights and bias of layer p).
    backend : "auto" or a name in ``GRAM_BACKENDS`` ("numpy", "numba", "torch")
        "numpy" is the plain reference; "numba" runs trials in parallel (the
        built-in activations only); "torch" batches trials with ``bmm`` and
        runs on ``device``.  "auto" follows :func:`resolve_backend`: numba, or
        torch on a CUDA device, or numpy for an activation added by
        ``register_activation``.
    dtype : {"float64", "float32"}
        Working precision (float64 for anything compared with theory).
    device : None, "cpu", "cuda" or "cuda:k"
        Torch device; CUDA must be present when asked for.

    Returns
    -------
    G : ndarray (N, N), or (T, N, N) when any input carries a trial axis.
    blocks : ndarray (beta+1, N, N) or (T, beta+1, N, N); only with ``per_layer=True``
        ``G == blocks.sum(axis=-3)``.
    """
    loss = validation.choice("loss", loss, LOSSES)
    per_layer = validation.flag("per_layer", per_layer)
    dtype = validation.dtype("dtype", dtype)
    backend, device = resolve_backend(backend, device, activation=getattr(net, "activation", None))
    inputs = check_inputs(net, weights, X, y)
    _check_memory(net, inputs, backend, dtype, per_layer, device)
    layers = [LayerDraw(DENSE, w) for w in inputs.weights]
    blocks = layer_blocks(backend, net, layers, inputs.biases, inputs.X, inputs.y, loss, dtype, device, per_layer)
    blocks = np.broadcast_to(blocks, (inputs.n_trials,) + blocks.shape[-3:])
    total = blocks.sum(axis=-3)
    if not inputs.batched:
        total, blocks = total[0], blocks[0]
    total = np.ascontiguousarray(total)
    return (total, np.ascontiguousarray(blocks)) if per_layer else total
