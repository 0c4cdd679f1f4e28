"""F5, normalised confusion at Gaussian initialisation: the minimum pairwise gradient cosine against width and depth.

The paper's qualitative claim (and prediction 10 of the digest): the minimum
cosine becomes more negative with depth at fixed width and less negative
with width at fixed depth.  relu and tanh networks, Strategy 4.1 with
kappa = 1, square loss, tanh teacher, N points on S^{d-1}; means over trials
with 95% intervals (1.96 standard errors) and the 10-90% range.  Dotted: the
infinite-width law (``montecarlo.sample_infinite_width``): its minimum cosine
hardly depends on width or depth, so the depth and width trends of the Monte
Carlo are finite-width effects, of order ``sqrt(depth / width)``.

What the relu curves are conditional on: relu is applied at the output (the
paper's eq. 4), so an example's gradient is exactly zero whenever its output
pre-activation is negative, about half of the examples.  Their cosines are
undefined and left out of each trial's minimum (a minimum over the pairs of
non-zero gradients), and a trial with at most one non-zero gradient has no
minimum and is left out of the mean; the infinite-width law is treated alike.
The report rows give both counts per activation wherever they are not zero;
tanh gradients never vanish.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import montecarlo as mc

from .._figure import Figure
from .._style import band, colours, save, subplots
from . import _sweeps

BASE = dict(d=32, n_samples=16, kappa=1.0, loss="square", labels="tanh")
SCALES = {
    "fast": dict(widths=[16, 64, 256], depths=[1, 8], fixed_width=128, fixed_depth=4, trials=200),
    "quick": dict(widths=[16, 32, 64, 128, 256, 512], depths=[1, 2, 4, 8, 16], fixed_width=128, fixed_depth=4,
                  trials=400),
    "full": dict(widths=[16, 32, 64, 128, 256, 512, 1024, 2048], depths=[1, 2, 4, 8, 16, 32], fixed_width=256,
                 fixed_depth=4, trials=4000),
}
ACTIVATIONS = ("relu", "tanh")
STATISTICS = ("min_cosine", "cosine_q0.05", "fraction_negative")
SEED = 5


def compute(scale, context) -> pd.DataFrame:
    cfg = SCALES[scale]
    frames = []
    for sweep, grid in (("width", {"width": cfg["widths"], "depth": cfg["fixed_depth"]}),
                        ("depth", {"width": cfg["fixed_width"], "depth": cfg["depths"]})):
        store = _sweeps.run({**BASE, **grid, "activation": list(ACTIVATIONS)}, cfg["trials"], SEED, context,
                            name=f"by_{sweep}")
        frames.append(_sweeps.mean_rows(store, STATISTICS).assign(sweep=sweep))
    data = pd.concat(frames, ignore_index=True)
    # the infinite-width law's mean minimum cosine at each point (montecarlo.sample_infinite_width)
    for (activation, depth), g in data.groupby(["activation", "depth"]):
        predicted = _sweeps.infinite_width_statistics({**BASE, "activation": activation}, int(depth), g["width"].unique(),
                                                      lambda G: np.nanmean(mc.min_cosine(G)))
        data.loc[g.index, "min_cosine_infinite_width"] = g["width"].map(predicted)
    return data


def plot(data, stem) -> None:
    fig, axes = subplots(2)
    for ax, sweep, axis, label in ((axes[0], "width", "width", r"width $\ell$"), (axes[1], "depth", "depth", r"depth $\beta$")):
        part = data[data["sweep"] == sweep]
        for activation, c in zip(ACTIVATIONS, colours(2)):
            g = part[part["activation"] == activation].sort_values(axis)
            ax.plot(g[axis], g["min_cosine"], "o-", color=c, ms=3, label=f"{activation}: mean (95% CI)")
            band(ax, g[axis], g["min_cosine"] - 1.96 * g["min_cosine_se"], g["min_cosine"] + 1.96 * g["min_cosine_se"],
                 c, alpha=0.35)
            band(ax, g[axis], g["min_cosine_q10"], g["min_cosine_q90"], c, alpha=0.1)
            ax.plot(g[axis], g["min_cosine_infinite_width"], ":", color=c, lw=1.5, label=f"{activation}: infinite-width law")
        fixed = "depth" if sweep == "width" else "width"
        ax.set_xscale("log", base=2)
        ax.set_xlabel(label)
        ax.set_ylabel(r"$\min_{i \neq j} \cos(\nabla f_i, \nabla f_j)$ (10-90% shaded)" + "\n"
                      "over the pairs of non-zero gradients")
        ax.set_title(f"Gaussian init, {fixed} {int(part[fixed].iloc[0])}, d = {int(part['d'].iloc[0])}, "
                     f"N = {int(part['n_samples'].iloc[0])}")
        ax.legend()
    save(fig, stem)


def _trend(part, axis, sign):
    """Is the mean minimum cosine monotone (in the direction ``sign``) beyond 2 standard errors end to end?"""
    g = part.sort_values(axis)
    first, last = g.iloc[0], g.iloc[-1]
    gap = (last["min_cosine"] - first["min_cosine"]) * sign
    return gap > 2 * np.hypot(first["min_cosine_se"], last["min_cosine_se"]), g


def conditioning(part) -> str:
    """What the means of ``part`` are conditional on, per activation, where it is not zero ("" where it is).

    The trials left out of the mean (an undefined minimum cosine: at most one non-zero gradient) and the pairs
    left out of each minimum (a zero gradient), as counts over the points and the range of shares per point.
    """
    notes = []
    for activation, g in part.groupby("activation", sort=False):
        left_out, trials = int(g["min_cosine_undefined"].sum()), int(g["trials"].sum())
        pairs_out, pairs = int(g["undefined_cosine_pairs"].sum()), int(g["cosine_pairs"].sum())
        if left_out == 0 and pairs_out == 0:
            continue
        share, pair_share = g["min_cosine_undefined"] / g["trials"], g["undefined_cosine_pairs"] / g["cosine_pairs"]
        notes.append(f"{activation}: conditional on non-zero gradients (relu at the output zeroes one whose output "
                     f"pre-activation is negative): "
                     f"{left_out}/{trials} trials without a defined minimum cosine left out of the means "
                     f"({share.min():.1%}-{share.max():.1%} per point), {pairs_out}/{pairs} pairs left out of the "
                     f"minima ({pair_share.min():.1%}-{pair_share.max():.1%} per point)")
    return "; ".join(notes)


def report(data) -> list[dict]:
    rows = []
    for sweep, axis, sign, claim in (("width", "width", +1, "wider: the minimum cosine rises towards 0"),
                                     ("depth", "depth", -1, "deeper: the minimum cosine falls (more confusion)")):
        part = data[data["sweep"] == sweep]
        results = {a: _trend(part[part["activation"] == a], axis, sign) for a in ACTIVATIONS}
        numbers = "; ".join(
            f"{a}: " + ", ".join(f"{axis}={int(r[axis])}: {r.min_cosine:.3f}+-{r.min_cosine_se:.3f}"
                                 for _, r in g.iterrows())
            for a, (_, g) in results.items())
        holds = [a for a, (ok, _) in results.items() if ok]
        beside = "; ".join(
            f"{a}: " + ", ".join(f"{axis}={int(r[axis])}: {r.min_cosine:.3f} / {r.min_cosine_infinite_width:.3f}"
                                 for _, r in g.iterrows())
            for a, (_, g) in results.items())
        conditional = conditioning(part)
        rows.append({"claim": f"normalised confusion at Gaussian initialisation: {claim} (paper, prediction 10)",
                     "check": f"mean minimum pairwise gradient cosine over {sweep}, relu and tanh, "
                              "first vs last grid point beyond 2 s.e."
                              + (f"; {conditional}" if conditional else ""),
                     "numbers": numbers,
                     "verdict": "holds for " + " and ".join(holds) if holds else "not observed on this grid",
                     "infinite width": "mean minimum cosine, Monte Carlo / infinite-width law: " + beside,
                     "quotes": _quotes(results, axis)})
    return rows


def _quotes(results, axis) -> dict:
    """The depth sweep's tanh ends as the documents quote them (``paper_figures._quotes``): the infinite-width
    minimum cosine beside the Monte Carlo's, from the shallowest to the deepest network."""
    if axis != "depth":
        return {}
    g = results["tanh"][1].sort_values("depth")
    first, last = g.iloc[0], g.iloc[-1]
    return {"F5_depth": (f"tanh, width {int(first['width'])}: infinite width {first['min_cosine_infinite_width']:.3f} -> "
                         f"{last['min_cosine_infinite_width']:.3f}, Monte Carlo {first['min_cosine']:.3f} -> "
                         f"{last['min_cosine']:.3f} from depth {int(first['depth'])} to {int(last['depth'])}")}


FIGURE = Figure("F5_normalised_confusion", "Minimum gradient cosine against width and depth", compute, plot, report,
                SCALES)
