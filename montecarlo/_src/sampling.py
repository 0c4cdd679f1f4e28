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
from .gram import BACKENDS
from .gram.lazy import LayerDraw, describe_modes, draw_layers, lazy_layers
from .gram_statistics import DEFAULT_QUANTILES, gram_statistics
from .network import MLP
from .random_source import SEED_BLOCK, NormalSource, block_seed, check_seed

RANDOM_SOURCES = ("numpy", "torch")
METHODS = ("auto", "lazy", "dense")
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


def default_batch_size(net: MLP, n_samples: int, modes) -> int:
    """Trials per compute batch: as many as keep a batch's arrays under ``MEMORY_PER_BATCH``, in whole seed blocks.

    Per trial: the drawn weights (``m n`` per dense layer, ``(2m + n) N`` per lazy
    one), the activations (``3 N width`` per layer) and the Gram blocks (``2 N^2`` per layer).
    """
    drawn = sum(m * n if mode == 0 else (2 * m + n) * n_samples for (m, n), mode in zip(net.layer_shapes, modes))
    per_trial = 8 * (drawn + net.n_layers * (3 * n_samples * max(net.width, net.input_dim) + 2 * n_samples**2))
    return SEED_BLOCK * max(1, min(64, MEMORY_PER_BATCH // (SEED_BLOCK * per_trial)))


def _draw_block(net, n_samples, labels, source, modes):
    """One seed block of ``SEED_BLOCK`` trials, in a fixed order: layers (and biases), data, labels."""
    layers, biases = draw_layers(net, n_samples, source, (SEED_BLOCK,), modes)
    X = sample_sphere(n_samples, net.input_dim, source, batch=SEED_BLOCK)
    return layers, biases, X, labels(X, source)


def _merge(draws, xp):
    """Concatenate the seed blocks of one compute batch along the trial axis."""
    join = np.concatenate if xp is np else xp.cat

    def cat(parts):
        return None if parts[0] is None else join(list(parts), 0)

    first_layers, first_biases = draws[0][0], draws[0][1]
    layers = [LayerDraw(layer.mode, cat([d[0][p].weight for d in draws]), cat([d[0][p].g1 for d in draws]),
                        cat([d[0][p].g2 for d in draws]), layer.scale) for p, layer in enumerate(first_layers)]
    biases = None if first_biases is None else [cat([d[1][p] for d in draws]) for p in range(len(first_biases))]
    return layers, biases, cat([d[2] for d in draws]), cat([d[3] for d in draws])


def _layer_blocks(backend, net, layers, biases, X, y, loss, dtype, device) -> np.ndarray:
    """Per-layer Gram blocks ``(T, beta + 1, N, N)`` of drawn layers on one backend."""
    if backend == "numba":
        from .gram.numba_kernel import gram_numba

        return gram_numba(net, None, biases, X, y, loss, True, X.shape[0], dtype, lazy_draws=layers)
    if backend == "torch":
        import torch

        from .gram.torch_backend import gram_torch

        return torch.stack(gram_torch(net, layers, biases, X, y, loss, device, dtype), dim=-3).cpu().numpy()
    from .gram.factorised import gram_blocks

    cast = lambda a: None if a is None else a.astype(dtype, copy=False)  # noqa: E731
    layers = [LayerDraw(l.mode, cast(l.weight), cast(l.g1), cast(l.g2), l.scale) for l in layers]
    blocks = gram_blocks(np, net, layers, None if biases is None else [cast(b) for b in biases], cast(X), cast(y),
                         loss)
    return np.stack(blocks, axis=-3)


def sample_confusion(net, n_samples, trials, *, labels, loss, seed, backend="auto", dtype="float64",
                     method="auto", batch_size=None, random_source="numpy", device=None,
                     quantiles=DEFAULT_QUANTILES, progress=False) -> ConfusionSample:
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
    method : "auto" (= "lazy"), "lazy" or "dense"
        "lazy" samples every layer whose fan-in and fan-out exceed ``N``
        exactly in law without drawing its weight matrix (``gram/lazy.py``)
        and the others densely; "dense" draws every weight.  The two give the
        same distribution, not the same numbers; ``meta["method"]`` says which
        layers were lazy.
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
    method = validation.choice("method", method, METHODS)
    modes = lazy_layers(net, n_samples, "dense" if method == "dense" else "lazy")
    label_fn = make_labels(labels)
    if random_source == "torch" and backend not in ("torch", "auto"):
        raise ValueError(f"random_source='torch' needs backend='torch' (or 'auto'), got backend={backend!r}")
    if random_source == "torch":
        from .gram.torch_backend import resolve_device

        backend, device = "torch", resolve_device(device)
    if device is not None and backend not in ("torch", "auto"):
        raise ValueError(f"argument 'device' applies only to backend='torch', got backend={backend!r}")
    if batch_size is None:
        batch_size = default_batch_size(net, n_samples, modes)
    blocks_per_batch = math.ceil(validation.integer("batch_size", batch_size, minimum=1) / SEED_BLOCK)
    n_blocks = math.ceil(trials / SEED_BLOCK)

    start = time.perf_counter()
    collected: dict[str, list] = {}
    batches = range(0, n_blocks, blocks_per_batch)
    if backend == "auto":
        backend = "torch" if device is not None else "numba"
    for first in tqdm(batches, desc="trial batches", disable=not progress, leave=False):
        blocks = range(first, min(first + blocks_per_batch, n_blocks))
        if random_source == "numpy":
            sources, xp = [NormalSource.numpy(block_seed(seed, k)) for k in blocks], np
        else:
            import torch as xp

            sources = [NormalSource.torch(block_seed(seed, k), device) for k in blocks]
        layers, biases, X, y = _merge([_draw_block(net, n_samples, label_fn, source, modes) for source in sources], xp)
        layer_blocks = _layer_blocks(backend, net, layers, biases, X, y, loss, dtype, device)
        for name, values in gram_statistics(layer_blocks.sum(axis=-3), layer_blocks, quantiles).items():
            collected.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
    stats = {name: np.concatenate(parts)[:trials] for name, parts in collected.items()}
    config = {**net.config(), "n_samples": n_samples, "labels": getattr(label_fn, "name", repr(label_fn)),
              "loss": loss, "dtype": dtype.name}
    meta = {"backend": backend, "random_source": random_source,
            "device": None if device is None else str(device), "method": describe_modes(modes),
            "seconds": time.perf_counter() - start, "versions": versions(), "seed_block": SEED_BLOCK}
    return ConfusionSample(config=config, seed=seed, stats=stats, meta=meta)

