r"""The activations of the paper's network (section 4(a), eq. 4) and their Gaussian kernel maps: one declaration each.

Each :class:`Activation` carries the numpy function ``s`` and its derivative
``s'`` and, where one is known, the closed form of its two Gaussian moments

    (a, b, c) -> (E[s(u) s(v)], E[s'(u) s'(v)]),   (u, v) ~ N(0, [[a, c], [c, b]]),

the maps of the NNGP and tangent-kernel recursions (``infinite_width``).  An
activation without a closed form gets both moments by tensor-product
Gauss-Hermite quadrature (:func:`gaussian_expectation`, 256 nodes per axis:
errors below 1e-10 for tanh and sigmoid at pre-activation variances up to 2,
tested against an independent Gauss-Legendre rule).

The built-in activations are declared in :data:`REGISTRY` below (their names:
:data:`ACTIVATIONS`); their finite-width twins (``montecarlo``'s
``elementwise.py``) are declared separately, because ``theory`` never imports
``montecarlo``, and a test holds the two registries to the same names.  An
activation is added at run time with :func:`register_activation` (numpy
functions, an optional closed form): ``montecarlo.register_activation`` is the
one public call, which registers the finite-width twin and calls this one.
Every check of an activation's name reads the live registry
(:func:`activation_names`), so a registered name is accepted everywhere;
:data:`ACTIVATIONS` keeps meaning the built-ins.

Closed forms: the identity ("linear") gives ``(c, 1)``; relu the arc-cosine
kernels of degree 1 and 0 (Cho & Saul 2009),
``E[relu(u) relu(v)] = sqrt(ab) (sin t + (pi - t) cos t) / (2 pi)`` and
``E[1{u>0} 1{v>0}] = (pi - t) / (2 pi)`` with ``cos t = c / sqrt(ab)``.
The derivative of relu at 0 is taken to be 0 (a null set under the Gaussian).
"""

from __future__ import annotations

import threading
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

#: Name -> declaration, in the order of ``montecarlo``'s registry (a test holds the names equal); the built-ins, then
#: the activations added by :func:`register_activation`.
REGISTRY = {activation.name: activation for activation in (RELU, TANH, SIGMOID, LINEAR)}
#: The built-in activations (fixed; :func:`activation_names` also lists the registered ones).
ACTIVATIONS = tuple(REGISTRY)

_REGISTER_LOCK = threading.Lock()
#: The test array every registered function is evaluated on once (2-d, so that a function that flattens is caught).
_PROBE = np.array([[-2.5, -0.7, 0.0], [0.3, 1.1, 3.0]])


def activation_names() -> tuple:
    """Every activation name accepted now: the built-ins (:data:`ACTIVATIONS`), then the registered ones, in order.

    Returns
    -------
    tuple of str
    """
    return tuple(REGISTRY)


def _show(names) -> str:
    return ", ".join(map(repr, names))


def check_name(name) -> str:
    """A new activation's name: a non-empty identifier not yet taken (``ValueError`` naming argument 'name')."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"argument 'name' must be a non-empty identifier (letters, digits, underscores), got "
                         f"{name!r}")
    if name in REGISTRY:
        raise ValueError(f"argument 'name': {name!r} is already registered (names taken: "
                         f"{_show(activation_names())}); choose another name")
    return name


def check_elementwise(argument: str, function) -> None:
    """Evaluate ``function`` once on a small array: it must return finite numbers of the input's shape.

    Any failure is a ``ValueError`` naming ``argument`` (a ``TypeError`` when it is not callable).
    """
    if not callable(function):
        raise TypeError(f"argument {argument!r} must be callable, got {type(function).__name__}")
    z = _PROBE.copy()
    try:
        with np.errstate(all="ignore"):  # a non-finite result is reported below, without numpy's warnings
            out = np.asarray(function(z), dtype=float)
    except Exception as error:  # the user's code: say which argument failed, and how
        raise ValueError(f"argument {argument!r} failed on a test array of shape {z.shape}: "
                         f"{type(error).__name__}: {error}") from error
    if out.shape != z.shape:
        raise ValueError(f"argument {argument!r} must act elementwise: on an array of shape {z.shape} it returned "
                         f"shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"argument {argument!r} returned non-finite values on the test array {z.tolist()}: "
                         f"{out.tolist()}")


def _check_moments(moments) -> None:
    if moments is None:
        return
    if not callable(moments):
        raise TypeError(f"argument 'moments' must be callable or None, got {type(moments).__name__}")
    a, b, c = np.array([1.0, 0.5, 2.0]), np.array([1.0, 2.0, 1.5]), np.array([0.3, -0.2, 1.0])
    try:
        pair = moments(a, b, c)
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"returned {type(pair).__name__}, not a pair")
        value, derivative = (np.broadcast_to(np.asarray(m, dtype=float), c.shape) for m in pair)
    except Exception as error:
        raise ValueError(f"argument 'moments' must return a pair (E[s(u) s(v)], E[s'(u) s'(v)]) of arrays "
                         f"broadcasting with a, b, c; on a, b, c of shape {c.shape} it failed: "
                         f"{type(error).__name__}: {error}") from error
    if not (np.all(np.isfinite(value)) and np.all(np.isfinite(derivative))):
        raise ValueError("argument 'moments' returned non-finite values on a test covariance")


def register_activation(name: str, function, derivative, *, moments=None) -> Activation:
    """Add an activation to the registry at run time: every function of ``theory`` that takes one then accepts it.

    ``montecarlo.register_activation`` calls this (and registers the
    finite-width side too); call it directly only for ``theory`` alone.

    Parameters
    ----------
    name : str
        A new name: a non-empty identifier not yet registered.
    function : callable
        ``s``: numpy array -> numpy array of the same shape, elementwise.
    derivative : callable
        ``s'``, the same way.
    moments : callable, optional
        The closed form ``(a, b, c) -> (E[s(u) s(v)], E[s'(u) s'(v)])`` for
        ``(u, v) ~ N(0, [[a, c], [c, b]])`` (float arrays, broadcast).  Without
        it both moments come from Gauss-Hermite quadrature
        (:func:`gaussian_expectation`, accurate to about 1e-10 for smooth
        activations at pre-activation variances up to 2).

    Returns
    -------
    Activation
        The declaration added to :data:`REGISTRY`.

    Raises
    ------
    ValueError
        For a name that is taken or not an identifier (argument 'name'), and
        for a function, derivative or moments that fails on a small test
        array, returns another shape or non-finite numbers (naming the argument).
    TypeError
        For an argument that is not callable.
    """
    check_name(name)
    check_elementwise("function", function)
    check_elementwise("derivative", derivative)
    _check_moments(moments)
    activation = Activation(name, function, derivative, moments)
    with _REGISTER_LOCK:
        check_name(name)  # again, under the lock: two threads registering one name
        REGISTRY[name] = activation
    return activation


def unregister_activation(name: str) -> None:
    """Remove a registered activation (tests only: the registry is process-wide); the built-ins cannot be removed."""
    if name in ACTIVATIONS:
        raise ValueError(f"argument 'name': {name!r} is a built-in activation")
    with _REGISTER_LOCK:
        REGISTRY.pop(name, None)

