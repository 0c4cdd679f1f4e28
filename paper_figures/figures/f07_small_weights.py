"""F7, Theorem 5.1 and Corollary 5.1: networks with small weights, and perturbations within a ball.

Theorem 5.1: any weights with ``||W_p|| <= 1`` -- here Haar-orthogonal matrices
times ``gain <= 1`` -- tanh, square loss, tanh teacher, N points on S^{d-1}:
``Pr[eta* > eta] <= N^2 exp(-c d eta^2 / (16 zeta0^4 (beta+2)^4))``; left, the
empirical failure probability against depth (95% CP bands) with the bound at
the largest admissible ``c``; middle, the collapse against the theorem's
exponent variable.  Corollary 5.1: the confusion bound uniformly over the
ball of radius ``r`` (Frobenius norm of all weights; the paper's norm is not
stated) around such a ``W``; right, ``Pr[max eta* > eta]`` over ``W`` and
``M`` random points on the sphere of radius ``r`` around it (a lower estimate of
the supremum over the ball) against ``r``, with both branches of the corollary.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import montecarlo as mc
import theory

from .._figure import Figure
from .._style import band, colours, save, subplots, vacuous_ceiling
from . import _bounds, _sweeps

BASE = dict(width=32, n_samples=8, activation="tanh", init="orthogonal", loss="square", labels="tanh")
SCALES = {
    "fast": dict(depths=[1, 2], dims=[8], gains=[1.0], trials=64, ball_trials=20, directions=4),
    "quick": dict(depths=[1, 2, 4, 8], dims=[8, 32], gains=[0.5, 1.0], trials=800, ball_trials=200, directions=16),
    "full": dict(depths=[1, 2, 4, 8, 16], dims=[8, 32, 128], gains=[0.5, 1.0], trials=10000, ball_trials=2000,
                 directions=64),
}
ETAS = (0.003, 0.01, 0.03)
BALL = dict(depth=2, d=16, width=16, n_samples=8, gain=0.9, eta=0.06)
RADII = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)
SEED = 7
# weight_norm = gain (Haar-orthogonal times gain) lets the fit check Assumption 1 point by point
THEOREM_5_1 = _bounds.Bound(theory.theorem_5_1, "c", ("n_samples", "d", "eta", "depth", "gain"))
COROLLARY_5_1 = _bounds.Bound(theory.corollary_5_1, "c", ("n_samples", "d", "eta", "depth", "r", "gain"))


def _ball(cfg) -> pd.DataFrame:
    """Pr[max over W and M points at distance r of eta* > eta] for each radius r."""
    net = mc.MLP(BALL["d"], BALL["width"], BALL["depth"], activation="tanh", init="orthogonal", gain=BALL["gain"])
    M = cfg["directions"]
    rows = []
    for r in RADII:
        worst = []
        for t in range(cfg["ball_trials"]):
            rng = np.random.default_rng(np.random.SeedSequence(SEED, spawn_key=(t,)))  # the same W, data for all r
            W = net.init(rng).weights
            X = mc.sample_sphere(BALL["n_samples"], BALL["d"], rng)
            y = mc.TanhTeacher()(X, rng)
            directions = [rng.standard_normal((M,) + w.shape) for w in W]
            norm = np.sqrt(sum(np.sum(u**2, axis=tuple(range(1, u.ndim))) for u in directions))
            batch = [np.concatenate([w[None], w + r * (u / norm.reshape((-1,) + (1,) * (u.ndim - 1)))])
                     for w, u in zip(W, directions)]
            worst.append(mc.eta_star(mc.gradient_gram(net, batch, X, y)).max())
        tail = mc.exceedance(np.array(worst), [BALL["eta"]]).iloc[0]
        rows.append({"part": "ball", "r": r, "eta": BALL["eta"], "depth": BALL["depth"], "d": BALL["d"],
                     "n_samples": BALL["n_samples"], "gain": BALL["gain"], "k": tail["k"], "n": tail["n"],
                     "p": tail["p"], "lower": tail["lower"], "upper": tail["upper"]})
    return pd.DataFrame(rows)


def compute(scale, context) -> pd.DataFrame:
    cfg = SCALES[scale]
    store = _sweeps.run({**BASE, "depth": cfg["depths"], "d": cfg["dims"], "gain": cfg["gains"]}, cfg["trials"], SEED,
                        context)
    table = _sweeps.tail_rows(store, ETAS).assign(part="theorem")
    table["X"] = THEOREM_5_1.rate(table)
    fit = THEOREM_5_1.fit(table)
    THEOREM_5_1.record(table, fit)
    table["bound"] = THEOREM_5_1.at(table, fit)
    ball = _ball(cfg)
    at_radius = ball.assign(r=ball["r"].clip(lower=1e-12))  # the corollary needs r > 0
    ball_fit = COROLLARY_5_1.fit(at_radius)
    COROLLARY_5_1.record(ball, ball_fit)
    ball["bound"] = COROLLARY_5_1.at(at_radius, ball_fit)
    ball["r_switch"] = BALL["eta"] / (4 * 4 * BALL["depth"])  # r <= eta / (4 zeta0^2), zeta0^2 = 4 beta
    return pd.concat([table, ball], ignore_index=True)


def plot(data, stem) -> None:
    fig, (left, middle, right) = subplots(3, width=4.6, height=4.0)
    theorem = data[data["part"] == "theorem"]
    eta = ETAS[1]
    sel = theorem[theorem["eta"] == eta]
    groups = list(sel.groupby(["d", "gain"]))
    for ((d, gain), g), c in zip(groups, colours(len(groups))):
        g = g.sort_values("depth")
        left.plot(g["depth"], g["p"], "o-", color=c, ms=3, label=f"d = {int(d)}, gain = {gain}")
        band(left, g["depth"], g["lower"], g["upper"], c)
        left.plot(g["depth"], np.minimum(g["bound"], 1.1), "--", color=c, lw=1)
    left.set_xscale("log", base=2)
    left.set_xlabel(r"depth $\beta$")
    left.set_ylabel(rf"$\Pr[\eta^\star > \eta]$, $\eta$ = {eta}")
    vacuous_ceiling(left)
    left.set_title(rf"Thm 5.1, orthogonal $\times$ gain (dashed: $c$ = {theorem['c_fit'].iloc[0]:.2g})")
    left.legend(fontsize=7)
    _bounds.collapse_panel(middle, theorem, "c", xlabel=r"$X = d\eta^2 / (16\zeta_0^4(\beta+2)^4)$",
                           title="collapse: the theorem needs points above $cX$")
    ball = data[data["part"] == "ball"].sort_values("r")
    shown = ball[ball["r"] > 0]
    right.plot(shown["r"], shown["p"], "o-", color="C0", ms=3, label="empirical (max over W and M points)")
    band(right, shown["r"], shown["lower"], shown["upper"], "C0")
    right.axhline(ball.loc[ball["r"] == 0, "p"].iloc[0], color="grey", ls=":", label="r = 0 (W alone)")
    right.plot(shown["r"], np.minimum(shown["bound"], 1.1), "k--", lw=1,
               label=rf"Cor 5.1, $c$ = {ball['c_fit'].iloc[0]:.2g}")
    right.axvline(ball["r_switch"].iloc[0], color="k", lw=0.6, ls=":")
    right.set_xscale("log")
    vacuous_ceiling(right)
    right.set_xlabel(r"radius $r$ (Frobenius)")
    right.set_ylabel(rf"$\Pr[\max \eta^\star > \eta]$, $\eta$ = {BALL['eta']}")
    right.set_title(rf"Cor 5.1: depth {BALL['depth']}, width {BALL['width']}, gain {BALL['gain']}")
    right.legend(fontsize=7)
    save(fig, stem)


def report(data) -> list[dict]:
    theorem = data[data["part"] == "theorem"]
    ball = data[data["part"] == "ball"].sort_values("r")
    by_depth = theorem[theorem["eta"] == ETAS[1]].groupby("depth")["p"].mean()
    return [{
        "claim": "Theorem 5.1: weights with ||W_p|| <= 1: Pr[eta* > eta] <= N^2 exp(-c d eta^2 / (16 zeta0^4 (beta+2)^4))",
        "check": f"orthogonal weights times gain {[float(g) for g in sorted(theorem.gain.unique())]}, tanh, d in "
                 f"{[int(d) for d in sorted(theorem.d.unique())]}, depths {[int(b) for b in sorted(theorem.depth.unique())]}, "
                 f"eta in {list(ETAS)}, {int(theorem.n.iloc[0])} trials per point",
        "numbers": f"largest admissible c = {theorem['c_fit'].iloc[0]:.3g}; mean Pr[eta* > {ETAS[1]}] by depth: "
                   + ", ".join(f"{int(b)}: {p:.3f}" for b, p in by_depth.items()),
        "verdict": f"{theorem['c_verdict'].iloc[0]}: {theorem['c_describe'].iloc[0]}",
    }, {
        "claim": "Corollary 5.1: the confusion bound holds uniformly over a ball of radius r around W",
        "check": f"max of eta* over W and {int(SCALES['quick']['directions'])} (quick) random points at distance r, "
                 f"{int(ball.n.iloc[0])} draws of (W, data) per r",
        "numbers": "Pr[max eta* > eta]: " + ", ".join(f"r={r:g}: {p:.3f}" for r, p in zip(ball["r"], ball["p"]))
                   + f"; largest admissible c = {ball['c_fit'].iloc[0]:.3g}",
        "verdict": f"{ball['c_verdict'].iloc[0]}: {ball['c_describe'].iloc[0]}",
    }]


FIGURE = Figure("F7_small_weights", "Theorem 5.1 and Corollary 5.1: small weights and a ball around them", compute,
                plot, report, SCALES)
