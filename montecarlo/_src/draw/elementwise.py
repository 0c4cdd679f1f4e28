"""Activations and losses of the paper's model, written once for numpy and torch (and once for numba).

Every function takes the array namespace ``xp`` (the ``numpy`` or ``torch``
module) so the numpy reference backend and the torch backend evaluate the same
formulas.

Activations (paper section 4(a), eq. 4): relu, tanh, sigmoid and the identity
("linear"), each one :class:`Activation` declaration in :data:`REGISTRY`: its
``with_derivative(z, xp)`` for numpy and torch and its numba scalar
``(v) -> (s(v), s'(v))``, which the numba kernel reaches through
:func:`activate` by the activation's position in the registry (its code).
numba itself is imported, and the scalars, ``activate`` and
``loss_derivative_at`` njit-compiled (with numba's cache), on the first access
to ``activate`` or ``loss_derivative_at`` (:func:`_compile`): importing this
module, and so reading its tables, costs numpy only.
A built-in activation is declared here (finite-width side, numba scalar
included) and in ``theory``'s ``activations.py`` (its Gaussian kernel maps; a
test holds the two registries to the same names).  Tests hold every
declaration against torch.autograd and the numba scalar against the numpy
function.  The derivative of relu at 0 is taken to be 0, as in torch.

An activation is added at run time, without editing source, by the one public
call :func:`register_activation` (``montecarlo.register_activation``): it joins
:data:`REGISTRY` (the numpy and torch backends evaluate it) and ``theory``'s
registry (the infinite-width kernels) in one step.  The numba kernel knows the
built-ins only: its dispatch tuple (``_SCALARS``, :data:`ACTIVATION_CODE`) is
built from :data:`ACTIVATIONS`, never from a registration, because numba caches
the compiled kernel on disk under a key that does not see a run-time change.
Every check of a name reads the live registry (:func:`activation_names`);
:data:`ACTIVATIONS` keeps meaning the built-ins.

Losses (paper section 4(a)), for a label ``y = C(x)`` and a network output ``g``:
square ``1/2 (y - g)^2`` and logistic ``log(1 + exp(-y g))``.  "output" is
``l = g`` itself (``dl/dg = 1``, labels ignored): its Gram is the empirical
tangent kernel of the network, ``G_ij = <grad g(x_i), grad g(x_j)>``.  Each is one :class:`Loss` declaration in
:data:`LOSS_REGISTRY` (value and derivative for numpy and torch, numba scalar
derivative, reached by the kernel through :func:`loss_derivative_at`).
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np


def njit(*args, **options):
    """numba's ``njit`` for the scalars declared here, deferred so that importing this module does not import numba.

    Written as numba's (``@njit(cache=True)``), it returns the function as it
    is; :func:`_compile` compiles every declared scalar with
    ``numba.njit(cache=True)`` when the numba kernel first needs them.
    """
    if len(args) == 1 and callable(args[0]) and not options:
        return args[0]
    return lambda function: function


@dataclass(frozen=True)
class Activation:
    """One activation: ``with_derivative(z, xp) -> (s(z), s'(z))`` elementwise, and its numba ``scalar``.

    ``xp`` is ``numpy`` or ``torch``; ``scalar`` is an ``@njit`` function of
    one float returning ``(s(v), s'(v))`` with the same formulas (compiled
    when the numba kernel first needs it, :func:`_compile`), or None for an
    activation added by :func:`register_activation` (numpy and torch only).
    ``source`` is such an activation's digest (``provenance.function_digest``
    of its functions), recorded with the results made with it; None for a
    built-in, which the package's source fingerprint covers.
    """

    name: str
    with_derivative: Callable
    scalar: Callable | None
    source: str | None = None


def _relu(z, xp):
    positive = z > 0
    return xp.where(positive, z, xp.zeros_like(z)), xp.where(positive, xp.ones_like(z), xp.zeros_like(z))


@njit(cache=True)
def _relu_scalar(v):
    if v > 0:
        return v, 1.0
    return 0.0, 0.0


def _tanh(z, xp):
    s = xp.tanh(z)
    return s, 1 - s * s


@njit(cache=True)
def _tanh_scalar(v):
    s = np.tanh(v)
    return s, 1.0 - s * s


def _sigmoid(z, xp):
    # 1/(1+e^-z) written through tanh so that it never overflows.
    s = 0.5 * (1 + xp.tanh(0.5 * z))
    return s, s * (1 - s)


@njit(cache=True)
def _sigmoid_scalar(v):
    s = 0.5 * (1.0 + np.tanh(0.5 * v))
    return s, s * (1.0 - s)


def _linear(z, xp):
    return z, xp.ones_like(z)


@njit(cache=True)
def _linear_scalar(v):
    return v, 1.0


#: Name -> declaration: the built-ins, then the activations added by :func:`register_activation`.  A built-in's
#: code in the numba kernel is its position here.
REGISTRY = {activation.name: activation for activation in (
    Activation("relu", _relu, _relu_scalar),
    Activation("tanh", _tanh, _tanh_scalar),
    Activation("sigmoid", _sigmoid, _sigmoid_scalar),
    Activation("linear", _linear, _linear_scalar),
)}
#: The built-in activations (fixed at import: the ones the numba kernel runs).
ACTIVATIONS = tuple(REGISTRY)
ACTIVATION_CODE = {name: code for code, name in enumerate(ACTIVATIONS)}

# Bound by ``_compile`` before ``activate`` and ``loss_derivative_at`` compile: numba's ``literal_unroll``, and the
# compiled scalars in registry order.  ``literal_unroll`` over a heterogeneous tuple of dispatchers types them as
# first-class functions, which numba calls experimental; each unrolled branch still calls (and inlines) its own
# scalar directly.
literal_unroll = None
_SCALARS: tuple = ()
_LOSS_SCALARS: tuple = ()


def _activate(z, s_prime, code):
    """In place, for a 2-d ``z``: ``z <- s(z)`` and ``s_prime <- s'(z)`` for the activation of ``ACTIVATION_CODE`` ``code``."""
    rows, cols = z.shape
    k = 0
    for scalar in literal_unroll(_SCALARS):
        if k == code:
            for i in range(rows):
                for j in range(cols):
                    z[i, j], s_prime[i, j] = scalar(z[i, j])
        k += 1


