"""F6, Theorem 6.1: orthogonal against Gaussian deep linear networks, confusion against depth.

Linear networks with square layers (width = d), output scale gamma = 1/sqrt(2 beta),
square loss, a linear teacher, N points on S^{d-1}.  With Haar-orthogonal
weights ``cos(grad f_i, grad f_j) = sign(r_i r_j) <x_i, x_j>`` exactly
(theory.theorem_6_1_identity), so the law of the minimum cosine is the same
at every depth; with Gaussian weights (Strategy 4.1, kappa = 1) it spreads
with depth.  Right: ``Pr[eta* > eta]`` against depth with Theorem 6.1's
``N^2 exp(-c d eta^2)`` at the largest admissible ``c``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

import montecarlo as mc
import theory

from .._figure import Figure
from .._style import band, colours, save, subplots, vacuous_ceiling
from . import _bounds, _sweeps

D = 32
BASE = dict(d=D, width=D, n_samples=16, activation="linear", loss="square", labels="linear", kappa=1.0)
SCALES = {"fast": dict(depths=[1, 4], trials=64), "quick": dict(depths=[1, 2, 4, 8, 16, 32], trials=600),
          "full": dict(depths=[1, 2, 4, 8, 16, 32, 64], trials=10000)}
INITS = ("orthogonal", "gaussian")
ETA = 0.01
SEED = 6
# beta and gamma only enter the hypotheses (gamma = 1/sqrt(2 beta), checked to relative tolerance): given so that
# the fit checks them; fitted on the orthogonal points (Bound.fit checks the direction along depth through p_upper)
THEOREM_6_1 = _bounds.Bound(theory.theorem_6_1, "c", ("N", "d", "eta", "depth", "gamma"))
# The rules of the report's words, stated in its rows: a KS p-value above KS_ALPHA keeps "the same law", one below it
# rejects it; the Gaussian mean minimum cosine "falls" when shallowest minus deepest exceeds TREND_SE s.e.
KS_ALPHA = 1e-3
TREND_SE = 2.0


def compute(scale, context) -> pd.DataFrame:
    cfg = SCALES[scale]
    rows = []
    reference = {}
    for depth in cfg["depths"]:
        store = _sweeps.run({**BASE, "depth": depth, "gamma": 1 / np.sqrt(2 * depth), "init": list(INITS)},
                            cfg["trials"], SEED, context, name=f"depth{depth}")
        for config, frame in _sweeps.per_point(store):
            cos = frame["min_cosine"].to_numpy()
            reference.setdefault(config["init"], cos)  # the shallowest depth, for the two-sample test
            tail = mc.exceedance(frame["eta_star"].to_numpy(), [ETA]).iloc[0]
            mean, se = mc.mean_se(cos)
            rows.append({"init": config["init"], "depth": depth, "gamma": config["gamma"], "d": D,
                         "N": config["n_samples"], "min_cosine": mean, "min_cosine_se": se,
                         "q10": np.quantile(cos, 0.1), "q90": np.quantile(cos, 0.9),
                         "ks_vs_shallowest": stats.ks_2samp(cos, reference[config["init"]]).pvalue,
                         "eta": ETA, "k": tail["k"], "n": tail["n"], "p": tail["p"], "lower": tail["lower"],
                         "upper": tail["upper"]})
    table = pd.DataFrame(rows)
    fit = THEOREM_6_1.fit(table[table["init"] == "orthogonal"])
    THEOREM_6_1.record(table, fit)
    table["bound"] = THEOREM_6_1.at(table, fit)
    return table


def plot(data, stem) -> None:
    fig, (left, right) = subplots(2)
    for init, c in zip(INITS, colours(2)):
        g = data[data["init"] == init].sort_values("depth")
        left.plot(g["depth"], g["min_cosine"], "o-", color=c, ms=3, label=f"{init}: mean (95% CI)")
        band(left, g["depth"], g["min_cosine"] - 1.96 * g["min_cosine_se"], g["min_cosine"] + 1.96 * g["min_cosine_se"],
             c, alpha=0.35)
        band(left, g["depth"], g["q10"], g["q90"], c, alpha=0.12)
        right.plot(g["depth"], g["p"], "o-", color=c, ms=3, label=f"{init}: empirical")
        band(right, g["depth"], g["lower"], g["upper"], c)
    g = data[data["init"] == "orthogonal"].sort_values("depth")
    right.plot(g["depth"], np.minimum(g["bound"], 1.1), "k--", lw=1,
               label=rf"Thm 6.1: $N^2 e^{{-c d \eta^2}}$, $c$ = {data['c_fit'].iloc[0]:.2g}")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xlabel(r"depth $\beta$")
        ax.legend(fontsize=7)
    left.set_ylabel(r"$\min_{i\neq j}\cos(\nabla f_i, \nabla f_j)$ (10-90% shaded)")
    left.set_title(rf"deep linear nets, width = d = {D}, $\gamma = 1/\sqrt{{2\beta}}$")
    right.set_ylabel(rf"$\Pr[\eta^\star > \eta]$, $\eta$ = {ETA}")
    vacuous_ceiling(right)
    right.set_title("raw confusion against depth (95% CP bands)")
    save(fig, stem)


def report(data) -> list[dict]:
    orth, gauss = (data[data["init"] == i].sort_values("depth") for i in INITS)
    deepest = orth["depth"].max()
    spread = lambda g: (g["q90"] - g["q10"]).to_numpy()  # noqa: E731
    return [{
        "claim": "Theorem 6.1 (reconstruction): with orthogonal weights the law of the gradient cosines does not "
                 "depend on depth",
        "check": "two-sample KS of the minimum cosine at each depth against the shallowest; 'holds' when every "
                 f"p-value is above {KS_ALPHA:g}",
        "numbers": "orthogonal KS p: " + ", ".join(f"beta={int(r.depth)}: {r.ks_vs_shallowest:.2g}"
                                                    for _, r in orth.iterrows())
                   + "; gaussian KS p at beta=" + f"{int(deepest)}: {gauss['ks_vs_shallowest'].iloc[-1]:.2g}",
        "verdict": "holds" if (orth["ks_vs_shallowest"] > KS_ALPHA).all() else "rejected",
    }, {
        "claim": "Gaussian deep linear networks: confusion grows with depth (digest prediction 12)",
        "check": "mean minimum cosine (+- s.e.) and 10-90% range, shallowest vs deepest; KS against the shallowest; "
                 f"'holds' when the Gaussian mean falls by more than {TREND_SE:g} s.e. and the deepest KS p-value is "
                 f"below {KS_ALPHA:g}",
        "numbers": f"gaussian mean {gauss['min_cosine'].iloc[0]:.3f} -> {gauss['min_cosine'].iloc[-1]:.3f} "
                   f"(range {spread(gauss)[0]:.3f} -> {spread(gauss)[-1]:.3f}); orthogonal mean "
                   f"{orth['min_cosine'].iloc[0]:.3f} -> {orth['min_cosine'].iloc[-1]:.3f}",
        "verdict": "holds" if (gauss["min_cosine"].iloc[0] - gauss["min_cosine"].iloc[-1]
                               > TREND_SE * np.hypot(gauss["min_cosine_se"].iloc[0], gauss["min_cosine_se"].iloc[-1])
                               and gauss["ks_vs_shallowest"].iloc[-1] < KS_ALPHA) else "not observed on this grid",
    }, {
        "claim": "Theorem 6.1: Pr[eta* > eta] <= N^2 exp(-c d eta^2), uniformly in depth and width",
        "check": f"orthogonal, eta = {ETA}, gamma = 1/sqrt(2 beta); c fitted on the orthogonal points",
        "numbers": f"largest admissible c = {data['c_fit'].iloc[0]:.3g}; Pr[eta* > {ETA}] orthogonal "
                   + ", ".join(f"beta={int(r.depth)}: {r.p:.3f}" for _, r in orth.iterrows()),
        "verdict": f"{data['c_verdict'].iloc[0]}: {data['c_describe'].iloc[0]}",
    }]


FIGURE = Figure("F6_orthogonal_linear", "Theorem 6.1: orthogonal vs Gaussian deep linear networks", compute, plot,
                report, SCALES)
