"""F0: the distribution of pairwise gradient cosines of random networks, by depth.

Random tanh networks (Strategy 4.1, kappa = 1) on data uniform on S^{d-1} with
a tanh teacher and the square loss; for each trial a fresh network and data
set, and the cosines of all pairs of per-example gradients from the exact
Gram.  The overlay is the exact law of <x_i, x_j> for independent uniform
points (digest section 1.3): at depth 0 with a linear activation the cosines
are exactly +-<x_i, x_j> (paper section 2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

import montecarlo as mc

from .._registry import Figure

SCALES = {
    "quick": dict(depths=(0, 2, 8), width=256, d=32, n=64, trials=16),
    "full": dict(depths=(0, 2, 8, 16), width=1024, d=32, n=128, trials=128),
}
SEED = 20200706  # the ICML camera-ready date


def compute(scale: str) -> pd.DataFrame:
    """All pairwise cosines, one row per (depth, trial, pair)."""
    cfg = SCALES[scale]
    frames = []
    seeds = np.random.SeedSequence(SEED).spawn(len(cfg["depths"]))
    for depth, seed in zip(tqdm(cfg["depths"], desc="F0 depths"), seeds):
        rng = np.random.default_rng(seed)
        net = mc.MLP(cfg["d"], cfg["width"], depth, activation="tanh")
        X = mc.sample_sphere(cfg["n"], cfg["d"], rng, batch=cfg["trials"])
        y = mc.TanhTeacher()(X, rng)
        G = mc.gradient_gram(net, net.init(rng, batch=cfg["trials"]), X, y)
        i, j = np.triu_indices(cfg["n"], k=1)
        cos = mc.cosine_matrix(G)[:, i, j]
        frames.append(pd.DataFrame({
            "depth": depth,
            "trial": np.repeat(np.arange(cfg["trials"]), i.size),
            "cosine": cos.reshape(-1),
            "width": cfg["width"], "d": cfg["d"], "N": cfg["n"],
        }))
    return pd.concat(frames, ignore_index=True)


def _spread(data: pd.DataFrame) -> pd.DataFrame:
    """Per depth: mean over trials of the per-trial std of cosines, with its standard error."""
    per_trial = data.groupby(["depth", "trial"])["cosine"].std()
    grouped = per_trial.groupby("depth")
    return pd.DataFrame({"spread": grouped.mean(), "se": grouped.std() / np.sqrt(grouped.count())})


def plot(data: pd.DataFrame, stem) -> None:
    import matplotlib.pyplot as plt

    d, width, n = (int(data[k].iloc[0]) for k in ("d", "width", "N"))
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(-0.8, 0.8, 81)
    colors = plt.cm.viridis(np.linspace(0, 0.85, data["depth"].nunique()))
    for (depth, group), color in zip(data.groupby("depth"), colors):
        ax.hist(group["cosine"].dropna(), bins=bins, density=True, histtype="step", lw=1.6, color=color,
                label=rf"depth $\beta={depth}$")
    t = np.linspace(-0.8, 0.8, 400)
    law = stats.beta((d - 1) / 2, (d - 1) / 2).pdf((1 + t) / 2) / 2
    ax.plot(t, law, "k--", lw=1.2, label=rf"exact law of $\langle x_i, x_j\rangle$ on $S^{{{d - 1}}}$")
    ax.set_xlabel(r"pairwise gradient cosine $\cos(\nabla f_i, \nabla f_j)$")
    ax.set_ylabel("density")
    ax.set_title(rf"tanh MLP, Gaussian init, width $\ell={width}$, $d={d}$, $N={n}$", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{stem}.png", dpi=150)
    fig.savefig(f"{stem}.pdf")
    plt.close(fig)


def report(data: pd.DataFrame) -> list[dict]:
    spread = _spread(data)
    numbers = "; ".join(f"beta={b}: {r.spread:.3f} +- {r.se:.3f}" for b, r in spread.iterrows())
    s = spread["spread"].to_numpy()
    se = spread["se"].to_numpy()
    increasing = bool(np.all(np.diff(s) > 2 * np.hypot(se[1:], se[:-1])))
    return [{
        "claim": "cosine spread grows with depth at fixed width (prediction 10, normalised confusion)",
        "check": "std of pairwise gradient cosines per trial, mean +- s.e. over trials",
        "numbers": numbers,
        "verdict": "holds on this grid" if increasing else "not monotone beyond 2 s.e. on this grid",
    }]


FIGURE = Figure(
    name="F0_gradient_cosines",
    title="Pairwise gradient cosines of random tanh networks by depth",
    compute=compute,
    plot=plot,
    report=report,
)
