"""The paper's network as a specification object, and its random initialisations.

Model (Sankararaman et al., ICML 2020, section 4(a), eq. 4)::

    g_W(x) = gamma * s(W_beta s(W_{beta-1} ... s(W_0 x)))

with ``beta = depth``.  ``W_0`` is ``width x input_dim``, ``W_1 .. W_{beta-1}``
are ``width x width`` and ``W_beta`` is ``1 x width``; at depth 0 the network is
the single row ``W_0`` (``1 x input_dim``), the generalised linear model of the
paper's section 2.  The outer ``s`` is applied only if ``output_activation``.
``gamma`` is the output rescaling of Theorem 6.1 (ICML numbering).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import validation
from .elementwise import activation_names
from .random_source import as_source

INITS = ("gaussian", "orthogonal")


@dataclass(frozen=True)
class Parameters:
    """Weights (and biases) of an :class:`MLP`, as float64 numpy arrays.

    ``weights[p]`` has shape ``batch + (out_p, in_p)``; ``biases[p]`` (``None``
    for a network without biases) has shape ``batch + (out_p,)``, where
    ``batch`` is ``()`` for one network or ``(T,)`` for ``T`` independent draws.
    """

    weights: tuple
    biases: tuple | None = None

    @property
    def batch_shape(self) -> tuple:
        """Leading shape shared by every array: ``()`` or ``(T,)``."""
        return tuple(self.weights[0].shape[:-2])

    def __len__(self) -> int:
        return len(self.weights)


class MLP:
    """Specification of the paper's fully connected network (eq. 4).

    Parameters
    ----------
    input_dim : int >= 2
        ``d``, the dimension of the data sphere ``S^{d-1}``.
    width : int >= 1
        ``l``, the width of every hidden layer.
    depth : int >= 0
        ``beta``; the network has ``beta + 1`` weight matrices.
    activation : str
        "relu", "tanh", "sigmoid", "linear" (``montecarlo.ACTIVATIONS``), or a
        name added with ``montecarlo.register_activation``.
    output_activation : bool
        Apply the activation at the output, as the paper does.
    bias : bool
        Add a bias vector to every layer (the paper has none).
    init : {"gaussian", "orthogonal"}
        "gaussian" is the paper's Strategy 4.1: ``W_0`` entries ``N(0, 1/d)``,
        every other ``W_p`` entries ``N(0, 1/(kappa * fan_in))``.
        "orthogonal" draws every ``W_p`` exactly Haar-distributed on the
        (semi-)orthogonal matrices of its shape, times ``gain``.
        (Stored as ``init_scheme``; ``net.init(rng)`` draws the weights.)
    kappa : float > 0
        Variance divisor of Strategy 4.1 (ignored by "orthogonal").
    gain : float > 0
        Scale of the orthogonal matrices (ignored by "gaussian").
    gamma : float > 0
        Output rescaling ``g = gamma * s(...)`` (Theorem 6.1 uses ``1/sqrt(2 beta)``).
    bias_std : float >= 0
        Biases are drawn ``N(0, bias_std^2)``; the default 0 starts them at zero.

    Instances are immutable, hashable and compare by value.
    """

    __slots__ = FIELDS = (
        "input_dim", "width", "depth", "activation", "output_activation", "bias",
        "init_scheme", "kappa", "gain", "gamma", "bias_std",
    )

    def __init__(self, input_dim, width, depth, activation="relu", output_activation=True, bias=False,
                 init="gaussian", kappa=1.0, gain=1.0, gamma=1.0, bias_std=0.0):
        set_ = object.__setattr__
        set_(self, "input_dim", validation.integer("input_dim", input_dim, minimum=2))
        set_(self, "width", validation.integer("width", width, minimum=1))
        set_(self, "depth", validation.integer("depth", depth, minimum=0))
        set_(self, "activation", validation.choice("activation", activation, activation_names()))
        set_(self, "output_activation", validation.flag("output_activation", output_activation))
        set_(self, "bias", validation.flag("bias", bias))
        set_(self, "init_scheme", validation.choice("init", init, INITS))
        set_(self, "kappa", validation.positive_real("kappa", kappa))
        set_(self, "gain", validation.positive_real("gain", gain))
        set_(self, "gamma", validation.positive_real("gamma", gamma))
        set_(self, "bias_std", validation.nonnegative_real("bias_std", bias_std))

    def __setattr__(self, name, value):
        raise AttributeError("MLP is immutable; build a new one (see MLP.replace)")

    def config(self) -> dict:
        """The constructor arguments as a plain dict (``init`` under its constructor name)."""
        out = {name: getattr(self, name) for name in self.FIELDS}
        out["init"] = out.pop("init_scheme")
        return out

    def replace(self, **changes) -> "MLP":
        """A copy with some constructor arguments changed."""
        return MLP(**{**self.config(), **changes})

    def __eq__(self, other):
        return isinstance(other, MLP) and self.config() == other.config()

    def __hash__(self):
        return hash(tuple(sorted(self.config().items())))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"MLP({args})"

    @property
    def layer_shapes(self) -> tuple:
        """``(out, in)`` of ``W_0, ..., W_beta``."""
        if self.depth == 0:
            return ((1, self.input_dim),)
        return (
            ((self.width, self.input_dim),)
            + ((self.width, self.width),) * (self.depth - 1)
            + ((1, self.width),)
        )

    @property
    def n_layers(self) -> int:
        """Number of weight matrices, ``beta + 1``."""
        return self.depth + 1

    @property
    def n_params(self) -> int:
        """Number of trainable scalars ``P`` (weights, plus biases if any)."""
        return sum(m * n + (m if self.bias else 0) for m, n in self.layer_shapes)

    def weight_std(self, layer: int) -> float:
        """Standard deviation of the entries of ``W_layer`` under Strategy 4.1."""
        fan_in = self.layer_shapes[layer][1]
        if layer == 0:
            return 1.0 / np.sqrt(fan_in)
        return 1.0 / np.sqrt(self.kappa * fan_in)

    def init(self, rng, batch: int | None = None) -> Parameters:
        """Draw weights (and biases) from the network's initialisation.

        ``rng`` is a ``numpy.random.Generator`` (or anything ``default_rng``
        accepts, such as an integer seed), or a torch-backed ``NormalSource``
        (arrays are then torch tensors on its device).  With ``batch=T`` every
        array gets a leading axis of ``T`` independent draws.  The draws are a
        pure function of the generator's state: layer by layer, weights before
        biases.
        """
        source = as_source(rng)
        lead = () if batch is None else (validation.integer("batch", batch, minimum=1),)
        weights, biases = [], []
        for p in range(self.n_layers):
            weights.append(self.draw_weight(p, source, lead))
            if self.bias:
                biases.append(self.draw_bias(p, source, lead))
        return Parameters(tuple(weights), tuple(biases) if self.bias else None)

    def draw_weight(self, p: int, source, lead: tuple = ()):
        """Draw ``W_p`` (with leading axes ``lead``) from ``source`` (a NormalSource)."""
        m, n = self.layer_shapes[p]
        if self.init_scheme == "gaussian":
            return source.scaled_normal(lead + (m, n), self.weight_std(p))
        return self.gain * haar_semi_orthogonal(source, lead + (m, n))

    def draw_bias(self, p: int, source, lead: tuple = ()):
        """Draw ``b_p`` (with leading axes ``lead``): ``N(0, bias_std^2)`` entries, or zeros."""
        m = self.layer_shapes[p][0]
        if self.bias_std > 0:
            return self.bias_std * source.normal(lead + (m,))
        return source.zeros(lead + (m,))


def haar_semi_orthogonal(rng, shape: tuple):
    """Draw ``m x n`` matrices exactly Haar-distributed on the semi-orthogonal ones.

    For ``m >= n`` the columns are orthonormal (``Q^T Q = I_n``), otherwise the
    rows are (``Q Q^T = I_m``).  Construction: the QR factorisation of a
    Gaussian ``max x min`` matrix with the sign of each column of ``Q`` set so
    that ``diag(R) > 0``, which makes ``Q`` exactly Haar (Mezzadri 2007,
    "How to generate random matrices from the classical compact groups").
    ``shape`` may carry leading batch axes; ``rng`` is anything ``as_source``
    accepts (a numpy Generator, a seed, or a torch-backed NormalSource).
    """
    source = as_source(rng)
    xp = source.xp
    *lead, m, n = shape
    tall = m >= n
    big, small = (m, n) if tall else (n, m)
    q, r = xp.linalg.qr(source.normal(tuple(lead) + (big, small)))
    signs = xp.sign(xp.linalg.diagonal(r))
    signs = xp.where(signs == 0, xp.ones_like(signs), signs)
    q = q * signs[..., None, :]
    return q if tall else q.mT
