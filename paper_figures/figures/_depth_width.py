"""Shared by F8 (depth) and F9 (width): the paper's Figures 2 and 3 protocol, plotted and reported along one axis.

One row of panels per dataset (``_training.DATASETS``).  Left: training loss
against epoch (mean over seeds; the matched-loss levels dashed).  Middle: the
5% quantile of the minibatch-pair cosines against the axis, mean over seeds
with its 95% t interval, at the end of training, at initialisation and at
each matched loss level.  Right: the density of the end-of-training cosines,
all seeds pooled.  The report gives two rows per dataset: the claim at the
end of training (:func:`end_row`) and at matched training loss
(:func:`matched_row`), each from comparisons over seeds
(``_training.end_of_training``, ``_training.at_level``).  Each figure's grid
and the figure's name and title are in its own module (``f08_depth_training``,
``f09_width_training``), which builds its ``FIGURE`` with :func:`figure`; the
settings, the training and the per-seed statistics are in ``_training``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .._figure import Figure
from .._style import colours, save
from . import _training

#: What the paper says along each axis (at the end of training; at matched loss), and the directions it expects of
#: the larger value against the smaller: (log10 final loss or epochs to a level, 5% quantile of the cosines).
CLAIMS = {"depth": ("paper Figure 2: deeper nets train slower and have more gradient confusion (a lower minimum "
                    "cosine), at the end of training",
                    "paper Figure 2: deeper nets have more gradient confusion (a lower minimum cosine), checked at "
                    "matched training loss", ("higher", "lower")),
          "width": ("paper Figure 3: wider nets train faster and have less gradient confusion (a higher minimum "
                    "cosine), at the end of training",
                    "paper Figure 3: wider nets have less gradient confusion (a higher minimum cosine), checked at "
                    "matched training loss", ("lower", "higher"))}


def datasets(data: pd.DataFrame) -> list[str]:
    """The datasets present in a figure's table, in ``_training.DATASETS`` order."""
    present = set(data["data"].dropna())
    return [d for d in _training.DATASETS if d in present] + sorted(present - set(_training.DATASETS))


def plot_for(axis: str):
    """The plot step of F8 (``axis="depth"``) or F9 (``"width"``): curves, 5% quantiles of the cosines (end of
    training, initialisation and matched loss) and the density of the end-of-training cosines, a row per dataset."""
    symbol = r"\beta" if axis == "depth" else r"\ell"

    def plot(data, stem) -> None:
        names = datasets(data)
        fig, grid = plt.subplots(len(names), 3, figsize=(14, 3.9 * len(names)), squeeze=False)
        for (curves, quantile, density), name in zip(grid, names):
            one = _training.best_runs(data[data["data"] == name])
            epochs = _training.epoch_table(one)
            values = _training.run_values(epochs)
            levels, _ = _training.choose_levels(values)
            axis_values = sorted(values[axis].unique())
            palette = dict(zip(axis_values, colours(len(axis_values))))
            for value in axis_values:
                g = epochs[(epochs[axis] == value) & ~epochs["diverged"]].groupby("epoch")["train_loss"].mean()
                curves.semilogy(g.index, g.values, "o-", ms=3, color=palette[value], label=rf"${symbol}$ = {value}")
                pairs = one[(one["kind"] == "pair_cosine") & (one[axis] == value)]
                final = pairs.merge(values.loc[~values["diverged"], ["run", "epoch"]], on=["run", "epoch"])
                density.hist(final["cosine"], bins=np.linspace(-1, 1, 41), density=True, histtype="step", lw=1.5,
                             color=palette[value], label=rf"${symbol}$ = {value}")
            for level in levels:
                curves.axhline(level, color="grey", ls="--", lw=0.8)
            curves.set_xlabel("epoch")
            curves.set_ylabel("training loss (mean over seeds)")
            curves.set_title(f"{_training.DATA_NAMES.get(name, name)}: plain SGD (matched levels dashed)")
            curves.legend(fontsize=7)
            _quantiles(quantile, epochs, values, levels, axis)
            quantile.set_xlabel(rf"{axis} ${symbol}$")
            quantile.set_ylabel("5% quantile of pair cosines")
            quantile.set_title("mean over seeds, 95% t interval")
            quantile.legend(fontsize=7)
            density.set_xlabel(r"$\cos(\nabla F_{B_1}, \nabla F_{B_2})$, minibatch pairs")
            density.set_ylabel("density")
            density.set_title("cosines at the end of training (seeds pooled)")
            density.legend(fontsize=7)
        fig.suptitle(f"CNN by {axis} ({'width' if axis == 'depth' else 'depth'} fixed), no skip, no batch norm",
                     fontsize=10)
        save(fig, stem)
    return plot


