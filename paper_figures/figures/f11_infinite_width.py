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
from . import _rules

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
# The rules of the report's words, stated in its rows.  The spread's power in width is -1/2: a slope within SLOPE_SE
# standard errors of it "holds"; one further off but within SLOPE_SE s.e. + SLOPE_TOLERANCE (an absolute allowance
# on the power for finite-width corrections) "holds only within the stated tolerance", with its distance in s.e.
SPREAD_POWER = -0.5
SLOPE_SE = 3.0
SLOPE_TOLERANCE = 0.05
# The relu fluctuation factor against its leading-order formula: within FACTOR_SE s.e. "holds"; further off but
# within FACTOR_TOLERANCE (relative, for the O(beta/width) corrections) + FACTOR_SE s.e. "holds only within the
# stated tolerance".
FACTOR_SE = 3.0
FACTOR_TOLERANCE = 0.10


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
    rows.append(_spread_row(cos))
    rows.append(_factor_row(data[data["kind"] == "variance"]))
    return rows


def _spread_row(cos) -> dict:
    """The spread's power in width against -1/2, by the rule of ``SLOPE_SE`` and ``SLOPE_TOLERANCE``."""
    slopes = {a: _spread_slope(cos[cos["activation"] == a]) for a in ACTIVATIONS}
    away = {a: abs(s - SPREAD_POWER) / se if se > 0 else np.inf for a, (s, se) in slopes.items()}
    strict = all(abs(s - SPREAD_POWER) <= SLOPE_SE * se for s, se in slopes.values())
    loose = all(abs(s - SPREAD_POWER) <= SLOPE_SE * se + SLOPE_TOLERANCE for s, se in slopes.values())
    distances = ", ".join(f"{a} {abs(s - SPREAD_POWER):.3f} from -1/2 ({away[a]:.1f} s.e.)"
                          for a, (s, _) in slopes.items())
    few = _rules.too_few(cos["width"])
    if few:  # MIN_GRID_VALUES: a slope through two widths tests nothing
        verdict = few
    elif strict:
        verdict = f"holds (within {SLOPE_SE:g} s.e. of -1/2: {distances})"
    elif loose:
        off = [a for a, (s, se) in slopes.items() if abs(s - SPREAD_POWER) > SLOPE_SE * se]
        verdict = (f"holds only within the stated tolerance of {SLOPE_TOLERANCE:g} on the power ({distances}): a power "
                   f"of exactly -1/2 is rejected at {SLOPE_SE:g} s.e. for {' and '.join(off)}")
    else:
        verdict = f"violated (beyond {SLOPE_SE:g} s.e. + {SLOPE_TOLERANCE:g}: {distances})"
    return {
        "claim": "the spread of the cosines over networks shrinks like width^(-1/2)",
        "check": f"least-squares slope of log sd against log width, all pairs; 'holds' within {SLOPE_SE:g} s.e. of "
                 f"-1/2, 'holds only within the stated tolerance' within {SLOPE_SE:g} s.e. + {SLOPE_TOLERANCE:g} "
                 f"(an allowance for finite-width corrections), else violated; at least {_rules.MIN_GRID_VALUES} "
                 "widths",
        "numbers": "; ".join(f"{a}: {s:.3f} +- {se:.3f}" for a, (s, se) in slopes.items()),
        "verdict": verdict,
        "quotes": {"F11_spread": ", ".join(f"width^{s:.2f} ({a})" for a, (s, _) in slopes.items())},
    }


def _factor_row(var) -> dict:
    """The relu fluctuation factor against its formula at each depth, by ``FACTOR_SE`` and ``FACTOR_TOLERANCE``."""
    relu, tanh = (var[var["activation"] == a].sort_values("depth") for a in ACTIVATIONS)
    gap = np.abs(relu["mean"] - relu["limit"])
    strict = gap <= FACTOR_SE * relu["sd"]
    within = gap <= FACTOR_TOLERANCE * relu["limit"] + FACTOR_SE * relu["sd"]
    away = ", ".join(f"beta={int(r.depth)} {g / r.limit:.1%} off ({g / r.sd:.1f} s.e.)"
                     for r, g, ok in zip(relu.itertuples(), gap, strict) if not ok)
    few = _rules.too_few(relu["depth"])
    if few:  # MIN_GRID_VALUES: growth in depth is a rate
        verdict = few
    elif strict.all():
        verdict = f"holds at every depth (within {FACTOR_SE:g} s.e. of the formula)"
    elif within.all():
        verdict = (f"holds at every depth only within the stated {FACTOR_TOLERANCE:.0%} tolerance ({away}; beyond "
                   f"{FACTOR_SE:g} s.e. of the leading-order formula)")
    else:
        verdict = f"departs at depths {[int(d) for d in relu['depth'][~within]]}"
    return {
        "claim": "the tangent kernel's fluctuation factor width Var/E^2 grows linearly with depth: "
                 "relu (11 beta^2 + 4)/(3 beta) to leading order (our derivation, theory.ntk_relative_variance)",
        "check": f"width {int(var['width'].iloc[0])}, {int(var['n'].iloc[0])} networks per depth; relu: 'holds' "
                 f"within {FACTOR_SE:g} s.e. of the formula, 'holds only within the stated tolerance' within "
                 f"{FACTOR_TOLERANCE:.0%} + {FACTOR_SE:g} s.e. (O(beta/width) corrections); at least "
                 f"{_rules.MIN_GRID_VALUES} depths; tanh measured",
        "numbers": "relu: " + ", ".join(f"beta={int(r.depth)}: {r.mean:.2f} +- {r.sd:.2f} (formula {r.limit:.2f})"
                                        for r in relu.itertuples())
                   + "; tanh: " + ", ".join(f"beta={int(r.depth)}: {r.mean:.2f} +- {r.sd:.2f}" for r in tanh.itertuples()),
        "verdict": verdict,
        "quotes": {"F11_factor": (f"relu at width {int(var['width'].iloc[0])}: "
                                  f"{', '.join(f'{m:.1f}' for m in relu['mean'])} at depths "
                                  f"{', '.join(str(int(d)) for d in relu['depth'])} against the formula's "
                                  f"{', '.join(f'{m:g}' for m in relu['limit'])}")},
    }


FIGURE = Figure("F11_infinite_width", "Finite width against the infinite-width limit", compute, plot, report, SCALES)
