"""Numpy backend of the factorised Gram: ``factorised.py`` run with ``xp = numpy``, the plain reference.

Trials are batched through the leading axis (``@`` broadcasts over it); one
process thread, BLAS threads inside the products.
"""

from __future__ import annotations

import numpy as np

from .factorised import gram_blocks
from ..draw.layers import LayerDraw


def layer_blocks(net, layers, biases, X, y, loss, *, dtype, device=None, per_layer=True) -> np.ndarray:
    """Per-layer Gram blocks ``(T, beta + 1, N, N)`` (the contract of ``gram.GRAM_BACKENDS``)."""
    cast = lambda a: None if a is None else a.astype(dtype, copy=False)  # noqa: E731
    layers = [LayerDraw(layer.mode, cast(layer.weight), cast(layer.g1), cast(layer.g2), layer.scale)
              for layer in layers]
    blocks = gram_blocks(np, net, layers, None if biases is None else [cast(b) for b in biases], cast(X), cast(y),
                         loss)
    return np.stack(np.broadcast_arrays(*blocks), axis=-3)
