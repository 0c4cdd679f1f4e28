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
    """Train (or resume) a grid of runs in ``context.store / <name>-<hash of the grid>``."""
    spec = mc.TrainingGrid.from_mapping({**grid, **settings})
    folder = context.store / f"{name}-{mc.ResultsStore.hash_of(spec.to_dict())[:10]}"
    return mc.run_training(spec, folder, progress=context.progress)


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
    """Per model, the runs of the step size with the lowest mean final training loss.

    Diverged runs (a non-finite loss) do not compete; a model whose every step
    size diverged keeps its runs, and ``summary`` marks it.
    """
    curves = data[data["kind"] == "curve"]
    final = curves.sort_values("epoch").groupby("run").tail(1).copy()
    diverged = final["diverged"].fillna(False).astype(bool) if "diverged" in final else False
    final["failed"] = diverged | ~np.isfinite(final["train_loss"])
    final["score"] = final["train_loss"].where(~final["failed"], np.inf)
    mean_loss = final.groupby([*MODEL_AXES, "lr"])["score"].mean().reset_index()
    chosen = mean_loss.loc[mean_loss.groupby(list(MODEL_AXES))["score"].idxmin()]
    keep = final.merge(chosen[[*MODEL_AXES, "lr"]], on=[*MODEL_AXES, "lr"])["run"]
    return data[data["run"].isin(set(keep))]


def summary(data: pd.DataFrame) -> pd.DataFrame:
    """Per model (best step size): final training loss, test accuracy and minimum cosines, mean (+- s.e.) over seeds.

    ``diverged`` marks a model whose every step size diverged.
    ``min_cosine`` is the minimum minibatch-pair cosine at the end of training,
    ``min_cosine_init`` at initialisation; ``probe_*`` the per-example ones.
    """
    best = best_runs(data)
    curves = best[best["kind"] == "curve"].sort_values("epoch")
    final = curves.groupby("run").tail(1)
    initial = curves[curves["epoch"] == 0].groupby(list(MODEL_AXES))[["minibatch_min_cosine", "probe_min_cosine"]].mean()
    grouped = final.groupby(list(MODEL_AXES))
    failed = final.assign(failed=~np.isfinite(final["train_loss"]) | (
        final["diverged"].fillna(False).astype(bool) if "diverged" in final else False)).groupby(list(MODEL_AXES))["failed"]
    out = grouped.agg(lr=("lr", "first"), seeds=("seed", "nunique"), train_loss=("train_loss", "mean"),
                      train_loss_se=("train_loss", "sem"), test_accuracy=("test_accuracy", "mean"),
                      min_cosine=("minibatch_min_cosine", "mean"), min_cosine_se=("minibatch_min_cosine", "sem"),
                      probe_min_cosine=("probe_min_cosine", "mean"))
    out["diverged"] = failed.all()
    out["min_cosine_init"] = initial["minibatch_min_cosine"]
    out["probe_min_cosine_init"] = initial["probe_min_cosine"]
    return out.reset_index().fillna({"train_loss_se": 0.0, "min_cosine_se": 0.0})


def mark_diverged(ax, summary: pd.DataFrame, axis: str, color="red") -> None:
    """An x at the top of ``ax`` for each model whose every step size diverged."""
    failed = summary[summary["diverged"]]
    if len(failed):
        top = ax.get_ylim()[1]
        ax.plot(failed[axis], [top] * len(failed), "x", color=color, ms=8, clip_on=False,
                label="diverged at every step size")
