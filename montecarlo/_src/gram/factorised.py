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

from typing import NamedTuple

from ..draw.elementwise import activation_with_derivative, output_delta
from . import lazy


class LayerPass(NamedTuple):
    """One layer of the forward pass of eq. 4: ``z_p = W_p h_p (+ b_p)``, ``h_{p+1} = s(z_p)``."""

    h: object  # the layer input h_p (rows are examples; h_0 = X)
    z: object  # the biased pre-activation z_p
    out: object  # s(z_p), or z_p itself at an output without activation
    slope: object  # s'(z_p), None at an output without activation (the derivative is 1)
    frame: object  # U of a lazily drawn layer (lazy.pre_activation), None for a dense one


def forward(xp, net, layers, biases, X):
    """The forward pass of ``net`` (paper eq. 4), layer by layer: yields a :class:`LayerPass` per layer ``0..beta``.

    ``layers[p]`` is a weight array ``W_p`` or a ``lazy.LayerDraw``; ``biases``
    is None or one bias per layer; arrays may carry leading (trial) axes and
    be numpy or torch (``xp``), torch tensors with ``requires_grad`` included.
    The network output is ``net.gamma * out[..., 0]`` of the last layer.  A
    generator, so that each caller keeps only what it needs (the Gram keeps
    ``h``, ``slope`` and ``frame``; the spectra keep ``z``).
    """
    h = X
    last = len(layers) - 1
    for p, layer in enumerate(layers):
        z, frame = lazy.pre_activation(xp, layer, h)
        if biases is not None:
            z = z + biases[p][..., None, :]
        if p == last and not net.output_activation:
            out, slope = z, None
        else:
            out, slope = activation_with_derivative(net.activation, z, xp)
        yield LayerPass(h, z, out, slope, frame)
        h = out


def layer_signals(xp, net, layers, biases, X, y, loss):
    """Each layer's input ``H_p`` and backward signal ``Delta_p = d f / d z_p`` (rows are examples), ``p = 0..beta``.

    One forward pass (:func:`forward`) and one backward pass: the per-example
    gradient with respect to ``W_p`` is ``delta_{p,i} h_{p,i}^T``, so any inner
    product of per-example gradients is a sum over layers of products of
    these (``gram_blocks`` for all pairs; the conditional estimator of
    pair-cosine tails for one example against many).  ``layers`` as in
    :func:`forward`; lazy layers give signals exact in law jointly for the
    rows of ``X``.  Returns a list of ``(H_p, Delta_p)`` in layer order.
    """
    inputs, derivatives, frames = [], [], []
    for step in forward(xp, net, layers, biases, X):
        inputs.append(step.h)
        derivatives.append(step.slope)
        frames.append(step.frame)
    h = step.out
    slope = None if derivatives[-1] is None else derivatives[-1][..., 0]
    delta = output_delta(loss, net.gamma, h[..., 0], slope, y, xp)[..., None]
    signals = [None] * len(layers)
    for p in reversed(range(len(layers))):
        signals[p] = (inputs[p], delta)
        if p > 0:
            delta = lazy.input_gradient(xp, layers[p], delta, frames[p]) * derivatives[p - 1]
    return signals


def gram_blocks(xp, net, layers, biases, X, y, loss):
    """Per-layer Gram blocks ``G_p`` (each ``... x N x N``), in layer order ``0..beta``.

    ``G_p = (Delta_p Delta_p^T) o (H_p H_p^T)`` plus ``Delta_p Delta_p^T`` when the
    layer has a bias.  ``sum_p G_p`` is the Gram of the full per-example gradients.
    ``layers[p]`` is the weight matrix ``W_p``, or a ``lazy.LayerDraw`` for a
    layer sampled lazily (then ``Z`` and ``Delta W`` are drawn exactly in law).
    """
    blocks = []
    for h, delta in layer_signals(xp, net, layers, biases, X, y, loss):
        delta_gram = delta @ delta.mT
        block = delta_gram * (h @ h.mT)
        blocks.append(block + delta_gram if biases is not None else block)
    return blocks
