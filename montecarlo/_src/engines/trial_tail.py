r"""Rare tails of a trial statistic: a :class:`~..trials.base.Trial` made a function of its standard normals.

Every random object of a trial (weights, Haar frames, sphere data, labels) is
built from standard normal draws (``draw/random_source.py``), so one trial is
a deterministic function ``S(xi)`` of one standard Gaussian vector
``xi ~ N(0, I_D)``: a ``ReplaySource`` answers the trial's ``normal(shape)``
calls with consecutive slices of ``xi`` (``D`` is ``Trial.normals_per_trial``,
found by a dry run).  :class:`TrialStatistic` is that function, and
:func:`rare_tail` hands it to subset simulation (``subset_simulation.py``).
Any Trial works -- the paper's network (``MLPTrial``) or a torch module
(``ModuleTrial``) -- and any statistic of ``statistics.gram_statistics.STATISTICS``.
"""

from __future__ import annotations

import time

import numpy as np

from .. import validation
from ..draw.random_source import CountingSource, ReplaySource
from ..statistics.gram_statistics import BoundStatistic, resolve_statistic
from .sampling import as_trial
from .subset_simulation import DEFAULT_REPEATS, SubsetSimulation, _run_repeats
from .tail_result import RareTail, summarise_states

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


def rare_tail(net, n_samples=None, *, statistic, threshold, direction="upper", labels=None, loss=None, seed,
              method=None, backend=None, population=1000, level_probability=0.1, target_acceptance=0.3,
              repeats=DEFAULT_REPEATS, max_levels=None, dtype=None, device=None, resume=None, on_level=None,
              grid_points=200, progress=False, strict=False) -> RareTail:
    r"""Rare tail ``Pr[S > threshold]`` (or ``<``) of a trial statistic of ``sample_confusion``, by subset simulation.

    A trial (a network from its initialisation, ``n_samples`` points uniform
    on the sphere, their labels) is a deterministic function of its ``D``
    standard normals (:class:`TrialStatistic`); the tail is estimated by
    subset simulation with pCN moves in that space (``subset_simulation``'s
    docstring; Au & Beck 2001), with ``repeats`` independent repeats.

    Parameters
    ----------
    net : MLP or Trial
        The paper's network (with ``n_samples``, ``labels``, ``loss``,
        ``method``, ``backend``, ``dtype``, ``device``), or any
        :class:`~montecarlo.Trial` (``MLPTrial``, ``ModuleTrial`` of a torch
        module), which carries those itself.
    n_samples : int >= 2
    statistic : str, Statistic or callable
        A name of ``montecarlo.STATISTICS`` -- ``"eta_star"``,
        ``"min_cosine"`` (for ``min cosine < -tau`` use ``direction="lower"``),
        ``"cosine_q<q>"``, ``"eta_star_layer<p>"``, ``"min_cosine_layer<p>"``,
        a registered one, ... --, ``"norm_ratio"`` of the paper's network
        (``|z_(beta-1)|^2 / |z_0|^2`` of the first example from the drawn
        layers, without the Gram), a :class:`~montecarlo.Statistic`, or a
        callable ``G (C x N x N) -> (C,)``.
    threshold : float
    direction : "upper" (``Pr[S > threshold]``) or "lower" (``Pr[S < threshold]``)
    labels, loss, method, backend, dtype, device
        As in ``sample_confusion`` (numpy random source); with an MLP only.
    seed : int >= 0 or a sequence of them
        Level ``k`` of repeat ``r`` draws from ``SeedSequence(seed, spawn_key=(r, k))``.
    population, level_probability, target_acceptance, repeats, max_levels, resume, on_level, grid_points, strict
        As in :func:`rare_tail_of` (``repeats`` 10 by default).
    progress : show a progress bar over repeats.

    Returns
    -------
    RareTail
        ``config`` records the trial (network, ``n_samples``, labels, loss),
        the statistic, how the trial is computed (sampling method, backend)
        and ``D``.  For a statistic attained by one pair the categories are
        the label-sign branches of that pair (``branch_shares``,
        ``cross_moves``, ``warnings``; :class:`TrialStatistic`).

    Raises
    ------
    ValueError
        Bad input (naming the argument), a threshold most plain draws already
        pass, or a probability below ``1e-300``.
    ChainsStoppedMoving
        When the chains of some level cannot move (a plateau of the
        statistic, or acceptance below 1% after adaptation).
    PopulationCollapsed
        Under ``strict=True``, when a level's population fell into one
        label-sign branch (naming the repeat, the level and the shares).
    """
    sampler, config = trial_sampler(net, n_samples, statistic=statistic, threshold=threshold, direction=direction,
                                    labels=labels, loss=loss, seed=seed, method=method, backend=backend,
                                    population=population, level_probability=level_probability,
                                    target_acceptance=target_acceptance, max_levels=max_levels, dtype=dtype,
                                    device=device, strict=strict)
    grid_points = validation.integer("grid_points", grid_points, minimum=2)
    start = time.perf_counter()
    states = _run_repeats(sampler, repeats, resume, on_level, progress)
    return summarise_states(sampler, states, time.perf_counter() - start, config, grid_points)


def trial_sampler(net, n_samples=None, *, statistic, threshold, direction="upper", labels=None, loss=None, seed,
                  method=None, backend=None, population=1000, level_probability=0.1, target_acceptance=0.3,
                  max_levels=None, dtype=None, device=None, strict=False):
    """The :class:`SubsetSimulation` of a trial statistic, and the config :func:`rare_tail` records.

    Arguments as in :func:`rare_tail`; used by it and by the resumable, distributed runs of ``tail_run``.
    """
    trial = as_trial(net, n_samples, labels=labels, loss=loss, method=method, backend=backend, dtype=dtype,
                     device=device)
    if trial.random_source != "numpy":
        raise ValueError("argument 'net': rare_tail replays numpy draws; give a Trial with random_source='numpy'")
    function = TrialStatistic(trial, statistic)
    config = {**trial.config(), "statistic": function.name, **{k: v for k, v in trial.meta().items()
                                                                 if k in ("method", "backend")}}
    sampler = SubsetSimulation(function, function.dimension, threshold=threshold, direction=direction, seed=seed,
                               population=population, level_probability=level_probability,
                               target_acceptance=target_acceptance, max_levels=max_levels, strict=strict)
    return sampler, config
