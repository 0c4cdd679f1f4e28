r"""The activations of the paper's network (section 4(a), eq. 4) and their Gaussian kernel maps: one declaration each.

Each :class:`Activation` carries the numpy function ``s`` and its derivative
``s'`` and, where one is known, the closed form of its two Gaussian moments

    (a, b, c) -> (E[s(u) s(v)], E[s'(u) s'(v)]),   (u, v) ~ N(0, [[a, c], [c, b]]),

the maps of the NNGP and tangent-kernel recursions (``infinite_width``).  An
activation without a closed form gets both moments by tensor-product
Gauss-Hermite quadrature (:func:`gaussian_expectation`, 256 nodes per axis:
errors below 1e-10 for tanh and sigmoid at pre-activation variances up to 2,
tested against an independent Gauss-Legendre rule).  Adding an activation to
the theory is one declaration in :data:`REGISTRY`; its finite-width twin
(``montecarlo``'s ``elementwise.py``) is declared separately, because
``theory`` never imports ``montecarlo``, and a test holds the two registries
to the same names.

Closed forms: the identity ("linear") gives ``(c, 1)``; relu the arc-cosine
kernels of degree 1 and 0 (Cho & Saul 2009),
``E[relu(u) relu(v)] = sqrt(ab) (sin t + (pi - t) cos t) / (2 pi)`` and
``E[1{u>0} 1{v>0}] = (pi - t) / (2 pi)`` with ``cos t = c / sqrt(ab)``.
The derivative of relu at 0 is taken to be 0 (a null set under the Gaussian).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

HERMITE_NODES = 256
_nodes, _weights = np.polynomial.hermite_e.hermegauss(HERMITE_NODES)  # probabilists': weight exp(-z^2/2)
_weights = _weights / np.sqrt(2 * np.pi)


def gaussian_expectation(f, g, a, b, c, chunk: int = 64):
    """``E[f(u) g(v)]`` for ``(u, v) ~ N(0, [[a, c], [c, b]])`` by 2-d Gauss-Hermite quadrature (vectorised).

    ``u = sqrt(a) z1``, ``v = (c / sqrt(a)) z1 + sqrt(b - c^2/a) z2``; ``chunk``
    covariances at a time, to bound the memory of the node grid.
    """
    a, b, c = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a, b, c)))
    flat = [x.reshape(-1) for x in (a, b, c)]
    out = np.empty(flat[0].shape)
    w = _weights[:, None] * _weights[None, :]
    for start in range(0, out.size, chunk):
        fa, fb, fc = (x[start:start + chunk] for x in flat)
        sa = np.sqrt(np.maximum(fa, 0))
        slope = np.where(sa > 0, fc / np.where(sa > 0, sa, 1), 0.0)
        rest = np.sqrt(np.maximum(fb - slope**2, 0))
        u = sa[:, None, None] * _nodes[:, None]
        v = slope[:, None, None] * _nodes[:, None] + rest[:, None, None] * _nodes[None, :]
        out[start:start + chunk] = np.sum(w * f(u) * g(v), axis=(-2, -1))
    return out.reshape(a.shape)


@dataclass(frozen=True)
class Activation:
    """One activation: ``s`` and ``s'`` on numpy arrays, and optionally its Gaussian moments in closed form.

    ``moments(a, b, c)`` returns ``(E[s(u) s(v)], E[s'(u) s'(v)])`` for
    ``(u, v) ~ N(0, [[a, c], [c, b]])`` (float arrays, broadcast); ``None``
    means "by quadrature" (:meth:`gaussian_moments`).
    """

    name: str
    function: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray]
    moments: Callable | None = None

    def gaussian_moments(self, a, b, c):
        """``(E[s(u) s(v)], E[s'(u) s'(v)])``: the closed form when declared, else Gauss-Hermite quadrature."""
        a, b, c = (np.asarray(v, dtype=float) for v in (a, b, c))
        if self.moments is not None:
            return self.moments(a, b, c)
        return (gaussian_expectation(self.function, self.function, a, b, c),
                gaussian_expectation(self.derivative, self.derivative, a, b, c))


def _relu_moments(a, b, c):
    """Closed forms: ``E[relu(u) relu(v)]`` and ``E[1{u>0} 1{v>0}]`` (arc-cosine kernels of degree 1 and 0)."""
    norm = np.sqrt(a * b)
    cos_t = np.clip(np.where(norm > 0, c / np.where(norm > 0, norm, 1), 1.0), -1.0, 1.0)
    t = np.arccos(cos_t)
    value = norm * (np.sin(t) + (np.pi - t) * cos_t) / (2 * np.pi)
    derivative = (np.pi - t) / (2 * np.pi)
    return value, derivative


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))  # 1/(1+e^-z) through tanh: never overflows


RELU = Activation("relu", lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float), _relu_moments)
TANH = Activation("tanh", np.tanh, lambda z: 1 - np.tanh(z) ** 2)
SIGMOID = Activation("sigmoid", _sigmoid, lambda z: _sigmoid(z) * (1 - _sigmoid(z)))
LINEAR = Activation("linear", lambda z: z, np.ones_like, lambda a, b, c: (c, np.ones_like(c)))

#: Name -> declaration, in the order of ``montecarlo``'s registry (a test holds the names equal).
REGISTRY = {activation.name: activation for activation in (RELU, TANH, SIGMOID, LINEAR)}
ACTIVATIONS = tuple(REGISTRY)
