r"""A trial's statistic as a function of its standard normals: what subset simulation moves.

Every random object of a trial (weights, Haar frames, sphere data, labels) is
built from standard normal draws (``draw/random_source.py``), so one trial is
a deterministic function ``S(xi)`` of one standard Gaussian vector
``xi ~ N(0, I_D)``: a ``ReplaySource`` answers the trial's ``normal(shape)``
calls with consecutive slices of ``xi`` (``D`` is ``Trial.normals_per_trial``,
found by a dry run).  :class:`TrialStatistic` is ``S``, for any Trial and any
statistic of ``statistics.gram_statistics.STATISTICS``.
"""

from __future__ import annotations

import numpy as np

from ..draw.random_source import CountingSource, ReplaySource
from ..statistics.gram_statistics import BoundStatistic, resolve_statistic

MEMORY_PER_CALL = 256 * 2**20  # bytes of drawn normals per trial evaluation chunk


class TrialStatistic:
    """A trial's statistic as a function of its ``D`` standard normals: ``f(xi) -> (C,)`` (callable).

    Draws exactly what one trial of ``sample_confusion`` draws, in the same
    order (``Trial.draw``) from a ``ReplaySource``, computes the per-layer
    Gram (``Trial.blocks``) and reduces it to the statistic -- only the one
    asked for.  The law of ``f(xi)`` for ``xi ~ N(0, I_D)`` is the law of the
    statistic in ``sample_confusion`` (the numbers differ: ``sample_confusion``
    draws block by block).

    For a statistic attained by one pair (``Statistic.attained_by``:
    ``min_cosine``, ``eta_star`` and their ``_layer<p>`` forms; ``categorised``
    is then true) a call returns ``(values, category, pair)``: ``category`` 0
    when the attaining pair's labels have ``y_i y_j >= 0`` and 1 when
    ``y_i y_j < 0`` (the label-sign branch, ``category_names``), ``pair`` its
    index in ``np.triu_indices(N, 1)`` order -- computed from the same Gram in
    the same pass (``splitting_state``'s docstring).
    """

    category_names = ("y_i y_j = +1", "y_i y_j = -1")

    def __init__(self, trial, statistic):
        self.trial = trial
        extra = {name: BoundStatistic(name, function, False) for name, function in trial.draw_statistics().items()}
        self.statistic = resolve_statistic(statistic, len(trial.block_names()), extra)
        self.name = self.statistic.name
        self.from_draw = self.name in extra and self.statistic is extra[self.name]
        self.categorised = self.statistic.pair_matrix is not None
        self.dimension = trial.normals_per_trial()
        if self.from_draw:  # a statistic of the draw: refuse a trial it does not apply to now, not at level 3
            self.statistic.values(trial.draw(CountingSource(1), 1))
        # chains per call: keep each call's drawn normals under MEMORY_PER_CALL
        self.chunk = max(1, MEMORY_PER_CALL // (8 * self.dimension))

    def _values(self, xi):
        source = ReplaySource(xi)
        draw = self.trial.draw(source, xi.shape[0])
        source.finish()
        if self.from_draw:
            return np.asarray(self.statistic.values(draw), dtype=np.float64)
        blocks = np.asarray(self.trial.blocks(draw), dtype=np.float64)
        G = blocks.sum(axis=-3)
        values = np.asarray(self.statistic.values(G, blocks), dtype=np.float64)
        if values.shape != (xi.shape[0],):
            raise ValueError(f"argument 'statistic' must map the Grams (C x N x N, C = {xi.shape[0]}) to C values, "
                             f"got shape {values.shape}")
        if not self.categorised:
            return values
        N = self.trial.n_samples
        i, j = np.triu_indices(N, k=1)
        pairs = self.statistic.pair_matrix(G, blocks)[..., i, j]
        pair = np.argmin(np.where(np.isnan(pairs), np.inf, pairs), axis=-1).astype(np.int64)
        y = np.broadcast_to(np.asarray(draw.y, dtype=np.float64), (xi.shape[0], N))
        rows = np.arange(xi.shape[0])
        category = (y[rows, i[pair]] * y[rows, j[pair]] < 0).astype(np.int64)
        return values, category, pair

    def __call__(self, xi):
        """``(C,)`` values of the rows of ``xi`` (``(C, D)``); ``(values, category, pair)`` when ``categorised``."""
        xi = np.asarray(xi, dtype=np.float64)
        if xi.ndim != 2 or xi.shape[1] != self.dimension:
            raise ValueError(f"argument 'xi' must have shape (C, {self.dimension}), got {xi.shape}")
        parts = [self._values(xi[i:i + self.chunk]) for i in range(0, xi.shape[0], self.chunk)]
        if not self.categorised:
            return np.concatenate(parts)
        return tuple(np.concatenate(column) for column in zip(*parts))
