"""``gradient_gram``: the exact per-example gradient Gram of the paper's network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import validation
from ..elementwise import LOSSES
from ..network import MLP, Parameters

BACKENDS = ("auto", "numpy", "numba", "torch")


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


def _resolve_backend(backend: str, device) -> str:
    validation.choice("backend", backend, BACKENDS)
    if backend == "auto":
        return "torch" if device is not None and str(device).startswith("cuda") else "numba"
    if device is not None and backend != "torch":
        raise ValueError(f"argument 'device' applies only to backend='torch', got backend={backend!r}")
    return backend


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
    backend : {"auto", "numpy", "numba", "torch"}
        "numpy" is the plain reference; "numba" runs trials in parallel
        (the "auto" choice on the CPU); "torch" batches trials with ``bmm``
        and runs on ``device``.
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
    backend = _resolve_backend(backend, device)
    inputs = check_inputs(net, weights, X, y)
    if backend == "numba":
        from .numba_kernel import gram_numba

        blocks = gram_numba(net, inputs.weights, inputs.biases, inputs.X, inputs.y, loss, per_layer, inputs.n_trials, dtype)
    else:
        if backend == "torch":
            from .torch_backend import gram_torch

            layer_blocks = [b.cpu().numpy() for b in gram_torch(
                net, inputs.weights, inputs.biases, inputs.X, inputs.y, loss, device, dtype)]
        else:
            from .factorised import gram_blocks

            cast = lambda a: a.astype(dtype, copy=False)  # noqa: E731
            layer_blocks = gram_blocks(
                np, net, [cast(w) for w in inputs.weights],
                None if inputs.biases is None else [cast(b) for b in inputs.biases],
                cast(inputs.X), cast(inputs.y), loss,
            )
        blocks = np.stack(np.broadcast_arrays(*layer_blocks), axis=-3)
        blocks = np.broadcast_to(blocks, (inputs.n_trials,) + blocks.shape[-3:])
    total = blocks.sum(axis=-3)
    if not inputs.batched:
        total, blocks = total[0], blocks[0]
    total = np.ascontiguousarray(total)
    return (total, np.ascontiguousarray(blocks)) if per_layer else total
