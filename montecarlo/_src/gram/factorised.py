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


def forward(xp, net, weights, biases, X):
    """Forward pass of eq. 4: layer inputs ``h_p``, derivatives ``s'(z_p)`` and output ``g``.

    Returns ``(inputs, derivatives, g)``; ``derivatives[-1]`` is ``None`` when
    the output has no activation.
    """
    inputs, derivatives = [], []
    h = X
    last = len(weights) - 1
    for p, W in enumerate(weights):
        inputs.append(h)
        z = h @ W.mT
        if biases is not None:
            z = z + biases[p][..., None, :]
        if p == last and not net.output_activation:
            h, s_prime = z, None
        else:
            h, s_prime = activation_with_derivative(net.activation, z, xp)
        derivatives.append(s_prime)
    return inputs, derivatives, net.gamma * h[..., 0]


def gram_blocks(xp, net, weights, biases, X, y, loss):
    """Per-layer Gram blocks ``G_p`` (each ``... x N x N``), in layer order ``0..beta``.

    ``G_p = (Delta_p Delta_p^T) o (H_p H_p^T)`` plus ``Delta_p Delta_p^T`` when the
    layer has a bias.  ``sum_p G_p`` is the Gram of the full per-example gradients.
    """
    inputs, derivatives, g = forward(xp, net, weights, biases, X)
    delta = (net.gamma * loss_derivative(loss, g, y, xp))[..., None]
    if derivatives[-1] is not None:
        delta = delta * derivatives[-1]
    blocks = [None] * len(weights)
    for p in reversed(range(len(weights))):
        delta_gram = delta @ delta.mT
        block = delta_gram * (inputs[p] @ inputs[p].mT)
        if biases is not None:
            block = block + delta_gram
        blocks[p] = block
        if p > 0:
            delta = (delta @ weights[p]) * derivatives[p - 1]
    return blocks
