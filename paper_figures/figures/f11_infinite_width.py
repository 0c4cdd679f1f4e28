"""F11, finite width against the infinite-width limit: gradient cosines at initialisation.

Fixed data (N points on S^{d-1}), ``loss="output"`` so that the Gram is the
tangent kernel itself, Strategy 4.1 with kappa = 1, no output activation.
Over random networks the cosine ``Theta_ij / sqrt(Theta_ii Theta_jj)`` of
each pair tends to the deterministic infinite-width value
(``theory.infinite_width_kernels``); its spread shrinks like ``1/sqrt(width)``
and its mean converges at rate ``1/width``.  Left: mean and spread (+-1 sd)
of one pair's cosine against width, relu and tanh, with the limit.  Middle:
the spread of every pair against width (slope -1/2 expected).  Right: the
fluctuation factor ``width Var Theta(x, x) / E[Theta(x, x)]^2`` against depth
beside its leading-order value (``theory.ntk_relative_variance``; relu has a
closed form, tanh is measured only): the factor grows linearly with depth,
the mechanism behind "depth hurts, width helps".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import montecarlo as mc
import theory

from .._figure import Figure
from .._style import colours, save, subplots

D, N, DEPTH = 16, 8, 3
ACTIVATIONS = ("relu", "tanh")
SCALES = {
    "fast": dict(widths=[32, 128, 512], trials=100, depths=[1, 4], variance_width=256, variance_trials=300),
    "quick": dict(widths=[16, 32, 64, 128, 256, 512, 1024, 2048], trials=400, depths=[1, 2, 4, 8],
                  variance_width=512, variance_trials=2000),
    "full": dict(widths=[16, 32, 64, 128, 256, 512, 1024, 2048, 4096], trials=4000, depths=[1, 2, 4, 8, 16],
                 variance_width=1024, variance_trials=20000),
}
SEED = 11


def _grams(activation, width, depth, X, trials, seed):
    net = mc.MLP(D, width, depth, activation=activation, output_activation=False)
    return mc.sample_grams(net, X.shape[0], trials, labels="tanh", loss="output", seed=seed,
                           data=(X, np.zeros(X.shape[0]))).G


def compute(scale, context) -> pd.DataFrame:
    cfg = SCALES[scale]
    X = mc.sample_sphere(N, D, SEED)
    i, j = np.triu_indices(N, k=1)
    rows = []
    for activation in ACTIVATIONS:
        K = theory.infinite_width_kernels(X, DEPTH, activation)
        for width in cfg["widths"]:
            cos = mc.cosine_matrix(_grams(activation, width, DEPTH, X, cfg["trials"], SEED + width))[:, i, j]
            limit = K.theta(width)
            limit = (limit / np.sqrt(np.outer(np.diagonal(limit), np.diagonal(limit))))[i, j]
            for pair, (a, b) in enumerate(zip(i, j)):
                rows.append({"kind": "cosine", "activation": activation, "width": width, "depth": DEPTH,
                             "pair": f"{a}-{b}", "mean": cos[:, pair].mean(), "sd": cos[:, pair].std(ddof=1),
                             "n": cos.shape[0], "limit": limit[pair]})
        for depth in cfg["depths"]:
            theta = _grams(activation, cfg["variance_width"], depth, X[:2], cfg["variance_trials"], SEED + depth)[:, 0, 0]
            factor = cfg["variance_width"] * theta.var(ddof=1) / theta.mean() ** 2
            # s.e. of a variance ratio (delta method, fourth moment measured)
            centred = (theta - theta.mean()) / theta.mean()
            se = cfg["variance_width"] * np.sqrt(np.var(centred**2, ddof=1) / theta.size)
            predicted = theory.ntk_relative_variance(depth, activation) if activation == "relu" else np.nan
            rows.append({"kind": "variance", "activation": activation, "width": cfg["variance_width"], "depth": depth,
                         "mean": factor, "sd": se, "n": theta.size, "limit": predicted})
    return pd.DataFrame(rows)


def _spread_slope(part) -> tuple[float, float]:
    """Least-squares slope of log sd against log width over all pairs, with its standard error."""
    x, y = np.log(part["width"].to_numpy(float)), np.log(part["sd"].to_numpy(float))
    design = np.vstack([x, np.ones_like(x)]).T
    coef, residual, *_ = np.linalg.lstsq(design, y, rcond=None)
    sigma2 = float(residual[0]) / (x.size - 2) if residual.size and x.size > 2 else np.nan
    return coef[0], float(np.sqrt(sigma2 * np.linalg.inv(design.T @ design)[0, 0]))


def _pair(part) -> str:
    """The pair whose limit cosine is smallest: the one that shows the trend most clearly."""
    widest = part[part["width"] == part["width"].max()]
    return widest.sort_values("limit")["pair"].iloc[0]


def plot(data, stem) -> None:
    fig, (means, spreads, factors) = subplots(3, width=4.5)
    cos = data[data["kind"] == "cosine"]
    for activation, c in zip(ACTIVATIONS, colours(2)):
        part = cos[cos["activation"] == activation]
        g = part[part["pair"] == _pair(part)].sort_values("width")
        means.errorbar(g["width"], g["mean"], yerr=g["sd"], fmt="o-", ms=3, color=c, capsize=2,
                       label=f"{activation}, pair {g['pair'].iloc[0]}: mean +- sd")
        means.plot(g["width"], g["limit"], "--", color=c, lw=1, label=f"{activation}: infinite-width limit")
        for _, h in part.groupby("pair"):
            h = h.sort_values("width")
            spreads.plot(h["width"], h["sd"], "-", color=c, lw=0.5, alpha=0.4)
        slope, se = _spread_slope(part)
        spreads.plot([], [], "-", color=c, label=f"{activation}: slope {slope:.3f} +- {se:.3f}")
    w = np.array(sorted(cos["width"].unique()), dtype=float)
    spreads.plot(w, cos["sd"].median() * np.sqrt(np.median(w) / w), "k--", lw=1, label=r"$\propto$ width$^{-1/2}$")
    for ax in (means, spreads):
        ax.set_xscale("log", base=2)
        ax.set_xlabel(r"width $\ell$")
    spreads.set_yscale("log")
    means.set_ylabel("gradient cosine (tangent kernel)")
    means.set_title(f"one pair, depth {DEPTH}, d = {D}, N = {N}")
    spreads.set_ylabel("sd of the cosine over networks")
    spreads.set_title("every pair: spread against width")
    var = data[data["kind"] == "variance"]
    for activation, c in zip(ACTIVATIONS, colours(2)):
        g = var[var["activation"] == activation].sort_values("depth")
        factors.errorbar(g["depth"], g["mean"], yerr=1.96 * g["sd"], fmt="o", ms=4, color=c, capsize=2,
                         label=f"{activation}: measured (95% CI)")
        if g["limit"].notna().any():
            factors.plot(g["depth"], g["limit"], "--", color=c, label=f"{activation}: " + r"$(11\beta^2+4)/(3\beta)$")
    factors.set_xlabel(r"depth $\beta$")
    factors.set_ylabel(r"width $\cdot$ Var$\Theta(x,x)$ / E$[\Theta(x,x)]^2$")
    factors.set_title(f"fluctuation factor at width {int(var['width'].iloc[0])}")
    for ax in (means, spreads, factors):
        ax.legend(fontsize=6)
    save(fig, stem)


def report(data) -> list[dict]:
    cos = data[data["kind"] == "cosine"]
    rows = []
    widest = cos[cos["width"] == cos["width"].max()]
    z = (widest["mean"] - widest["limit"]) / (widest["sd"] / np.sqrt(widest["n"]))
    from scipy import stats

    threshold = float(stats.norm.isf(stats.norm.sf(3.0) / len(z)))
    per_act = {a: np.abs(z[widest["activation"] == a]).max() for a in ACTIVATIONS}
    bias = {a: [f"l={int(w)}: {np.abs(g['mean'] - g['limit']).mean():.2g}"
                for w, g in cos[cos["activation"] == a].groupby("width")] for a in ACTIVATIONS}
    rows.append({
        "claim": "finite-width cosines converge to the infinite-width tangent-kernel cosines",
        "check": f"{int(widest['n'].iloc[0])} networks per width, fixed data (d = {D}, N = {N}), depth {DEPTH}: "
                 f"|mean - limit| / s.e. at width {int(widest['width'].iloc[0])}, all {len(z) // 2} pairs, "
                 f"3 s.e. family-wise ({threshold:.2f})",
        "numbers": "; ".join(f"{a}: max |z| {per_act[a]:.2f}; mean |bias| by width " + ", ".join(bias[a])
                             for a in ACTIVATIONS),
        "verdict": "holds" if max(per_act.values()) < threshold else "violated at the widest width",
    })
    slopes = {a: _spread_slope(cos[cos["activation"] == a]) for a in ACTIVATIONS}
    ok = all(abs(s + 0.5) < 3 * se + 0.05 for s, se in slopes.values())
    rows.append({
        "claim": "the spread of the cosines over networks shrinks like width^(-1/2)",
        "check": "least-squares slope of log sd against log width, all pairs, within 3 s.e. + 0.05 of -1/2",
        "numbers": "; ".join(f"{a}: {s:.3f} +- {se:.3f}" for a, (s, se) in slopes.items()),
        "verdict": "holds" if ok else "violated",
    })
    var = data[data["kind"] == "variance"]
    relu, tanh = (var[var["activation"] == a].sort_values("depth") for a in ACTIVATIONS)
    within = np.abs(relu["mean"] - relu["limit"]) < 0.1 * relu["limit"] + 3 * relu["sd"]
    rows.append({
        "claim": "the tangent kernel's fluctuation factor width Var/E^2 grows linearly with depth: "
                 "relu (11 beta^2 + 4)/(3 beta) to leading order (our derivation, theory.ntk_relative_variance)",
        "check": f"width {int(var['width'].iloc[0])}, {int(var['n'].iloc[0])} networks per depth; relu: within "
                 "10% + 3 s.e. of the formula (O(beta/width) corrections); tanh measured",
        "numbers": "relu: " + ", ".join(f"beta={int(r.depth)}: {r.mean:.2f} +- {r.sd:.2f} (formula {r.limit:.2f})"
                                        for r in relu.itertuples())
                   + "; tanh: " + ", ".join(f"beta={int(r.depth)}: {r.mean:.2f} +- {r.sd:.2f}" for r in tanh.itertuples()),
        "verdict": ("holds at every depth" if within.all() else
                    f"departs at depths {[int(d) for d in relu['depth'][~within]]}"),
    })
    return rows


FIGURE = Figure("F11_infinite_width", "Finite width against the infinite-width limit", compute, plot, report, SCALES)
