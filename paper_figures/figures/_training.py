"""Shared by the training figures (F8-F10): run a grid of training runs into the figure's store and tabulate it.

The paper tunes the step size of each model on a log grid and keeps the run
with the lowest final training loss; :func:`best_runs` does that (per model,
over the ``lr`` axis, averaging seeds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import montecarlo as mc

MODEL_AXES = ("depth", "width", "skip", "batchnorm")


def run(grid: dict, settings: dict, context, name: str = "runs") -> mc.ResultsStore:
    spec = mc.TrainingGrid.from_mapping({**grid, **settings})
    return mc.run_training(spec, context.store / name, progress=context.progress)


def tabulate(store: mc.ResultsStore) -> pd.DataFrame:
    """Long table: one row per (run, tracked epoch), plus one row per end-of-training minibatch cosine."""
    rows = []
    for key in sorted(store.done()):
        frame, metadata = store.read_point(key)
        config = {k: metadata["config"][k] for k in (*MODEL_AXES, "lr", "seed", "base")}
        curve = frame.drop(columns=["minibatch_cosines"]).assign(kind="curve", run=key, **config)
        rows.append(curve)
        cosines = np.asarray(frame["minibatch_cosines"].iloc[-1], dtype=float)
        rows.append(pd.DataFrame({"kind": "cosine", "run": key, "cosine": cosines, **config}))
    return pd.concat(rows, ignore_index=True)


def best_runs(data: pd.DataFrame) -> pd.DataFrame:
    """Per model, the runs of the step size with the lowest mean final training loss (diverged runs excluded)."""
    curves = data[data["kind"] == "curve"]
    final = curves.sort_values("epoch").groupby("run").tail(1)
    final = final[~final["diverged"].astype(bool)]
    mean_loss = final.groupby([*MODEL_AXES, "lr"])["train_loss"].mean().reset_index()
    chosen = mean_loss.loc[mean_loss.groupby(list(MODEL_AXES))["train_loss"].idxmin()]
    keep = final.merge(chosen[[*MODEL_AXES, "lr"]], on=[*MODEL_AXES, "lr"])["run"]
    return data[data["run"].isin(set(keep))]


def summary(data: pd.DataFrame) -> pd.DataFrame:
    """Per model (best step size): final training loss, test accuracy and minimum minibatch cosine, mean +- s.e. over seeds."""
    best = best_runs(data)
    final = best[best["kind"] == "curve"].sort_values("epoch").groupby("run").tail(1)
    grouped = final.groupby(list(MODEL_AXES))
    out = grouped.agg(lr=("lr", "first"), seeds=("seed", "nunique"), train_loss=("train_loss", "mean"),
                      train_loss_se=("train_loss", "sem"), test_accuracy=("test_accuracy", "mean"),
                      min_cosine=("minibatch_min_cosine", "mean"), min_cosine_se=("minibatch_min_cosine", "sem"),
                      probe_min_cosine=("probe_min_cosine", "mean")).reset_index()
    return out.fillna({"train_loss_se": 0.0, "min_cosine_se": 0.0})
