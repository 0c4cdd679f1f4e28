"""F14 (Day, Kahn & Roberts 2023): pre-activation fluctuations against depth, Gaussian against orthogonal weights.

``n Var(|z_L|^2 / n) / E[|z_L|^2 / n]^2`` over random critical tanh networks
of width n against depth, for Gaussian and Haar-orthogonal weights, beside
the linear-Gaussian exact law ``n((1 + 2/n)^beta - 1)``; neighbouring
papers, digest section 4.  The paper's claim: the fluctuations grow like
depth/n for Gaussian weights and stay bounded for orthogonal ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

import montecarlo as mc
import theory

from .._figure import Figure
from .._style import colours, save, subplots
from . import _rules

INITS = ("gaussian", "orthogonal")
SCALES = {"fast": dict(depths=[1, 4, 16], width=16, trials=300),
          "quick": dict(depths=[1, 2, 4, 8, 16, 32, 64], width=32, trials=1000),
          "full": dict(depths=[1, 2, 4, 8, 16, 32, 64, 128], width=64, trials=20000)}


def compute(scale, context) -> pd.DataFrame:
    """Per init and depth: ``n Var(|z|^2/n) / E[|z|^2/n]^2`` over random networks with its bootstrap s.e. (400
    resamples), beside the linear-Gaussian exact law."""
    cfg = SCALES[scale]
    n, rows = cfg["width"], []
    for init in INITS:
        for depth in cfg["depths"]:
            net = mc.MLP(n, n, depth, activation="tanh", init=init)
            last = mc.sample_forward_norms(net, 2, cfg["trials"], seed=1400 + depth)["norm_last"].to_numpy() / n
            rel = n * last.var(ddof=1) / last.mean() ** 2
            boot = np.random.default_rng(depth).choice(last, size=(400, last.size))
            se = np.std(n * boot.var(axis=1, ddof=1) / boot.mean(axis=1) ** 2, ddof=1)
            rows.append({"init": init, "depth": depth, "width": n, "relative_variance": rel, "se": se,
                         "linear_gaussian": n * float(theory.chi_square_product_variance.evaluate(beta=depth, width=n))})
    return pd.DataFrame(rows)


def plot(data, stem) -> None:
    """The relative variance against depth, Gaussian and orthogonal (95% bootstrap), and the linear-Gaussian law."""
    fig, (ax,) = subplots(1, width=5.5)
    for init, c in zip(INITS, colours(2)):
        g = data[data["init"] == init].sort_values("depth")
        ax.errorbar(g["depth"], g["relative_variance"], yerr=1.96 * g["se"], fmt="o-", ms=4, color=c, capsize=2,
                    label=f"tanh, {init} (95% bootstrap)")
    g = data[data["init"] == "gaussian"].sort_values("depth")
    ax.plot(g["depth"], g["linear_gaussian"], "k--", lw=1, label=r"linear Gaussian, exact: $n((1+2/n)^\beta - 1)$")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(r"depth $\beta$")
    ax.set_ylabel(r"$n\,\mathrm{Var}(|z_{\beta-1}|^2/n)\,/\,\mathrm{E}[|z_{\beta-1}|^2/n]^2$")
    ax.set_title(f"pre-activation fluctuations at width {int(data.width.iloc[0])}")
    ax.legend(fontsize=7)
    save(fig, stem)


#: Standard errors a slope must clear: the Gaussian slope above 0, the orthogonal one below the Gaussian's.
SLOPE_SE = 3.0


def report(data) -> list[dict]:
    """Least-squares slopes against depth with their s.e.: Gaussian grows (``SLOPE_SE``), orthogonal grows less."""
    out = {}
    for init, g in data.groupby("init"):
        g = g.sort_values("depth")
        fit = stats.linregress(g["depth"], g["relative_variance"])
        out[init] = (fit.slope, fit.stderr, g)
    gauss, orth = out["gaussian"], out["orthogonal"]
    deep_ratio = orth[2].relative_variance.iloc[-1] / gauss[2].relative_variance.iloc[-1]
    return [{
        "claim": "Day, Kahn & Roberts: pre-activation fluctuations grow like depth/n for Gaussian critical tanh and "
                 "stay bounded in depth for orthogonal weights",
        "check": "n Var(|z|^2/n)/E^2 over random networks against depth; least-squares slope against depth with s.e.; "
                 f"'holds' when the Gaussian slope is above 0 by {SLOPE_SE:g} s.e. and the orthogonal slope below the "
                 f"Gaussian one by {SLOPE_SE:g} s.e. (of the difference); 'bounded' only where the orthogonal slope "
                 f"is not above 0 by {SLOPE_SE:g} s.e.; at least {_rules.MIN_GRID_VALUES} depths",
        "numbers": "; ".join(f"{k}: slope {s:.3g} +- {se:.2g}, values " + ", ".join(
            f"{int(r.depth)}: {r.relative_variance:.2f}" for r in g.itertuples()) for k, (s, se, g) in out.items())
                   + f"; orthogonal / Gaussian at the deepest point {deep_ratio:.2f}",
        "verdict": _verdict(gauss, orth),
    }]


def _verdict(gauss, orth) -> str:
    """The words of ``report`` from the two slopes ``(slope, s.e., table)`` by the ``SLOPE_SE`` rule."""
    few = _rules.too_few(gauss[2]["depth"]) or _rules.too_few(orth[2]["depth"])
    if few:  # MIN_GRID_VALUES: a slope through two depths tests nothing
        return few
    if not (gauss[0] - SLOPE_SE * gauss[1] > 0 and orth[0] < gauss[0] - SLOPE_SE * np.hypot(gauss[1], orth[1])):
        return "not established on this grid"
    flat = orth[0] <= SLOPE_SE * orth[1]  # no growth shown: the slope is not above 0 by SLOPE_SE s.e.
    return ("holds: Gaussian grows with depth (slope above 0 by more than " f"{SLOPE_SE:g} s.e.; linearity itself not "
            "tested), orthogonal " +
            (f"stays bounded on this grid (slope not above 0 by {SLOPE_SE:g} s.e.)" if flat else
             f"grows too but {gauss[0] / orth[0]:.3g}x more slowly (slope above 0 by more than {SLOPE_SE:g} s.e.: "
             "not bounded on this grid)"))


FIGURE = Figure("F14_depth_fluctuations", "Pre-activation fluctuations against depth: Gaussian vs orthogonal", compute,
                plot, report, SCALES)
