"""``sample_confusion`` and ``sample_grams``: independent trials of (random network, sphere data, labels) -> Gram."""

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
from ..draw.data import make_labels, sample_sphere
from ..draw.elementwise import LOSSES
from ..gram import layer_blocks, resolve_backend
from ..gram.lazy import MODE_NAMES, LayerDraw, describe_modes, draw_layers, lazy_layers
from ..statistics.gram_statistics import DEFAULT_QUANTILES, gram_statistics
from ..statistics.tails import undefined_cosines
from ..draw.network import MLP
from ..draw.random_source import SEED_BLOCK, NormalSource, block_seed, check_seed

RANDOM_SOURCES = ("numpy", "torch")
METHODS = ("auto", "lazy", "dense")
MEMORY_PER_BATCH = 256 * 2**20  # bytes of weights drawn per compute batch, by default
MERGE_LIMIT = 2**17  # numbers drawn per trial below which a batch is computed in one call


def versions() -> dict:
    """Versions of the packages a result depends on (stored with every result)."""
    from importlib.metadata import PackageNotFoundError, version

    import numba
    import scipy
    import torch

    try:
        own = version("gradient-confusion")
    except PackageNotFoundError:
        own = "not installed"
    return {"gradient-confusion": own, "numpy": np.__version__, "scipy": scipy.__version__,
            "numba": numba.__version__, "torch": torch.__version__}


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


def drawn_numbers(net: MLP, n_samples: int, modes) -> int:
    """Normals drawn per trial for the weights (``gram.lazy.draw_layers``).

    ``m n`` per dense layer; ``(m + n) N`` per lazy Gaussian one (``A`` and
    ``G_1``); ``m N + m k`` per lazy orthogonal one (the frame, ``G_1`` and
    ``G_2``, ``k = min(N, m - N)``).
    """
    from ..gram.lazy import DENSE, LAZY_GAUSSIAN

    def count(m, n, mode):
        if mode == DENSE:
            return m * n
        if mode == LAZY_GAUSSIAN:
            return (m + n) * n_samples
        return m * n_samples + m * min(n_samples, m - n_samples)

    return sum(count(m, n, mode) for (m, n), mode in zip(net.layer_shapes, modes))


