"""Shared by the training figures (F8-F10): settings, seeds, runs trained into a shared pool, per-seed statistics,
matched training loss and the comparisons over seeds that their verdicts rest on.

Evidence: the seed is the unit.  Every configuration is trained with
``SEEDS[scale]`` seeds (5 at quick scale) on each dataset of ``DATASETS``
(scikit-learn's 8x8 digits and MNIST-1D).  From each run one value of a
statistic is read (:func:`run_values`, :func:`matched_values`): its log10
final training loss, the mean and the ``QUANTILE`` (5%) quantile of its
minibatch-pair cosines (the paper's minimum made stable: a single minimum
of n values has no regular sampling law; the 5% quantile averages
nearby order statistics), the epochs it took to reach a loss level.  Two
configurations are compared by ``montecarlo.compare_seeds`` on those values:
a 95% t interval on the difference of the per-seed statistic, paired by seed
when the two configurations start from the same initial weights
(:func:`initial_weights_correspond`: they differ only in batch norm or step
size), Welch's two-sample interval otherwise.  A verdict needs the interval
to exclude 0 ("reproduced" / "contradicted"), else it is "not resolved";
a configuration with fewer than ``MIN_SEEDS`` (3) usable seeds is "not
testable".

Matched training loss (:func:`choose_levels`, :func:`crossing`): models
that end far apart in training loss are not comparable by their
end-of-training cosines, so they are also compared at loss levels chosen
from the runs: the lowest loss that every compared configuration that
trained reaches in most of its seeds (``MOST``, 80%), and the geometric
middle between it and the initial loss.  Each seed is read where its
training loss first reaches the level, linearly interpolated between the
two tracked epochs around the crossing (every epoch is tracked), the
cosine statistics interpolated with it.

The paper tunes the step size of each model on a log grid and keeps the one
with the lowest final training loss; :func:`best_runs` does that at
--full scale (per model, averaging seeds).  At quick scale there is one step
size (``LRS``): the time goes to seeds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

import montecarlo as mc

#: The datasets every training figure is computed on, and their names in the reports.
DATASETS = ("digits", "mnist1d")
DATA_NAMES = {"digits": "digits (8x8)", "mnist1d": "MNIST-1D"}
#: Seeds per configuration, step sizes and the CNN's base width at each scale.
SEEDS = {"fast": 3, "quick": 5, "full": 6}
LRS = {"fast": 0.05, "quick": 0.05, "full": [0.03, 0.1]}
BASE = {"fast": 4, "quick": 4, "full": 4}
#: Training settings per scale and dataset; every epoch is tracked (``track="linear"``, ``track_points = epochs + 1``),
#: so that matched loss interpolates between neighbouring epochs.  The pair minibatches have the training minibatch's
#: size at quick scale, the paper's 128 at full scale.  Sizes: the main job's time (quick: its 80 runs took 176 s of
#: worker time, 88 s on its two cores, of a 248 s job from a fresh clone) and MNIST-1D's part of --full in about
#: 20 minutes on two cores (experiments/mnist1d_full.py).  A run two figures share is the same run (one pool per
#: settings: :func:`run`).
SETTINGS = {
    "fast": {"digits": dict(data="digits", epochs=2, batch_size=32, track="linear", track_points=3, pairs=4,
                            pair_batch=32, probe_size=4),
             "mnist1d": dict(data="mnist1d", epochs=1, batch_size=64, track="linear", track_points=2, pairs=4,
                             pair_batch=32, probe_size=4)},
    "quick": {"digits": dict(data="digits", epochs=5, batch_size=32, track="linear", track_points=6, pairs=12,
                             pair_batch=32, probe_size=4),
              "mnist1d": dict(data="mnist1d", epochs=4, batch_size=32, track="linear", track_points=5, pairs=12,
                              pair_batch=32, probe_size=4)},
    "full": {"digits": dict(data="digits", epochs=12, batch_size=32, track="linear", track_points=13, pairs=20,
                            pair_batch=128, probe_size=16),
             "mnist1d": dict(data="mnist1d", epochs=8, batch_size=32, track="linear", track_points=9, pairs=20,
                             pair_batch=128, probe_size=16)},
}
MODEL_AXES = ("depth", "width", "skip", "batchnorm")
#: What identifies a configuration (a model on a dataset); its runs are its seeds (and step sizes, before tuning).
CONFIG = ("data", *MODEL_AXES)
QUANTILE = 0.05  # the low quantile of the pair cosines that stands for the paper's minimum
MIN_SEEDS = 3  # fewer usable seeds: not testable
MOST = 0.8  # "most seeds": a level is chosen so that every compared configuration reaches it in this share of seeds
TRAINED = 0.75  # a configuration trained if most seeds got below this fraction of its initial loss
CONFIDENCE = 0.95


def grid(scale: str, **axes) -> dict:
    """A training grid at ``scale``: CNN-beta-l with ``BASE``, ``LRS`` and ``SEEDS`` seeds, over ``axes``."""
    return {"model": "cnn", "base": BASE[scale], "lr": LRS[scale], "seed": list(range(SEEDS[scale])), **axes}


def sizes(data: pd.DataFrame) -> str:
    """The sizes a report's check states, read from one dataset's table: seeds, epochs, batch, step size(s), pairs."""
    curves = data[data["kind"] == "curve"]
    pairs = data[data["kind"] == "pair_cosine"].groupby(["run", "epoch"]).size()
    seeds = curves.groupby(list(CONFIG))["seed"].nunique()
    lrs = sorted(curves["lr"].unique())
    lr = (f"step size tuned over {[float(x) for x in lrs]} per model (lowest mean final loss over seeds)"
          if len(lrs) > 1 else f"step size {lrs[0]:g} (no step-size grid at this scale: the sizes keep the main job "
          f"within 5 minutes on 2 cores, and its time goes to seeds; --full tunes the step size and trains longer)")
    name = DATA_NAMES.get(curves["data"].iloc[0], curves["data"].iloc[0])
    seeds_text = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()} to {seeds.max()}"
    return (f"{name}, {seeds_text} seeds per configuration, CNN base width {int(curves['base'].iloc[0])}, plain SGD "
            f"for {int(curves['epoch'].max())} epoch(s) on minibatches of {int(curves['batch_size'].iloc[0])}, {lr}, "
            f"every epoch tracked with {int(pairs.median())} pairs of minibatches of "
            f"{int(curves['pair_batch'].iloc[0])}")


def _pool(spec: mc.TrainingGrid, context) -> Path:
    return context.shared / f"runs-{mc.ResultsStore.hash_of(spec.pool_dict())[:10]}"


def pieces(grid: dict, settings: dict, context) -> list[tuple[str, float, object]]:
    """The grid's runs as independent pieces of work (``Figure.prepare``): ``(label, cost, piece)`` per run.

    ``piece()`` trains the run into the pool of :func:`run` (one run:
    ``run_training`` of a one-point grid, whose key is the run's key in the
    grid); ``label`` holds the dataset and the run's key, so that a run two
    figures share is one piece; ``cost`` is the run's relative arithmetic,
    ``depth x width^2`` (doubled with batch norm) x epochs x training examples.
    """
    spec = mc.TrainingGrid.from_mapping({**grid, **settings})
    folder = _pool(spec, context)
    examples = {"digits": 1.4, "mnist1d": 4.0}.get(settings["data"], 1.0)
    out = []
    for key, one in spec.runs().items():
        name = (f"{settings['data']} {one['model']}-{one['depth']}-{one['width']}{' skip' if one['skip'] else ''}"
                f"{' bn' if one['batchnorm'] else ''} lr {one['lr']:g} seed {one['seed']}")
        cost = one["depth"] * one["width"] ** 2 * (2 if one["batchnorm"] else 1) * settings["epochs"] * examples
        out.append((f"train {name} ({key})", cost, functools.partial(_train_into, one, spec.settings, folder)))
    return out


def _train_into(one: dict, settings: dict, folder: Path) -> None:
    mc.run_training(mc.TrainingGrid.from_mapping({**one, **settings}), folder, progress=False, pool=True)


def run(grid: dict, settings: dict, context) -> tuple[mc.ResultsStore, list[str]]:
    """Train (or resume) a grid of runs in the pool of its settings; return the pool and the grid's run keys.

    The pool (``context.shared / runs-<hash of the settings>``, a
    ``run_training(..., pool=True)`` store) holds every training figure's runs
    of these settings, each under the hash of its configuration, so a run
    two figures share (F8's depth-10 net is F9's width-2 one, F8's depth-16
    net F10's plain one) is trained once, and two figures computed at once
    share the work through the store's claims.
    """
    spec = mc.TrainingGrid.from_mapping({**grid, **settings})
    store = mc.run_training(spec, _pool(spec, context), progress=context.progress, pool=True)
    return store, sorted(spec.runs())


def steps(grid: Callable[[str], dict]) -> tuple[Callable, Callable]:
    """The ``prepare`` and ``compute`` steps (:class:`paper_figures.Figure`) of a training figure.

    ``grid(scale)`` is the figure's training grid at each scale, trained on
    each of ``DATASETS`` with ``SETTINGS[scale][data]``.  ``prepare`` lists
    the runs as independent pieces (:func:`pieces`); ``compute`` trains (or
    reads back from the pools, :func:`run`) and tabulates them
    (:func:`tabulate`); the reports and plots read seeds, levels and
    comparisons from that table.
    """

    def prepare(scale, context) -> list:
        return [p for data in DATASETS for p in pieces(grid(scale), SETTINGS[scale][data], context)]

    def compute(scale, context) -> pd.DataFrame:
        return pd.concat([tabulate(*run(grid(scale), SETTINGS[scale][data], context)) for data in DATASETS],
                         ignore_index=True)

    prepare.__doc__ = f"The runs of ``{grid.__module__}.grid(scale)`` on each dataset as independent pieces of work."
    compute.__doc__ = f"Train (or read back) ``{grid.__module__}.grid(scale)`` on each dataset and tabulate it."
    return prepare, compute


def tabulate(store: mc.ResultsStore, keys=None) -> pd.DataFrame:
    """Long table: one row per (run, tracked epoch) of kind "curve", one per tracked pair cosine of kind "pair_cosine".

    ``keys``: the runs to read (default: every finished run of the store);
    a run that is not finished is an error.  Every row has the run's key
    (``run``), its dataset (``data``) and its configuration; "pair_cosine"
    rows have ``epoch``, ``pair`` and ``cosine``; "curve" rows also the batch sizes (``batch_size``, ``pair_batch``).
    """
    rows = []
    for key in sorted(store.done() if keys is None else keys):
        frame, metadata = store.read_point(key)
        config = {k: metadata["config"][k] for k in (*CONFIG, "lr", "seed", "base")}
        settings = {k: metadata["config"][k] for k in ("batch_size", "pair_batch")}
        rows.append(frame.drop(columns=["minibatch_cosines"]).assign(kind="curve", run=key, **config, **settings))
        for epoch, tracked in zip(frame["epoch"], frame["minibatch_cosines"]):
            tracked = np.asarray(tracked, dtype=float)
            rows.append(pd.DataFrame({"kind": "pair_cosine", "run": key, "epoch": epoch,
                                      "pair": np.arange(len(tracked)), "cosine": tracked, **config}))
    return pd.concat(rows, ignore_index=True)


def _diverged(frame: pd.DataFrame) -> pd.Series:
    return frame["diverged"].fillna(False).astype(bool) if "diverged" in frame else pd.Series(False, frame.index)


def best_runs(data: pd.DataFrame) -> pd.DataFrame:
    """Per configuration, the runs of the step size with the lowest mean final training loss over seeds.

    Diverged runs (a non-finite loss or the loop's flag) score as infinite;
    a configuration whose every step size diverged keeps its runs.  With
    one step size (quick scale) this is every run.
    """
    curves = data[data["kind"] == "curve"]
    final = curves.sort_values("epoch").groupby("run").tail(1).copy()
    final["score"] = final["train_loss"].where(~_diverged(final) & np.isfinite(final["train_loss"]), np.inf)
    mean_loss = final.groupby([*CONFIG, "lr"])["score"].mean().reset_index()
    chosen = mean_loss.loc[mean_loss.groupby(list(CONFIG))["score"].idxmin()]
    keep = final.merge(chosen[[*CONFIG, "lr"]], on=[*CONFIG, "lr"])["run"]
    return data[data["run"].isin(set(keep))]


def epoch_table(data: pd.DataFrame) -> pd.DataFrame:
    """Per run and tracked epoch: loss, accuracy, the flag, the mean and ``QUANTILE`` quantile of the pair cosines."""
    curves = data[data["kind"] == "curve"].copy()
    curves["diverged"] = _diverged(curves)
    pairs = data[data["kind"] == "pair_cosine"].groupby(["run", "epoch"])["cosine"]
    cosines = pd.DataFrame({"mean_cosine": pairs.mean(), "quantile_cosine": pairs.quantile(QUANTILE),
                            "pairs": pairs.size()}).reset_index()
    columns = ["run", *CONFIG, "base", "lr", "seed", "epoch", "train_loss", "test_accuracy", "diverged"]
    return curves[columns].merge(cosines, on=["run", "epoch"], how="left").sort_values(["run", "epoch"])


def _usable(curve: pd.DataFrame) -> pd.DataFrame:
    """A run's tracked rows before any diverged or non-finite one (what the run trained to)."""
    bad = (curve["diverged"] | ~np.isfinite(curve["train_loss"])).to_numpy()
    return curve.iloc[:int(np.argmax(bad))] if bad.any() else curve


def run_values(epochs: pd.DataFrame) -> pd.DataFrame:
    """Per run, at its last tracked epoch: the per-seed values of the end-of-training comparisons.

    ``log_loss`` (log10 of the final training loss), ``mean_cosine``,
    ``quantile_cosine``, ``test_accuracy``; a run that diverged has
    ``diverged`` set and NaN values (it has no end-of-training state to
    compare), ``lowest_loss`` is the lowest loss it reached before.
    """
    out = []
    for key, curve in epochs.groupby("run", sort=True):
        curve = curve.sort_values("epoch")
        last, usable = curve.iloc[-1], _usable(curve)
        diverged = len(usable) < len(curve)
        row = {k: last[k] for k in ("run", *CONFIG, "base", "lr", "seed")}
        row.update(diverged=diverged, epoch=int(last["epoch"]),
                   initial_loss=float(curve["train_loss"].iloc[0]),
                   lowest_loss=float(usable["train_loss"].min()) if len(usable) else np.nan)
        for column in ("train_loss", "mean_cosine", "quantile_cosine", "test_accuracy"):
            row[column] = np.nan if diverged else float(last[column])
        row["log_loss"] = np.log10(row["train_loss"]) if not diverged and row["train_loss"] > 0 else np.nan
        out.append(row)
    return pd.DataFrame(out)


def crossing(curve: pd.DataFrame, level: float, columns=("mean_cosine", "quantile_cosine")) -> dict | None:
    """Where one run's training loss first reaches ``level``, interpolated linearly between tracked epochs.

    ``curve``: the run's rows of :func:`epoch_table`.  With ``k`` the first
    usable tracked row at or below the level (rows from a diverged one on do
    not count) and ``f = (loss_{k-1} - level) / (loss_{k-1} - loss_k)`` in
    (0, 1], the run is read at epoch ``e_{k-1} + f (e_k - e_{k-1})`` and each
    of ``columns`` at ``c_{k-1} + f (c_k - c_{k-1})``.  A run already at or
    below the level at its first tracked epoch is read there.  ``None``: the
    run never reached the level.
    """
    curve = _usable(curve.sort_values("epoch"))
    loss = curve["train_loss"].to_numpy(dtype=float)
    hits = np.flatnonzero(loss <= level)
    if not len(hits):
        return None
    k = int(hits[0])
    epochs = curve["epoch"].to_numpy(dtype=float)
    if k == 0:
        return {"epoch": epochs[0], "fraction": 0.0, **{c: float(curve[c].iloc[0]) for c in columns}}
    f = (loss[k - 1] - level) / (loss[k - 1] - loss[k])
    # (1 - f) a + f b: exactly b at f = 1 (a level met at a tracked epoch is read there)
    values = {c: float((1 - f) * curve[c].iloc[k - 1] + f * curve[c].iloc[k]) for c in columns}
    return {"epoch": float((1 - f) * epochs[k - 1] + f * epochs[k]), "fraction": float(f), **values}


def _round_up(x: float, digits: int = 2) -> float:
    """``x`` rounded up to ``digits`` significant digits (a level so rounded is still reached where ``x`` was)."""
    scale = 10 ** (math.floor(math.log10(x)) - digits + 1)
    return float(round(math.ceil(x / scale - 1e-9) * scale, 12))


def _round(x: float, digits: int = 2) -> float:
    return float(f"{x:.{digits}g}")


def reached_by_most(values: pd.Series) -> float:
    """The lowest loss that ``max(MIN_SEEDS, ceil(MOST n))`` of a configuration's ``n`` seeds reached (NaN-safe)."""
    lowest = values.to_numpy(dtype=float)
    lowest = np.sort(np.where(np.isfinite(lowest), lowest, np.inf))
    k = min(len(lowest), max(MIN_SEEDS, math.ceil(MOST * len(lowest))))
    return float(lowest[k - 1])


def choose_levels(values: pd.DataFrame) -> tuple[list[float], pd.DataFrame]:
    """The matched-loss levels of the configurations in ``values`` (rows of :func:`run_values`, one per seed).

    Per configuration: ``reach``, the lowest loss reached by most of its
    seeds (:func:`reached_by_most`), and ``initial``, the median loss at
    epoch 0; it ``trained`` if ``reach <= TRAINED x initial``.  With at
    least two that trained, the levels are the largest ``reach`` among them
    (rounded up to two significant digits, so every one of them reaches it
    in most seeds) and the geometric middle between it and the smallest
    ``initial`` among them (kept if at least 1.25 times the first): a late
    and an early point of training.  Returns ``(levels, per-configuration
    table)``, the levels in decreasing order; none with fewer than two
    configurations that trained.
    """
    table = values.groupby(list(CONFIG)).agg(seeds=("seed", "nunique"),
                                             initial=("initial_loss", "median"),
                                             reach=("lowest_loss", reached_by_most)).reset_index()
    table["trained"] = table["reach"] <= TRAINED * table["initial"]
    trained = table[table["trained"]]
    if len(trained) < 2:
        return [], table
    low = _round_up(float(trained["reach"].max()))
    high = _round(math.sqrt(low * float(trained["initial"].min())))
    return ([high, low] if high >= 1.25 * low else [low]), table


def matched_values(epochs: pd.DataFrame, level: float) -> pd.DataFrame:
    """Per run, at the first crossing of ``level`` (:func:`crossing`): ``epoch`` (interpolated), ``mean_cosine``,
    ``quantile_cosine``; ``reached`` False (and NaN values) for a run that never got there."""
    out = []
    for key, curve in epochs.groupby("run", sort=True):
        first = curve.iloc[0]
        hit = crossing(curve, level)
        row = {k: first[k] for k in ("run", *CONFIG, "base", "lr", "seed")}
        row.update(level=level, reached=hit is not None, epoch=np.nan, mean_cosine=np.nan, quantile_cosine=np.nan)
        if hit is not None:
            row.update(epoch=hit["epoch"], mean_cosine=hit["mean_cosine"], quantile_cosine=hit["quantile_cosine"])
        out.append(row)
    return pd.DataFrame(out)


def initial_weights_correspond(a: dict, b: dict) -> bool:
    """Whether runs of configurations ``a`` and ``b`` with the same seed start from the same weights.

    The initialisation draws every convolution and linear weight in module
    order from a generator seeded by the run's seed; batch norm draws
    nothing (its scale starts at 1, its shift at 0) and the step size is not
    part of it, so configurations that differ only in those start alike.
    Skip connections add 1x1 shortcut convolutions between the blocks' draws,
    so a net with them starts from other weights than one without.
    """
    return all(a[k] == b[k] for k in ("data", "depth", "width", "skip")) and a.get("base") == b.get("base")


def per_seed(values: pd.DataFrame, column: str) -> dict:
    """``{seed: value}`` of one configuration's rows, seeds whose value is not finite left out."""
    v = values[np.isfinite(values[column].astype(float))]
    return dict(zip(v["seed"].astype(int), v[column].astype(float)))


def compare(a: pd.DataFrame, b: pd.DataFrame, column: str, expect: str, paired: bool):
    """``mc.compare_seeds`` of ``column`` between the rows of configurations ``a`` and ``b`` (one per seed), or
    ``None`` when either has fewer than ``MIN_SEEDS`` finite values (paired: in common): not testable."""
    va, vb = per_seed(a, column), per_seed(b, column)
    usable = len(set(va) & set(vb)) if paired else min(len(va), len(vb))
    if usable < MIN_SEEDS:
        return None
    return mc.compare_seeds(va, vb, paired=paired, expect=expect, confidence=CONFIDENCE)


def describe(comparison, digits: int = 3) -> str:
    """A comparison's difference and interval, or why there is none."""
    if comparison is None:
        return f"not testable (fewer than {MIN_SEEDS} seeds)"
    return f"{comparison.describe(digits)}: {comparison.verdict}"


def combine(parts: list) -> str:
    """One verdict word from the parts of a claim (each "reproduced" / "contradicted" / "not resolved", or ``None``:
    not testable): contradicted if any part is (a claim of several parts fails with one), reproduced if all tested
    parts are, "partly reproduced" if some are and the rest are not resolved, else "not resolved"; "not testable"
    when none was tested."""
    tested = [p for p in parts if p is not None]
    if not tested:
        return "not testable"
    if "contradicted" in tested:
        return "contradicted"
    if all(p == "reproduced" for p in tested):
        return "reproduced"
    if "reproduced" in tested:
        return "partly reproduced"
    return "not resolved"


def config_of(rows: pd.DataFrame) -> dict:
    """The configuration (``CONFIG`` and ``base``) of rows of one configuration."""
    first = rows.iloc[0]
    return {k: first[k] for k in (*CONFIG, "base")}


def end_of_training(a: pd.DataFrame, b: pd.DataFrame, speed: str, confusion: str) -> dict:
    """Configuration ``b`` against ``a`` at the end of training, over seeds (rows of :func:`run_values`).

    ``speed``: the expected direction of ``b``'s log10 final training loss
    ("lower": trains faster); ``confusion``: of its 5% quantile of the pair
    cosines ("lower": more confusion).  Returns :func:`compare` results
    ``speed``, ``quantile`` and ``mean`` (the mean cosine, same direction as
    the quantile, beside it) and whether they are ``paired``.
    """
    paired = not a.empty and not b.empty and initial_weights_correspond(config_of(a), config_of(b))
    return {"paired": paired, "speed": compare(a, b, "log_loss", speed, paired),
            "quantile": compare(a, b, "quantile_cosine", confusion, paired),
            "mean": compare(a, b, "mean_cosine", confusion, paired)}


def at_level(a: pd.DataFrame, b: pd.DataFrame, speed: str, confusion: str) -> dict:
    """Configuration ``b`` against ``a`` at one matched loss level, over the seeds that reached it (rows of
    :func:`matched_values`): ``quantile`` and ``mean`` of the cosines (expected ``confusion``) and ``epochs`` to
    reach the level (expected ``speed``: "lower" for fewer), as :func:`compare` results, and ``paired``."""
    a, b = a[a["reached"]], b[b["reached"]]
    paired = not a.empty and not b.empty and initial_weights_correspond(config_of(a), config_of(b))
    return {"paired": paired, "quantile": compare(a, b, "quantile_cosine", confusion, paired),
            "mean": compare(a, b, "mean_cosine", confusion, paired),
            "epochs": compare(a, b, "epoch", speed, paired)}


def describe_level_choice(levels: list, table: pd.DataFrame, label) -> str:
    """How the levels were chosen: each configuration's loss reached by most seeds, and which trained."""
    parts = [f"{label(r)}: {r.reach:.3g}"
             + ("" if r.trained else f" (did not train: above {TRAINED:g} x its initial {r.initial:.3g})")
             for r in table.itertuples()]
    chosen = (f"levels {', '.join(f'{x:g}' for x in levels)}" if levels else
              "no level (fewer than two configurations trained)")
    return (f"lowest loss reached by most seeds ({MOST:.0%}, at least {MIN_SEEDS}): " + "; ".join(parts)
            + f"; {chosen}")


def mean_interval(values) -> tuple[float, float]:
    """Mean over seeds and the half-width of its 95% t interval (``mc.mean_interval``; 0 for fewer than two values)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return np.nan, np.nan
    if len(v) < 2:
        return float(v.mean()), 0.0
    mean, _, half = mc.mean_interval(v, confidence=CONFIDENCE)
    return float(mean), float(half)


def mean_text(values, digits: int = 3) -> str:
    """``"0.412 +- 0.080"`` (mean over seeds and the half-width of its 95% t interval), ``"0.465 (one seed)"`` or
    ``"none (no seed)"``: what a report's numbers say of a per-seed statistic."""
    finite = [x for x in values if np.isfinite(x)]
    mean, half = mean_interval(finite)
    if not finite:
        return "none (no seed)"
    return f"{mean:.{digits}f} (one seed)" if len(finite) == 1 else f"{mean:.{digits}f} +- {half:.{digits}f}"


def mark_diverged(ax, values: pd.DataFrame, axis: str, color="red") -> None:
    """An x at the top of ``ax`` for each configuration whose every seed diverged."""
    failed = values.groupby(axis)["diverged"].all()
    failed = failed[failed]
    if len(failed):
        top = ax.get_ylim()[1]
        ax.plot(failed.index, [top] * len(failed), "x", color=color, ms=8, clip_on=False,
                label="diverged in every seed")
