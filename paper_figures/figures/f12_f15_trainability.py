"""F12-F15: beyond confusion -- Jacobian isometry, Fisher curvature, vanishing curvature, depth fluctuations, and
the weights under long constant-step SGD (neighbouring papers, digest section 4).

F12 (Sokol & Park 2020): Fisher lambda_max (Gauss-Newton, loss="output", exact from the Gram) against
sigma_max(J)^2 of the input-output Jacobian, deep tanh networks across initialisation scales sigma_w, Gaussian
(kappa = 1/sigma_w^2) vs Haar-orthogonal (gain sigma_w) weights.
F13 (Orvieto et al. 2022): linear Gaussian networks, median vs mean of |z_{beta-1}|^2/|z_0|^2 against depth at
several widths with the exact chi-square product laws (theory.CHI_SQUARE_PRODUCT), and the top Hessian eigenvalue
(Lanczos) against depth.
F14 (Day, Kahn & Roberts 2023): n Var(|z_L|^2/n) / E[|z_L|^2/n]^2 against depth, critical tanh, Gaussian vs
orthogonal, beside the linear-Gaussian exact law n((1 + 2/n)^beta - 1).
F15 (Zhang, Li, Sra & Jadbabaie 2022): loss, gradient norm and the distance between the weight distributions of
neighbouring windows over long constant-step SGD on digits (20% of the labels resampled, so that the model
cannot interpolate), against how far the weights themselves move.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

import montecarlo as mc
import theory

from .._registry import Figure
from .._style import colours, save, subplots

# ---------------------------------------------------------------- F12
F12_SCALES = {"fast": dict(scales=[0.9, 1.0, 1.3], trials=4, depth=8, width=16),
              "quick": dict(scales=[0.8, 0.9, 1.0, 1.1, 1.3, 1.6, 2.0], trials=30, depth=32, width=32),
              "full": dict(scales=[0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.4, 1.6, 2.0, 2.5], trials=100, depth=100,
                           width=100)}
INITS = ("gaussian", "orthogonal")


def _f12_net(init, scale, cfg):
    kwargs = dict(kappa=1.0 / scale**2) if init == "gaussian" else dict(init="orthogonal", gain=scale)
    return mc.MLP(cfg["width"], cfg["width"], cfg["depth"], activation="tanh", **kwargs)


def f12_compute(scale, context) -> pd.DataFrame:
    cfg = F12_SCALES[scale]
    frames = []
    for init in INITS:
        for k, sigma_w in enumerate(cfg["scales"]):
            frame = mc.sample_spectra(_f12_net(init, sigma_w, cfg), 16, cfg["trials"], labels="tanh", loss="output",
                                      seed=1200 + k, lanczos_steps=0)
            frames.append(frame.assign(init=init, sigma_w=sigma_w, depth=cfg["depth"], width=cfg["width"]))
    return pd.concat(frames, ignore_index=True)


def f12_plot(data, stem) -> None:
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
    return float((data["fisher_lambda_max"] / data["jacobian_sigma_max_sq"]).max())


def _spearman_interval(x, y):
    """Spearman's rho with a 95% interval (Fisher z, s.e. 1.03 / sqrt(n - 3), Fieller et al. 1957)."""
    rho = stats.spearmanr(x, y).statistic
    half = 1.96 * 1.03 / np.sqrt(len(x) - 3)
    return rho, np.tanh(np.arctanh(rho) - half), np.tanh(np.arctanh(rho) + half)


def f12_report(data) -> list[dict]:
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
                 f"sigma_w in {sorted(data.sigma_w.unique())}; Spearman correlation of the logs with 95% intervals; "
                 "log-log slope (<= 1 means at most quadratic)",
        "numbers": "; ".join(numbers) + "; log-log slope " + ", ".join(f"{k}: {v:.2f}" for k, v in slope.items())
                   + f"; smallest c with lambda_max <= c sigma_max^2 on every draw: {_quadratic_constant(data):.3g}",
        "verdict": "holds (positive correlation for both inits)" if positive else "correlation not established",
    }, {
        "claim": "orthogonal weights keep the Jacobian's spectrum bounded where Gaussian ones do not (at sigma_w = 1)",
        "check": "median sigma_max(J)^2 at sigma_w = 1, Gaussian vs orthogonal",
        "numbers": ", ".join(f"{k}: {v:.3g}" for k, v in at_one.items()),
        "verdict": "holds" if at_one.get("orthogonal", np.inf) < at_one.get("gaussian", 0) else "not observed",
    }]


