"""F13 (Orvieto et al. 2022): vanishing curvature -- median against mean forward norm and the Hessian against depth.

Linear Gaussian networks (Strategy 4.1): ``|z_{beta-1}|^2 / |z_0|^2`` is a
product of ``beta - 1`` independent ``chi^2_n / n`` factors, whose mean is 1
but whose median vanishes with depth unless the width grows like the depth;
the Monte Carlo median, mean and mean log at several widths beside the exact
laws (``theory.CHI_SQUARE_PRODUCT``, and direct chi-square products for the
exact median), and the top Hessian eigenvalue at initialisation (Lanczos)
against depth; neighbouring papers, digest section 4.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

import montecarlo as mc
import theory

from .._figure import Figure
from .._style import colours, save, subplots

SCALES = {"fast": dict(depths=[2, 4, 8], widths=[4, 16], trials=200, hessian_trials=10),
          "quick": dict(depths=[2, 4, 8, 16, 32], widths=[4, 16, 64], trials=1000, hessian_trials=30),
          "full": dict(depths=[2, 4, 8, 16, 32, 64, 128], widths=[4, 16, 64, 256], trials=20000,
                       hessian_trials=200)}


def compute(scale, context) -> pd.DataFrame:
    """Per (width, depth): the forward-norm ratio's mean, median (with its order-statistic interval) and mean log
    beside the exact chi-square product laws, and the top Hessian eigenvalue (Lanczos) over random networks."""
    cfg = SCALES[scale]
    rows = []
    for width in cfg["widths"]:
        for depth in cfg["depths"]:
            net = mc.MLP(16, width, depth, activation="linear")
            # the forward-norm columns of sample_spectra (same draws, same numbers) without the Gram and Jacobian
            norms = mc.sample_forward_norms(net, 2, cfg["trials"], seed=1300 + depth)
            hess = mc.sample_spectra(net, 8, cfg["hessian_trials"], labels="linear", loss="square",
                                     seed=1350 + depth, lanczos_steps=20)["hessian_lambda_max"]
            ratio = norms["norm_ratio"].to_numpy()
            lo, hi = (np.sort(ratio)[int(k) - 1] for k in stats.binom.ppf([0.025, 0.975], ratio.size, 0.5))
            values = dict(beta=depth - 1, width=width)
            log_mean, log_mean_se = mc.mean_se(np.log(ratio))
            direct = np.prod(stats.chi2.rvs(width, size=(200_000, depth - 1), random_state=depth) / width, axis=1)
            rows.append({"width": width, "depth": depth, "factors": depth - 1, **{f"ratio_{k}": v for k, v in
                         mc.summarise(ratio).items()}, "ratio_median_lo": lo, "ratio_median_hi": hi,
                         "theory_mean": float(theory.chi_square_product_mean.evaluate(**values)),
                         "theory_median_clt": float(theory.chi_square_product_median.evaluate(**values)),
                         "exact_median": float(np.median(direct)),
                         "theory_log_mean": float(theory.chi_square_product_log_mean.evaluate(**values)),
                         "log_mean": float(log_mean), "log_mean_se": float(log_mean_se),
                         "hessian_median": float(hess.median()), "hessian_q10": float(hess.quantile(0.1)),
                         "hessian_q90": float(hess.quantile(0.9))})
    return pd.DataFrame(rows)


def plot(data, stem) -> None:
    """Left: median and mean of the norm ratio against depth, with the CLT median; right: the top Hessian eigenvalue."""
    fig, (norms, hessian) = subplots(2)
    widths = sorted(data["width"].unique())
    for width, c in zip(widths, colours(len(widths))):
        g = data[data["width"] == width].sort_values("depth")
        norms.plot(g["depth"], g["ratio_q0.5"], "o", color=c, ms=4, label=f"n={width}: median (MC)")
        norms.plot(g["depth"], g["theory_median_clt"], "-", color=c, lw=1, label=r"exp(L($\psi$(n/2) - ln(n/2)))")
        norms.plot(g["depth"], g["ratio_mean"], "x", color=c, ms=5, label="mean (MC)")
        hessian.plot(g["depth"], g["hessian_median"], "o-", color=c, ms=3, label=f"n={width}: median")
        hessian.fill_between(g["depth"], g["hessian_q10"], g["hessian_q90"], color=c, alpha=0.15)
    norms.axhline(1.0, color="k", ls="--", lw=1, label="exact mean 1")
    for ax in (norms, hessian):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(r"depth $\beta$")
        ax.legend(fontsize=5, ncol=2)
    norms.set_ylabel(r"$|z_{\beta-1}|^2 / |z_0|^2$")
    norms.set_title("linear Gaussian nets: median vs mean")
    hessian.set_ylabel(r"top Hessian eigenvalue (Lanczos)")
    hessian.set_title("curvature at initialisation against depth")
    save(fig, stem)


#: The rules of the chi-square row: the mean log within LOG_MEAN_SE standard errors of its exact value at every point,
#: and the exact median inside the Monte Carlo's 95% order-statistic interval at >= MEDIAN_INSIDE of the points.
LOG_MEAN_SE = 3.5
MEDIAN_INSIDE = 0.9


def report(data) -> list[dict]:
    """The chi-square product laws (``LOG_MEAN_SE``, ``MEDIAN_INSIDE``) and the curvature."""
    inside = (data["ratio_median_lo"] <= data["exact_median"]) & (data["exact_median"] <= data["ratio_median_hi"])
    z_log = (data["log_mean"] - data["theory_log_mean"]) / data["log_mean_se"]
    deepest = data[data["depth"] == data["depth"].max()]
    falls = []
    for width, g in data.groupby("width"):
        g = g.sort_values("depth")
        falls.append(f"n={width}: {g.hessian_median.iloc[0]:.3g} -> {g.hessian_median.iloc[-1]:.3g}")
    return [{
        "claim": "Orvieto et al.: for width-n linear Gaussian nets |h_L|^2/|h_0|^2 is a product of chi^2_n/n factors: "
                 "mean 1, mean log L(psi(n/2) - ln(n/2)), median about exp of that",
        "check": f"{int(data.ratio_mean.size)} (depth, width) points; 'holds' when the mean log is within "
                 f"{LOG_MEAN_SE:g} s.e. of its exact value at every point and the exact median (of direct chi-square "
                 f"products) lies inside the Monte Carlo's 95% order-statistic interval of the median at >= "
                 f"{MEDIAN_INSIDE:.0%} of the points",
        "numbers": f"max |z| of the mean log {np.abs(z_log).max():.2f}; exact median inside the interval at "
                   f"{int(inside.sum())}/{len(data)} points; deepest: " + ", ".join(
                       f"n={int(r.width)}: median {r['ratio_q0.5']:.3g} (CLT {r.theory_median_clt:.3g}, exact "
                       f"{r.exact_median:.3g}), mean {r.ratio_mean:.3g} +- {r.ratio_mean_se:.2g}"
                       for _, r in deepest.iterrows())
                   + " (a sample mean far below the exact 1 at small width: rare draws carry the mean)",
        "verdict": ("holds" if (np.abs(z_log) < LOG_MEAN_SE).all() and inside.mean() >= MEDIAN_INSIDE else
                    "departs: " + "; ".join(
                        ([f"mean log beyond {LOG_MEAN_SE:g} s.e. at {int((np.abs(z_log) >= LOG_MEAN_SE).sum())} "
                          f"points"] if (np.abs(z_log) >= LOG_MEAN_SE).any() else [])
                        + ([f"exact median inside at {inside.mean():.0%} of the points, below {MEDIAN_INSIDE:.0%}"]
                           if inside.mean() < MEDIAN_INSIDE else []))),
    }, {
        "claim": "Orvieto et al.: curvature at initialisation vanishes with depth unless width grows like depth",
        "check": "median top Hessian eigenvalue (Lanczos, 20 steps), shallowest vs deepest, per width: 'holds' at a "
                 "width where the deepest median is below the shallowest (point medians, no interval)",
        "numbers": "; ".join(falls),
        "verdict": _curvature_verdict(data),
    }]


def _curvature_verdict(data) -> str:
    """Which widths see the median top Hessian eigenvalue fall from the shallowest to the deepest network."""
    falling = [int(w) for w, g in data.groupby("width")
               if g.sort_values("depth").hessian_median.iloc[-1] < g.sort_values("depth").hessian_median.iloc[0]]
    rising = sorted(set(int(w) for w in data["width"]) - set(falling))
    if not falling:
        return "not observed: the curvature grows with depth at every width"
    return (f"holds at widths {falling}" + (f"; at widths {rising} it grows with depth (the Hessian's Gauss-Newton "
                                            "part sums over layers)" if rising else ""))


FIGURE = Figure("F13_vanishing_curvature", "Median vs mean forward norm and Hessian curvature against depth", compute,
                plot, report, SCALES)