def _quantiles(ax, epochs, values, levels, axis) -> None:
    """The 5% quantile of the pair cosines against ``axis``: end of training, initialisation, matched levels."""
    axis_values = sorted(values[axis].unique())
    step = 0.02 * (max(axis_values) - min(axis_values) or 1)
    initial = epochs[epochs["epoch"] == epochs.groupby("run")["epoch"].transform("min")]
    series = [("end of training", values, "o-", "k", "k", 0)]
    series.append(("initialisation", initial, "o:", "grey", "white", -1))
    for i, (level, marker) in enumerate(zip(levels, "D^vs")):
        matched = _training.matched_values(epochs, level)
        series.append((f"at training loss {level:g}", matched[matched["reached"]], marker, "C3", "white", i + 1))
    for label, rows, fmt, color, face, offset in series:
        stats = [(v, *_training.mean_interval(rows.loc[rows[axis] == v, "quantile_cosine"])) for v in axis_values]
        stats = [s for s in stats if np.isfinite(s[1])]
        if stats:
            x, mean, half = map(np.asarray, zip(*stats))
            ax.errorbar(x + offset * step, mean, yerr=half, fmt=fmt, color=color, mfc=face, ms=4, capsize=3, lw=0.9,
                        label=label)
    _training.mark_diverged(ax, values, axis)


def report_for(axis: str):
    """The report step of F8 (``axis="depth"``) or F9 (``"width"``): per dataset, :func:`end_row` and
    :func:`matched_row`."""
    def report(data) -> list[dict]:
        rows = []
        for name in datasets(data):
            one = data[data["data"] == name]
            epochs = _training.epoch_table(_training.best_runs(one))
            values = _training.run_values(epochs)
            sizes = _training.sizes(one)
            rows += [end_row(values, axis, sizes), matched_row(epochs, values, axis, sizes)]
        return rows
    return report


def _summary(values: pd.DataFrame, axis) -> str:
    """Per value of ``axis``: final loss, 5% quantile and mean cosine (mean over seeds +- 95% t half-width), test
    accuracy, seeds that diverged."""
    out = []
    for value, g in values.groupby(axis):
        loss = 10 ** g["log_loss"].mean() if g["log_loss"].notna().any() else np.nan
        diverged = int(g["diverged"].sum())
        out.append(f"{axis}={value}: final loss {loss:.3g} (geometric mean), 5% quantile of cosines "
                   f"{_training.mean_text(g['quantile_cosine'])}, mean cosine {_training.mean_text(g['mean_cosine'])}, "
                   f"test acc {g['test_accuracy'].mean():.3f}"
                   + (f", {diverged} of {len(g)} seeds diverged" if diverged else ""))
    return "; ".join(out)


def _extremes(counts: pd.Series) -> tuple | None:
    """The smallest and largest values of an axis with at least ``MIN_SEEDS`` usable seeds (``counts``), or None."""
    usable = sorted(v for v, n in counts.items() if n >= _training.MIN_SEEDS)
    return (usable[0], usable[-1]) if len(usable) >= 2 else None


def end_row(values: pd.DataFrame, axis: str, sizes: str) -> dict:
    """The claim at the end of training: the smallest against the largest value of ``axis`` with at least 3 seeds
    that did not diverge, by the log10 final training loss and the 5% quantile of the pair cosines, over seeds."""
    claim, _, (speed_expect, confusion_expect) = CLAIMS[axis]
    counts = values[~values["diverged"]].groupby(axis)["seed"].nunique().reindex(sorted(values[axis].unique()),
                                                                                fill_value=0)
    numbers = _summary(values, axis)
    pair = _extremes(counts)
    if pair is None:
        verdict = (f"not testable: fewer than two {axis}s with {_training.MIN_SEEDS} or more seeds that did not "
                   "diverge")
    else:
        first, last = pair
        c = _training.end_of_training(values[values[axis] == first], values[values[axis] == last], speed_expect,
                                      confusion_expect)
        numbers += (f". {axis} {first} -> {last} ({'paired by seed' if c['paired'] else 'two-sample'}): log10 final "
                    f"loss {_training.describe(c['speed'])}; 5% quantile of cosines {_training.describe(c['quantile'])}"
                    f"; mean cosine {_training.describe(c['mean'])}")
        parts = [c["speed"].verdict if c["speed"] else None, c["quantile"].verdict if c["quantile"] else None]
        verdict = (f"{_training.combine(parts)}: {axis} {first} -> {last}, training speed "
                   f"{parts[0] or 'not testable'}, confusion {parts[1] or 'not testable'} "
                   f"(95% intervals over seeds)")
    return {"claim": claim,
            "check": f"{sizes}; {axis}s {[int(v) for v in sorted(values[axis].unique())]}, no skip, no batch norm. "
                     f"Per seed, at the last epoch: log10 training loss and the 5% quantile of the pair cosines (the "
                     f"paper's minimum made stable), mean cosine beside. The smallest and largest {axis} with "
                     f"{_training.MIN_SEEDS}+ seeds that did not diverge compared by a 95% Welch t interval over "
                     f"seeds on the difference (their initial weights differ); a part is reproduced or contradicted "
                     f"where its interval excludes 0, else not resolved; the claim is reproduced if both parts are, "
                     f"contradicted if either is",
            "numbers": numbers, "verdict": verdict}


