"""F10, the paper's Figure 4 protocol on digits and MNIST-1D: skip connections and batch norm added to CNN-beta-l.

Four variants (plain, skip, batch norm, both), each trained with several
seeds (``_training.SEEDS``) on both datasets (``_training.DATASETS``); a row
of panels per dataset: the final training loss (geometric mean over seeds),
the 5% quantile of the minibatch-pair cosines at the end of training (mean
over seeds with its 95% t interval; open markers: plain and both at the
matched loss levels) and test accuracy, against depth.  The paper finds
either piece alone helps but confusion still rises with depth, and both
together keep it low up to depth 100.  The report compares batch norm + skip
with the plain net at the deepest depth both trained, at the end of training
and at matched loss, by t intervals over seeds (two-sample: the shortcut
convolutions give the net with skips other initial weights); batch norm
alone against the plain net is paired by seed (the same initial weights).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .._figure import Figure
from .._style import colours, save
from . import _depth_width, _training

VARIANTS = {"plain": (False, False), "skip": (True, False), "batch norm": (False, True), "both": (True, True)}
GRIDS = {"fast": dict(depth=[10], width=1),
         "quick": dict(depth=[16], width=2),
         "full": dict(depth=[16, 22], width=2)}


def grid(scale: str) -> dict:
    """The training grid at ``scale``: the four variants x depths of CNN-beta-l, with the scale's seeds and steps."""
    return _training.grid(scale, skip=[False, True], batchnorm=[False, True], **GRIDS[scale])


prepare, compute = _training.steps(grid)


def _variant(row) -> str:
    """The variant's name (``VARIANTS``) of a row with ``skip`` and ``batchnorm``."""
    return next(name for name, flags in VARIANTS.items() if flags == (bool(row["skip"]), bool(row["batchnorm"])))


