"""Activations and losses of the paper's model, written once for numpy and torch.

Every function takes the array namespace ``xp`` (the ``numpy`` or ``torch``
module) so the numpy reference backend and the torch backend evaluate the same
formulas.  The numba kernel has scalar twins of these formulas in
``gram/numba_kernel.py``; tests hold all of them against torch.autograd.

Activations (paper section 4(a), eq. 4): relu, tanh, sigmoid and the identity
("linear").  The derivative of relu at 0 is taken to be 0, as in torch.

Losses (paper section 4(a)), for a label ``y = C(x)`` and a network output ``g``:
square ``1/2 (y - g)^2`` and logistic ``log(1 + exp(-y g))``.  "output" is
``l = g`` itself (``dl/dg = 1``, labels ignored): its Gram is the empirical
tangent kernel of the network, ``G_ij = <grad g(x_i), grad g(x_j)>``.
"""

from __future__ import annotations

ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")
LOSSES = ("square", "logistic", "output")


def activation_with_derivative(name: str, z, xp):
    """Return ``(s(z), s'(z))`` elementwise for activation ``name``."""
    if name == "relu":
        positive = z > 0
        return xp.where(positive, z, xp.zeros_like(z)), xp.where(positive, xp.ones_like(z), xp.zeros_like(z))
    if name == "tanh":
        s = xp.tanh(z)
        return s, 1 - s * s
    if name == "sigmoid":
        # 1/(1+e^-z) written through tanh so that it never overflows.
        s = 0.5 * (1 + xp.tanh(0.5 * z))
        return s, s * (1 - s)
    if name == "linear":
        return z, xp.ones_like(z)
    raise ValueError(f"unknown activation {name!r}")


def loss_value(name: str, g, y, xp):
    """Per-example loss ``l(g, y)``: square ``(y-g)^2/2`` or logistic ``log(1+exp(-y g))``."""
    if name == "square":
        return 0.5 * (y - g) ** 2
    if name == "logistic":
        margin = -y * g
        return xp.logaddexp(xp.zeros_like(margin), margin)
    if name == "output":
        return g
    raise ValueError(f"unknown loss {name!r}")


def loss_derivative(name: str, g, y, xp):
    """Derivative ``dl/dg``: square ``g - y``; logistic ``-y / (1 + exp(y g))``; output 1."""
    if name == "square":
        return g - y
    if name == "logistic":
        # -y * sigmoid(-y g), through tanh so that it never overflows.
        return -y * 0.5 * (1 - xp.tanh(0.5 * y * g))
    if name == "output":
        return xp.ones_like(g)
    raise ValueError(f"unknown loss {name!r}")