# ---------------------------------------------------------------- F13
F13_SCALES = {"fast": dict(depths=[2, 4, 8], widths=[4, 16], trials=200, hessian_trials=10),
              "quick": dict(depths=[2, 4, 8, 16, 32], widths=[4, 16, 64], trials=1000, hessian_trials=30),
              "full": dict(depths=[2, 4, 8, 16, 32, 64, 128], widths=[4, 16, 64, 256], trials=20000,
                           hessian_trials=200)}


def f13_compute(scale, context) -> pd.DataFrame:
    cfg = F13_SCALES[scale]
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
            direct = np.prod(stats.chi2.rvs(width, size=(200_000, depth - 1), random_state=depth) / width, axis=1)
            rows.append({"width": width, "depth": depth, "factors": depth - 1, **{f"ratio_{k}": v for k, v in
                         mc.summarise(ratio).items()}, "ratio_median_lo": lo, "ratio_median_hi": hi,
                         "theory_mean": float(theory.chi_square_product_mean.evaluate(**values)),
                         "theory_median_clt": float(theory.chi_square_product_median.evaluate(**values)),
                         "exact_median": float(np.median(direct)),
                         "theory_log_mean": float(theory.chi_square_product_log_mean.evaluate(**values)),
                         "log_mean": float(np.log(ratio).mean()),
                         "log_mean_se": float(np.log(ratio).std(ddof=1) / np.sqrt(ratio.size)),
                         "hessian_median": float(hess.median()), "hessian_q10": float(hess.quantile(0.1)),
                         "hessian_q90": float(hess.quantile(0.9))})
    return pd.DataFrame(rows)


def f13_plot(data, stem) -> None:
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


def f13_report(data) -> list[dict]:
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
        "check": f"{int(data.ratio_mean.size)} (depth, width) points; mean log within 3 s.e.; median of the Monte "
                 "Carlo's 95% order-statistic interval against the exact median of direct chi-square products",
        "numbers": f"max |z| of the mean log {np.abs(z_log).max():.2f}; exact median inside the interval at "
                   f"{int(inside.sum())}/{len(data)} points; deepest: " + ", ".join(
                       f"n={int(r.width)}: median {r['ratio_q0.5']:.3g} (CLT {r.theory_median_clt:.3g}, exact "
                       f"{r.exact_median:.3g}), mean {r.ratio_mean:.3g} +- {r.ratio_mean_se:.2g}"
                       for _, r in deepest.iterrows())
                   + " (a sample mean far below the exact 1 at small width: rare draws carry the mean)",
        "verdict": "holds" if (np.abs(z_log) < 3.5).all() and inside.mean() >= 0.9 else "departs",
    }, {
        "claim": "Orvieto et al.: curvature at initialisation vanishes with depth unless width grows like depth",
        "check": "median top Hessian eigenvalue (Lanczos, 20 steps), shallowest vs deepest, per width",
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


# ---------------------------------------------------------------- F14
F14_SCALES = {"fast": dict(depths=[1, 4, 16], width=16, trials=300),
              "quick": dict(depths=[1, 2, 4, 8, 16, 32, 64], width=32, trials=1000),
              "full": dict(depths=[1, 2, 4, 8, 16, 32, 64, 128], width=64, trials=20000)}


def f14_compute(scale, context) -> pd.DataFrame:
    cfg = F14_SCALES[scale]
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


def f14_plot(data, stem) -> None:
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


def f14_report(data) -> list[dict]:
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
        "check": "n Var(|z|^2/n)/E^2 over random networks against depth; least-squares slope against depth with s.e.",
        "numbers": "; ".join(f"{k}: slope {s:.3g} +- {se:.2g}, values " + ", ".join(
            f"{int(r.depth)}: {r.relative_variance:.2f}" for r in g.itertuples()) for k, (s, se, g) in out.items())
                   + f"; orthogonal / Gaussian at the deepest point {deep_ratio:.2f}",
        "verdict": ("holds: Gaussian grows linearly, orthogonal stays bounded" if gauss[0] - 3 * gauss[1] > 0
                    and orth[0] < gauss[0] - 3 * np.hypot(gauss[1], orth[1]) else "not established on this grid"),
    }]


# ---------------------------------------------------------------- F15
F15_SCALES = {"fast": dict(steps=4000, record_every=20, window=50),
              "quick": dict(steps=40000, record_every=50, window=100),
              "full": dict(steps=400000, record_every=200, window=250)}
F15_SETTINGS = dict(hidden=8, lr=0.2, batch=8, label_noise=0.2, seed=15)


