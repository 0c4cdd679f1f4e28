"""F8 and F9, the paper's Figures 2 and 3 protocol on digits: CNN-beta-l trained with plain SGD, by depth and by width.

Left: training loss against epoch (the step size with the lowest final
training loss per model, as the paper tunes it; mean over seeds).  Middle:
the minimum cosine of 100 (full) minibatch-gradient pairs at the end of
training.  Right: the density of those cosines.  The paper (CIFAR-10, depth
16-40, width 2-6) finds deeper nets train slower with a more negative minimum
cosine, and wider nets the reverse.

On digits the deeper nets end far from a fit, so the end-of-training cosines
compare models at different losses; the data also hold, per model, the
minimum cosine at the first tracked epoch whose training loss is at or below
each of ``_training.LEVELS`` (rows of kind "matched_loss"), drawn as open
markers in the middle panel and checked in a second report row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._registry import Figure
from .._style import colours, save, subplots
from . import _training

BASE = dict(model="cnn", base=8)
SETTINGS = {
    "fast": dict(data="digits", epochs=2, pairs=3, pair_batch=32, track_points=2, probe_size=16),
    "quick": dict(data="digits", epochs=15, pairs=20, pair_batch=128, track_points=4, probe_size=32),
    "full": dict(data="digits", epochs=30, pairs=50, pair_batch=128, track_points=6, probe_size=64),
}
GRIDS = {
    "depth": {"fast": dict(depth=[10, 16], width=1, lr=0.1, seed=0),
              "quick": dict(depth=[10, 16, 22], width=2, lr=[0.03, 0.1], seed=0),
              "full": dict(depth=[10, 16, 22, 28], width=2, lr=[0.03, 0.1, 0.3], seed=[0, 1])},
    "width": {"fast": dict(depth=10, width=[1, 2], lr=0.1, seed=0),
              "quick": dict(depth=16, width=[1, 2, 4], lr=[0.03, 0.1], seed=0),
              "full": dict(depth=16, width=[1, 2, 4, 6], lr=[0.03, 0.1, 0.3], seed=[0, 1])},
}


def _prepare(axis):
    def prepare(scale, context) -> list:
        return _training.pieces({**BASE, **GRIDS[axis][scale]}, SETTINGS[scale], context)
    return prepare


def _compute(axis):
    def compute(scale, context) -> pd.DataFrame:
        store, keys = _training.run({**BASE, **GRIDS[axis][scale]}, SETTINGS[scale], context)
        return _training.with_matched_loss(_training.tabulate(store, keys))
    return compute


def _plot(axis):
    symbol = r"\beta" if axis == "depth" else r"\ell"

    def plot(data, stem) -> None:
        best = _training.best_runs(data)
        summary = _training.summary(data)
        values = sorted(summary[axis].unique())
        palette = dict(zip(values, colours(len(values))))
        fig, (curves, minimum, density) = subplots(3, width=4.6, height=3.8)
        curve_rows = best[best["kind"] == "curve"]
        for value in values:
            g = curve_rows[curve_rows[axis] == value].groupby("epoch")["train_loss"].mean()
            lr = summary.loc[summary[axis] == value, "lr"].iloc[0]
            curves.semilogy(g.index, g.values, "o-", ms=3, color=palette[value], label=rf"${symbol}$ = {value} (lr {lr:g})")
            cos = best[(best["kind"] == "cosine") & (best[axis] == value)]["cosine"]
            density.hist(cos, bins=np.linspace(-1, 1, 41), density=True, histtype="step", lw=1.5, color=palette[value],
                         label=rf"${symbol}$ = {value}")
        curves.set_xlabel("epoch")
        curves.set_ylabel("training loss (cross-entropy)")
        curves.set_title("plain SGD on digits")
        curves.legend(fontsize=7)
        minimum.errorbar(summary[axis], summary["min_cosine"], yerr=1.96 * summary["min_cosine_se"], fmt="o-",
                         color="k", ms=4, capsize=3, label="minibatch pairs (mean over seeds, 95% CI)")
        minimum.plot(summary[axis], summary["probe_min_cosine"], "s--", color="grey", ms=3,
                     label="per-example, probe set")
        minimum.plot(summary[axis], summary["min_cosine_init"], "o:", color="k", mfc="white", ms=4,
                     label="minibatch pairs at initialisation")
        matched = _training.matched_loss(best)
        step = 0.02 * (max(values) - min(values) or 1)
        for i, (level, marker) in enumerate(zip(_training.LEVELS, "D^vs")):
            m = matched[(matched["level"] == level) & (matched["status"] == "reached")].sort_values(axis)
            if len(m):
                error = np.clip([m["matched_min_cosine"] - m["matched_min_cosine_lo"],
                                 m["matched_min_cosine_hi"] - m["matched_min_cosine"]], 0, None)
                minimum.errorbar(m[axis] + (i + 1) * step, m["matched_min_cosine"], yerr=error, fmt=marker,
                                 color="C3", mfc="white", ms=4, capsize=2, lw=0.8,
                                 label=f"at train loss <= {level:g} (bootstrap 95%)")
        _training.mark_diverged(minimum, summary, axis)
        minimum.set_xlabel(rf"{axis} ${symbol}$")
        minimum.set_ylabel("minimum pairwise gradient cosine")
        minimum.set_title("end of training, initialisation and matched loss")
        minimum.legend(fontsize=7)
        density.set_xlabel(r"$\cos(\nabla F_{B_1}, \nabla F_{B_2})$, minibatch pairs")
        density.set_ylabel("density")
        density.set_title("cosines at the end of training")
        density.legend(fontsize=7)
        width_or_depth = "width" if axis == "depth" else "depth"
        fig.suptitle(f"CNN-{'beta' if axis == 'depth' else int(summary['depth'].iloc[0])}-"
                     f"{int(summary['width'].iloc[0]) if axis == 'depth' else 'l'} on digits "
                     f"({width_or_depth} fixed), no skip, no batch norm", fontsize=10)
        save(fig, stem)
    return plot


def _report(axis):
    def report(data) -> list[dict]:
        s = _training.summary(data).sort_values(axis)
        first, last = s.iloc[0], s.iloc[-1]
        deeper = axis == "depth"
        slower = last["train_loss"] > first["train_loss"] if deeper else last["train_loss"] < first["train_loss"]
        more_negative = (last["min_cosine"] < first["min_cosine"]) if deeper else (last["min_cosine"] > first["min_cosine"])
        numbers = "; ".join(f"{axis}={int(r[axis])}: loss {r.train_loss:.3g}, min cos {r.min_cosine:.3f} "
                            f"(at init {r.min_cosine_init:.3f}), test acc {r.test_accuracy:.3f} (lr {r.lr:g}, "
                            f"{int(r.seeds)} seed(s){', diverged at every step size' if r.diverged else ''})"
                            for _, r in s.iterrows())
        paper = ("deeper trains slower with a more negative minimum cosine (Figure 2)" if deeper else
                 "wider trains faster with a less negative minimum cosine (Figure 3)")
        return [{"claim": f"paper: {paper}",
                 "check": f"CNN on digits, plain SGD, end-of-training minimum cosine of minibatch-gradient pairs; "
                          f"{axis}s {[int(v) for v in s[axis]]}",
                 "numbers": numbers,
                 "verdict": ("reproduced (both)" if slower and more_negative else
                             "partly: training speed only" if slower else
                             "partly: confusion only" if more_negative else "not reproduced on this run")},
                matched_row(data, axis)]
    return report


def matched_row(data, axis) -> dict:
    """The depth or width claim at matched training loss: the min cosine at each of ``_training.LEVELS``."""
    deeper = axis == "depth"
    matched = _training.matched_loss(_training.best_runs(data))
    numbers, outcomes, verdicts = [], [], []
    for level in _training.LEVELS:
        at = matched[matched["level"] == level].sort_values(axis)
        numbers.append(f"loss <= {level:g}: " + "; ".join(f"{axis}={int(r[axis])}: {_training.describe_matched(r)}"
                                                         for _, r in at.iterrows()))
        reached = at[at["status"] == "reached"]
        if len(reached) < 2:
            who = f"only {axis} {int(reached[axis].iloc[0])}" if len(reached) else f"no {axis}"
            outcomes.append(None)
            verdicts.append(f"loss <= {level:g}: not testable ({who} reached it)")
            continue
        first, last = reached.iloc[0], reached.iloc[-1]
        outcome, text = _training.compare_matched(first, last, "lower" if deeper else "higher")
        outcomes.append(outcome)
        verdicts.append(f"loss <= {level:g}, {axis} {int(first[axis])} -> {int(last[axis])}: {outcome}: {text}")
    reason = f"fewer than two {axis}s reached any of the losses {list(_training.LEVELS)}"
    paper = ("deeper nets have more confusion (a lower minimum cosine)" if deeper else
             "wider nets have less confusion (a higher minimum cosine)")
    return {"claim": f"paper: {paper}, checked at matched training loss",
            "check": f"the best-step-size run of each {axis} read at the first tracked epoch whose full-training-set "
                     f"loss is <= each level (tracked epochs are log-spaced; no interpolation, the epoch used is "
                     f"given); min over the minibatch pairs there with a 95% percentile bootstrap over the pairs "
                     f"({_training.BOOTSTRAP_DRAWS} resamples; a bootstrap minimum cannot fall below the sample "
                     f"minimum, so the interval is resampling spread only), and the mean cosine +- s.e. over the pairs"
                     f" beside it; extremes of the {axis}s that reached the level compared",
            "numbers": ". ".join(numbers),
            "verdict": _training.overall_matched(outcomes, reason) + ": " + "; ".join(verdicts)}


FIGURE_DEPTH = Figure("F8_depth_training", "Paper Figure 2 protocol on digits: depth", _compute("depth"),
                      _plot("depth"), _report("depth"), SETTINGS, _prepare("depth"))
FIGURE_WIDTH = Figure("F9_width_training", "Paper Figure 3 protocol on digits: width", _compute("width"),
                      _plot("width"), _report("width"), SETTINGS, _prepare("width"))
