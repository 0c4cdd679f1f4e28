r"""Rare tails of a trial statistic: subset simulation of a :class:`~..trials.base.Trial`'s statistic.

A trial is a deterministic function of its standard normals
(``trials/replay.py``, :class:`TrialStatistic`); :func:`rare_tail` hands that
function to subset simulation (``subset_simulation.py``).  Any Trial works --
the paper's network (``MLPTrial``) or a torch module (``ModuleTrial``) -- and
any statistic of ``statistics.gram_statistics.STATISTICS``.
"""

from __future__ import annotations

import time

from ..trials.mlp import as_trial
from ..trials.replay import TrialStatistic
from .sampling import refuse_rare_tail_too_large
from .subset_simulation import DEFAULT_REPEATS, SubsetSimulation, _run_repeats, check_grid_points
from .tail_result import RareTail, summarise_states


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
        As in :func:`rare_tail_of` (``population`` an integer >= 10,
        ``level_probability`` in (0, 0.5], ``target_acceptance`` in (0, 1),
        ``repeats`` an integer >= 2, 10 by default, ``max_levels`` None or an
        integer >= 1, ``grid_points`` an integer >= 2, ``on_level`` None or a
        callable, ``strict`` a bool).
    progress : bool
        Show a progress bar over repeats.

    Returns
    -------
    RareTail
        ``estimate`` is the mean of the repeats' estimates and ``interval``
        its 95% Student-t interval, clipped to ``[0, 1]`` (probabilities);
        the tail curve ``tail`` and its bounds likewise lie in ``[0, 1]``
        (``tail_result``'s docstring, "Interval").
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
    grid_points = check_grid_points(grid_points)
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
    refuse_rare_tail_too_large(trial, population, level_probability)  # before the dry run counts D
    function = TrialStatistic(trial, statistic)
    config = {**trial.config(), "statistic": function.name, **{k: v for k, v in trial.meta().items()
                                                                 if k in ("method", "backend")}}
    sampler = SubsetSimulation(function, function.dimension, threshold=threshold, direction=direction, seed=seed,
                               population=population, level_probability=level_probability,
                               target_acceptance=target_acceptance, max_levels=max_levels, strict=strict)
    return sampler, config
