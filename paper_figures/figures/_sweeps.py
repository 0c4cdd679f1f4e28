"""Shared helpers for the Monte Carlo figures: run a sweep into the figure's store, and read tails from it."""

from __future__ import annotations

import numpy as np
import pandas as pd

import montecarlo as mc


def run(grid: dict, trials: int, seed: int, context, name: str = "sweep") -> mc.ResultsStore:
    """Run (or resume) a sweep of ``grid`` in ``context.store / <name>-<hash of the sweep>``.

    The hash in the folder name gives a changed grid a store of its own
    instead of a refusal to reuse the old one.
    """
    spec = mc.SweepSpec.from_mapping({**grid, "trials": trials, "seed": seed})
    folder = context.store / f"{name}-{mc.ResultsStore.hash_of(spec.to_dict())[:10]}"
    return mc.run_sweep(spec, folder, scheduler=context.scheduler, progress=context.progress)


def per_point(store: mc.ResultsStore) -> list[tuple[dict, pd.DataFrame]]:
    """``(configuration, per-trial frame)`` of every stored point."""
    out = []
    for key in sorted(store.done()):
        frame, metadata = store.read_point(key)
        out.append((metadata["config"], frame))
    return out


def tail_rows(store: mc.ResultsStore, etas, statistic: str = "eta_star") -> pd.DataFrame:
    """``Pr[statistic > eta]`` with Clopper-Pearson intervals for every point and eta, with the point's axes."""
    rows = []
    for config, frame in per_point(store):
        table = mc.exceedance(frame[statistic].to_numpy(), np.asarray(etas, dtype=float))
        for row in table.itertuples(index=False):
            rows.append({**config, "eta": row.threshold, "k": row.k, "n": row.n, "p": row.p, "lower": row.lower,
                         "upper": row.upper})
    return pd.DataFrame(rows)


def mean_rows(store: mc.ResultsStore, statistics) -> pd.DataFrame:
    """Mean and standard error over trials of each statistic (NaN left out), per point, with the point's axes.

    What the means are conditional on goes with them: ``trials``, ``<name>_undefined`` (trials whose value is
    NaN and left out: for a cosine statistic, trials with at most one non-zero gradient) and, from
    ``montecarlo.undefined_cosines``, ``undefined_cosine_pairs`` and ``cosine_pairs`` (pairs with an undefined
    cosine, left out of every cosine statistic, of all pairs).
    """
    rows = []
    for config, frame in per_point(store):
        row = dict(config)
        undefined = mc.undefined_cosines(frame, config["n_samples"])
        row.update(trials=len(frame), undefined_cosine_pairs=undefined.undefined_pairs, cosine_pairs=undefined.pairs)
        for name in statistics:
            values = frame[name].to_numpy(dtype=float)
            row[f"{name}_undefined"] = int(np.sum(~np.isfinite(values)))
            values = values[np.isfinite(values)]
            row[name], row[f"{name}_se"] = mc.mean_se(values) if values.size else (np.nan, np.nan)
            row[f"{name}_q10"], row[f"{name}_q90"] = (np.quantile(values, [0.1, 0.9]) if values.size
                                                      else (np.nan, np.nan))
        rows.append(row)
    return pd.DataFrame(rows)


LIMIT_TRIALS = 4000  # draws of the infinite-width law per (depth, activation): data, labels and Gaussian output
LIMIT_SEED = 1011


def infinite_width_statistics(base: dict, depth: int, widths, statistic_fn, activation=None) -> dict:
    """``{width: statistic_fn(Grams of the infinite-width law at that width)}`` for one sweep column.

    ``base`` holds the sweep's fixed axes (d, n_samples, activation, kappa,
    loss, labels); the law is drawn once (``montecarlo.sample_infinite_width``)
    and its Grams (``grams(width)``, ``T x N x N``) evaluated at each width, so
    it is the prediction beside each Monte Carlo point of that column.
    ``statistic_fn`` computes what the figure needs from the Grams (say
    ``montecarlo.eta_star``, the function ``gram_statistics`` applies), so
    that the statistics a figure does not use (the cosine quantiles, a
    per-trial ``nanquantile``) are not computed.
    """
    activation = activation or base["activation"]
    net = mc.MLP(base["d"], 1, depth, activation=activation, kappa=base.get("kappa", 1.0))
    limit = mc.sample_infinite_width(net, base["n_samples"], LIMIT_TRIALS, labels=base["labels"], loss=base["loss"],
                                     seed=LIMIT_SEED)
    return {width: statistic_fn(limit.grams(width)) for width in widths}