def activation_with_derivative(name: str, z, xp):
    """Return ``(s(z), s'(z))`` elementwise for activation ``name`` (numpy or torch ``xp``)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(activation_names())}")
    return REGISTRY[name].with_derivative(z, xp)


def activation_names() -> tuple:
    """Every activation name accepted now: the built-ins (:data:`ACTIVATIONS`), then the registered ones, in order.

    What every check of an ``activation`` argument reads, so that a name added
    by :func:`register_activation` is accepted everywhere.

    Returns
    -------
    tuple of str
    """
    return tuple(REGISTRY)


def is_builtin(name: str) -> bool:
    """Whether ``name`` is a built-in activation (one the numba kernel runs), not a registered one."""
    return name in ACTIVATION_CODE


def activation_record(name: str) -> dict:
    """What a stored result records of activation ``name`` beside the name: ``{}`` for a built-in,
    ``{"activation_source": digest}`` for a registered one (its functions' digest), so that two different
    functions under one name never share a stored result."""
    activation = REGISTRY.get(name)
    if activation is None or activation.source is None:
        return {}
    return {"activation_source": activation.source}


def _registered(function, derivative):
    """``with_derivative`` of a registered activation: ``(function(z, xp), derivative(z, xp))``."""
    def with_derivative(z, xp):
        return function(z, xp), derivative(z, xp)

    return with_derivative


def autograd_derivative(function):
    """``s'(z, xp)`` of an elementwise ``function(z, xp)`` by torch autograd, for numpy and torch arrays alike.

    A torch tensor is differentiated as it is (with ``create_graph`` when it
    requires grad, so that the result stays differentiable); a numpy array
    goes through torch (``torch.from_numpy``, same dtype) and comes back as a
    numpy array.  Correct for elementwise functions only: it is the gradient
    of ``sum(s(z))``.
    """
    def derivative(z, xp):
        import torch

        if xp is not torch:
            array = np.asarray(z)
            if not np.issubdtype(array.dtype, np.floating):
                array = array.astype(float)
            return derivative(torch.from_numpy(np.ascontiguousarray(array)), torch).numpy()
        keep_graph = z.requires_grad
        with torch.inference_mode(False), torch.enable_grad():
            leaf = z if keep_graph else z.detach().clone().requires_grad_(True)
            s = function(leaf, torch)
            if not (isinstance(s, torch.Tensor) and s.requires_grad):  # constant in z
                return torch.zeros_like(z)
            (slope,) = torch.autograd.grad(s, leaf, grad_outputs=torch.ones_like(s), create_graph=keep_graph,
                                           allow_unused=True)
        if slope is None:
            return torch.zeros_like(z)
        return slope if keep_graph else slope.detach()

    return derivative


_REGISTER_LOCK = threading.Lock()


def register_activation(name: str, function, derivative=None, *, moments=None) -> Activation:
    """Add an activation: one call, and the finite-width code and ``theory``'s infinite-width kernels take its name.

    The activation joins :data:`REGISTRY` (the numpy and torch Gram backends
    evaluate it: ``MLP(..., activation=name)``, ``gradient_gram``,
    ``sample_confusion``, ``sample_grams``, ``rare_tail``,
    ``cosine_fluctuations``) and ``theory``'s registry, through
    ``theory.register_activation`` with ``function(z, np)`` and
    ``derivative(z, np)`` (``theory.infinite_width_kernels``,
    ``theory.infinite_width_cosine_floor``, ``sample_infinite_width``, ...).
    If ``theory`` refuses it, nothing is registered.  A registration lasts for
    the process: register it again in every process that uses it (a Dask
    worker, a command line).

    Parameters
    ----------
    name : str
        A new name: a non-empty identifier that no activation has.
    function : callable
        ``s(z, xp)``, elementwise, written with the array namespace ``xp``
        (the ``numpy`` or the ``torch`` module, as the declarations of the
        built-ins are): ``lambda z, xp: z * 0.5 * (1 + xp.tanh(0.5 * z))``.
    derivative : callable, optional
        ``s'(z, xp)``, the same way.  Without it the derivative is taken by
        torch autograd of ``function`` (:func:`autograd_derivative`), for numpy
        arrays too (they go through torch): exact, but slower than a formula.
    moments : callable, optional
        The closed form ``(a, b, c) -> (E[s(u) s(v)], E[s'(u) s'(v)])`` of the
        Gaussian moments, ``(u, v) ~ N(0, [[a, c], [c, b]])``, for ``theory``;
        without it ``theory`` uses Gauss-Hermite quadrature.

    Returns
    -------
    Activation
        The declaration added to :data:`REGISTRY`.

    Raises
    ------
    ValueError
        For a name taken or not an identifier (argument 'name'); for a
        function, derivative or moments that fails on a small test array,
        returns another shape or non-finite numbers (naming the argument).
    TypeError
        For an argument that is not callable.

    Notes
    -----
    The numba backend runs the built-in activations only (:data:`ACTIVATIONS`):
    ``backend="auto"`` takes the numpy backend on the CPU (torch on a CUDA
    device) for a registered activation, and ``backend="numba"`` is refused.
    Results made with a registered activation record its digest
    (:func:`activation_record`): a hash of the functions' source text, or of
    their bytecode where the source cannot be read.  It does not see values
    the functions read from outside (globals, closures).
    """
    import theory

    from .. import provenance

    with _REGISTER_LOCK:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"argument 'name' must be a non-empty identifier (letters, digits, underscores), got "
                             f"{name!r}")
        if name in REGISTRY:
            raise ValueError(f"argument 'name': {name!r} is already registered (names taken: "
                             f"{', '.join(map(repr, activation_names()))}); choose another name")
        if not callable(function):
            raise TypeError(f"argument 'function' must be callable, got {type(function).__name__}")
        if derivative is not None and not callable(derivative):
            raise TypeError(f"argument 'derivative' must be callable or None, got {type(derivative).__name__}")
        slope = autograd_derivative(function) if derivative is None else derivative
        activation = Activation(name, _registered(function, slope), None,
                                provenance.function_digest(function, derivative, moments))
        # theory checks the numpy functions (and the closed form) on a small array, naming the argument that fails,
        # and registers them; only then does montecarlo's side exist (nothing below can fail)
        theory.register_activation(name, lambda z: function(z, np), lambda z: slope(z, np), moments=moments)
        REGISTRY[name] = activation
    return activation


def unregister_activation(name: str) -> None:
    """Remove a registered activation from both registries (for tests: the registries are process-wide).

    The built-ins cannot be removed.
    """
    import theory._src.activations as theory_activations

    if is_builtin(name):
        raise ValueError(f"argument 'name': {name!r} is a built-in activation")
    with _REGISTER_LOCK:
        REGISTRY.pop(name, None)
        theory_activations.unregister_activation(name)


@dataclass(frozen=True)
class Loss:
    """One loss of a network output ``g`` and label ``y``: ``value(g, y, xp)``, ``derivative(g, y, xp) = dl/dg``,
    and the numba ``scalar_derivative(g, y)`` of one example with the same formula."""

    name: str
    value: Callable
    derivative: Callable
    scalar_derivative: Callable


def _logistic_value(g, y, xp):
    margin = -y * g
    return xp.logaddexp(xp.zeros_like(margin), margin)


def _logistic_derivative(g, y, xp):
    # -y * sigmoid(-y g), through tanh so that it never overflows.
    return -y * 0.5 * (1 - xp.tanh(0.5 * y * g))


@njit(cache=True)
def _square_scalar(g, y):
    return g - y


@njit(cache=True)
def _logistic_scalar(g, y):
    return -y * 0.5 * (1.0 - np.tanh(0.5 * y * g))


@njit(cache=True)
def _output_scalar(g, y):
    return 1.0


#: Name -> declaration; a loss's code in the numba kernel is its position here.
LOSS_REGISTRY = {loss.name: loss for loss in (
    Loss("square", lambda g, y, xp: 0.5 * (y - g) ** 2, lambda g, y, xp: g - y, _square_scalar),
    Loss("logistic", _logistic_value, _logistic_derivative, _logistic_scalar),
    Loss("output", lambda g, y, xp: g, lambda g, y, xp: xp.ones_like(g), _output_scalar),
)}
LOSSES = tuple(LOSS_REGISTRY)
LOSS_CODE = {name: code for code, name in enumerate(LOSSES)}


def _loss_derivative_at(g, y, code):
    """``dl/dg`` of one example for the loss of ``LOSS_CODE`` ``code`` (what the numba kernel calls)."""
    out = 0.0
    k = 0
    for scalar in literal_unroll(_LOSS_SCALARS):
        if k == code:
            out = scalar(g, y)
        k += 1
    return out


_COMPILED = ("activate", "loss_derivative_at")
_COMPILE_LOCK = threading.Lock()


def _compile() -> None:
    """Import numba and njit-compile (cached) the scalars, ``activate`` and ``loss_derivative_at``, once a process.

    The compiled scalars of this module replace their Python functions among
    the module's names, as ``activate`` and ``loss_derivative_at`` join them,
    so that every njit function here is a module attribute (what the numba
    kernel's cache guard flushes).
    """
    global literal_unroll, _SCALARS, _LOSS_SCALARS
    with _COMPILE_LOCK:
        if "activate" in globals():
            return
        import numba
        from numba.core.dispatcher import Dispatcher
        from numba.core.errors import NumbaExperimentalFeatureWarning

        warnings.filterwarnings("ignore", message="First-class function type feature is experimental",
                                category=NumbaExperimentalFeatureWarning)
        namespace = globals()

        def compiled(function):
            if isinstance(function, Dispatcher):
                return function
            dispatcher = numba.njit(cache=True)(function)
            if function.__module__ == __name__ and namespace.get(function.__name__) is function:
                namespace[function.__name__] = dispatcher
            return dispatcher

        literal_unroll = numba.literal_unroll
        # the built-ins only, by their codes: a registered activation never enters the cached kernel's dispatch
        _SCALARS = tuple(compiled(REGISTRY[name].scalar) for name in ACTIVATIONS)
        _LOSS_SCALARS = tuple(compiled(loss.scalar_derivative) for loss in LOSS_REGISTRY.values())
        namespace["loss_derivative_at"] = numba.njit(cache=True)(_loss_derivative_at)
        namespace["activate"] = numba.njit(cache=True)(_activate)


def __getattr__(name: str):
    """``activate`` and ``loss_derivative_at``, compiled on first access (:func:`_compile`)."""
    if name in _COMPILED:
        _compile()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _loss(name: str) -> Loss:
    if name not in LOSS_REGISTRY:
        raise ValueError(f"unknown loss {name!r}")
    return LOSS_REGISTRY[name]


def loss_value(name: str, g, y, xp):
    """Per-example loss ``l(g, y)``: square ``(y-g)^2/2``, logistic ``log(1+exp(-y g))``, output ``g``."""
    return _loss(name).value(g, y, xp)


def loss_derivative(name: str, g, y, xp):
    """Derivative ``dl/dg``: square ``g - y``; logistic ``-y / (1 + exp(y g))``; output 1."""
    return _loss(name).derivative(g, y, xp)


def output_delta(loss: str, gamma, out, slope, y, xp):
    """``a = gamma l'(gamma out, y) slope``: ``d f / d z_beta``, the backward signal of the output pre-activation.

    ``out`` is ``s(z_beta)`` (``z_beta`` itself without output activation) and
    ``slope`` is ``s'(z_beta)``, or None without output activation (then 1).
    Per example ``G_ij = a_i a_j <grad z_beta(x_i), grad z_beta(x_j)>`` exactly
    (the paper's eq. 4 with ``g = gamma out``).
    """
    a = gamma * loss_derivative(loss, gamma * out, y, xp)
    return a if slope is None else a * slope
