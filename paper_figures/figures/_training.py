"""Shared by the training figures (F8-F10): their settings, a grid of runs trained into a shared pool, its table.

The paper tunes the step size of each model on a log grid and keeps the run
with the lowest final training loss; :func:`best_runs` does that (per model,
over the ``lr`` axis, averaging seeds).

Confusion at matched training loss (:func:`matched_loss`): models that end
far apart in training loss are not comparable by their end-of-training
cosines, so each model (its best step size) is also read at the first
*tracked* epoch whose full-training-set loss is at or below each of
``LEVELS``.  Tracked epochs are sparse (log spacing) and nothing is
interpolated: the epoch used is reported.  The minimum over the pairs of
minibatches there has a sampling distribution, given two ways: a percentile
bootstrap over the pairs (``BOOTSTRAP_DRAWS`` resamples, stratified by seed),
and the mean cosine with its standard error over the pairs.  The bootstrap
of a minimum cannot fall below the sample minimum (its law is
``P(min* > x_(k)) = (1 - k/n)^n`` on the order statistics), so its interval
shows the resampling spread of the paper's statistic, not a coverage
guarantee; the mean and its standard error are the regular quantity beside it.
The reports call it a "pair-bootstrap spread", never an interval of the
result: that needs independent replicates (seeds), and a verdict from one
seed says so (``_rules.seeds_note``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

import montecarlo as mc

from . import _rules

#: The model family of F8-F10 (CNN-beta-l with base width 8) and the training settings per scale they share, so
#: that a run two of them use is the same run (one pool per settings: :func:`run`).
BASE = dict(model="cnn", base=8)
SETTINGS = {
    "fast": dict(data="digits", epochs=2, pairs=3, pair_batch=32, track_points=2, probe_size=16),
    "quick": dict(data="digits", epochs=15, pairs=20, pair_batch=128, track_points=4, probe_size=32),
    "full": dict(data="digits", epochs=30, pairs=50, pair_batch=128, track_points=6, probe_size=64),
}
MODEL_AXES = ("depth", "width", "skip", "batchnorm")
LEVELS = (0.5, 0.1)  # training-loss levels (cross-entropy) at which confusion is compared
BOOTSTRAP_DRAWS = 4000
CONFIDENCE = 0.95


def _pool(spec: mc.TrainingGrid, context) -> Path:
    return context.shared / f"runs-{mc.ResultsStore.hash_of(spec.pool_dict())[:10]}"


def pieces(grid: dict, settings: dict, context) -> list[tuple[str, float, object]]:
    """The grid's runs as independent pieces of work (``Figure.prepare``): ``(label, cost, piece)`` per run.

    ``piece()`` trains the run into the pool of :func:`run` (one run:
    ``run_training`` of a one-point grid, whose key is the run's key in the
    grid); ``label`` holds the run's key, so that a run two figures share is
    one piece; ``cost`` is the run's relative arithmetic, ``depth x width^2``,
    doubled with batch norm.
    """
    spec = mc.TrainingGrid.from_mapping({**grid, **settings})
    folder = _pool(spec, context)
    out = []
    for key, one in spec.runs().items():
        name = (f"{one['model']}-{one['depth']}-{one['width']}{' skip' if one['skip'] else ''}"
                f"{' bn' if one['batchnorm'] else ''} lr {one['lr']:g} seed {one['seed']}")
        out.append((f"train {name} ({key})", one["depth"] * one["width"] ** 2 * (2 if one["batchnorm"] else 1),
                    functools.partial(_train_into, one, spec.settings, folder)))
    return out


def _train_into(one: dict, settings: dict, folder: Path) -> None:
    mc.run_training(mc.TrainingGrid.from_mapping({**one, **settings}), folder, progress=False, pool=True)


def run(grid: dict, settings: dict, context) -> tuple[mc.ResultsStore, list[str]]:
    """Train (or resume) a grid of runs in the pool of its settings; return the pool and the grid's run keys.

    The pool (``context.shared / runs-<hash of the settings>``, a
    ``run_training(..., pool=True)`` store) holds every training figure's runs
    of these settings, each under the hash of its configuration, so a run
    two figures share (F8's depth-10 and depth-22 nets are F10's plain ones,
    F9's width-2 net is F8's depth-16 one) is trained once, and two figures
    computed at once share the work through the store's claims.
    """
    spec = mc.TrainingGrid.from_mapping({**grid, **settings})
    store = mc.run_training(spec, _pool(spec, context), progress=context.progress, pool=True)
    return store, sorted(spec.runs())


def steps(grid: Callable[[str], dict]) -> tuple[Callable, Callable]:
    """The ``prepare`` and ``compute`` steps (:class:`paper_figures.Figure`) of a training figure.

    ``grid(scale)`` is the figure's training grid at each scale, trained
    with ``SETTINGS[scale]``.  ``prepare`` lists the grid's runs as
    independent pieces (:func:`pieces`); ``compute`` trains (or reads back
    from the pool, :func:`run`) the grid and tabulates it with the
    matched-loss rows (:func:`tabulate`, :func:`with_matched_loss`).
    """

    def prepare(scale, context) -> list:
        return pieces(grid(scale), SETTINGS[scale], context)

    def compute(scale, context) -> pd.DataFrame:
        store, keys = run(grid(scale), SETTINGS[scale], context)
        return with_matched_loss(tabulate(store, keys))

    prepare.__doc__ = f"The runs of ``{grid.__module__}.grid(scale)`` as independent pieces of work."
    compute.__doc__ = f"Train (or read back) ``{grid.__module__}.grid(scale)`` and tabulate it with matched-loss rows."
    return prepare, compute


def tabulate(store: mc.ResultsStore, keys=None) -> pd.DataFrame:
    """Long table: one row per (run, tracked epoch), one per end-of-training minibatch cosine, one per tracked pair.

    ``keys``: the runs to read (default: every finished run of the store);
    a run that is not finished is an error.  ``kind``: "curve" (the tracked
    row without its cosine list), "cosine" (the cosines of the pairs at the
    last tracked epoch, for the density) and "pair_cosine" (every tracked
    epoch's cosines, with ``epoch`` and ``pair``, for :func:`matched_loss`).
    """
    rows = []
    for key in sorted(store.done() if keys is None else keys):
        frame, metadata = store.read_point(key)
        config = {k: metadata["config"][k] for k in (*MODEL_AXES, "lr", "seed", "base")}
        curve = frame.drop(columns=["minibatch_cosines"]).assign(kind="curve", run=key, **config)
        rows.append(curve)
        cosines = np.asarray(frame["minibatch_cosines"].iloc[-1], dtype=float)
        rows.append(pd.DataFrame({"kind": "cosine", "run": key, "cosine": cosines, **config}))
        for epoch, tracked in zip(frame["epoch"], frame["minibatch_cosines"]):
            tracked = np.asarray(tracked, dtype=float)
            rows.append(pd.DataFrame({"kind": "pair_cosine", "run": key, "epoch": epoch,
                                      "pair": np.arange(len(tracked)), "cosine": tracked, **config}))
    return pd.concat(rows, ignore_index=True)


def with_matched_loss(data: pd.DataFrame, levels=LEVELS) -> pd.DataFrame:
    """``data`` with the :func:`matched_loss` table of its best runs appended as rows of kind "matched_loss"."""
    return pd.concat([data, matched_loss(best_runs(data), levels).assign(kind="matched_loss")], ignore_index=True)


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


def first_epoch_below(curve: pd.DataFrame, level: float):
    """The first tracked row of one run's curve whose training loss is at or below ``level``, or ``None``.

    Rows flagged ``diverged`` and non-finite losses never count; nothing is interpolated.
    """
    curve = curve.sort_values("epoch")
    ok = np.isfinite(curve["train_loss"]) & (curve["train_loss"] <= level)
    if "diverged" in curve:
        ok &= ~curve["diverged"].fillna(False).astype(bool)
    hits = curve[ok]
    return None if hits.empty else hits.iloc[0]


def bootstrap_min(cosines: list, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> np.ndarray:
    """Bootstrap draws of the mean over runs of the minimum cosine, resampling each run's pairs with replacement."""
    rng = np.random.default_rng(seed)
    total = np.zeros(draws)
    for c in cosines:
        c = np.asarray(c, dtype=float)
        total += c[rng.integers(len(c), size=(draws, len(c)))].min(axis=1)
    return total / len(cosines)


def min_interval(cosines: list, confidence: float = CONFIDENCE, draws: int = BOOTSTRAP_DRAWS,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over runs of the minimum cosine (order statistics, as drawn)."""
    d = bootstrap_min(cosines, draws, seed)
    tail = (1 - confidence) / 2
    return (float(np.quantile(d, tail, method="inverted_cdf")),
            float(np.quantile(d, 1 - tail, method="inverted_cdf")))


def mean_and_se(cosines: list) -> tuple[float, float]:
    """Mean over runs of each run's mean cosine, and its standard error: each run's ``mc.mean_se`` over its pairs
    (sample s.d. / sqrt(n)), combined as the s.e. of an average of independent means (``sqrt(sum se_r^2) / R``)."""
    per_run = np.array([mc.mean_se(c) for c in cosines])  # runs x (mean, se)
    return float(per_run[:, 0].mean()), float(np.sqrt(np.sum(per_run[:, 1] ** 2)) / len(per_run))


def matched_loss(data: pd.DataFrame, levels=LEVELS) -> pd.DataFrame:
    """Per model and loss level: confusion at the first tracked epoch whose training loss is <= the level.

    Pass the runs to compare (``best_runs(data)``: the step size the paper's
    tuning keeps).  A model is "reached" at a level only if every one of its
    seeds got there; then ``matched_min_cosine`` is the mean over seeds of
    each run's minimum pair cosine at its own first such epoch, with a
    pair-bootstrap spread (``_lo``, ``_hi``), and ``matched_mean_cosine`` the
    mean cosine with its standard error (``_se``).  Otherwise the numbers
    are NaN and ``status`` says "not reached" (with the lowest tracked loss)
    or how many seeds reached it.
    """
    curves = data[data["kind"] == "curve"]
    pairs = data[data["kind"] == "pair_cosine"]
    out = []
    for model, runs in curves.groupby(list(MODEL_AXES)):
        keys = sorted(runs["run"].unique())
        for level in levels:
            hits = {key: first_epoch_below(runs[runs["run"] == key], level) for key in keys}
            reached = [key for key, hit in hits.items() if hit is not None]
            row = dict(zip(MODEL_AXES, model), lr=runs["lr"].iloc[0], level=float(level), seeds=len(keys),
                       reached=len(reached), pairs=np.nan, matched_epoch=np.nan, matched_epochs="",
                       matched_train_loss=np.nan, matched_min_cosine=np.nan, matched_min_cosine_lo=np.nan,
                       matched_min_cosine_hi=np.nan, matched_mean_cosine=np.nan, matched_mean_cosine_se=np.nan,
                       lowest_tracked_loss=float(np.nanmin(runs["train_loss"].where(np.isfinite(runs["train_loss"]))))
                       if np.isfinite(runs["train_loss"]).any() else np.nan)
            if len(reached) < len(keys):
                row["status"] = ("not reached" if not reached else
                                 f"not reached by every seed ({len(reached)} of {len(keys)})")
                out.append(row)
                continue
            cosines = []
            for key in keys:
                at = pairs[(pairs["run"] == key) & (pairs["epoch"] == hits[key]["epoch"])].sort_values("pair")
                cosines.append(at["cosine"].to_numpy(dtype=float))
            if any(len(c) == 0 for c in cosines):
                raise ValueError(f"model {dict(zip(MODEL_AXES, model))}: no pair cosines stored at the matched epoch")
            lo, hi = min_interval(cosines)
            mean, se = mean_and_se(cosines)
            epochs = [int(hits[key]["epoch"]) for key in keys]
            row.update(status="reached", pairs=float(np.mean([len(c) for c in cosines])),
                       matched_epoch=float(np.mean(epochs)), matched_epochs="/".join(map(str, epochs)),
                       matched_train_loss=float(np.mean([hits[key]["train_loss"] for key in keys])),
                       matched_min_cosine=float(np.mean([c.min() for c in cosines])),
                       matched_min_cosine_lo=lo, matched_min_cosine_hi=hi, matched_mean_cosine=mean,
                       matched_mean_cosine_se=se)
            out.append(row)
    columns = [*MODEL_AXES, "lr", "level", "seeds", "reached", "status", "pairs", "matched_epoch", "matched_epochs",
               "matched_train_loss", "matched_min_cosine", "matched_min_cosine_lo", "matched_min_cosine_hi",
               "matched_mean_cosine", "matched_mean_cosine_se", "lowest_tracked_loss"]
    return pd.DataFrame(out, columns=columns)


def describe_matched(row) -> str:
    """One model at one level, for a report: epoch, loss, min cosine (pair-bootstrap spread), mean +- s.e.; or why
    not.  The spread is written as what it is (a resampling of one run's pairs), not as an interval in brackets."""
    if row["status"] != "reached":
        return f"{row['status']} (lowest tracked loss {row['lowest_tracked_loss']:.3g})"
    return (f"epoch {row['matched_epochs']} (loss {row['matched_train_loss']:.3g}): min cos "
            f"{row['matched_min_cosine']:.3f} (pair-bootstrap spread {row['matched_min_cosine_lo']:.3f} to "
            f"{row['matched_min_cosine_hi']:.3f}), mean cos {row['matched_mean_cosine']:.3f} +- "
            f"{row['matched_mean_cosine_se']:.3f}")


def compare_matched(a, b, expect: str) -> tuple[str, str]:
    """Compare model ``b`` with model ``a`` at one level: does ``b``'s minimum cosine lie ``expect`` ("lower"/"higher")?

    Returns ``(outcome, text)``; outcome is "as the paper" (the pair-bootstrap
    spreads of the two minima are disjoint, in the expected direction),
    "against the paper" (disjoint, the other way), or "not resolved"
    (spreads overlap); the text adds the direction of the mean cosine and
    whether its 95% intervals (+-1.96 s.e. over the pairs) are disjoint.
    """
    sign = -1.0 if expect == "lower" else 1.0
    separated = (b["matched_min_cosine_hi"] < a["matched_min_cosine_lo"] or
                 b["matched_min_cosine_lo"] > a["matched_min_cosine_hi"])
    expected = sign * (b["matched_min_cosine"] - a["matched_min_cosine"]) > 0
    outcome = ("as the paper" if separated and expected else "against the paper" if separated else "not resolved")
    direction = "lower" if b["matched_min_cosine"] < a["matched_min_cosine"] else "higher"
    gap = b["matched_mean_cosine"] - a["matched_mean_cosine"]
    se = np.hypot(b["matched_mean_cosine_se"], a["matched_mean_cosine_se"])
    mean_text = (f"mean cosine {'lower' if gap < 0 else 'higher'} by {abs(gap):.3f} +- {se:.3f}"
                 f"{' (disjoint at 95%)' if abs(gap) > 1.96 * se else ' (within 1.96 s.e.)'}")
    text = (f"min cos {direction} ({a['matched_min_cosine']:.3f} -> {b['matched_min_cosine']:.3f}, pair-bootstrap "
            f"spreads {'disjoint' if separated else 'overlap'}); {mean_text}")
    return outcome, text


def overall_matched(outcomes: list[str], reason: str, seeds: int | None = None) -> str:
    """One verdict over the levels: reproduced / contradicted / mixed / not resolved / not testable.

    ``None`` in ``outcomes`` is a level that could not be tested; when some
    were, the verdict says how many of the levels it rests on.  ``seeds``
    (the fewest seeds of the compared models) puts ``_rules.seeds_note`` after
    the word: "reproduced at matched loss in one seed (no seed-level interval)".
    """
    tested = [o for o in outcomes if o is not None]
    if not tested:
        return f"not testable at matched loss: {reason}"
    if all(o == "as the paper" for o in tested):
        verdict = "reproduced at matched loss"
    elif all(o == "against the paper" for o in tested):
        verdict = "contradicted at matched loss"
    elif "as the paper" in tested and "against the paper" in tested:
        verdict = "mixed at matched loss"
    elif "as the paper" in tested:
        verdict = "partly reproduced at matched loss (some levels not resolved)"
    elif "against the paper" in tested:
        verdict = "partly contradicted at matched loss (some levels not resolved)"
    else:
        verdict = "not resolved at matched loss (pair-bootstrap spreads overlap)"
    if seeds is not None:
        verdict += " " + _rules.seeds_note(seeds)
    if len(tested) < len(outcomes):
        verdict += f" ({len(tested)} of {len(outcomes)} loss levels testable)"
    return verdict


def compared_seeds(matched: pd.DataFrame) -> int:
    """The fewest seeds of the models in a matched-loss table (what a verdict over them rests on)."""
    return int(matched["seeds"].min())


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
