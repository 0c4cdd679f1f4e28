"""Statistics of a per-example gradient Gram ``G`` (or of a stack ``(..., N, N)`` of them).

All are exact functions of ``G``: no per-example gradient is needed.

* ``eta_star`` -- ``max(0, -min_{i != j} G_ij)``, the smallest gradient
  confusion bound ``eta`` for which Definition 2.1 (eq. 3) holds.
* cosines -- ``G_ij / sqrt(G_ii G_jj)``; undefined (NaN) for a pair that
  involves a zero gradient, and left out of minima and quantiles: the
  minimum cosine and the cosine quantiles are conditional on the pairs whose
  cosine is defined, and undefined (NaN) in a trial where none is (at most
  one gradient is non-zero).  ``undefined_cosine_pairs`` counts the pairs
  left out.  A zero gradient is common, not a corner case: with relu at the
  output (the paper's eq. 4, this package's default) an example's gradient
  is exactly zero whenever its output pre-activation is negative, about half
  of the examples.  How a tail treats the undefined trials (counted as not
  confused, by default, or left out) is ``statistics.tails.cosine_tail``'s
  ``conditional`` argument.
* ``fraction_negative`` -- share of pairs ``i < j`` with ``G_ij < 0``.
* ``m_coherence`` -- ``|sum_i g_i|^2 / sum_i |g_i|^2 = sum_ij G_ij / tr G``
  (Chatterjee & Zielinski 2020); ``gradient_diversity`` is its inverse
  (Yin et al. 2018).
* ``fisher_spectrum`` -- eigenvalues of ``G / N``, which are the non-zero
  eigenvalues of the empirical Fisher ``(1/N) sum_i g_i g_i^T`` (the two are
  ``J J^T / N`` and ``J^T J / N`` for the ``N x P`` per-example Jacobian ``J``).
"""

from __future__ import annotations

import numpy as np

DEFAULT_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def _square_stack(G) -> np.ndarray:
    G = np.asarray(G, dtype=np.float64)
    if G.ndim < 2 or G.shape[-1] != G.shape[-2] or G.shape[-1] < 2:
        raise ValueError(f"argument 'G' must be an N x N Gram (or a stack of them) with N >= 2, got shape {G.shape}")
    return G


def _upper_pairs(M: np.ndarray) -> np.ndarray:
    """Entries ``i < j`` of the last two axes, flattened to the last axis."""
    i, j = np.triu_indices(M.shape[-1], k=1)
    return M[..., i, j]


def squared_gradient_norms(G) -> np.ndarray:
    """``|grad f_i|^2 = G_ii`` for every example, shape ``(..., N)``."""
    return np.diagonal(_square_stack(G), axis1=-2, axis2=-1).copy()


def eta_star(G) -> np.ndarray:
    """Smallest valid confusion bound of Definition 2.1: ``max(0, -min_{i != j} G_ij)``.

    Defined for every Gram: a zero gradient has inner product 0 with every
    other, which never makes ``eta*`` larger.  Never ``-0.0`` (a pair with
    ``G_ij = 0`` would give ``max(0, -0) = -0.0``, printed as ``-0``).
    """
    return np.maximum(0.0, -_upper_pairs(_square_stack(G)).min(axis=-1)) + 0.0


def cosine_matrix(G) -> np.ndarray:
    """Pairwise cosines ``G_ij / sqrt(G_ii G_jj)``; NaN where a gradient is exactly zero."""
    G = _square_stack(G)
    norms = np.sqrt(np.clip(np.diagonal(G, axis1=-2, axis2=-1), 0.0, None))
    scale = norms[..., :, None] * norms[..., None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, G / np.where(scale > 0, scale, 1.0), np.nan)


def _pair_cosines(G) -> np.ndarray:
    return _upper_pairs(cosine_matrix(G))


def undefined_cosine_pairs(G) -> np.ndarray:
    """How many pairs ``i < j`` have an undefined cosine (a zero gradient among the two), shape ``(...)``.

    These are the pairs :func:`min_cosine` and :func:`cosine_quantiles`
    leave out; with ``z`` zero gradients among ``N`` it is
    ``N(N-1)/2 - (N-z)(N-z-1)/2``.
    """
    return np.isnan(_pair_cosines(G)).sum(axis=-1)


def _nan_reduce(func, values: np.ndarray, **kwargs) -> np.ndarray:
    """``func`` over the last axis ignoring NaN; NaN where every entry is NaN."""
    empty = np.all(np.isnan(values), axis=-1)
    filled = np.where(empty[..., None], 0.0, values)
    return np.where(empty, np.nan, func(filled, axis=-1, **kwargs))


def min_cosine(G) -> np.ndarray:
    """Minimum pairwise cosine over ``i != j`` (the paper's normalised confusion, negated).

    Conditional on the defined cosines: a pair with a zero gradient is left
    out of the minimum (:func:`undefined_cosine_pairs` counts them), and a
    Gram with at most one non-zero gradient has no defined pair and gives
    NaN.  For every ``tau`` the event ``min_cosine < -tau`` is then exactly
    "some pair has ``G_ij < -tau sqrt(G_ii G_jj)``", the normalised
    confusion event written without a division, which no pair with a zero
    gradient satisfies (``0 < 0`` is false).  A NaN therefore means "no pair
    is confused at any level": ``cosine_tail`` counts it so by default.
    """
    return _nan_reduce(np.nanmin, _pair_cosines(G))


