"""The infinite-width law of the Gram, sampled over data and outputs: the prediction beside every Monte Carlo point.

At infinite width (``theory`` module ``infinite_width``) the tangent kernel is
deterministic given the data, ``Theta(width) = width Theta_hat + Theta_fixed``,
while the output pre-activation stays Gaussian, ``z_beta(X) ~ N(0, Sigma_beta)``,
so ``G_ij = a_i a_j Theta_ij`` with ``a_i = gamma l'(g_i, y_i) s'(z_i)`` random.
:func:`sample_infinite_width` draws that law for the same data law as
:func:`sample_confusion` (points uniform on the sphere, labels by the same
rule), trial by trial; ``grams(width)`` then gives the Gram the limit
predicts at any width and ``statistics(width)`` its confusion statistics,
through the same :func:`gram_statistics` as the Monte Carlo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import theory

from .. import validation
from ..draw.elementwise import LOSSES, activation_record, activation_with_derivative, output_delta
from ..draw.data import make_labels, sample_sphere
from ..statistics.gram_statistics import gram_statistics
from ..draw.network import MLP
from ..draw.random_source import SEED_BLOCK, block_seed, check_seed


@dataclass(frozen=True)
class InfiniteWidthSample:
    """Per trial: the loss-derivative factors ``a`` (``T x N``) and the kernels ``Theta_hat``, ``Theta_fixed``."""

    a: np.ndarray
    theta_hat: np.ndarray
    theta_fixed: np.ndarray
    config: dict

    def grams(self, width: float) -> np.ndarray:
        """``G_ij = a_i a_j (width Theta_hat_ij + Theta_fixed_ij)``, ``T x N x N``: the limit's Gram at ``width``."""
        return self.a[:, :, None] * self.a[:, None, :] * (width * self.theta_hat + self.theta_fixed)

    def statistics(self, width: float) -> dict:
        """:func:`gram_statistics` of :meth:`grams` (cosines do not depend on ``width`` but through ``Theta_fixed``)."""
        return gram_statistics(self.grams(width))


def output_factor(net: MLP, z, y, loss: str) -> np.ndarray:
    """``a = gamma l'(g, y) s'(z)`` with ``g = gamma s(z)`` (``gamma z`` without output activation), so ``G_ij = a_i a_j Theta_ij``.

    ``z`` is the output pre-activation ``z_beta``, ``y`` the labels (same
    shape); the formulas are ``elementwise``'s, as in every Gram backend.
    """
    z = np.asarray(z, dtype=float)
    if net.output_activation:
        out, slope = activation_with_derivative(net.activation, z, np)
    else:
        out, slope = z, None
    return output_delta(loss, net.gamma, out, slope, np.asarray(y, dtype=float), np)


def sample_infinite_width(net: MLP, n_samples: int, trials: int, *, labels, loss: str, seed,
                          data=None) -> InfiniteWidthSample:
    """Draw ``trials`` samples of the infinite-width law of the Gram of ``net`` (its width is not used).

    Each trial draws ``n_samples`` points uniform on ``S^{d-1}`` and their
    labels (or uses ``data=(X, y)`` for every trial), computes the kernels
    (tabulated against the inner product for sphere data,
    ``theory.sphere_kernels``) and draws the Gaussian output
    ``z ~ N(0, Sigma_beta)``.  The kernels are those of ``net``'s biases: the
    initial spread ``bias_std`` enters ``Sigma_p`` and, with ``bias=True``,
    the gradients of the (trained) biases enter ``Theta_fixed`` even when they
    start at zero (``trained_bias=net.bias``).  Same data law as
    :func:`sample_confusion`, not the same draws.  Strategy 4.1
    (``init="gaussian"``) only: the limit of Haar-orthogonal layers is not
    encoded.

    Seeding: the package's scheme (``random_source``): trials come in blocks
    of ``SEED_BLOCK``; block ``k`` draws its data, then its labels, then its
    Gaussian outputs from ``SeedSequence(seed, spawn_key=(k,))``, so trial
    ``t`` is a pure function of ``(seed, t)`` whatever ``trials`` is.  ``seed``
    is a non-negative integer (or a sequence of them).
    """
    if not isinstance(net, MLP):
        raise TypeError(f"argument 'net' must be a montecarlo.MLP, got {type(net).__name__}")
    if net.init_scheme != "gaussian":
        raise ValueError(f"argument 'net' must use init='gaussian' (Strategy 4.1); the infinite-width law of "
                         f"{net.init_scheme!r} layers is not encoded")
    n_samples = validation.integer("n_samples", n_samples, minimum=2)
    trials = validation.integer("trials", trials, minimum=1)
    loss = validation.choice("loss", loss, LOSSES)
    seed = check_seed(seed)
    labeller = make_labels(labels) if data is None else None
    bias_std = net.bias_std if net.bias else 0.0
    args = (net.depth, net.activation)
    kernel_options = dict(kappa=net.kappa, bias_std=bias_std, trained_bias=net.bias)
    if data is not None:
        X, y = (np.asarray(v, dtype=float) for v in data)
        if X.shape != (n_samples, net.input_dim) or y.shape != (n_samples,):
            raise ValueError(f"argument 'data' must be (X, y) with X of shape {(n_samples, net.input_dim)} and y "
                             f"of shape {(n_samples,)}; got {X.shape} and {y.shape}")
    # Whole seed blocks, each from its own generator in a fixed order (data, labels, outputs), then truncated:
    # asking for more trials appends blocks and never changes the earlier ones.
    blocks = -(-trials // SEED_BLOCK)
    drawn_X, drawn_y, normals = [], [], []
    for k in range(blocks):
        rng = np.random.default_rng(block_seed(seed, k))
        if data is None:
            Xk = sample_sphere(n_samples, net.input_dim, rng, batch=SEED_BLOCK)
            drawn_X.append(Xk)
            drawn_y.append(np.asarray(labeller(Xk, rng), dtype=float))
        normals.append(rng.standard_normal((SEED_BLOCK, n_samples)))
    normals = np.concatenate(normals)[:trials]
    if data is None:
        X = np.concatenate(drawn_X)[:trials]
        y = np.concatenate(drawn_y)[:trials]
        table = theory.sphere_kernels(*args, d=net.input_dim, **kernel_options)
        sigma, theta_hat, theta_fixed = table.of_inner_products(X @ X.mT)
    else:
        K = theory.infinite_width_kernels(X, *args, **kernel_options)
        sigma, theta_hat, theta_fixed = (np.broadcast_to(M, (trials, n_samples, n_samples))
                                         for M in (K.output_covariance, K.theta_hat, K.theta_fixed))
        y = np.broadcast_to(y, (trials, n_samples))
    values, vectors = np.linalg.eigh(sigma)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))[..., None, :]
    z = np.einsum("tij,tj->ti", root, normals)
    a = output_factor(net, z, y, loss)
    config = dict(net.config(), **activation_record(net.activation), n_samples=n_samples, trials=trials, loss=loss,
                  seed=seed, labels=getattr(labels, "name", repr(labels)))
    return InfiniteWidthSample(a, np.asarray(theta_hat), np.asarray(theta_fixed), config)
