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

from dataclasses import dataclass
from typing import Callable

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


def _layer_blocks(blocks, layers) -> np.ndarray:
    """The blocks of ``layers`` (a tuple of indices), moved to the last axis: ``(..., N, N, k)`` -> per layer."""
    return np.moveaxis(np.asarray(blocks, dtype=np.float64)[..., list(layers), :, :], -3, 0)


def _per_layer(reduce):
    """``function(G, blocks, layers) -> (..., k)``: ``reduce`` of each layer's block."""
    return lambda G, blocks, layers: np.moveaxis(reduce(_layer_blocks(blocks, layers)), 0, -1)


@dataclass(frozen=True)
class Statistic:
    """One declaration of a statistic of a trial's per-example gradient Gram: the one place a statistic is defined.

    :data:`STATISTICS` holds one per statistic; :func:`gram_statistics` (so
    ``sample_confusion`` and sweeps), ``rare_tail`` and the command line read
    it, and :func:`resolve_statistic` turns a name into the function to call.
    A new statistic is one ``Statistic`` added with :func:`register_statistic`
    (or a line of :data:`STATISTICS`) plus its public export.

    Attributes
    ----------
    name : str
        The key of its values: ``"eta_star"``; a family parametrised by a
        number is written with its parameter in angle brackets,
        ``"cosine_q<q>"`` (``q`` a number in ``[0, 1]``, keys ``cosine_q0.05``)
        or ``"eta_star_layer<p>"`` (``p`` a block index, keys ``eta_star_layer2``).
    function : callable
        ``function(G, blocks)`` -> values of shape ``G.shape[:-2]``, for
        ``G`` (``(..., N, N)``) and the per-layer ``blocks``
        (``(..., L, N, N)``, or None when not ``needs_blocks``); for a family
        ``function(G, blocks, params)`` -> ``(..., len(params))``, one
        column per parameter of the tuple ``params``.
    doc : str
        One line saying what it is (shown in error messages and ``--help``).
    parameter : None, "q" or "p"
        The family's parameter: a number in ``[0, 1]`` or a block index.
    needs_blocks : bool
        Whether ``function`` reads the per-layer blocks.
    attained_by : callable, optional
        For a statistic attained by one pair ``i < j``: ``attained_by(G,
        blocks[, param])`` -> the ``(..., N, N)`` matrix whose smallest
        off-diagonal entry is that pair (``G`` for ``eta_star``, the cosines
        for ``min_cosine``).  ``rare_tail`` tracks the label-sign branch of
        that pair (``rare_event``'s docstring, "Categories and frozen populations").
    per_trial : bool
        Kept for every trial by :func:`gram_statistics` (so by
        ``sample_confusion``); False for statistics asked for by name only.
    """

    name: str
    function: Callable
    doc: str = ""
    parameter: str | None = None
    needs_blocks: bool = False
    attained_by: Callable | None = None
    per_trial: bool = True

    @property
    def prefix(self) -> str:
        """The name before its parameter: ``"cosine_q"`` for ``"cosine_q<q>"``; the name itself for a plain one."""
        return self.name.split("<")[0]

    def key(self, param=None) -> str:
        """The key of one member of the family (``cosine_q0.05``, ``eta_star_layer2``), or the plain name."""
        if self.parameter is None:
            return self.name
        return f"{self.prefix}{param:g}" if self.parameter == "q" else f"{self.prefix}{int(param)}"


@dataclass(frozen=True)
class BoundStatistic:
    """A statistic resolved for one kind of trial: its key, ``values(G, blocks)`` and, if one pair attains it,
    ``pair_matrix(G, blocks)`` (the matrix whose smallest off-diagonal entry is that pair)."""

    name: str
    values: Callable
    needs_blocks: bool
    pair_matrix: Callable | None = None


def _norms_sq(G):
    return squared_gradient_norms(G)