def _with_variant(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(variant=frame.apply(_variant, axis=1)) if len(frame) else frame.assign(variant=[])


def _tables(data: pd.DataFrame, name: str):
    one = data[data["data"] == name]
    epochs = _training.epoch_table(_training.best_runs(one))
    return one, epochs, _with_variant(_training.run_values(epochs))


def plot(data, stem) -> None:
    """Final training loss, 5% quantile of the pair cosines (end of training; matched loss) and test accuracy against
    depth, a row per dataset."""
    names = _depth_width.datasets(data)
    fig, grid_axes = plt.subplots(len(names), 3, figsize=(13.5, 3.9 * len(names)), squeeze=False)
    for axes, name in zip(grid_axes, names):
        _, epochs, values = _tables(data, name)
        palette = dict(zip(VARIANTS, colours(len(VARIANTS))))
        for variant, c in palette.items():
            g = values[values["variant"] == variant]
            depths = sorted(g["depth"].unique())
            loss = [10 ** g.loc[g["depth"] == d, "log_loss"].mean() for d in depths]
            axes[0].semilogy(depths, loss, "o-", color=c, ms=4, label=variant)
            stats = [_training.mean_interval(g.loc[g["depth"] == d, "quantile_cosine"]) for d in depths]
            axes[1].errorbar(depths, [s[0] for s in stats], yerr=[s[1] for s in stats], fmt="o-", color=c, ms=4,
                             capsize=3, label=variant)
            axes[2].plot(depths, [g.loc[g["depth"] == d, "test_accuracy"].mean() for d in depths], "o-", color=c,
                         ms=4, label=variant)
            _training.mark_diverged(axes[1], g, "depth", color=c)
        depth, levels = _matched_depth(values)
        if depth is not None:
            for i, (level, marker) in enumerate(zip(levels, "D^vs")):
                matched = _with_variant(_training.matched_values(epochs[epochs["depth"] == depth], level))
                for j, variant in enumerate(("plain", "both")):
                    g = matched[(matched["variant"] == variant) & matched["reached"]]
                    mean, half = _training.mean_interval(g["quantile_cosine"])
                    if np.isfinite(mean):
                        axes[1].errorbar([depth + 0.4 * (1 + 2 * i + j)], [mean], yerr=[half], fmt=marker,
                                         color=palette[variant], mfc="white", ms=5, capsize=2, lw=0.8,
                                         label=f"{variant} at training loss {level:g}")
        for ax, ylabel, title in zip(axes, ("final training loss", "5% quantile of pair cosines", "test accuracy"),
                                     ("training loss (geometric mean over seeds)", "confusion (mean, 95% t interval)",
                                      "generalisation")):
            ax.set_xlabel(r"depth $\beta$")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{_training.DATA_NAMES.get(name, name)}: {title}")
            ax.legend(fontsize=6)
    fig.suptitle("CNN-beta-l: skip connections and batch norm", fontsize=10)
    save(fig, stem)


def _usable(values: pd.DataFrame) -> pd.Series:
    """Seeds that did not diverge, per (variant, depth)."""
    return values[~values["diverged"]].groupby(["variant", "depth"])["seed"].nunique()


def _compared_depth(values: pd.DataFrame):
    """The deepest depth at which plain and both each have at least ``MIN_SEEDS`` seeds that did not diverge."""
    usable = _usable(values)
    depths = [d for d in sorted(values["depth"].unique())
              if all(usable.get((v, d), 0) >= _training.MIN_SEEDS for v in ("plain", "both"))]
    return depths[-1] if depths else None


def _matched_depth(values: pd.DataFrame):
    """The deepest depth at which plain and both get matched-loss levels (both trained), and those levels."""
    for depth in sorted(values["depth"].unique(), reverse=True):
        pair = values[(values["depth"] == depth) & values["variant"].isin(["plain", "both"])]
        levels, _ = _training.choose_levels(pair)
        if levels:
            return depth, levels
    return None, []


def _pair(values, depth, a, b):
    at = values[values["depth"] == depth]
    return at[at["variant"] == a], at[at["variant"] == b]


def report(data) -> list[dict]:
    """Per dataset: batch norm + skip against the plain net at the end of training and at matched loss."""
    rows = []
    for name in _depth_width.datasets(data):
        one, epochs, values = _tables(data, name)
        sizes = _training.sizes(one)
        rows += [end_row(values, sizes), matched_row(epochs, values, sizes)]
    return rows


def _summary(values: pd.DataFrame) -> str:
    out = []
    for (depth, variant), g in values.groupby(["depth", "variant"]):
        loss = 10 ** g["log_loss"].mean() if g["log_loss"].notna().any() else np.nan
        diverged = int(g["diverged"].sum())
        out.append(f"{variant} depth {depth}: final loss {loss:.3g}, 5% quantile of cosines "
                   f"{_training.mean_text(g['quantile_cosine'])}, test acc {g['test_accuracy'].mean():.3f}"
                   + (f", {diverged} of {len(g)} seeds diverged" if diverged else ""))
    return "; ".join(out)


def end_row(values: pd.DataFrame, sizes: str) -> dict:
    """Batch norm + skip against the plain net at the deepest depth where both have 3+ seeds that did not diverge:
    log10 final loss (expected lower) and 5% quantile of the pair cosines (expected higher), over seeds."""
    numbers = [_summary(values)]
    depth = _compared_depth(values)
    if depth is None:
        verdict = (f"not testable: plain and batch norm + skip have {_training.MIN_SEEDS}+ seeds that did not "
                   "diverge at no common depth")
    else:
        c = _training.end_of_training(*_pair(values, depth, "plain", "both"), "lower", "higher")
        parts = [c["speed"].verdict if c["speed"] else None, c["quantile"].verdict if c["quantile"] else None]
        numbers.append(f"depth {depth}, plain -> both (two-sample): log10 final loss {_training.describe(c['speed'])}; "
                       f"5% quantile of cosines {_training.describe(c['quantile'])}; mean cosine "
                       f"{_training.describe(c['mean'])}")
        for other in ("batch norm", "skip"):
            o = _training.end_of_training(*_pair(values, depth, "plain", other), "lower", "higher")
            numbers.append(f"plain -> {other} ({'paired by seed' if o['paired'] else 'two-sample'}): log10 final loss "
                           f"{_training.describe(o['speed'])}; 5% quantile {_training.describe(o['quantile'])}")
        verdict = (f"{_training.combine(parts)}: depth {depth}, plain -> batch norm + skip, trainability "
                   f"{parts[0] or 'not testable'}, confusion {parts[1] or 'not testable'} (95% intervals over seeds)")
    return {"claim": "paper Figure 4: batch norm and skip connections together keep deep networks trainable and "
                     "confusion low (a higher minimum cosine than the plain net), at the end of training",
            "check": f"{sizes}; four variants at depths {[int(d) for d in sorted(values['depth'].unique())]}. Per "
                     f"seed at the last epoch: log10 training loss (trainability: lower) and the 5% quantile of the "
                     f"pair cosines (confusion: higher). Plain against batch norm + skip at the deepest depth where "
                     f"each has {_training.MIN_SEEDS}+ seeds that did not diverge, 95% Welch t interval over seeds "
                     f"on the difference (the shortcuts give other initial weights); reproduced or contradicted where "
                     f"it excludes 0, else not resolved; the claim is reproduced if both parts are, contradicted if "
                     f"either is. Batch norm alone against plain is paired by seed (the same initial weights)",
            "numbers": ". ".join(numbers), "verdict": verdict}


def matched_row(epochs: pd.DataFrame, values: pd.DataFrame, sizes: str) -> dict:
    """Batch norm + skip against the plain net at matched training loss (levels chosen from these two at the deepest
    depth where both trained): the 5% quantile of the pair cosines (expected higher), over seeds."""
    depth, levels = _matched_depth(values)
    numbers, parts, texts = [], [], []
    if depth is None:
        verdict = "not testable at matched loss: plain and batch norm + skip trained at no common depth"
        for d in sorted(values["depth"].unique()):
            pair = values[(values["depth"] == d) & values["variant"].isin(["plain", "both"])]
            _, table = _training.choose_levels(pair)
            numbers.append(f"depth {d}: " + _training.describe_level_choice([], table, _label))
    else:
        pair = values[(values["depth"] == depth) & values["variant"].isin(["plain", "both"])]
        _, table = _training.choose_levels(pair)
        numbers.append(f"depth {depth}: " + _training.describe_level_choice(levels, table, _label))
        at_depth = epochs[epochs["depth"] == depth]
        for level in levels:
            matched = _with_variant(_training.matched_values(at_depth, level))
            reached = matched.groupby("variant")["reached"].sum()
            summary = "; ".join(f"{v}: {int(reached.get(v, 0))} of {int((matched['variant'] == v).sum())} seeds"
                                for v in VARIANTS if v in reached.index)
            if min(reached.get("plain", 0), reached.get("both", 0)) < _training.MIN_SEEDS:
                parts.append(None)
                texts.append(f"loss {level:g}: not testable (fewer than {_training.MIN_SEEDS} seeds reached it)")
                numbers.append(f"loss {level:g}: {summary}")
                continue
            c = _training.at_level(*_pair(matched, depth, "plain", "both"), "lower", "higher")
            bn = _training.at_level(*_pair(matched, depth, "plain", "batch norm"), "lower", "higher")
            parts.append(c["quantile"].verdict if c["quantile"] else None)
            texts.append(f"loss {level:g}, plain -> both: {parts[-1] or 'not testable'}")
            numbers.append(f"loss {level:g}: {summary}; plain -> both (two-sample): 5% quantile "
                           f"{_training.describe(c['quantile'])}, mean cosine {_training.describe(c['mean'])}, epochs "
                           f"to reach it {_training.describe(c['epochs'], 2)}; plain -> batch norm "
                           f"({'paired by seed' if bn['paired'] else 'two-sample'}): 5% quantile "
                           f"{_training.describe(bn['quantile'])}")
        tested = sum(p is not None for p in parts)
        verdict = (f"{_training.combine(parts)} at matched loss"
                   + (f" ({tested} of {len(parts)} levels testable)" if tested < len(parts) else "")
                   + ": " + "; ".join(texts))
    return {"claim": "paper Figure 4 at matched training loss: batch norm and skip together keep confusion lower "
                     "(a higher minimum cosine) than the plain net",
            "check": f"{sizes}. At the deepest depth where plain and batch norm + skip both trained, levels chosen "
                     f"from their runs (the lowest loss both reach in most seeds, {_training.MOST:.0%}, and the "
                     f"geometric middle between it and the initial loss); each seed read where its training loss "
                     f"first reaches the level, interpolated linearly between tracked epochs; the 5% quantile of the "
                     f"pair cosines compared by a 95% Welch t interval over seeds; reproduced or contradicted where it "
                     f"excludes 0, else not resolved; not testable where fewer than {_training.MIN_SEEDS} seeds reach "
                     f"a level",
            "numbers": ". ".join(numbers), "verdict": verdict}


def _label(row) -> str:
    return f"{_variant({'skip': row.skip, 'batchnorm': row.batchnorm})} depth {row.depth}"


FIGURE = Figure("F10_batchnorm_skip", "Paper Figure 4 protocol on digits and MNIST-1D: skip connections and batch norm",
                compute, plot, report, _training.SETTINGS, prepare)
