"""Torch backend of the factorised Gram: ``factorised.py`` run with ``xp = torch``.

Trials are batched through the leading axis (``@`` on 3-d tensors is ``bmm``).
Runs on the CPU or, when asked for and present, on CUDA with TF32 switched
off, so that float32 products are true float32 and float64 stays float64.
It takes torch devices and arrays drawn by torch (``random_source="torch"``):
its line in ``gram.GRAM_BACKENDS`` says so (``torch_devices=True``).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .factorised import gram_blocks
from ..draw.layers import LayerDraw


def resolve_device(device) -> torch.device:
    """Map ``None``/"cpu"/"cuda"/"cuda:k" to a torch device, refusing CUDA when absent."""
    if device is None:
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"argument 'device' must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}") from None
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"argument 'device' must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"argument 'device' asks for {device!r}, but CUDA is not available to torch "
                f"{torch.__version__} on this machine; use device='cpu'"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"argument 'device' asks for {device!r}, but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    return resolved


@contextlib.contextmanager
def no_tf32():
    """Switch TF32 off for matmul and cuDNN inside the block, restoring the user's settings after."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def to_tensor(array, device, dtype):
    """numpy or torch -> torch on ``device`` with ``dtype`` (no copy for float64 on the CPU)."""
    if isinstance(array, torch.Tensor):
        return array.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(array), device=device).to(dtype)


def gram_torch(net, layers, biases, X, y, loss, device, dtype):
    """Per-layer Gram blocks as torch tensors on ``device`` (leading trial axis as given).

    ``layers[p]`` is a weight array or a ``lazy.LayerDraw`` (numpy or torch).
    """
    tdtype = getattr(torch, np.dtype(dtype).name)
    device = resolve_device(device)
    convert = lambda a: None if a is None else to_tensor(a, device, tdtype)  # noqa: E731

    def convert_layer(layer):
        if isinstance(layer, LayerDraw):
            return LayerDraw(layer.mode, convert(layer.weight), convert(layer.g1), convert(layer.g2), layer.scale)
        return convert(layer)

    with no_tf32(), torch.no_grad():
        return gram_blocks(
            torch,
            net,
            [convert_layer(layer) for layer in layers],
            None if biases is None else [convert(b) for b in biases],
            convert(X),
            convert(y),
            loss,
        )


def layer_blocks(net, layers, biases, X, y, loss, *, dtype, device=None, per_layer=True) -> np.ndarray:
    """Per-layer Gram blocks ``(T, beta + 1, N, N)`` as numpy (the contract of ``gram.GRAM_BACKENDS``)."""
    blocks = gram_torch(net, layers, biases, X, y, loss, device, dtype)
    return torch.stack(torch.broadcast_tensors(*blocks), dim=-3).cpu().numpy()