#: Name -> declaration, in the order :func:`gram_statistics` returns them.  Extend with :func:`register_statistic`.
STATISTICS: dict[str, Statistic] = {stat.name: stat for stat in (
    Statistic("eta_star", lambda G, blocks: eta_star(G), "max(0, -min_{i != j} G_ij), Definition 2.1",
              attained_by=lambda G, blocks: G),
    Statistic("min_cosine", lambda G, blocks: min_cosine(G), "minimum pairwise cosine of the per-example gradients",
              attained_by=lambda G, blocks: cosine_matrix(G)),
    Statistic("fraction_negative", lambda G, blocks: fraction_negative(G), "share of pairs with G_ij < 0"),
    Statistic("m_coherence", lambda G, blocks: m_coherence(G), "sum_ij G_ij / tr G (Chatterjee & Zielinski 2020)"),
    Statistic("gradient_diversity", lambda G, blocks: gradient_diversity(G), "tr G / sum_ij G_ij (Yin et al. 2018)"),
    Statistic("fraction_zero_gradient", lambda G, blocks: (_norms_sq(G) <= 0).mean(axis=-1),
              "share of examples whose gradient is exactly zero"),
    Statistic("undefined_cosine_pairs", lambda G, blocks: undefined_cosine_pairs(G),
              "pairs left out of the cosine statistics (a zero gradient among the two)"),
    Statistic("grad_norm_sq_mean", lambda G, blocks: _norms_sq(G).mean(axis=-1), "mean of |grad f_i|^2 = G_ii"),
    Statistic("grad_norm_sq_min", lambda G, blocks: _norms_sq(G).min(axis=-1), "min of |grad f_i|^2"),
    Statistic("grad_norm_sq_max", lambda G, blocks: _norms_sq(G).max(axis=-1), "max of |grad f_i|^2"),
    Statistic("fisher_lambda_max", lambda G, blocks: fisher_spectrum(G)[..., 0],
              "largest eigenvalue of the empirical Fisher, G / N"),
    Statistic("cosine_q<q>", lambda G, blocks, qs: cosine_quantiles(G, qs), "quantile q of the pairwise cosines",
              parameter="q"),
    Statistic("eta_star_layer<p>", _per_layer(eta_star), "eta_star of block p (layer p's weights and bias)",
              parameter="p", needs_blocks=True, attained_by=lambda G, blocks, p: blocks[..., p, :, :]),
    Statistic("min_cosine_layer<p>", _per_layer(min_cosine), "min_cosine of block p", parameter="p",
              needs_blocks=True, attained_by=lambda G, blocks, p: cosine_matrix(blocks[..., p, :, :])),
)}


def register_statistic(statistic: Statistic) -> Statistic:
    """Add a statistic to :data:`STATISTICS`: ``gram_statistics``, ``sample_confusion`` and ``rare_tail`` then know it.

    Refuses a name (or a family prefix) already taken.  Returns the statistic.
    """
    if not isinstance(statistic, Statistic):
        raise TypeError(f"argument 'statistic' must be a montecarlo.Statistic, got {type(statistic).__name__}")
    if statistic.parameter not in (None, "q", "p"):
        raise ValueError(f"argument 'statistic': parameter must be None, 'q' or 'p', got {statistic.parameter!r}")
    if not callable(statistic.function):
        raise TypeError(f"argument 'statistic': function must be callable, got {statistic.function!r}")
    taken = {s.prefix for s in STATISTICS.values()}
    if statistic.name in STATISTICS or statistic.prefix in taken:
        raise ValueError(f"argument 'statistic': the name {statistic.name!r} is taken")
    STATISTICS[statistic.name] = statistic
    return statistic


def accepted_statistics(n_blocks: int) -> str:
    """The accepted statistic names, in words (for error messages and help)."""
    words = {"q": "q in [0, 1]", "p": f"p in 0..{n_blocks - 1}"}
    return ", ".join(repr(s.name) + (f" ({words[s.parameter]})" if s.parameter else "") for s in STATISTICS.values())


def _parameter(stat: Statistic, text: str, n_blocks: int):
    """The parameter written after a family's prefix, or None when it is not one (wrong form or range)."""
    try:
        value = float(text) if stat.parameter == "q" else int(text)
    except ValueError:
        return None
    if stat.parameter == "q":
        return value if 0 <= value <= 1 else None
    return value if 0 <= value < n_blocks and text == str(value) else None


