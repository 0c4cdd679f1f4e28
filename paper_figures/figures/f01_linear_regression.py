"""F1, the paper's Figure 1: linear regression, over- (d = 120) vs under-parameterised (d = 80), N = 100.

SGD with one example per step on least squares with Gaussian features and
noisy linear targets; the training loss ``E[F(w_k)]`` over independent runs
(mean and 95% band; the over-parameterised model can interpolate, F* = 0,
the other cannot) and the density of the pairwise gradient cosines over all
pairs at the end of training.  For least squares ``grad f_i = r_i a_i``, so the cosines
are ``+-cos(a_i, a_j)``, whose spread shrinks like ``1/sqrt(d)``: the
over-parameterised problem has less gradient confusion and converges faster
(paper section 2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import montecarlo as mc
import theory

from .._figure import Figure
from .._style import band, colours, save, subplots

SCALES = {
    "fast": dict(N=100, dims=(80, 120), runs=3, epochs=10, noise=0.5),
    "quick": dict(N=100, dims=(80, 120), runs=20, epochs=60, noise=0.5),
    "full": dict(N=100, dims=(80, 120), runs=100, epochs=200, noise=0.5),
}
SEED = 1


def compute(scale, context) -> pd.DataFrame:
    cfg = SCALES[scale]
    frames = []
    for d in cfg["dims"]:
        problem = mc.least_squares(cfg["N"], d, np.random.SeedSequence(SEED, spawn_key=(d,)), noise=cfg["noise"])
        alpha = 0.5 / problem.L  # a constant step, the same rule for both problems
        steps = cfg["epochs"] * cfg["N"]
        path = mc.simulate_sgd(problem, alpha, steps, cfg["runs"], seed=(SEED, d), record_every=cfg["N"] // 2)
        loss, se = mc.mean_se(path.loss, axis=0)  # over the independent runs
        frames.append(pd.DataFrame({"kind": "curve", "d": d, "iteration": path.iterations, "loss": loss, "se": se,
                                    "F_star": problem.F_star, "alpha": alpha}))
        # cosines of all pairs at the end of each run: cos(grad f_i, grad f_j) = sign(r_i r_j) cos(a_i, a_j)
        G = problem.gram(path.weights)
        i, j = np.triu_indices(cfg["N"], k=1)
        cos = mc.cosine_matrix(G)[:, i, j].reshape(-1)
        frames.append(pd.DataFrame({"kind": "cosine", "d": d, "cosine": cos[np.isfinite(cos)]}))
    return pd.concat(frames, ignore_index=True)


def plot(data, stem) -> None:
    fig, (left, right) = subplots(2)
    palette = dict(zip(sorted(data["d"].unique()), colours(2)))
    for d, group in data[data["kind"] == "curve"].groupby("d"):
        label = f"d = {d} ({'over' if d > 100 else 'under'}-parameterised)"
        left.semilogy(group["iteration"], group["loss"], color=palette[d], label=label)
        band(left, group["iteration"], np.maximum(group["loss"] - 1.96 * group["se"], 1e-12),
             group["loss"] + 1.96 * group["se"], palette[d])
        if group["F_star"].iloc[0] > 1e-12:  # the under-parameterised model cannot interpolate
            left.axhline(group["F_star"].iloc[0], color=palette[d], ls=":", lw=1,
                         label=rf"$F^\star$ = {group['F_star'].iloc[0]:.3g} (d = {d})")
    left.set_xlabel(r"SGD iteration $k$")
    left.set_ylabel(r"training loss $\mathbb{E}[F(w_k)]$ (mean, 95% band)")
    left.set_title(r"linear regression, $N = 100$")
    left.legend()
    bins = np.linspace(-0.6, 0.6, 61)
    for d, group in data[data["kind"] == "cosine"].groupby("d"):
        right.hist(group["cosine"], bins=bins, density=True, histtype="step", lw=1.6, color=palette[d],
                   label=f"d = {d}: std {group['cosine'].std():.3f}")
        t = np.linspace(-0.6, 0.6, 300)
        right.plot(t, theory.beta_density(t, d), ls="--", color=palette[d], lw=1,
                   label=rf"law of $\langle x, y\rangle$ on $S^{{{d - 1}}}$")
    right.set_xlabel(r"$\cos(\nabla f_i, \nabla f_j)$ at the end of training")
    right.set_ylabel("density")
    right.set_title("pairwise gradient cosines, all pairs")
    right.legend()
    save(fig, stem)


#: "Faster" when the final losses' +- FASTER_SE s.e. intervals are disjoint (over-parameterised lower); the row says so.
FASTER_SE = 2.0


def report(data) -> list[dict]:
    curves = data[data["kind"] == "curve"]
    final = curves.groupby("d").tail(1).set_index("d")
    spread = data[data["kind"] == "cosine"].groupby("d")["cosine"].std()
    under, over = sorted(final.index)
    faster = (final.loc[over, "loss"] + FASTER_SE * final.loc[over, "se"]
              < final.loc[under, "loss"] - FASTER_SE * final.loc[under, "se"])
    narrower = spread[over] < spread[under]
    numbers = (f"final training loss: d={under}: {final.loc[under, 'loss']:.3g} +- {final.loc[under, 'se']:.2g}, "
               f"d={over}: {final.loc[over, 'loss']:.3g} +- {final.loc[over, 'se']:.2g}; cosine std "
               f"d={under}: {spread[under]:.3f}, d={over}: {spread[over]:.3f}")
    return [{"claim": "Figure 1: the over-parameterised linear model converges faster and has less gradient "
                      "confusion (section 2)",
             "check": "SGD on least squares with noisy targets, N = 100, d = 80 vs 120, step 0.5/L; training loss "
                      "after the same number of steps; cosines over all pairs at the end; 'holds' when the final "
                      f"losses +- {FASTER_SE:g} s.e. are disjoint with d = 120 lower and its cosine std is smaller "
                      "(point value, no interval)",
             "numbers": numbers,
             "verdict": "holds" if faster and narrower else "not reproduced on this run"}]


FIGURE = Figure("F1_linear_regression", "Linear regression: over- vs under-parameterised (paper Figure 1)",
                compute, plot, report, SCALES)
