"""F10, the paper's Figure 4 protocol on digits: skip connections and batch norm added to CNN-beta-l.

Four variants (plain, skip, batch norm, both) at several depths; left, the
final training loss; middle, the minimum cosine of minibatch-gradient pairs
at the end of training; right, test accuracy.  The paper finds either piece
alone helps but confusion still rises with depth, and both together keep it
low up to depth 100.

The data also hold, per model, the minimum cosine at the first tracked epoch
whose training loss is at or below each of ``_training.LEVELS`` (rows of kind
"matched_loss"; open markers in the middle panel), and a second report row
compares batch norm + skip with the plain net there.
"""

from __future__ import annotations

import numpy as np

from .._figure import Figure
from .._style import colours, save, subplots
from . import _rules, _training

VARIANTS = {"plain": (False, False), "skip": (True, False), "batch norm": (False, True), "both": (True, True)}
GRIDS = {"fast": dict(depth=[10], width=1, lr=0.1, seed=0),
         "quick": dict(depth=[10, 22], width=2, lr=[0.03, 0.1], seed=0),
         "full": dict(depth=[10, 16, 22, 28, 40], width=2, lr=[0.03, 0.1, 0.3], seed=[0, 1])}


def grid(scale: str) -> dict:
    """The training grid at ``scale``: the four variants x depths x step sizes (x seeds) of CNN-beta-l."""
    return {**_training.BASE, "skip": [False, True], "batchnorm": [False, True], **GRIDS[scale]}


prepare, compute = _training.steps(grid)


def _variant(row) -> str:
    """The variant's name (``VARIANTS``) of a row with ``skip`` and ``batchnorm``."""
    return next(name for name, flags in VARIANTS.items() if flags == (bool(row["skip"]), bool(row["batchnorm"])))


def plot(data, stem) -> None:
    """Final training loss, minimum cosine (end of training and matched loss) and test accuracy against depth."""
    summary = _training.summary(data)
    summary["variant"] = summary.apply(_variant, axis=1)
    fig, axes = subplots(3, width=4.4, height=3.8)
    for (name, _), c in zip(VARIANTS.items(), colours(len(VARIANTS))):
        g = summary[summary["variant"] == name].sort_values("depth")
        axes[0].semilogy(g["depth"], g["train_loss"], "o-", color=c, ms=4, label=name)
        axes[1].errorbar(g["depth"], g["min_cosine"], yerr=1.96 * g["min_cosine_se"], fmt="o-", color=c, ms=4,
                         capsize=3, label=name)
        axes[2].plot(g["depth"], g["test_accuracy"], "o-", color=c, ms=4, label=name)
    matched = _training.matched_loss(_training.best_runs(data))
    matched = matched[matched["status"] == "reached"]
    if len(matched):
        matched = matched.assign(variant=matched.apply(_variant, axis=1))
        step = 0.01 * (summary["depth"].max() - summary["depth"].min() or 10)
        for i, (level, marker) in enumerate(zip(_training.LEVELS, "D^vs")):
            for j, (name, c) in enumerate(zip(VARIANTS, colours(len(VARIANTS)))):
                g = matched[(matched["level"] == level) & (matched["variant"] == name)].sort_values("depth")
                axes[1].errorbar(g["depth"] + (1 + i * len(VARIANTS) + j) * step, g["matched_min_cosine"],
                                 yerr=np.clip([g["matched_min_cosine"] - g["matched_min_cosine_lo"],
                                               g["matched_min_cosine_hi"] - g["matched_min_cosine"]], 0, None),
                                 fmt=marker, color=c, mfc="white", ms=4, capsize=2, lw=0.8)
            axes[1].plot([], [], marker, color="k", mfc="white", ls="none",
                         label=f"at train loss <= {level:g} (pair-bootstrap spread)")
    for name, c in zip(VARIANTS, colours(len(VARIANTS))):
        _training.mark_diverged(axes[1], summary[summary["variant"] == name], "depth", color=c)
    for ax, ylabel, title in zip(axes, ("final training loss", "minimum minibatch-gradient cosine", "test accuracy"),
                                 ("optimal training loss", "confusion at the end of training", "generalisation")):
        ax.set_xlabel(r"depth $\beta$")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.suptitle(f"CNN-beta-{int(summary['width'].iloc[0])} on digits: skip connections and batch norm", fontsize=10)
    save(fig, stem)


