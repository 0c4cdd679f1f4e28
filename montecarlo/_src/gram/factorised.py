"""The factorised per-example gradient Gram, written once for numpy and torch.

For a dense layer ``z_p = W_p h_p (+ b_p)`` the gradient of example ``i``'s
loss with respect to ``W_p`` is the outer product ``delta_{p,i} h_{p,i}^T``,
where ``delta_{p,i} = d f_i / d z_{p,i}``.  Hence

    <grad_{W_p} f_i, grad_{W_p} f_j> = <delta_{p,i}, delta_{p,j}> <h_{p,i}, h_{p,j}>

and the Gram matrix of the full per-example gradients is

    G = sum_p (Delta_p Delta_p^T) o (H_p H_p^T)   [+ sum_p Delta_p Delta_p^T for biases]

with ``o`` the Hadamard product and rows of ``H_p``, ``Delta_p`` indexed by
example.  This needs one batched forward and backward pass plus ``N x N``
products; no per-example gradient (``N x P``) is ever formed.  Exact up to
floating-point rounding.

Arrays carry an optional leading trial axis; ``xp`` is ``numpy`` or ``torch``.
"""

from __future__ import annotations

from ..elementwise import activation_with_derivative, loss_derivative
from . import lazy


def forward_layer(xp, net, z, bias, is_last: bool):
    """``(s(z + b), s'(z + b))`` of one layer; at the output without activation ``(z + b, None)``."""
    if bias is not None:
        z = z + bias[..., None, :]
    if is_last and not net.output_activation:
        return z, None
    return activation_with_derivative(net.activation, z, xp)


def gram_blocks(xp, net, layers, biases, X, y, loss):
    """Per-layer Gram blocks ``G_p`` (each ``... x N x N``), in layer order ``0..beta``.

    ``G_p = (Delta_p Delta_p^T) o (H_p H_p^T)`` plus ``Delta_p Delta_p^T`` when the
    layer has a bias.  ``sum_p G_p`` is the Gram of the full per-example gradients.
    ``layers[p]`` is the weight matrix ``W_p``, or a ``lazy.LayerDraw`` for a
    layer sampled lazily (then ``Z`` and ``Delta W`` are drawn exactly in law).
    """
    inputs, derivatives, frames = [], [], []
    h = X
    last = len(layers) - 1
    for p, layer in enumerate(layers):
        inputs.append(h)
        z, frame = lazy.pre_activation(xp, layer, h)
        frames.append(frame)
        h, s_prime = forward_layer(xp, net, z, None if biases is None else biases[p], p == last)
        derivatives.append(s_prime)
    delta = (net.gamma * loss_derivative(loss, net.gamma * h[..., 0], y, xp))[..., None]
    if derivatives[-1] is not None:
        delta = delta * derivatives[-1]
    blocks = [None] * len(layers)
    for p in reversed(range(len(layers))):
        delta_gram = delta @ delta.mT
        block = delta_gram * (inputs[p] @ inputs[p].mT)
        if biases is not None:
            block = block + delta_gram
        blocks[p] = block
        if p > 0:
            delta = lazy.input_gradient(xp, layers[p], delta, frames[p]) * derivatives[p - 1]
    return blocks