def f15_compute(scale, context) -> pd.DataFrame:
    cfg = F15_SCALES[scale]
    data = mc.load_dataset("digits")
    X = data.train_x.reshape(len(data.train_x), -1)
    y = data.train_y.copy()
    rng = np.random.default_rng(F15_SETTINGS["seed"])
    noisy = rng.random(y.size) < F15_SETTINGS["label_noise"]
    y[noisy] = rng.integers(0, data.num_classes, int(noisy.sum()))
    records, weights = mc.constant_step_sgd(X, y, hidden=F15_SETTINGS["hidden"], lr=F15_SETTINGS["lr"],
                                         batch=F15_SETTINGS["batch"], steps=cfg["steps"],
                                         record_every=cfg["record_every"], seed=F15_SETTINGS["seed"],
                                         progress=context.progress)
    windows = mc.window_distances(records["step"], weights, cfg["window"])
    return pd.concat([records.assign(kind="trace"), windows.assign(kind="window")], ignore_index=True)


def f15_plot(data, stem) -> None:
    fig, (curves, dist) = subplots(2)
    trace, windows = data[data["kind"] == "trace"], data[data["kind"] == "window"]
    curves.plot(trace["step"], trace["loss"], lw=0.8, label="full-batch loss")
    curves.plot(trace["step"], trace["grad_norm"], lw=0.8, label="full-batch gradient norm")
    curves.set_yscale("log")
    curves.set_xlabel("SGD step")
    curves.set_title(f"constant step {F15_SETTINGS['lr']}, batch {F15_SETTINGS['batch']}, digits "
                     f"({int(100 * F15_SETTINGS['label_noise'])}% labels resampled)")
    curves.legend()
    dist.plot(windows["step"], windows["w1"], "o-", ms=3, label="W1 between the weight distributions of neighbouring windows")
    dist.plot(windows["step"], windows["displacement"], "s-", ms=3, label="|w(end of window) - w(end of previous)|")
    dist.set_yscale("log")
    dist.set_xlabel("SGD step")
    dist.set_ylabel("mean over coordinates")
    dist.set_title("the distribution settles; the weights keep moving")
    dist.legend(fontsize=7)
    save(fig, stem)


def f15_report(data) -> list[dict]:
    trace, windows = data[data["kind"] == "trace"], data[data["kind"] == "window"]
    q = len(trace) // 4
    third, last = trace.iloc[2 * q:3 * q], trace.iloc[3 * q:]
    loss_change = abs(last.loss.mean() - third.loss.mean()) / third.loss.mean()
    grad_ratio = last.grad_norm.median() / trace.grad_norm.iloc[0]
    w1_drop = windows.w1.iloc[0] / windows.w1.iloc[-1]
    moving = windows.displacement.iloc[-1] / windows.w1.iloc[-1]
    return [{
        "claim": "Zhang et al.: under constant-step SGD the loss stabilises while the gradient norm stays away from 0",
        "check": "relative change of the mean loss between the last two quarters; median gradient norm of the last "
                 "quarter over its initial value",
        "numbers": f"loss change {loss_change:.3f} (third quarter {third.loss.mean():.3f}, last {last.loss.mean():.3f});"
                   f" gradient norm last-quarter median / initial {grad_ratio:.3f}",
        "verdict": "holds" if loss_change < 0.05 and grad_ratio > 0.05 else "not observed",
    }, {
        "claim": "Zhang et al.: the distribution of the weights converges, not the weights",
        "check": "W1 between neighbouring windows' weight distributions, first vs last window; weight displacement "
                 "over the last window relative to that W1",
        "numbers": f"W1 {windows.w1.iloc[0]:.3g} -> {windows.w1.iloc[-1]:.3g} (x{w1_drop:.2g} smaller); displacement "
                   f"{windows.displacement.iloc[-1]:.3g} = {moving:.2f} x the last W1",
        "verdict": "holds" if w1_drop > 2 and moving > 1 else "not established (the run may be too short)",
    }]


FIGURE_12 = Figure("F12_fisher_jacobian", "Fisher lambda_max against sigma_max(J)^2", f12_compute, f12_plot,
                   f12_report, F12_SCALES)
FIGURE_13 = Figure("F13_vanishing_curvature", "Median vs mean forward norm and Hessian curvature against depth",
                   f13_compute, f13_plot, f13_report, F13_SCALES)
FIGURE_14 = Figure("F14_depth_fluctuations", "Pre-activation fluctuations against depth: Gaussian vs orthogonal",
                   f14_compute, f14_plot, f14_report, F14_SCALES)
FIGURE_15 = Figure("F15_invariant_measure", "Long constant-step SGD: loss, gradient norm, weight distributions",
                   f15_compute, f15_plot, f15_report, F15_SCALES)
