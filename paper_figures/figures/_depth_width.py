"""Shared by F8 (depth) and F9 (width): the paper's Figures 2 and 3 protocol, plotted and reported along one axis.

Left: training loss against epoch (the step size with the lowest final
training loss per model, as the paper tunes it; mean over seeds).  Middle:
the minimum cosine of the minibatch-gradient pairs at the end of training,
at initialisation and at matched training loss.  Right: the density of the
end-of-training cosines.  The report checks the paper's claim at the end of
training and at matched loss (:func:`matched_row`).  Each figure's grid and
the figure's name and title are in its own module (``f08_depth_training``,
``f09_width_training``), which builds its ``FIGURE`` with :func:`figure`; the
settings, the training and the tabulation are in ``_training``.
"""

from __future__ import annotations

import numpy as np

from .._figure import Figure
from .._style import colours, save, subplots
from . import _rules, _training


def plot_for(axis: str):
    """The plot step of F8 (``axis="depth"``) or F9 (``"width"``): curves, minimum cosines (end of training,
    initialisation and matched loss) and the density of the end-of-training cosines."""
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
                                 label=f"at train loss <= {level:g} (pair-bootstrap spread)")
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


def report_for(axis: str):
    """The report step of F8 (``axis="depth"``) or F9 (``"width"``): the end-of-training claim and
    :func:`matched_row`."""
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
        word = ("reproduced (both)" if slower and more_negative else
                "partly: training speed only" if slower else
                "partly: confusion only" if more_negative else "not reproduced on this run")
        return [{"claim": f"paper: {paper}",
                 "check": f"CNN on digits, plain SGD, end-of-training minimum cosine of minibatch-gradient pairs; "
                          f"{axis}s {[int(v) for v in s[axis]]}; the first and last {axis} compared by their point "
                          "values (final loss, minimum cosine; means over seeds, no interval)",
                 "numbers": numbers,
                 "verdict": f"{word}, {_rules.seeds_note(int(s['seeds'].min()))}"},
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
                     f"given); min over the minibatch pairs there with the spread of a 95% percentile bootstrap over "
                     f"the pairs ({_training.BOOTSTRAP_DRAWS} resamples; a bootstrap minimum cannot fall below the "
                     f"sample minimum, so it is the resampling spread of one run's pairs, not an interval of the "
                     f"result), and the mean cosine +- s.e. over the pairs beside it; extremes of the {axis}s that "
                     f"reached the level compared: 'as the paper' or 'against' where the two spreads are disjoint",
            "numbers": ". ".join(numbers),
            "verdict": _training.overall_matched(outcomes, reason, _training.compared_seeds(matched)) + ": "
                       + "; ".join(verdicts)}


def figure(name: str, title: str, axis: str, grid) -> Figure:
    """The :class:`Figure` of a training grid ``grid(scale)`` plotted and reported along ``axis`` ("depth"/"width").

    Its steps are :func:`_training.steps` (train or read back, tabulate with
    matched-loss rows), its plot :func:`plot_for` and its report
    :func:`report_for` of ``axis``; trained with ``_training.SETTINGS``.
    """
    prepare, compute = _training.steps(grid)
    return Figure(name, title, compute, plot_for(axis), report_for(axis), _training.SETTINGS, prepare)