def cosine_quantiles(G, quantiles=DEFAULT_QUANTILES) -> np.ndarray:
    """Quantiles of the off-diagonal cosines, shape ``(..., len(quantiles))``.

    Conditional on the defined cosines, like :func:`min_cosine`: pairs with
    a zero gradient are left out, and a Gram without a defined pair gives NaN.
    """
    q = np.asarray(quantiles, dtype=np.float64)
    if q.ndim != 1 or not np.all((q >= 0) & (q <= 1)):  # written so that NaN fails too
        raise ValueError(f"argument 'quantiles' must be a 1-d sequence of numbers in [0, 1], got {quantiles!r}")
    values = _pair_cosines(G)
    empty = np.all(np.isnan(values), axis=-1)
    filled = np.where(empty[..., None], 0.0, values)
    out = np.moveaxis(np.nanquantile(filled, q, axis=-1), 0, -1)
    return np.where(empty[..., None], np.nan, out)


def fraction_negative(G) -> np.ndarray:
    """Share of pairs ``i < j`` with ``G_ij < 0``."""
    return (_upper_pairs(_square_stack(G)) < 0).mean(axis=-1)


def m_coherence(G) -> np.ndarray:
    """``|sum_i g_i|^2 / sum_i |g_i|^2 = sum_ij G_ij / tr G``, in ``[0, N]``; NaN if all gradients vanish."""
    G = _square_stack(G)
    trace = np.trace(G, axis1=-2, axis2=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(trace > 0, G.sum(axis=(-2, -1)) / np.where(trace > 0, trace, 1.0), np.nan)


def gradient_diversity(G) -> np.ndarray:
    """``sum_i |g_i|^2 / |sum_i g_i|^2``, the inverse of :func:`m_coherence`."""
    with np.errstate(divide="ignore"):
        return 1.0 / m_coherence(G)


def fisher_spectrum(G) -> np.ndarray:
    """Eigenvalues of ``G / N`` in decreasing order: the non-zero spectrum of the empirical Fisher.

    NaN for a Gram with non-finite entries (a diverged training run, say).
    """
    G = _square_stack(G)
    finite = np.all(np.isfinite(G), axis=(-2, -1))
    safe = np.where(finite[..., None, None], G, 0.0)
    values = np.linalg.eigvalsh(safe / G.shape[-1])[..., ::-1]
    return np.where(finite[..., None], values, np.nan)


def gram_statistics(G, blocks=None, quantiles=DEFAULT_QUANTILES) -> dict:
    """Every statistic above for one Gram or a stack, as a dict of arrays.

    Keys: ``eta_star``, ``min_cosine``, ``fraction_negative``, ``m_coherence``,
    ``gradient_diversity``, ``fraction_zero_gradient``,
    ``undefined_cosine_pairs`` (the pairs the cosine statistics leave out),
    ``grad_norm_sq_mean``, ``grad_norm_sq_min``, ``grad_norm_sq_max``,
    ``fisher_lambda_max`` (the largest eigenvalue of the empirical Fisher),
    ``cosine_q<q>`` for each quantile, and with per-layer ``blocks``
    (``(..., beta+1, N, N)``) ``eta_star_layer<p>`` and
    ``min_cosine_layer<p>`` (conditional on the defined cosines of that
    layer's block, as :func:`min_cosine`).
    """
    G = _square_stack(G)
    norms_sq = squared_gradient_norms(G)
    stats = {
        "eta_star": eta_star(G),
        "min_cosine": min_cosine(G),
        "fraction_negative": fraction_negative(G),
        "m_coherence": m_coherence(G),
        "gradient_diversity": gradient_diversity(G),
        "fraction_zero_gradient": (norms_sq <= 0).mean(axis=-1),
        "undefined_cosine_pairs": undefined_cosine_pairs(G),
        "grad_norm_sq_mean": norms_sq.mean(axis=-1),
        "grad_norm_sq_min": norms_sq.min(axis=-1),
        "grad_norm_sq_max": norms_sq.max(axis=-1),
        "fisher_lambda_max": fisher_spectrum(G)[..., 0],
    }
    for q, values in zip(quantiles, np.moveaxis(cosine_quantiles(G, quantiles), -1, 0)):
        stats[f"cosine_q{q:g}"] = values
    if blocks is not None:
        blocks = np.asarray(blocks, dtype=np.float64)
        if blocks.shape[:-3] != G.shape[:-2] or blocks.shape[-2:] != G.shape[-2:]:
            raise ValueError(f"argument 'blocks' must have shape {G.shape[:-2]} + (L, N, N), got {blocks.shape}")
        for p in range(blocks.shape[-3]):
            stats[f"eta_star_layer{p}"] = eta_star(blocks[..., p, :, :])
            stats[f"min_cosine_layer{p}"] = min_cosine(blocks[..., p, :, :])
    return stats