def resolve_statistic(spec, n_blocks: int, extra: dict | None = None) -> BoundStatistic:
    """The statistic named by ``spec`` for trials with ``n_blocks`` per-layer blocks; ValueError naming 'statistic'.

    ``spec`` is a name of :data:`STATISTICS` (a family with its parameter:
    ``"cosine_q0.05"``, ``"min_cosine_layer1"``), a :class:`Statistic`
    (not a family), a name of ``extra`` (statistics a kind of trial adds,
    name -> :class:`BoundStatistic`: ``"norm_ratio"`` of the paper's network),
    or a callable ``G (C x N x N) -> (C,)``.
    """
    if isinstance(spec, Statistic):
        if spec.parameter is not None:
            raise ValueError(f"argument 'statistic' = Statistic {spec.name!r} is a family: give one member by name")
        return BoundStatistic(spec.name, spec.function, spec.needs_blocks, spec.attained_by)
    if callable(spec):
        return BoundStatistic(getattr(spec, "__name__", repr(spec)), lambda G, blocks: spec(G), False)
    extra = extra or {}
    if isinstance(spec, str):
        if spec in extra:
            return extra[spec]
        stat = STATISTICS.get(spec)
        if stat is not None and stat.parameter is None:
            return BoundStatistic(spec, stat.function, stat.needs_blocks, stat.attained_by)
        for stat in STATISTICS.values():
            if stat.parameter is not None and spec.startswith(stat.prefix):
                param = _parameter(stat, spec[len(stat.prefix):], n_blocks)
                if param is None:
                    continue
                function, pair = stat.function, stat.attained_by
                return BoundStatistic(
                    stat.key(param), lambda G, blocks: function(G, blocks, (param,))[..., 0], stat.needs_blocks,
                    None if pair is None else (lambda G, blocks: pair(G, blocks, param)))
    more = "".join(f", {name!r}" for name in extra)
    raise ValueError(f"argument 'statistic' must be one of {accepted_statistics(n_blocks)}{more}, or a callable of "
                     f"the Gram G (C x N x N) returning C values; got {spec!r}")


def gram_statistics(G, blocks=None, quantiles=DEFAULT_QUANTILES) -> dict:
    """Every statistic of :data:`STATISTICS` kept per trial, for one Gram or a stack, as a dict of arrays.

    Keys: ``eta_star``, ``min_cosine``, ``fraction_negative``, ``m_coherence``,
    ``gradient_diversity``, ``fraction_zero_gradient``,
    ``undefined_cosine_pairs`` (the pairs the cosine statistics leave out),
    ``grad_norm_sq_mean``, ``grad_norm_sq_min``, ``grad_norm_sq_max``,
    ``fisher_lambda_max`` (the largest eigenvalue of the empirical Fisher),
    ``cosine_q<q>`` for each quantile, and with per-layer ``blocks``
    (``(..., beta+1, N, N)``) ``eta_star_layer<p>`` and
    ``min_cosine_layer<p>`` (conditional on the defined cosines of that
    layer's block, as :func:`min_cosine`); then any registered statistic.
    """
    G = _square_stack(G)
    if blocks is not None:
        blocks = np.asarray(blocks, dtype=np.float64)
        if blocks.shape[:-3] != G.shape[:-2] or blocks.shape[-2:] != G.shape[-2:]:
            raise ValueError(f"argument 'blocks' must have shape {G.shape[:-2]} + (L, N, N), got {blocks.shape}")
    stats = {}
    for stat in STATISTICS.values():
        if not stat.per_trial or (stat.needs_blocks and blocks is None):
            continue
        if stat.parameter is None:
            stats[stat.name] = np.asarray(stat.function(G, blocks))
            continue
        params = tuple(quantiles) if stat.parameter == "q" else tuple(range(blocks.shape[-3]))
        if params:
            for param, values in zip(params, np.moveaxis(stat.function(G, blocks, params), -1, 0)):
                stats[stat.key(param)] = values
    return stats
