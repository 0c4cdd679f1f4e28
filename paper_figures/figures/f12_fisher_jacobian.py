"""F12 (Sokol & Park 2020): the Fisher's top eigenvalue against the input-output Jacobian's, deep tanh networks.

Fisher lambda_max (Gauss-Newton, ``loss="output"``, exact from the Gram)
against sigma_max(J)^2 of the input-output Jacobian of the hidden stack,
across initialisation scales sigma_w, Gaussian (kappa = 1/sigma_w^2) and
Haar-orthogonal (gain sigma_w) weights; neighbouring papers, digest
section 4.  The paper's claim: lambda_max is at most quadratic in
sigma_max(J) and correlates with sigma_max(J)^2; orthogonal weights keep the
Jacobian's spectrum bounded where Gaussian ones do not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

import montecarlo as mc

from .._figure import Figure
from .._style import colours, save, subplots

SCALES = {"fast": dict(scales=[0.9, 1.0, 1.3], trials=4, depth=8, width=16),
          "quick": dict(scales=[0.8, 0.9, 1.0, 1.1, 1.3, 1.6, 2.0], trials=30, depth=32, width=32),
          "full": dict(scales=[0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.4, 1.6, 2.0, 2.5], trials=100, depth=100,
                       width=100)}
INITS = ("gaussian", "orthogonal")


def _net(init, scale, cfg):
    """The deep tanh net at weight scale ``scale``: Gaussian, ``kappa = 1/scale^2``, or orthogonal with gain ``scale``."""
    kwargs = dict(kappa=1.0 / scale**2) if init == "gaussian" else dict(init="orthogonal", gain=scale)
    return mc.MLP(cfg["width"], cfg["width"], cfg["depth"], activation="tanh", **kwargs)


def compute(scale, context) -> pd.DataFrame:
    """One row per random network (``montecarlo.sample_spectra``, Gauss-Newton Fisher), per init and weight scale."""
    cfg = SCALES[scale]
    frames = []
    for init in INITS:
        for k, sigma_w in enumerate(cfg["scales"]):
            frame = mc.sample_spectra(_net(init, sigma_w, cfg), 16, cfg["trials"], labels="tanh", loss="output",
                                      seed=1200 + k, lanczos_steps=0)
            frames.append(frame.assign(init=init, sigma_w=sigma_w, depth=cfg["depth"], width=cfg["width"]))
    return pd.concat(frames, ignore_index=True)


def plot(data, stem) -> None:
    """Left: lambda_max against sigma_max(J)^2 per draw, with the smallest c of lambda_max <= c sigma_max^2; right:
    sigma_max(J)^2 against the weight scale (median, 10-90%)."""
    fig, (scatter, by_scale) = subplots(2)
    markers = {"gaussian": "o", "orthogonal": "s"}
    scales = sorted(data["sigma_w"].unique())
    for init in INITS:
        part = data[data["init"] == init]
        for sigma_w, c in zip(scales, colours(len(scales))):
            g = part[part["sigma_w"] == sigma_w]
            scatter.scatter(g["jacobian_sigma_max_sq"], g["fisher_lambda_max"], s=8, marker=markers[init], color=c,
                            alpha=0.6, label=rf"{init}, $\sigma_w$={sigma_w:g}" if init == "gaussian" else None)
        med = part.groupby("sigma_w")["jacobian_sigma_max_sq"].median()
        by_scale.plot(med.index, med.values, markers[init] + "-", label=f"{init}: median")
        q = part.groupby("sigma_w")["jacobian_sigma_max_sq"].quantile([0.1, 0.9]).unstack()
        by_scale.fill_between(q.index, q[0.1], q[0.9], alpha=0.2)
    c = _quadratic_constant(data)
    x = np.geomspace(data["jacobian_sigma_max_sq"].min(), data["jacobian_sigma_max_sq"].max(), 50)
    scatter.plot(x, c * x, "k--", lw=1, label=rf"$c\,\sigma_{{\max}}^2$, smallest $c$ above all: {c:.2g}")
    scatter.set_xscale("log")
    scatter.set_yscale("log")
    scatter.set_xlabel(r"$\sigma_{\max}(J)^2$ (input-output Jacobian, max over the batch)")
    scatter.set_ylabel(r"$\lambda_{\max}$ of the empirical Fisher (exact, from $G/N$)")
    scatter.set_title(f"tanh, depth {int(data.depth.iloc[0])}, width {int(data.width.iloc[0])} "
                      "(o Gaussian, [] orthogonal)")
    scatter.legend(fontsize=5, ncol=2)
    by_scale.set_yscale("log")
    by_scale.set_xlabel(r"weight scale $\sigma_w$")
    by_scale.set_ylabel(r"$\sigma_{\max}(J)^2$ (10-90% shaded)")
    by_scale.set_title("Jacobian against the weight scale")
    by_scale.legend()
    save(fig, stem)


def _quadratic_constant(data) -> float:
    """The smallest ``c`` with ``lambda_max <= c sigma_max(J)^2`` on every draw."""
    return float((data["fisher_lambda_max"] / data["jacobian_sigma_max_sq"]).max())


def _spearman_interval(x, y):
    """Spearman's rho with a 95% interval (Fisher z, s.e. 1.03 / sqrt(n - 3), Fieller et al. 1957)."""
    rho = stats.spearmanr(x, y).statistic
    half = 1.96 * 1.03 / np.sqrt(len(x) - 3)
    return rho, np.tanh(np.arctanh(rho) - half), np.tanh(np.arctanh(rho) + half)