def default_batch_size(net: MLP, n_samples: int, modes) -> int:
    """Trials per compute batch: as many as keep a batch's arrays under ``MEMORY_PER_BATCH``, in whole seed blocks.

    Per trial: the drawn numbers, the activations (``3 N width`` per layer) and
    the Gram blocks (``2 N^2`` per layer).
    """
    drawn = drawn_numbers(net, n_samples, modes)
    per_trial = 8 * (drawn + net.n_layers * (3 * n_samples * max(net.width, net.input_dim) + 2 * n_samples**2))
    return SEED_BLOCK * max(1, min(64, MEMORY_PER_BATCH // (SEED_BLOCK * per_trial)))


def estimated_peak_bytes(net: MLP, n_samples: int, modes, batch_trials: int, *, dtype="float64",
                         backend: str = "numba", merged: bool | None = None, threads: int | None = None) -> int:
    """Estimated peak bytes of one compute batch of ``batch_trials`` trials (a multiple of ``SEED_BLOCK``).

    An estimate for refusing sizes that cannot fit before anything is drawn,
    not a measurement.  Counted:

    * every number the batch draws (:func:`drawn_numbers`, float64, all of
      the batch's seed blocks are drawn before any is computed), plus one
      transient copy of the largest layer per block drawn concurrently
      (``scale * normal(...)`` and the Haar QR allocate a second array);
    * a second copy of the draws when the blocks are merged into one call
      (small networks, torch) and a ``float32`` copy when ``dtype`` is float32;
    * the working arrays of the trials computed at once -- ``threads`` trials
      for numba, a whole block (or merged batch) for numpy and torch -- each
      ``n_layers (5 N max(width, d) + 2 N^2)`` numbers (layer inputs,
      derivatives, the lazy frame ``U`` and backward temporaries);
    * the output Gram blocks, ``batch_trials (beta + 1) N^2``.

    Parameters
    ----------
    net : MLP
    n_samples : int
        ``N``.
    modes : tuple
        Sampling mode of each layer (``gram.lazy.lazy_layers``).
    batch_trials : int
        Trials per compute batch.
    dtype : "float64" or "float32"
    backend : "numba", "numpy" or "torch"
    merged : bool, optional
        Whether a batch's blocks are computed in one call; by default as
        ``sample_confusion`` decides (torch, or at most ``MERGE_LIMIT`` numbers per trial).
    threads : int, optional
        Trials numba computes at once (default: its thread count).

    Returns
    -------
    int
        Bytes.
    """
    drawn = drawn_numbers(net, n_samples, modes)
    if merged is None:
        merged = backend == "torch" or drawn <= MERGE_LIMIT
    threads = numba.get_num_threads() if threads is None else threads
    blocks = math.ceil(batch_trials / SEED_BLOCK)
    largest = max(m * n if mode == 0 else (2 * m + n) * n_samples
                  for (m, n), mode in zip(net.layer_shapes, modes))
    numbers = batch_trials * drawn * (2 if merged else 1) + min(blocks, threads) * SEED_BLOCK * largest
    computed_at_once = batch_trials if merged else SEED_BLOCK
    if backend == "numba":
        computed_at_once = min(computed_at_once, threads)
    working = net.n_layers * (5 * n_samples * max(net.width, net.input_dim) + 2 * n_samples**2)
    numbers += computed_at_once * working + batch_trials * net.n_layers * n_samples**2
    total = 8 * numbers
    if np.dtype(dtype) == np.float32:
        total += 4 * batch_trials * drawn
    return int(total)


def _check_memory(net, n_samples, modes, batch_trials, dtype, backend, random_source, device) -> None:
    """Refuse a batch whose estimated peak exceeds the memory available (host, or the CUDA device's)."""
    estimate = estimated_peak_bytes(net, n_samples, modes, batch_trials, dtype=dtype, backend=backend)
    what = (f"'net' of width {net.width}, depth {net.depth} and input_dim {net.input_dim} with 'n_samples' = "
            f"{n_samples} and 'batch_size' = {batch_trials} trials per batch (at least one seed block of "
            f"{SEED_BLOCK})")
    on_cuda = device is not None and getattr(device, "type", None) == "cuda"
    if on_cuda and validation.MEMORY_LIMIT is None:
        import torch

        validation.fits_in_memory(estimate, what + " on " + str(device), torch.cuda.mem_get_info(device)[0])
        if random_source == "torch":  # drawn on the device: the host holds only results
            return
    validation.fits_in_memory(estimate, what)


def _draw_block(net, n_samples, labels, source, modes, fixed_data: bool):
    """One seed block of ``SEED_BLOCK`` trials, in a fixed order: layers (and biases), data, labels.

    With ``fixed_data`` only the network is drawn (data and labels are ``None``).
    """
    layers, biases = draw_layers(net, n_samples, source, (SEED_BLOCK,), modes)
    if fixed_data:
        return layers, biases, None, None
    X = sample_sphere(n_samples, net.input_dim, source, batch=SEED_BLOCK)
    return layers, biases, X, labels(X, source)


def _merge(draws, xp):
    """Concatenate the seed blocks of one compute batch along the trial axis (one block: as it is)."""
    if len(draws) == 1:
        return draws[0]
    join = np.concatenate if xp is np else xp.cat

    def cat(parts):
        return None if parts[0] is None else join(list(parts), 0)

    first_layers, first_biases = draws[0][0], draws[0][1]
    layers = [LayerDraw(layer.mode, cat([d[0][p].weight for d in draws]), cat([d[0][p].g1 for d in draws]),
                        cat([d[0][p].g2 for d in draws]), layer.scale) for p, layer in enumerate(first_layers)]
    biases = None if first_biases is None else [cat([d[1][p] for d in draws]) for p in range(len(first_biases))]
    return layers, biases, cat([d[2] for d in draws]), cat([d[3] for d in draws])


def _layer_blocks(backend, net, layers, biases, X, y, loss, dtype, device) -> np.ndarray:
    """Per-layer Gram blocks ``(T, beta + 1, N, N)`` of drawn layers on one (resolved) backend."""
    return layer_blocks(backend, net, layers, biases, X, y, loss, dtype, device)


@dataclass(frozen=True)
class _Plan:
    """Validated settings of a Monte Carlo run (shared by sample_confusion and sample_grams)."""

    net: MLP
    n_samples: int
    trials: int
    labels: object
    loss: str
    seed: object
    backend: str
    dtype: np.dtype
    modes: tuple
    blocks_per_batch: int
    random_source: str
    device: object
    data: tuple | None = None

    def config(self) -> dict:
        return {**self.net.config(), "n_samples": self.n_samples,
                "labels": getattr(self.labels, "name", repr(self.labels)), "loss": self.loss,
                "dtype": self.dtype.name}

    def meta(self, timings: dict) -> dict:
        return {"backend": self.backend, "random_source": self.random_source,
                "device": None if self.device is None else str(self.device), "method": describe_modes(self.modes),
                "layer_modes": [MODE_NAMES[mode] for mode in self.modes],
                "weight_normals_per_trial": drawn_numbers(self.net, self.n_samples, self.modes),
                **timings, "versions": versions(), "seed_block": SEED_BLOCK}


def _plan(net, n_samples, trials, labels, loss, seed, backend, dtype, method, batch_size, random_source,
          device, data=None) -> _Plan:
    if not isinstance(net, MLP):
        raise TypeError(f"argument 'net' must be a montecarlo.MLP, got {type(net).__name__}")
    n_samples = validation.integer("n_samples", n_samples, minimum=2)
    trials = validation.integer("trials", trials, minimum=1)
    seed = check_seed(seed)
    loss = validation.choice("loss", loss, LOSSES)
    dtype = validation.dtype("dtype", dtype)
    random_source = validation.choice("random_source", random_source, RANDOM_SOURCES)
    method = validation.choice("method", method, METHODS)
    modes = lazy_layers(net, n_samples, "dense" if method == "dense" else "lazy")
    label_fn = make_labels(labels)
    backend, device = resolve_backend(backend, device, random_source)
    if batch_size is None:
        batch_size = default_batch_size(net, n_samples, modes)
    blocks_per_batch = math.ceil(validation.integer("batch_size", batch_size, minimum=1) / SEED_BLOCK)
    # Before anything is drawn.  A batch never holds fewer than the SEED_BLOCK trials of one seed block, because
    # a block draws each layer for all its trials at once from one generator: drawing a trial on its own would
    # change its numbers (only replaying the whole block's stream and keeping one trial would not, at 8 times
    # the drawing cost, and only for numpy's generator), so a network whose single block cannot fit is refused.
    _check_memory(net, n_samples, modes, blocks_per_batch * SEED_BLOCK, dtype, backend, random_source, device)
    if data is not None:
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise TypeError("argument 'data' must be a pair (X, y) of fixed data, or None")
        X = validation.finite_array("X", data[0], ndim=(2,))
        y = validation.finite_array("y", data[1], ndim=(1,))
        if X.shape != (n_samples, net.input_dim) or y.shape != (n_samples,):
            raise ValueError(f"argument 'data' must hold X of shape ({n_samples}, {net.input_dim}) and y of shape "
                             f"({n_samples},), got {X.shape} and {y.shape}")
        data = (X, y)
    return _Plan(net, n_samples, trials, label_fn, loss, seed, backend, dtype, modes, blocks_per_batch,
                 random_source, device, data)


def _draw_blocks(plan: _Plan, blocks) -> list:
    """Draw seed blocks; numpy blocks in parallel threads (numpy releases the GIL while it fills arrays)."""
    if plan.random_source == "torch":
        return [_draw_block(plan.net, plan.n_samples, plan.labels, NormalSource.torch(block_seed(plan.seed, k),
                                                                                      plan.device), plan.modes,
                            plan.data is not None) for k in blocks]

    def draw(k):
        return _draw_block(plan.net, plan.n_samples, plan.labels, NormalSource.numpy(block_seed(plan.seed, k)),
                           plan.modes, plan.data is not None)

    workers = min(len(blocks), numba.get_num_threads())
    if workers <= 1:
        return [draw(k) for k in blocks]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(draw, blocks))


def _gram_batches(plan: _Plan, progress: bool, timings: dict):
    """Yield the per-layer Gram blocks ``(T_b, beta + 1, N, N)`` of consecutive trials, batch by batch.

    Small networks, and the torch backend (``bmm`` over the trials), compute
    a whole batch at once; for networks that draw more than ``MERGE_LIMIT``
    numbers per trial the CPU backends compute block by block, which avoids
    copying the drawn arrays together.  ``timings`` accumulates seconds spent
    drawing and computing.
    """
    n_blocks = math.ceil(plan.trials / SEED_BLOCK)
    merge = plan.backend == "torch" or drawn_numbers(plan.net, plan.n_samples, plan.modes) <= MERGE_LIMIT
    timings.update(seconds_drawing=0.0, seconds_computing=0.0)
    for first in tqdm(range(0, n_blocks, plan.blocks_per_batch), desc="trial batches", disable=not progress,
                      leave=False):
        start = time.perf_counter()
        draws = _draw_blocks(plan, range(first, min(first + plan.blocks_per_batch, n_blocks)))
        if merge:
            import torch

            draws = [_merge(draws, np if plan.random_source == "numpy" else torch)]
        middle = time.perf_counter()
        timings["seconds_drawing"] += middle - start
        for layers, biases, X, y in draws:
            if plan.data is not None:
                X, y = plan.data
            blocks = _layer_blocks(plan.backend, plan.net, layers, biases, X, y, plan.loss, plan.dtype, plan.device)
            end = time.perf_counter()
            timings["seconds_computing"] += end - middle
            middle = end
            yield blocks


def sample_confusion(net, n_samples, trials, *, labels, loss, seed, backend="auto", dtype="float64",
                     method="auto", batch_size=None, random_source="numpy", device=None,
                     quantiles=DEFAULT_QUANTILES, data=None, progress=False) -> ConfusionSample:
    """Monte Carlo of gradient confusion at initialisation.

    Each trial draws fresh weights from ``net``'s initialisation, ``n_samples``
    points uniform on ``S^{d-1}`` and their labels, computes the exact
    per-example gradient Gram (per layer) and keeps its statistics
    (``gram_statistics``).  Exact per trial; the Monte Carlo error is over trials.

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
    net : MLP
    n_samples : int >= 2
        ``N``, examples per trial.
    trials : int >= 1
    labels : "linear", "tanh", "random_sign" or a callable ``labels(X, rng)``
    loss : "square" or "logistic"
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
        network's trials one by one would change their numbers.  Instead, a batch
        whose estimated peak memory (:func:`estimated_peak_bytes`) exceeds
        the memory available is refused with a ``ValueError`` before anything
        is drawn.
    random_source : "numpy" (default) or "torch"
        "torch" draws on ``device`` with torch's generator (no host-to-device
        copy of the weights); its results agree with "numpy" in distribution only.
    device : torch device for backend "torch" ("cpu", "cuda", "cuda:k").
    quantiles : quantiles of the off-diagonal cosines to keep.
    data : optional pair ``(X, y)`` (``N x d`` and ``N``) used by every trial instead
        of fresh sphere data: the randomness is then over the network only.
    progress : show a progress bar over compute batches.
    """
    plan = _plan(net, n_samples, trials, labels, loss, seed, backend, dtype, method, batch_size, random_source,
                 device, data)
    start = time.perf_counter()
    timings: dict = {}
    collected: dict[str, list] = {}
    for layer_blocks in _gram_batches(plan, progress, timings):
        for name, values in gram_statistics(layer_blocks.sum(axis=-3), layer_blocks, quantiles).items():
            collected.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
    stats = {name: np.concatenate(parts)[:plan.trials] for name, parts in collected.items()}
    timings["seconds"] = time.perf_counter() - start
    meta = {**plan.meta(timings), "undefined_cosines": undefined_cosines(stats, plan.n_samples).to_dict()}
    return ConfusionSample(config=plan.config(), seed=plan.seed, stats=stats, meta=meta)


@dataclass(frozen=True)
class GramSample:
    """The Grams of ``trials`` independent draws: ``G`` (``T x N x N``) and, if asked for, ``blocks`` per layer."""

    G: np.ndarray
    blocks: np.ndarray | None
    config: dict
    seed: object
    meta: dict


def sample_grams(net, n_samples, trials, *, labels, loss, seed, backend="auto", dtype="float64", method="auto",
                 batch_size=None, random_source="numpy", device=None, per_layer=False, data=None,
                 progress=False) -> GramSample:
    """The per-example gradient Grams themselves, for the same draws as :func:`sample_confusion`.

    Trial ``t`` of ``sample_grams`` and of ``sample_confusion`` with the same
    arguments is the same network, data and labels.  Holds ``T N^2`` numbers
    (``T (beta + 1) N^2`` with ``per_layer``): use ``sample_confusion`` when
    only statistics are needed.  ``data=(X, y)`` fixes the data for every trial.
    ``meta`` records seconds spent drawing and computing.
    """
    plan = _plan(net, n_samples, trials, labels, loss, seed, backend, dtype, method, batch_size, random_source,
                 device, data)
    per_layer = validation.flag("per_layer", per_layer)
    start = time.perf_counter()
    timings: dict = {}
    totals, layers = [], []
    for layer_blocks in _gram_batches(plan, progress, timings):
        totals.append(layer_blocks.sum(axis=-3))
        if per_layer:
            layers.append(layer_blocks)
    timings["seconds"] = time.perf_counter() - start
    G = np.concatenate(totals)[:plan.trials]
    blocks = np.concatenate(layers)[:plan.trials] if per_layer else None
    return GramSample(G=G, blocks=blocks, config=plan.config(), seed=plan.seed, meta=plan.meta(timings))
