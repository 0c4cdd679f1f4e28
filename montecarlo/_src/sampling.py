"""``sample_confusion``: independent trials of (random network, random sphere data, labels) -> Gram statistics."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import validation
from .data import make_labels, sample_sphere
from .elementwise import LOSSES
from .gram import BACKENDS, gradient_gram
from .gram_statistics import DEFAULT_QUANTILES, gram_statistics
from .network import MLP, Parameters
from .random_source import SEED_BLOCK, NormalSource, block_seed, check_seed

RANDOM_SOURCES = ("numpy", "torch")
MEMORY_PER_BATCH = 256 * 2**20  # bytes of weights drawn per compute batch, by default


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
    seconds, package versions).  Trial ``t`` is a pure function of
    ``(config, seed, t)``.
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


def default_batch_size(net: MLP) -> int:
    """Trials per compute batch: as many as keep the drawn weights under ``MEMORY_PER_BATCH``, in whole seed blocks."""
    per_block = SEED_BLOCK * 8 * net.n_params
    return SEED_BLOCK * max(1, min(64, MEMORY_PER_BATCH // per_block))


def _draw_block(net, n_samples, labels, source):
    """One seed block: weights, data and labels of ``SEED_BLOCK`` trials, in this fixed order."""
    params = net.init(source, batch=SEED_BLOCK)
    X = sample_sphere(n_samples, net.input_dim, source, batch=SEED_BLOCK)
    return params, X, labels(X, source)


def _concatenate(parts, xp):
    join = np.concatenate if xp is np else xp.cat
    return join(parts, 0)


def sample_confusion(net, n_samples, trials, *, labels, loss, seed, backend="auto", dtype="float64",
                     batch_size=None, random_source="numpy", device=None, quantiles=DEFAULT_QUANTILES,
                     progress=False) -> ConfusionSample:
    """Monte Carlo of gradient confusion at initialisation.

    Each trial draws fresh weights from ``net``'s initialisation, ``n_samples``
    points uniform on ``S^{d-1}`` and their labels, computes the exact
    per-example gradient Gram (``gradient_gram``, per layer) and keeps its
    statistics.  Exact per trial; the Monte Carlo error is over trials.

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
    backend : "auto", "numpy", "numba" or "torch"
    dtype : "float64" or "float32"
    batch_size : int, optional
        Trials per compute batch (rounded up to a multiple of 8); by default
        as many as keep the drawn weights under 256 MiB.
    random_source : "numpy" (default) or "torch"
        "torch" draws on ``device`` with torch's generator (no host-to-device
        copy of the weights); its results agree with "numpy" in distribution only.
    device : torch device for backend "torch" ("cpu", "cuda", "cuda:k").
    quantiles : quantiles of the off-diagonal cosines to keep.
    progress : show a progress bar over compute batches.
    """
    if not isinstance(net, MLP):
        raise TypeError(f"argument 'net' must be a montecarlo.MLP, got {type(net).__name__}")
    n_samples = validation.integer("n_samples", n_samples, minimum=2)
    trials = validation.integer("trials", trials, minimum=1)
    seed = check_seed(seed)
    loss = validation.choice("loss", loss, LOSSES)
    backend = validation.choice("backend", backend, BACKENDS)
    dtype = validation.dtype("dtype", dtype)
    random_source = validation.choice("random_source", random_source, RANDOM_SOURCES)
    label_fn = make_labels(labels)
    if random_source == "torch" and backend not in ("torch", "auto"):
        raise ValueError(f"random_source='torch' needs backend='torch' (or 'auto'), got backend={backend!r}")
    if random_source == "torch":
        from .gram.torch_backend import resolve_device

        backend, device = "torch", resolve_device(device)
    if batch_size is None:
        batch_size = default_batch_size(net)
    blocks_per_batch = math.ceil(validation.integer("batch_size", batch_size, minimum=1) / SEED_BLOCK)
    n_blocks = math.ceil(trials / SEED_BLOCK)

    start = time.perf_counter()
    collected: dict[str, list] = {}
    batches = range(0, n_blocks, blocks_per_batch)
    for first in tqdm(batches, desc="trial batches", disable=not progress, leave=False):
        blocks = range(first, min(first + blocks_per_batch, n_blocks))
        if random_source == "numpy":
            draws = [_draw_block(net, n_samples, label_fn, NormalSource.numpy(block_seed(seed, k))) for k in blocks]
            xp = np
        else:
            draws = [_draw_block(net, n_samples, label_fn, NormalSource.torch(block_seed(seed, k), device))
                     for k in blocks]
            import torch as xp
        params, X, y = _merge(draws, xp)
        if random_source == "numpy":
            G, layer_blocks = gradient_gram(net, params, X, y, loss=loss, per_layer=True, backend=backend,
                                            dtype=dtype, device=device)
        else:
            from .gram.torch_backend import gram_torch

            torch_blocks = gram_torch(net, params.weights, params.biases, X, y, loss, device, dtype)
            layer_blocks = xp.stack(torch_blocks, dim=-3).cpu().numpy()
            G = layer_blocks.sum(axis=-3)
        for name, values in gram_statistics(G, layer_blocks, quantiles).items():
            collected.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
    stats = {name: np.concatenate(parts)[:trials] for name, parts in collected.items()}
    config = {**net.config(), "n_samples": n_samples, "labels": getattr(label_fn, "name", repr(label_fn)),
              "loss": loss, "dtype": dtype.name}
    meta = {"backend": "numba" if backend == "auto" else backend, "random_source": random_source,
            "device": None if device is None else str(device), "method": "dense",
            "seconds": time.perf_counter() - start, "versions": versions(), "seed_block": SEED_BLOCK}
    return ConfusionSample(config=config, seed=seed, stats=stats, meta=meta)


def _merge(draws, xp):
    """Concatenate the seed blocks of one compute batch along the trial axis."""
    weights = tuple(_concatenate([d[0].weights[p] for d in draws], xp) for p in range(len(draws[0][0].weights)))
    biases = None
    if draws[0][0].biases is not None:
        biases = tuple(_concatenate([d[0].biases[p] for d in draws], xp) for p in range(len(draws[0][0].biases)))
    return Parameters(weights, biases), _concatenate([d[1] for d in draws], xp), _concatenate([d[2] for d in draws], xp)