def report(data) -> list[dict]:
    """The quadratic bound and the correlation (Spearman with 95% intervals), and orthogonal against Gaussian at 1."""
    numbers, positive = [], True
    for init in INITS:
        part = data[data["init"] == init]
        rho, lo, hi = _spearman_interval(np.log(part["jacobian_sigma_max_sq"]), np.log(part["fisher_lambda_max"]))
        numbers.append(f"{init}: Spearman {rho:.2f} [{lo:.2f}, {hi:.2f}]")
        positive &= lo > 0
    at_one = data[np.isclose(data["sigma_w"], 1.0)].groupby("init")["jacobian_sigma_max_sq"].median()
    slope = {init: np.polyfit(np.log(g["jacobian_sigma_max_sq"]), np.log(g["fisher_lambda_max"]), 1)[0]
             for init, g in data.groupby("init")}
    return [{
        "claim": "Sokol & Park: lambda_max of the Fisher is at most quadratic in sigma_max(J) and correlates with "
                 "sigma_max(J)^2 across initialisations",
        "check": f"{len(data)} random tanh networks (depth {int(data.depth.iloc[0])}, width {int(data.width.iloc[0])}), "
                 f"sigma_w in {[float(x) for x in sorted(data.sigma_w.unique())]}; Spearman correlation of the logs "
                 "with 95% intervals; "
                 "log-log slope (<= 1 means at most quadratic); 'holds' when both Spearman 95% intervals lie above 0 "
                 "and both slopes are <= 1 (point estimates, no interval)",
        "numbers": "; ".join(numbers) + "; log-log slope " + ", ".join(f"{k}: {v:.2f}" for k, v in slope.items())
                   + f"; smallest c with lambda_max <= c sigma_max^2 on every draw: {_quadratic_constant(data):.3g}",
        "verdict": _verdict(positive, slope),
    }, {
        "claim": "orthogonal weights keep the Jacobian's spectrum bounded where Gaussian ones do not (at sigma_w = 1)",
        "check": "median sigma_max(J)^2 at sigma_w = 1, Gaussian vs orthogonal; 'holds' when the orthogonal median is "
                 "below the Gaussian one (point medians, no interval)",
        "numbers": ", ".join(f"{k}: {v:.3g}" for k, v in at_one.items()),
        "verdict": "holds" if at_one.get("orthogonal", np.inf) < at_one.get("gaussian", 0) else "not observed",
    }]


def _verdict(positive: bool, slope: dict) -> str:
    """Both halves of the claim by their stated rules: the correlation (Spearman 95% intervals above 0) and "at most
    quadratic" (log-log slope <= 1, point estimates)."""
    steep = [init for init, v in slope.items() if v > 1]
    if not positive:
        return "correlation not established (a Spearman 95% interval reaches 0)"
    if steep:
        return (f"partly: positive correlation for both inits, but the log-log slope is above 1 for {steep}: not at "
                "most quadratic on these draws")
    return "holds (positive correlation for both inits; log-log slope <= 1 for both)"


FIGURE = Figure("F12_fisher_jacobian", "Fisher lambda_max against sigma_max(J)^2", compute, plot, report, SCALES)