def matched_row(epochs: pd.DataFrame, values: pd.DataFrame, axis: str, sizes: str) -> dict:
    """The confusion claim at matched training loss: at each level of ``_training.choose_levels``, the smallest
    against the largest value of ``axis`` that at least 3 seeds brought to the level, by the 5% quantile of the pair
    cosines where each seed first reached it (interpolated between epochs)."""
    _, claim, (speed_expect, confusion_expect) = CLAIMS[axis]
    levels, table = _training.choose_levels(values)
    numbers = [_training.describe_level_choice(levels, table, lambda r: f"{axis}={getattr(r, axis)}")]
    parts, texts = [], []
    for level in levels:
        matched = _training.matched_values(epochs, level)
        reached = matched.groupby(axis)["reached"].sum()
        pair = _extremes(reached)
        seeds = matched.groupby(axis)["seed"].nunique()
        summary = "; ".join(
            f"{axis}={v}: {int(reached[v])} of {int(seeds[v])} seeds, epoch {g['epoch'].mean():.2f}, 5% quantile "
            f"{g['quantile_cosine'].mean():.3f}" if reached[v] else f"{axis}={v}: not reached in {int(seeds[v])} seeds"
            for v, g in ((v, matched[(matched[axis] == v) & matched["reached"]]) for v in reached.index))
        if pair is None:
            parts.append(None)
            texts.append(f"loss {level:g}: not testable (fewer than two {axis}s reached it in "
                         f"{_training.MIN_SEEDS}+ seeds)")
            numbers.append(f"loss {level:g}: {summary}")
            continue
        first, last = pair
        c = _training.at_level(matched[matched[axis] == first], matched[matched[axis] == last], speed_expect,
                               confusion_expect)
        parts.append(c["quantile"].verdict if c["quantile"] else None)
        texts.append(f"loss {level:g}, {axis} {first} -> {last}: {parts[-1] or 'not testable'}")
        numbers.append(f"loss {level:g}: {summary}; {axis} {first} -> {last} "
                       f"({'paired by seed' if c['paired'] else 'two-sample'}): 5% quantile "
                       f"{_training.describe(c['quantile'])}, mean cosine {_training.describe(c['mean'])}, epochs to "
                       f"reach it {_training.describe(c['epochs'], 2)}")
    if not levels:
        verdict = f"not testable at matched loss: fewer than two {axis}s trained"
    else:
        tested = sum(p is not None for p in parts)
        verdict = (f"{_training.combine(parts)} at matched loss"
                   + (f" ({tested} of {len(parts)} levels testable)" if tested < len(parts) else "")
                   + ": " + "; ".join(texts))
    return {"claim": claim,
            "check": f"{sizes}. Levels chosen from the runs: the lowest loss every {axis} that trained reaches in "
                     f"most seeds ({_training.MOST:.0%}), and the geometric middle between it and the initial loss. "
                     f"Each seed read where its training loss first reaches the level, linearly interpolated between "
                     f"the tracked epochs around it (cosine statistics with it). The smallest and largest {axis} "
                     f"that {_training.MIN_SEEDS}+ seeds brought to the level compared by the 5% quantile of the "
                     f"pair cosines, 95% Welch t interval over seeds on the difference; reproduced or contradicted "
                     f"where it excludes 0, else not resolved; not testable where fewer than {_training.MIN_SEEDS} "
                     f"seeds reach a level",
            "numbers": ". ".join(numbers), "verdict": verdict}


def figure(name: str, title: str, axis: str, grid) -> Figure:
    """The :class:`Figure` of a training grid ``grid(scale)`` plotted and reported along ``axis`` ("depth"/"width").

    Its steps are :func:`_training.steps` (train or read back on each
    dataset, tabulate), its plot :func:`plot_for` and its report
    :func:`report_for` of ``axis``; trained with ``_training.SETTINGS``.
    """
    prepare, compute = _training.steps(grid)
    return Figure(name, title, compute, plot_for(axis), report_for(axis), _training.SETTINGS, prepare)
