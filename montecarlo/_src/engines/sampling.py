"""``sample_confusion`` and ``sample_grams``: independent trials of a :class:`~..trials.base.Trial` -> Gram.

The engines of plain Monte Carlo: trials in seed blocks of ``SEED_BLOCK``
(block ``k`` draws from ``SeedSequence(seed, spawn_key=(k,))``), blocks
batched under a memory budget, each batch's Gram blocks reduced to the
statistics of ``statistics.gram_statistics.STATISTICS``.  What a trial is
(the paper's network, any torch module) is the Trial's business.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numba
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import validation
from ..draw.random_source import SEED_BLOCK, NormalSource, block_seed, check_seed
from ..provenance import versions
from ..statistics.gram_statistics import DEFAULT_QUANTILES, STATISTICS, gram_statistics
from ..statistics.means import mean_se
from ..statistics.tails import undefined_cosines
from ..gram.memory import refuse_if_too_large, statistics_bytes, subset_simulation_bytes
from ..trials.base import Trial, concat_draws
from ..trials.mlp import METHODS, RANDOM_SOURCES, as_trial

__all__ = ["METHODS", "RANDOM_SOURCES", "ConfusionSample", "GramSample", "sample_confusion", "sample_grams",
           "versions"]


#: The statistics ``ConfusionSample.summary`` shows by default.
SUMMARY_STATISTICS = ("eta_star", "min_cosine", "cosine_q0.05", "cosine_q0.5", "fraction_negative", "m_coherence",
                      "grad_norm_sq_mean", "fisher_lambda_max")


@dataclass(frozen=True)
class ConfusionSample:
    """Per-trial statistics of ``trials`` independent draws, as numpy arrays.

    ``stats[name][t]`` is statistic ``name`` of trial ``t`` (see
    ``gram_statistics``: ``eta_star``, ``min_cosine``, quantiles, fraction of
    negative pairs, gradient norms, per-layer ``eta_star_layer<p>``, ...).
    ``config`` says what was sampled, ``meta`` how (backend, random source,
    each layer's sampling mode ``layer_modes`` -- "dense", "lazy_gaussian" or
    "lazy_orthogonal" -- and ``weight_normals_per_trial``, the standard normals
    a trial draws for its weights; seconds drawing and computing, package
    versions; ``undefined_cosines``, what the cosine statistics are
    conditional on: ``statistics.tails.undefined_cosines(sample).to_dict()``,
    the trials whose minimum cosine is undefined and the pairs left out).
    Trial ``t`` is a pure function of ``(config, seed, t)``.
    """

    config: dict
    seed: object
    stats: dict
    meta: dict = field(default_factory=dict)

    @property
    def trials(self) -> int:
        return len(self.stats["eta_star"])

    def to_frame(self) -> pd.DataFrame:
        """One row per trial: ``trial`` and every statistic; ``config``, ``seed`` and ``meta`` in ``.attrs``."""
        frame = pd.DataFrame({"trial": np.arange(self.trials), **self.stats})
        frame.attrs.update(config=self.config, seed=self.seed, meta=self.meta)
        return frame

    def summary(self, statistics=SUMMARY_STATISTICS) -> pd.DataFrame:
        """A small table, one row per statistic: ``trials`` with a defined value, ``mean``, its ``se``
        (``statistics.means.mean_se`` over those trials), ``q05``, ``median``, ``q95``, ``min`` and ``max``.

        ``statistics``: the names to show (default: the headline ones that this sample holds); undefined (NaN)
        values, the cosines of a trial with at most one non-zero gradient, are left out and counted.
        """
        rows = []
        for name in statistics:
            if name not in self.stats:
                continue
            values = np.asarray(self.stats[name], dtype=np.float64)
            values = values[np.isfinite(values)]
            if values.size == 0:
                rows.append({"statistic": name, "trials": 0})
                continue
            mean, se = mean_se(values)
            q05, median, q95 = np.quantile(values, (0.05, 0.5, 0.95))
            rows.append({"statistic": name, "trials": values.size, "mean": mean, "se": se, "q05": q05,
                         "median": median, "q95": q95, "min": values.min(), "max": values.max()})
        return pd.DataFrame(rows).set_index("statistic")

    def __repr__(self) -> str:
        what = ", ".join(f"{k}={self.config[k]}" for k in ("width", "depth", "activation", "module", "n_samples")
                         if k in self.config)
        eta = self.stats.get("eta_star")
        mean, se = mean_se(eta) if eta is not None and len(eta) > 1 else (np.nan, np.nan)
        return (f"ConfusionSample({what}; {self.trials} trials, seed {self.seed}; eta_star mean {mean:.4g} +- "
                f"{se:.2g}; {len(self.stats)} statistics per trial: .summary(), .to_frame())")


def statistics_per_trial(layers: int, quantiles) -> int:
    """How many statistics ``sample_confusion`` keeps per trial (``gram_statistics``: the per-trial rows of
    ``STATISTICS``, one per quantile of a ``q`` family, one per block of a ``p`` family)."""
    count = 0
    for stat in STATISTICS.values():
        if stat.per_trial:
            count += 1 if stat.parameter is None else len(quantiles) if stat.parameter == "q" else layers
    return count


def _quantile_list(quantiles) -> tuple:
    try:
        return tuple(np.atleast_1d(np.asarray(quantiles, dtype=np.float64)))
    except (TypeError, ValueError):
        raise TypeError(f"argument 'quantiles' must be a sequence of numbers in [0, 1], got {quantiles!r}") from None


def _blocks_per_batch(trial: Trial, batch_size) -> int:
    if batch_size is None:
        batch_size = trial.default_batch_size()
    return math.ceil(validation.integer("batch_size", batch_size, minimum=1) / SEED_BLOCK)


def run_peak_bytes(trial: Trial, trials: int, batch_trials: int, *, kept_per_trial: int, reduce: bool) -> dict:
    """The estimated peak of a run of ``trials`` trials in batches of ``batch_trials``, in parts (bytes).

    ``batch``: one batch drawn and computed (``Trial.peak_bytes``, the Trial's
    own estimate); ``reduce``: its Gram blocks reduced to statistics
    (``gram.memory.statistics_bytes``, when ``reduce``; the Grams themselves
    are summed straight into the kept arrays); ``kept``: the results kept over
    all trials, ``kept_per_trial`` bytes each.  The parts are added: the
    reduction follows the computation, whose working arrays are freed by
    then, so the sum is at most twice the larger.  Memory does not grow with
    ``trials`` except through ``kept``.
    """
    out_trials = batch_trials if trial.merge_batches() else min(batch_trials, SEED_BLOCK)
    layers, N = len(trial.block_names()), trial.n_samples
    return {"batch": int(trial.peak_bytes(batch_trials)),
            "reduce": statistics_bytes(out_trials, layers, N) if reduce else 0,
            "kept": int(trials * kept_per_trial)}


def refuse_run_too_large(trial: Trial, trials: int, batch_trials: int, parts: dict, kept: str,
                         where: str = "", *, trials_name: str = "'trials'", size: str | None = None,
                         batch_size_name: str | None = "'batch_size'", smaller: str | None = None) -> None:
    """Refuse a run whose estimated peak (:func:`run_peak_bytes`) exceeds the memory available (host, and the
    CUDA device's for a batch).

    The message names what dominates: the results ``kept`` of ``'trials'``,
    or one batch (the network, ``n_samples`` and ``batch_size``); ``where``
    prefixes it (a sweep's point).  A caller that spells its settings
    otherwise (a sweep, its command line) passes the names: ``trials_name``,
    ``size`` (the batch's size in words; default ``trial.size_description()``),
    ``batch_size_name`` (None: the caller has no batch size) and ``smaller``
    (what to lower when one batch is too large).
    """
    size = trial.size_description() if size is None else size
    per_batch = f"{batch_size_name} = {batch_trials}" if batch_size_name else f"{batch_trials}"
    batch = f"{size} with {per_batch} trials per batch (at least one seed block of {SEED_BLOCK})"
    results = f"{trials_name} = {trials} trials keeping {kept}"
    if smaller is None:
        smaller = ("use a smaller network, fewer examples or a smaller batch_size" if batch_size_name
                   else "use a smaller network or fewer examples")
    if parts["kept"] > parts["batch"] + parts["reduce"]:
        what, lower = f"{where}{results} (besides one batch: {batch})", f"lower {trials_name}"
    else:
        what, lower = f"{where}{batch}, besides {results},", smaller
    device = trial.device
    host = sum(parts.values())
    if device is not None and getattr(device, "type", None) == "cuda":
        refuse_if_too_large(parts["batch"], f"{where}{batch}", smaller, device)
        if trial.random_source == "torch":  # drawn on the device: the host holds only results
            host = parts["reduce"] + parts["kept"]
    refuse_if_too_large(host, what, lower)


def refuse_confusion_too_large(trial: Trial, trials, batch_size=None, quantiles=DEFAULT_QUANTILES, *,
                               copies: int = 2, where: str = "", **names) -> None:
    """Refuse a :func:`sample_confusion` run that cannot fit, before anything is drawn.

    Its statistics (:func:`statistics_per_trial`, float64) are kept ``copies``
    times at most: per batch and then joined (2); a sweep's point also as a
    frame and as the table it writes (3).  ``names``: how the caller spells
    its settings in the message (:func:`refuse_run_too_large`).
    """
    trials = validation.integer("trials", trials, minimum=1)
    batch_trials = _blocks_per_batch(trial, batch_size) * SEED_BLOCK
    count = statistics_per_trial(len(trial.block_names()), _quantile_list(quantiles))
    parts = run_peak_bytes(trial, trials, batch_trials, kept_per_trial=copies * 8 * count, reduce=True)
    refuse_run_too_large(trial, trials, batch_trials, parts, f"{count} statistics per trial", where, **names)


def refuse_rare_tail_too_large(trial: Trial, population, level_probability) -> None:
    """Refuse, before anything is drawn, a rare tail of ``trial`` whose populations cannot fit in memory.

    Called at the entry of ``rare_tail`` (and of the resumable tail runs).
    First one trial must fit (the dry run that counts its ``D`` normals draws
    one); then a repeat's levels, ``gram.memory.subset_simulation_bytes``:
    ``population`` members of ``D`` normals, twice, the seeds' chains and
    proposals, and the statistic of one chunk of members
    (``trials.replay.MEMORY_PER_CALL`` of normals at a time, ``Trial.peak_bytes``
    and the reduction of its Grams).  Values of ``population`` and
    ``level_probability`` that are not valid are left to the sampler's own checks.
    """
    from ..trials.replay import MEMORY_PER_CALL

    lower_net = "use a smaller network or fewer examples"
    refuse_if_too_large(trial.peak_bytes(1), f"rare_tail: one trial of {trial.size_description()}", lower_net)
    try:
        n = validation.integer("population", population, minimum=2)
        p0 = float(level_probability)
    except (TypeError, ValueError):
        return
    if not 0 < p0 < 1:
        return
    D = trial.normals_per_trial()
    seeds = min(n, max(1, round(p0 * n)))
    rows = min(n, max(1, MEMORY_PER_CALL // (8 * D)))
    evaluation = trial.peak_bytes(rows) + statistics_bytes(rows, len(trial.block_names()), trial.n_samples)
    refuse_if_too_large(subset_simulation_bytes(D, n, seeds, evaluation),
                        f"rare_tail of {trial.size_description()}: 'population' = {n} members of D = {D} normals "
                        f"each (a level and the next, with {seeds} chains)",
                        f"lower 'population', or {lower_net}")


@dataclass(frozen=True)
class _Plan:
    """Validated settings of a Monte Carlo run (shared by sample_confusion and sample_grams)."""

    trial: Trial
    trials: int
    seed: object
    blocks_per_batch: int

    def meta(self, timings: dict) -> dict:
        return {**self.trial.meta(), **timings, "versions": versions(), "seed_block": SEED_BLOCK}


def _plan(trial: Trial, trials, seed, batch_size, progress) -> _Plan:
    """Validated settings.  The caller has refused, before anything is drawn, what cannot fit in memory.

    A batch never holds fewer than the SEED_BLOCK trials of one seed block, because a block draws each layer for
    all its trials at once from one generator: drawing a trial on its own would change its numbers (only
    replaying the whole block's stream and keeping one trial would not, at 8 times the drawing cost, and only for
    numpy's generator), so a network whose single block cannot fit is refused.  The results kept grow with
    'trials' (nothing else does): a count whose results cannot fit is refused too.
    """
    trials = validation.integer("trials", trials, minimum=1)
    seed = check_seed(seed)
    validation.flag("progress", progress)
    return _Plan(trial, trials, seed, _blocks_per_batch(trial, batch_size))


def _draw_blocks(plan: _Plan, blocks) -> list:
    """Draw seed blocks; numpy blocks in parallel threads (numpy releases the GIL while it fills arrays)."""
    trial = plan.trial
    if trial.random_source == "torch":
        return [trial.draw(NormalSource.torch(block_seed(plan.seed, k), trial.device), SEED_BLOCK) for k in blocks]

    def draw(k):
        return trial.draw(NormalSource.numpy(block_seed(plan.seed, k)), SEED_BLOCK)

    workers = min(len(blocks), numba.get_num_threads())
    if workers <= 1:
        return [draw(k) for k in blocks]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(draw, blocks))


def _gram_batches(plan: _Plan, progress: bool, timings: dict):
    """Yield the per-layer Gram blocks ``(T_b, L, N, N)`` of consecutive trials, batch by batch.

    Small networks, and the torch backend (``bmm`` over the trials), compute
    a whole batch at once (``Trial.merge_batches``); for networks that draw
    many numbers per trial the CPU backends compute block by block, which
    avoids copying the drawn arrays together.  ``timings`` accumulates
    seconds spent drawing and computing.
    """
    n_blocks = math.ceil(plan.trials / SEED_BLOCK)
    merge = plan.trial.merge_batches()
    timings.update(seconds_drawing=0.0, seconds_computing=0.0)
    for first in tqdm(range(0, n_blocks, plan.blocks_per_batch), desc="trial batches", disable=not progress,
                      leave=False):
        start = time.perf_counter()
        draws = _draw_blocks(plan, range(first, min(first + plan.blocks_per_batch, n_blocks)))
        if merge:
            draws = [concat_draws(draws)]
        middle = time.perf_counter()
        timings["seconds_drawing"] += middle - start
        for draw in draws:
            blocks = plan.trial.blocks(draw)
            end = time.perf_counter()
            timings["seconds_computing"] += end - middle
            middle = end
            yield blocks


def _trial_and_count(net, n_samples, trials):
    """``sample_confusion(trial, T)``: with a Trial the second positional argument is the number of trials."""
    if isinstance(net, Trial) and trials is None:
        return None, n_samples
    return n_samples, trials


def sample_confusion(net, n_samples=None, trials=None, *, labels=None, loss=None, seed, backend=None, dtype=None,
                     method=None, batch_size=None, random_source=None, device=None,
                     quantiles=DEFAULT_QUANTILES, data=None, progress=False) -> ConfusionSample:
    """Monte Carlo of gradient confusion at initialisation: ``sample_confusion(net, N, T, ...)`` or ``(trial, T, ...)``.

    Each trial draws fresh weights from ``net``'s initialisation, ``n_samples``
    points uniform on ``S^{d-1}`` and their labels, computes the exact
    per-example gradient Gram (per layer) and keeps its statistics
    (``gram_statistics``: every statistic of ``STATISTICS``).  Exact per
    trial; the Monte Carlo error is over trials.  Any kind of trial runs the
    same way: give a :class:`~montecarlo.Trial` (an ``MLPTrial``, or a
    ``ModuleTrial`` of any torch module) instead of ``net``, and the number
    of trials second; the trial carries ``n_samples``, labels, loss and how
    it is computed, so those arguments are then left out.

    The cosine statistics (``min_cosine``, ``cosine_q<q>``) are conditional
    on the pairs whose cosine is defined: a pair with a zero per-example
    gradient is left out, and a trial with at most one non-zero gradient has
    an undefined (NaN) minimum cosine.  With relu at the output (``net``'s
    default, the paper's eq. 4) an example's gradient is exactly zero
    whenever its output pre-activation is negative, so this is common:
    ``meta["undefined_cosines"]`` gives the counts, and ``cosine_tail``
    counts an undefined trial as not confused unless asked to condition.

    Parameters
    ----------
    net : MLP or Trial
    n_samples : int >= 2
        ``N``, examples per trial (with a Trial: the number of trials).
    trials : int >= 1
    labels : "linear", "tanh", "random_sign" or a callable ``labels(X, rng)``
    loss : "square", "logistic" or "output"
    seed : int >= 0 (or a sequence of them)
        Trial ``t`` draws from ``SeedSequence(seed, spawn_key=(t // 8,))``, so
        results do not depend on ``batch_size``, threads, workers or order.
    backend : "auto" or a name in ``gram.GRAM_BACKENDS`` ("numpy", "numba", "torch")
        "auto" is numba, or torch on a CUDA device or with ``random_source="torch"``
        (``gram.resolve_backend``, the rule ``gradient_gram`` follows too).
    dtype : "float64" or "float32"
    method : "auto" (= "lazy"), "lazy" or "dense"
        "lazy" samples every layer whose fan-in and fan-out exceed ``N``
        exactly in law without drawing its weight matrix (``gram/lazy.py``)
        and the others densely; "dense" draws every weight.  The two give the
        same distribution, not the same numbers; ``meta["method"]`` says which
        layers were lazy.
    batch_size : int, optional
        Trials per compute batch (rounded up to a multiple of 8); by default
        as many as keep a batch's arrays under 256 MiB.  A batch is never
        smaller than one seed block of 8 trials: the block draws each layer
        for its 8 trials at once from one generator, so drawing a huge
        network's trials one by one would change their numbers.  Instead, a run
        whose estimated peak memory exceeds the memory available is refused
        with a ``ValueError`` before anything is drawn: one batch
        (``Trial.peak_bytes``; for the paper's network
        ``trials.mlp.estimated_peak_bytes``), the reduction of its Grams
        and the statistics kept for every trial (:func:`run_peak_bytes`).
        Memory grows with ``trials`` only through those statistics (about
        30 numbers per trial): a count whose statistics cannot fit is refused
        naming ``trials``.
    random_source : "numpy" (default) or "torch"
        "torch" draws on ``device`` with torch's generator (no host-to-device
        copy of the weights); its results agree with "numpy" in distribution only.
    device : torch device for backend "torch" ("cpu", "cuda", "cuda:k").
    quantiles : quantiles of the off-diagonal cosines to keep.
    data : optional pair ``(X, y)`` (``N x d`` and ``N``) used by every trial instead
        of fresh sphere data: the randomness is then over the network only.
    progress : bool
        Show a progress bar over compute batches.
    """
    n_samples, trials = _trial_and_count(net, n_samples, trials)
    trial = as_trial(net, n_samples, labels=labels, loss=loss, method=method, backend=backend, dtype=dtype,
                     random_source=random_source, device=device, data=data)
    plan = _plan(trial, trials, seed, batch_size, progress)
    refuse_confusion_too_large(trial, plan.trials, batch_size, quantiles)
    start = time.perf_counter()
    timings: dict = {}
    collected: dict[str, list] = {}
    for layer_blocks in _gram_batches(plan, progress, timings):
        for name, values in gram_statistics(layer_blocks.sum(axis=-3), layer_blocks, quantiles).items():
            collected.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
    stats = {name: np.concatenate(parts)[:plan.trials] for name, parts in collected.items()}
    timings["seconds"] = time.perf_counter() - start
    meta = {**plan.meta(timings), "undefined_cosines": undefined_cosines(stats, trial.n_samples).to_dict()}
    return ConfusionSample(config=trial.config(), seed=plan.seed, stats=stats, meta=meta)


@dataclass(frozen=True)
class GramSample:
    """The Grams of ``trials`` independent draws: ``G`` (``T x N x N``) and, if asked for, ``blocks`` per layer."""

    G: np.ndarray
    blocks: np.ndarray | None
    config: dict
    seed: object
    meta: dict

    def __repr__(self) -> str:
        layers = "" if self.blocks is None else f", blocks {self.blocks.shape[1]} per trial"
        return f"GramSample(G of shape {self.G.shape}{layers}, seed {self.seed})"


def sample_grams(net, n_samples=None, trials=None, *, labels=None, loss=None, seed, backend=None, dtype=None,
                 method=None, batch_size=None, random_source=None, device=None, per_layer=False, data=None,
                 progress=False) -> GramSample:
    """The per-example gradient Grams themselves, for the same draws as :func:`sample_confusion`.

    Trial ``t`` of ``sample_grams`` and of ``sample_confusion`` with the same
    arguments is the same network, data and labels (a Trial in place of
    ``net`` works as there).  Holds ``T N^2`` numbers
    (``T (beta + 1) N^2`` with ``per_layer``): use ``sample_confusion`` when
    only statistics are needed.  ``data=(X, y)`` fixes the data for every trial.
    ``meta`` records seconds spent drawing and computing.  The Grams are
    written batch by batch into arrays of their final size; a run whose
    Grams and one batch cannot fit in the memory available is refused before
    anything is drawn, naming ``trials`` when the Grams dominate.
    ``progress`` (a bool) shows a progress bar over compute batches.
    """
    n_samples, trials = _trial_and_count(net, n_samples, trials)
    trial = as_trial(net, n_samples, labels=labels, loss=loss, method=method, backend=backend, dtype=dtype,
                     random_source=random_source, device=device, data=data)
    per_layer = validation.flag("per_layer", per_layer)
    N, layers = trial.n_samples, len(trial.block_names())
    itemsize = np.dtype(getattr(trial, "dtype", np.float64)).itemsize
    plan = _plan(trial, trials, seed, batch_size, progress)
    batch_trials = plan.blocks_per_batch * SEED_BLOCK
    parts = run_peak_bytes(trial, plan.trials, batch_trials, kept_per_trial=itemsize * N * N * (1 + layers * per_layer),
                           reduce=False)
    refuse_run_too_large(trial, plan.trials, batch_trials, parts,
                         f"each trial's N x N Gram{f' and its {layers} blocks' if per_layer else ''} (N = {N})")
    start = time.perf_counter()
    timings: dict = {}
    G = blocks = None
    filled = 0
    # written into arrays of the final size as the batches come: the Grams are held once, never joined from parts
    for layer_blocks in _gram_batches(plan, progress, timings):
        count = min(layer_blocks.shape[0], plan.trials - filled)
        if G is None:
            G = np.empty((plan.trials, N, N), dtype=layer_blocks.dtype)
            blocks = np.empty((plan.trials,) + layer_blocks.shape[1:], dtype=layer_blocks.dtype) if per_layer else None
        np.sum(layer_blocks[:count], axis=-3, out=G[filled:filled + count])
        if per_layer:
            blocks[filled:filled + count] = layer_blocks[:count]
        filled += count
    timings["seconds"] = time.perf_counter() - start
    return GramSample(G=G, blocks=blocks, config=trial.config(), seed=plan.seed, meta=plan.meta(timings))