def report(data) -> list[dict]:
    """Batch norm + skip against the plain net at the deepest depth, at the end of training and at matched loss."""
    summary = _training.summary(data)
    summary["variant"] = summary.apply(_variant, axis=1)
    deepest = summary["depth"].max()
    at_deepest = summary[summary["depth"] == deepest].set_index("variant")
    numbers = "; ".join(f"{v} at depth {int(deepest)}: loss {r.train_loss:.3g}, min cos {r.min_cosine:.3f}, "
                        f"test acc {r.test_accuracy:.3f}{' (diverged at every step size)' if r.diverged else ''}"
                        for v, r in at_deepest.iterrows())
    both, plain = at_deepest.loc["both"], at_deepest.loc["plain"]
    trainable = both["train_loss"] < 0.1 * plain["train_loss"] or plain["diverged"]
    plain_trained = plain["train_loss"] < 0.1 and not plain["diverged"]
    lower_confusion = both["min_cosine"] > plain["min_cosine"]
    if trainable and plain_trained:
        verdict = "reproduced" if lower_confusion else "partly: trainability only"
    elif trainable:
        verdict = ("partly: batch norm + skip keeps the deepest net trainable where the plain one is not; "
                   "confusion not comparable (the plain net did not train)")
    else:
        verdict = "not reproduced on this run"
    return [{"claim": "paper Figure 4: batch norm and skip connections together keep confusion low and deep "
                      "networks trainable",
             "check": f"four variants of CNN-beta-l on digits, depths {[int(d) for d in sorted(summary.depth.unique())]}"
                      ", best step size per model; at the deepest depth, by point values (means over seeds, no "
                      "interval): trainable where the final loss of batch norm + skip is below 0.1 x the plain net's "
                      "(or the plain net diverged), the plain net trained where its final loss is below 0.1, lower "
                      "confusion where the minimum cosine is higher",
             "numbers": numbers,
             "verdict": f"{verdict}, {_rules.seeds_note(int(summary['seeds'].min()))}"},
            matched_row(data)]


def matched_row(data) -> dict:
    """Batch norm + skip against the plain net at matched training loss, at the deepest depth both reached."""
    matched = _training.matched_loss(_training.best_runs(data))
    matched["variant"] = matched.apply(_variant, axis=1)
    numbers, outcomes, verdicts = [], [], []
    for level in _training.LEVELS:
        at = matched[matched["level"] == level].sort_values(["depth", "skip", "batchnorm"])
        numbers.append(f"loss <= {level:g}: " + "; ".join(
            f"{r.variant} depth {int(r.depth)}: {_training.describe_matched(r)}" for _, r in at.iterrows()))
        reached = at[at["status"] == "reached"]
        both = reached[reached["variant"] == "both"].set_index("depth")
        plain = reached[reached["variant"] == "plain"].set_index("depth")
        common = sorted(set(both.index) & set(plain.index))
        if not common:
            missing = [v for v, g in (("both", both), ("plain", plain)) if g.empty]
            outcomes.append(None)
            verdicts.append(f"loss <= {level:g}: not testable ("
                            + (f"{' and '.join(missing)} never reached it" if missing else
                               "plain and both reached it at no common depth") + ")")
            continue
        depth = common[-1]
        outcome, text = _training.compare_matched(plain.loc[depth], both.loc[depth], "higher")
        outcomes.append(outcome)
        verdicts.append(f"loss <= {level:g}, depth {int(depth)}, plain -> both: {outcome}: {text}")
    reason = f"the plain net and batch norm + skip did not both reach any of the losses {list(_training.LEVELS)}"
    return {"claim": "paper Figure 4 at matched training loss: batch norm and skip together keep confusion lower "
                     "(a higher minimum cosine) than the plain net",
            "check": "best-step-size runs read at the first tracked epoch whose training loss is <= each level (no "
                     "interpolation, the epoch used is given); plain against batch norm + skip at the deepest depth "
                     f"both reached; min over the minibatch pairs with the spread of a 95% percentile bootstrap over "
                     f"the pairs ({_training.BOOTSTRAP_DRAWS} resamples; the resampling spread of one run's pairs, not "
                     "an interval of the result), mean cosine +- s.e. beside it; 'as the paper' or 'against' where "
                     "the two spreads are disjoint",
            "numbers": ". ".join(numbers),
            "verdict": _training.overall_matched(outcomes, reason, _training.compared_seeds(matched)) + ": "
                       + "; ".join(verdicts)}


FIGURE = Figure("F10_batchnorm_skip", "Paper Figure 4 protocol on digits: skip connections and batch norm", compute,
                plot, report, _training.SETTINGS, prepare)
