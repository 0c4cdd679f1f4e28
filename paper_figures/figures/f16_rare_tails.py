r"""F16, rare tails: the finite-width excess over the infinite-width floor, subset simulation's cross-check, Theorem 6.1.

Setting of the width and depth panels (the normalised, cosine confusion): tanh,
Strategy 4.1 (``init="gaussian"``), kappa = 4, d = 16, N = 8 points uniform on
the sphere, square loss, **random-sign labels independent of the data**
(``labels="random_sign"``).  With a tanh output ``|g| < 1``, so
``sign(a_i) = -y_i`` and ``cos(grad f_i, grad f_j) = y_i y_j k_W(x_i, x_j)``:
the infinite-width law of the cosines is known exactly and
``Pr[min cos < -tau]`` tends to a positive floor set by the data
(``theory.infinite_width_cosine_floor``), not to 0.

Estimators.  The tails come from the conditional (exact-data) estimator
``montecarlo.conditional_cosine_tail``: the pair's inner product integrated
exactly against its Beta law, plain Monte Carlo over networks, the N-point
probability bracketed by the union and its Bonferroni term (both reported;
their gap is below 1e-6 of the value at tau = 0.97 from width 64 on, a few
1e-3 at width 16 and tau = 0.9).  Subset simulation (``montecarlo.run_tail``,
``REPEATS`` independent repeats, the interval a t-interval on the mean of the
repeats) is the cross-check at a few widths, with its population-collapse
diagnostics.

Panels: (a) ``log(Pr_l / floor)`` against the width ``l`` at three ``tau`` and
depths 2 and 4, with the fit ``log(Pr_l / floor) = C l^(-a)`` (a positive
floor caps ``-log Pr``, so the excess over the floor is what says how fast
width helps); (b) ``Pr_l`` against ``l`` beside the floor; (c) the depth
panel at one width: the finite-width probability and the floor's own depth
dependence; (d) subset simulation against the conditional estimator; (e)
orthogonal deep linear networks, N = 2, depths 1..8, on the exact Beta tail
(Theorem 6.1's depth independence, subset simulation at 1e-10); (f) raw
``Pr[eta* > eta]`` against ``eta^2`` (Theorem 4.1 in eta, subset simulation),
beside the theorem at its fitted ``c2``.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

import montecarlo as mc
import theory

from .._figure import Figure
from .._quotes import sci
from .._style import colours, save
from . import _tails
from ._rules import too_few
from ._tails import D, N, SEED, TANH, WIDTH_PANEL

BASE = dict(d=D, n_samples=N, activation="tanh", init="gaussian", loss="square", labels="random_sign")
GRID = 80  # points of each stored subset-simulation tail curve
#: Subset simulation: independent repeats behind each interval (a t-interval on their mean) and the population.
REPEATS = 10
#: The fit of the excess uses the widths from this one on.  The law is an expansion in 1/width, so the narrowest
#: widths (an excess of e^3 to e^11 at 16 and 32) are left out; where to start is a choice, so the report gives the
#: fit from CHECK_FROM beside it, and the verdict needs the two to agree (their intervals of a overlap).
FIT_FROM = 64
CHECK_FROM = 128
#: Per scale: the width panel (shared with F17: ``_tails.WIDTH_PANEL``), the depth panel (one width, several
#: depths), the subset-simulation runs and the Theorem 6.1 and eta* panels.
SCALES = {
    "fast": dict(**WIDTH_PANEL["fast"], depth_width=32, depth_depths=[1, 2], depth_networks=100, subset_widths=[16],
                 subset_tau=0.9, population=200, orth_depths=[1, 2], orth_p=1e-4, orth_population=300,
                 eta_widths=[16], eta_thresholds={16: 1.28}, limit_draws=4000),
    "quick": dict(**WIDTH_PANEL["quick"], depth_width=128, depth_depths=[1, 2, 4, 8], depth_networks=1000,
                  subset_widths=[32, 128], subset_tau=0.97, population=200, orth_depths=[1, 2, 4, 8], orth_p=1e-10,
                  orth_population=400, eta_widths=[16, 32], eta_thresholds={16: 1.92, 32: 2.45}, limit_draws=40000),
    "full": dict(**WIDTH_PANEL["full"], depth_width=128, depth_depths=[1, 2, 4, 8, 16], depth_networks=10000,
                 subset_widths=[32, 128, 512], subset_tau=0.97, population=1000, orth_depths=[1, 2, 4, 8, 16],
                 orth_p=1e-12, orth_population=2000, eta_widths=[16, 32, 64],
                 eta_thresholds={16: 2.2, 32: 2.8, 64: 3.4}, limit_draws=400000),
}


# ------------------------------------------------------------------------------------------------------------
# Compute
# ------------------------------------------------------------------------------------------------------------

def _conditional_configs(cfg) -> list[tuple[int, int, int]]:
    """``(width, depth, networks)`` of every conditional run: the width panel, then the depth panel's extra depths."""
    configs = [(w, b, cfg["networks"][b][w]) for b in cfg["depths"] for w in cfg["widths"]]
    have = {(w, b) for w, b, _ in configs}
    configs += [(cfg["depth_width"], b, cfg["depth_networks"]) for b in cfg["depth_depths"]
                if (cfg["depth_width"], b) not in have]
    return configs


def _conditional(context, cfg, width, depth, networks) -> mc.ConditionalTail:
    return _tails.conditional(context, TANH, width, depth, networks, cfg["taus"])


def _subset_specs(cfg) -> list[tuple[str, dict, dict]]:
    """``(name, mapping, axes)`` of every subset-simulation run of the figure."""
    settings = dict(population=cfg["population"], repeats=REPEATS, seed=SEED, grid_points=GRID)
    specs = []
    for width in cfg["subset_widths"]:
        specs.append((f"subset-w{width}", {**BASE, "width": width, "depth": 2, "kappa": 4.0, **settings,
                                           "statistic": "min_cosine", "direction": "lower",
                                           "threshold": -cfg["subset_tau"]},
                      dict(family="subset", statistic="min_cosine", width=width, depth=2, N=N)))
    for width in cfg["eta_widths"]:
        specs.append((f"eta-w{width}", {**BASE, "width": width, "depth": 2, "kappa": 4.0, **settings,
                                        "statistic": "eta_star", "direction": "upper",
                                        "threshold": cfg["eta_thresholds"][width]},
                      dict(family="eta", statistic="eta_star", width=width, depth=2, N=N)))
    tau_orth = theory.sphere_inner_product_threshold(cfg["orth_p"], D)
    for depth in cfg["orth_depths"]:
        specs.append((f"orth-b{depth}", dict(d=D, n_samples=2, width=D, depth=depth, activation="linear",
                                             init="orthogonal", gamma=1 / np.sqrt(2 * depth), loss="square",
                                             labels="random_sign", **{**settings, "population": cfg["orth_population"]},
                                             statistic="min_cosine", direction="lower", threshold=-tau_orth),
                      dict(family="orth", statistic="min_cosine", width=D, depth=depth, N=2)))
    return specs


def _subset_folder(context, name, spec):
    """The store of one subset-simulation run: its name and the hash of its configuration."""
    return context.store / f"{name}-{mc.ResultsStore.hash_of(spec.to_dict())[:10]}"


def _run_subset(context, name, mapping):
    """The run's RareTail, or the message of ``ChainsStoppedMoving`` when a repeat's chains could not move.

    Subset simulation then refuses to give a number; the figure reports that instead of stopping the main job.
    """
    spec = mc.TailSpec.from_mapping(mapping)
    folder = _subset_folder(context, name, spec)
    try:
        return mc.run_tail(spec, folder, scheduler=context.scheduler, progress=context.progress)
    except mc.ChainsStoppedMoving as error:
        return str(error)


def prepare(scale, context) -> list:
    """The figure's independent pieces: each conditional run and each subset-simulation run (largest first)."""
    cfg = SCALES[scale]
    pieces = []
    for width, depth, networks in _conditional_configs(cfg):
        pieces.append(_tails.piece(context, TANH, width, depth, networks, cfg["taus"]))
    for name, mapping, _ in _subset_specs(cfg):
        # in the units of the conditional runs' cost (measured at quick scale: the width-128 run about 5 s, the
        # conditional width-1024 run about 7 s), so that the numba-free conditional runs go first and a second
        # worker does not compile numba's kernel while the first (F4) is compiling it
        cost = REPEATS * mapping["population"] * 2 * (1 + mapping["width"] ** 2 * mapping["depth"] / 2000)
        pieces.append((f"F16 {name}", cost, functools.partial(_run_subset, context, name, mapping)))
    return pieces


def compute(scale, context) -> pd.DataFrame:
    cfg = SCALES[scale]
    rows = []
    floors = {}
    for width, depth, networks in _conditional_configs(cfg):
        result = _conditional(context, cfg, width, depth, networks)
        if depth not in floors:
            floors[depth] = theory.infinite_width_cosine_floor(np.array(cfg["taus"]), depth, "tanh", D, kappa=4.0,
                                                               n_samples=N)
        floor = floors[depth]
        frame = result.to_frame()
        for i, r in frame.iterrows():
            rows.append({"family": "conditional", "statistic": "min_cosine", "width": width, "depth": depth, "N": N,
                         "tau": r["tau"], "s": -r["tau"], "pair": r["pair"], "pair_se": r["pair_se"],
                         "pair_lower": r["pair_lower"], "pair_upper": r["pair_upper"],
                         "branch_minus": r["branch_minus"], "branch_plus": r["branch_plus"],
                         "probability": r["union"], "bonferroni": r["bonferroni"], "lower": r["lower"],
                         "upper": r["upper"], "relative_se": r["relative_se"], "networks": networks,
                         "seconds": result.seconds, "floor_pair": floor.pair[i], "floor_lower": floor.lower[i],
                         "floor_upper": floor.upper[i]})
    for name, mapping, axes in _subset_specs(cfg):
        result = _run_subset(context, name, mapping)
        if isinstance(result, str):
            rows.append({**axes, "family": "stopped", "run": name, "stopped_family": axes["family"],
                         "message": result[:500]})
            continue
        curves = result.repeat_tails  # repeats x grid, on the grid of result.tail["s"]
        collapsed = [bool(len(levels)) for levels in (result.collapsed_levels or ())]
        uncrossed = sum(len(levels) for levels in (result.uncrossed_levels or ()))
        for k in range(GRID):
            rows.append({**axes, "s": float(result.tail["s"].iloc[k]), "probability": float(result.tail["probability"].iloc[k]),
                         "lower": float(result.tail["lower"].iloc[k]), "upper": float(result.tail["upper"].iloc[k]),
                         **{f"p_repeat{r}": float(curves[r, k]) for r in range(len(curves))},
                         "estimate": result.estimate, "estimate_lower": result.interval[0],
                         "estimate_upper": result.interval[1], "au_beck_cov": result.coefficient_of_variation,
                         "empirical_cov": result.empirical_cov, "evaluations": result.evaluations,
                         "seconds": result.seconds, "repeats": len(curves), "population": mapping["population"],
                         "collapsed_repeats": int(sum(collapsed)),
                         "collapsed_which": ",".join(str(r) for r, c in enumerate(collapsed) if c),
                         "uncrossed_levels": int(uncrossed)})
    table = pd.DataFrame(rows)
    sub = table["family"] == "subset"
    if sub.any():
        f = theory.infinite_width_cosine_floor((-table.loc[sub, "s"]).clip(0, 1).to_numpy(), 2, "tanh", D, kappa=4.0,
                                               n_samples=N)
        table.loc[sub, "floor_lower"], table.loc[sub, "floor_upper"] = f.lower, f.upper
    orth = table["family"] == "orth"
    table.loc[orth, "exact"] = theory.sphere_inner_product_measure((-table.loc[orth, "s"]).to_numpy(), 1.0, D)
    _theorem_4_1_on_eta(table, cfg)
    table["scale"] = scale  # a column, not attrs: the runner stores the data as CSV and reports from the CSV
    return table


def _theorem_4_1_on_eta(table, cfg) -> None:
    """Theorem 4.1 on the eta* curves (columns X, bound, c2_fit, c2_verdict, c2_describe, p_infinite_width)."""
    eta = table["family"] == "eta"
    if not eta.any():
        return
    values = dict(width=table.loc[eta, "width"], beta=table.loc[eta, "depth"], d=D, N=table.loc[eta, "N"],
                  eta=table.loc[eta, "s"].clip(lower=1e-9), kappa=4.0)
    table.loc[eta, "X"] = theory.theorem_4_1_sphere.evaluate_rate(c2=1.0, **values)
    fit = theory.fit_constant(theory.theorem_4_1_sphere, "c2", table.loc[eta, "lower"].fillna(0.0).to_numpy(),
                              fixed={"c1": np.inf}, p_upper=table.loc[eta, "upper"].fillna(1.0).clip(upper=1.0)
                              .to_numpy(), **values)
    table["c2_fit"] = fit.upper
    table["c2_verdict"] = fit.verdict
    table["c2_describe"] = fit.describe()
    table.loc[eta, "bound"] = theory.theorem_4_1_sphere.failure_bound(c1=np.inf, c2=fit.upper, **values)
    limit = mc.sample_infinite_width(mc.MLP(input_dim=D, width=1, depth=2, activation="tanh", kappa=4.0), N,
                                     cfg["limit_draws"], labels="random_sign", loss="square", seed=SEED)
    for width, g in table[eta].groupby("width"):
        per_draw = mc.eta_star(limit.grams(width))
        table.loc[g.index, "p_infinite_width"] = [float((per_draw > s).mean()) for s in g["s"]]


# ------------------------------------------------------------------------------------------------------------
# Analysis (from the data alone)
# ------------------------------------------------------------------------------------------------------------

def _taus(data) -> list:
    return sorted(data.loc[data["family"] == "conditional", "tau"].unique())


def excess(data) -> pd.DataFrame:
    """Per (depth, tau, width): ``log(Pr_l / floor)`` (pair probabilities) and its standard error (delta method,
    ``montecarlo.log_excess``; the floor is exact)."""
    sel = data[data["family"] == "conditional"].copy()
    sel["log_ratio"], sel["log_ratio_se"] = mc.log_excess(sel["pair"], sel["pair_se"], sel["floor_pair"])
    return sel.sort_values(["depth", "tau", "width"])


def width_fits(data, depths=None, start=FIT_FROM) -> dict:
    """``{(depth, tau): PowerDecayFit or the words why not}`` of ``log(Pr_l / floor) = C l^(-a)`` over widths >= start.

    ``montecarlo.fit_power_decay``, fitted on the mean probability over networks at each width (one estimate per
    width, its standard error from the networks), never on per-network logs.
    """
    ex = excess(data)
    out = {}
    for (depth, tau), g in ex.groupby(["depth", "tau"]):
        if depths is not None and depth not in depths:
            continue
        g = g[g["width"] >= start]
        few = too_few(g["width"])
        if few:
            out[(depth, tau)] = few
            continue
        try:
            out[(depth, tau)] = mc.fit_power_decay(g["width"], g["log_ratio"], g["log_ratio_se"])
        except ValueError as error:
            out[(depth, tau)] = f"no fit: {error}"
    return out


def depth_panel(data) -> pd.DataFrame:
    """The depth panel's rows: the width with the most depths, every depth there, per tau."""
    ex = excess(data)
    counts = ex.groupby("width")["depth"].nunique()
    width = int(counts.idxmax())
    return ex[ex["width"] == width]


def _curve_at(g, s):
    """Mean probability of a subset curve at ``s`` and its interval (log-linear between grid points)."""
    g = g.sort_values("s")
    x = g["s"].to_numpy()

    def at(column):
        with np.errstate(divide="ignore"):
            return float(np.exp(np.interp(s, x, np.log(np.maximum(g[column].to_numpy(dtype=float), 1e-300)))))

    return at("probability"), at("lower"), at("upper")


def subset_check(data) -> list[dict]:
    """Subset simulation against the conditional estimator at each subset width and tau it reaches."""
    out = []
    sub = data[data["family"] == "subset"]
    cond = data[data["family"] == "conditional"]
    for width, g in sub.groupby("width"):
        for tau in _taus(data):
            if -tau < g["s"].min() - 1e-12:
                continue
            c = cond[(cond["width"] == width) & (cond["depth"] == 2) & np.isclose(cond["tau"], tau)]
            if c.empty:
                continue
            p, lo, hi = _curve_at(g, -tau)
            c = c.iloc[0]
            ordered = g.sort_values("s")
            repeats = sorted((k for k in g.columns if k.startswith("p_repeat") and g[k].notna().all()),
                             key=lambda k: int(k[8:]))
            single = [float(np.exp(np.interp(-tau, ordered["s"], np.log(np.maximum(ordered[k], 1e-300)))))
                      for k in repeats]
            out.append(dict(width=int(width), tau=float(tau), subset=p, subset_lower=lo, subset_upper=hi,
                            conditional=float(c["probability"]), bonferroni=float(c["bonferroni"]),
                            conditional_lower=float(c["lower"]),
                            conditional_upper=float(c["upper"]), overlap=bool(lo <= c["upper"] and c["lower"] <= hi),
                            collapsed=int(g["collapsed_repeats"].iloc[0]), uncrossed=int(g["uncrossed_levels"].iloc[0]),
                            repeats=len(single), single=single))
    return out


#: Bootstrap resamples of the repeats behind an interval of a fit on the mean curve.
BOOTSTRAP = 400


def eta_rates(data) -> dict:
    """Per width: the power q of ``-log Pr ~ eta^q`` over the tail (``Pr < 1e-2``), ``montecarlo.fit_tail_power``
    on the repeats' curves (fitted on their mean, a percentile bootstrap over the repeats; widths whose mean
    curve has too few tail points are left out)."""
    out = {}
    for width, g in data[data["family"] == "eta"].groupby("width"):
        g = g.sort_values("s")
        columns = sorted((k for k in g.columns if k.startswith("p_repeat") and g[k].notna().all()),
                         key=lambda k: int(k[8:]))
        try:
            fit = mc.fit_tail_power(g["s"].to_numpy(), g[columns].to_numpy().T, max_probability=1e-2,
                                    resamples=BOOTSTRAP, seed=SEED)
        except ValueError:
            continue
        out[width] = dict(power=(fit.q, fit.lower, fit.upper), decades=fit.decades, points=fit.points,
                          repeats=fit.repeats)
    return out


def orth_check(data):
    """Orthogonal linear, N = 2: the repeats' intervals against the exact Beta tail, every depth and grid point."""
    sel = data[(data["family"] == "orth") & (data["probability"] > 0)]
    inside = (sel["lower"] <= sel["exact"]) & (sel["exact"] <= sel["upper"])
    deep = sel.loc[sel.groupby("depth")["s"].idxmin()]  # the threshold: the end of each curve
    ratio = np.abs(np.log(sel["probability"] / sel["exact"]))
    return dict(fraction_inside=float(inside.mean()), max_log_ratio=float(ratio.max()), deepest=deep,
                estimate_inside=[bool(r.estimate_lower <= r.exact <= r.estimate_upper) for r in deep.itertuples()])


def _ci(m, lo, hi):
    return f"{m:.3g} [{lo:.3g}, {hi:.3g}]"


# ------------------------------------------------------------------------------------------------------------
# Plot
# ------------------------------------------------------------------------------------------------------------

#: The lower end of the excess panel's log axis (an interval reaching 0 is drawn down to it).
RATIO_AXIS_FLOOR = 1e-2


def _clip_log_axis(ax, values) -> None:
    """A log axis from a decade below the smallest positive value to 2 (intervals reaching 0 are cut there)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size:
        ax.set_ylim(10 ** np.floor(np.log10(values.min()) - 1), 2.0)


def plot(data, stem) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    (ratio_ax, prob_ax, depth_ax), (subset_ax, orth_ax, eta_ax) = axes
    ex = excess(data)
    fits = width_fits(data)
    taus = _taus(data)
    markers = {d: m for d, m in zip(sorted(ex["depth"].unique()), "osd^v")}
    main_depths = sorted(ex.groupby("depth")["width"].nunique().loc[lambda s: s >= 2].index)
    for tau, c in zip(taus, colours(len(taus))):
        for depth in main_depths:
            g = ex[(ex["depth"] == depth) & np.isclose(ex["tau"], tau)]
            # a log axis: the interval's lower end is drawn down to the axis when it reaches 0 or below
            low = np.maximum(g["log_ratio"] - 1.96 * g["log_ratio_se"], RATIO_AXIS_FLOOR)
            ratio_ax.errorbar(g["width"], np.maximum(g["log_ratio"], RATIO_AXIS_FLOOR),
                              yerr=[np.maximum(g["log_ratio"], RATIO_AXIS_FLOOR) - low,
                                    1.96 * g["log_ratio_se"]], fmt=markers[depth], color=c,
                              ms=4, capsize=2, ls="none",
                              label=rf"$\tau$ = {tau:g}, $\beta$ = {depth}")
            fit = fits.get((depth, tau))
            if not isinstance(fit, str) and fit is not None:
                x = np.geomspace(FIT_FROM, g["width"].max(), 50)
                ratio_ax.plot(x, fit.predict(x), color=c, lw=1, ls="-" if depth == main_depths[0] else "--")
            prob_ax.errorbar(g["width"], g["probability"], yerr=[g["probability"] - g["lower"],
                                                                 g["upper"] - g["probability"]],
                             fmt=markers[depth], color=c, ms=4, capsize=2, ls="-" if depth == main_depths[0] else "--",
                             lw=0.8)
            prob_ax.axhline(g["floor_upper"].iloc[0], color=c, ls=":", lw=1.2)
    ratio_ax.set_xscale("log", base=2)
    ratio_ax.set_yscale("log")
    ratio_ax.set_ylim(bottom=RATIO_AXIS_FLOOR)
    ratio_ax.set_xlabel(r"width $\ell$")
    ratio_ax.set_ylabel(r"$\log(\Pr_\ell / \mathrm{floor})$")
    ratio_ax.set_title(rf"excess over the floor; lines: $C\ell^{{-a}}$ fitted on $\ell \geq {FIT_FROM}$", fontsize=9)
    ratio_ax.legend(fontsize=6, ncol=2)
    prob_ax.set_xscale("log", base=2)
    prob_ax.set_yscale("log")
    _clip_log_axis(prob_ax, ex["probability"])
    prob_ax.set_xlabel(r"width $\ell$")
    prob_ax.set_ylabel(r"$\Pr[\min_{i\neq j}\cos < -\tau]$, N = 8")
    prob_ax.set_title("conditional estimator (95% intervals); dotted: exact infinite-width floor", fontsize=9)
    dp = depth_panel(data)
    for tau, c in zip(taus, colours(len(taus))):
        g = dp[np.isclose(dp["tau"], tau)].sort_values("depth")
        depth_ax.errorbar(g["depth"], g["probability"], yerr=[g["probability"] - g["lower"],
                                                              g["upper"] - g["probability"]], fmt="o-", color=c,
                          ms=4, capsize=2, label=rf"$\tau$ = {tau:g}, $\ell$ = {int(g['width'].iloc[0])}")
        depth_ax.plot(g["depth"], g["floor_upper"], ":", color=c, lw=1.5)
    depth_ax.plot([], [], "k:", label="infinite-width floor at each depth (exact)")
    depth_ax.set_xscale("log", base=2)
    depth_ax.set_yscale("log")
    depth_ax.set_xlabel(r"depth $\beta$")
    depth_ax.set_ylabel(r"$\Pr[\min\cos < -\tau]$")
    depth_ax.set_title("depth: the finite-width probability and the floor's own depth dependence", fontsize=9)
    depth_ax.legend(fontsize=6)
    checks = subset_check(data)
    for k, row in enumerate(checks):
        x = k
        subset_ax.errorbar([x - 0.1], [row["subset"]], yerr=[[row["subset"] - row["subset_lower"]],
                                                              [row["subset_upper"] - row["subset"]]], fmt="o",
                           color="C1", capsize=3, label="subset simulation (t-interval on the mean)" if k == 0 else None)
        subset_ax.plot([x - 0.25] * len(row["single"]), row["single"], "_", color="C1", alpha=0.6,
                       label="single repeats" if k == 0 else None)
        subset_ax.errorbar([x + 0.1], [row["conditional"]], yerr=[[row["conditional"] - row["conditional_lower"]],
                                                                   [row["conditional_upper"] - row["conditional"]]],
                           fmt="s", color="C0", capsize=3, label="conditional estimator" if k == 0 else None)
    subset_ax.set_xticks(range(len(checks)))
    subset_ax.set_xticklabels([rf"$\ell$={r['width']}, $\tau$={r['tau']:g}" for r in checks], fontsize=7, rotation=20)
    subset_ax.set_yscale("log")
    subset_ax.set_ylabel(r"$\Pr[\min\cos < -\tau]$, N = 8")
    subset_ax.set_title(f"cross-check: subset simulation ({REPEATS} repeats) vs the conditional estimator",
                        fontsize=9)
    subset_ax.legend(fontsize=6)
    sel = data[data["family"] == "orth"]
    for depth, c in zip(sorted(sel["depth"].unique()), colours(sel["depth"].nunique())):
        g = sel[sel["depth"] == depth].sort_values("s")
        orth_ax.plot(-g["s"], g["probability"], color=c, lw=1, label=rf"$\beta$ = {depth}")
        orth_ax.fill_between(-g["s"], np.maximum(g["lower"], 1e-300), g["upper"], color=c, alpha=0.15, lw=0)
    if not sel.empty:
        g = sel.sort_values("s")
        orth_ax.plot(-g["s"], g["exact"], "k--", lw=1, label=r"exact: $\Pr[\langle x_1,x_2\rangle > \tau]$ (Beta)")
    orth_ax.set_yscale("log")
    _clip_log_axis(orth_ax, data.loc[data["family"] == "orth", "probability"])
    orth_ax.set_xlabel(r"$\tau$")
    orth_ax.set_ylabel(r"$\Pr[\cos < -\tau]$, N = 2")
    orth_ax.set_title(r"orthogonal deep linear, $\gamma = 1/\sqrt{2\beta}$: Theorem 6.1 at every depth", fontsize=9)
    orth_ax.legend(fontsize=6)
    sel = data[data["family"] == "eta"]
    for width, c in zip(sorted(sel["width"].unique()), colours(sel["width"].nunique())):
        g = sel[sel["width"] == width].sort_values("s")
        eta_ax.plot(g["s"] ** 2, g["probability"], color=c, label=rf"$\ell$ = {width}: subset simulation")
        eta_ax.fill_between(g["s"] ** 2, np.maximum(g["lower"], 1e-300), g["upper"], color=c, alpha=0.2, lw=0)
        eta_ax.plot(g["s"] ** 2, np.minimum(g["bound"], 1.1), "--", color=c, lw=1)
        pos = g["p_infinite_width"] > 0
        eta_ax.plot(g.loc[pos, "s"] ** 2, g.loc[pos, "p_infinite_width"], ":", color=c, lw=1.5)
    if not sel.empty:
        eta_ax.plot([], [], "k--", label=rf"Thm 4.1, $c_2$ = {data['c2_fit'].dropna().iloc[0]:.2g}")
        eta_ax.plot([], [], "k:", label="infinite-width law (plain MC)")
    eta_ax.set_yscale("log")
    _clip_log_axis(eta_ax, data.loc[data["family"] == "eta", "probability"])
    eta_ax.set_xlabel(r"$\eta^2$")
    eta_ax.set_ylabel(r"$\Pr[\eta^\star > \eta]$ (raw)")
    eta_ax.set_title(r"raw $\eta^\star$: a straight line = Gaussian tail in $\eta$", fontsize=9)
    eta_ax.legend(fontsize=6)
    save(fig, stem)


# ------------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------------

SETTING = ("tanh, Strategy 4.1 (kappa = 4), d = 16, N = 8, square loss, labels random +-1 independent of the data; "
           "the normalised confusion (minimum gradient cosine)")


def report(data) -> list[dict]:
    rows = []
    taus = _taus(data)
    ex = excess(data)
    fits = width_fits(data)
    widths = sorted(ex["width"].unique())
    depths = sorted(ex.groupby("depth")["width"].nunique().loc[lambda s: s >= 2].index)
    cond = data[data["family"] == "conditional"]
    networks = ", ".join(f"l={int(w)}: {int(n)}" for w, n in
                         cond[cond["depth"] == depths[0]].groupby("width")["networks"].first().items())
    networks += " at depth " + str(int(depths[0])) + "".join(
        "; depth " + str(int(b)) + ": " + ", ".join(f"l={int(w)}: {int(n)}" for w, n in
                                                   cond[cond["depth"] == b].groupby("width")["networks"].first().items())
        for b in depths[1:])
    estimator = ("conditional estimator (the pair's inner product integrated exactly against its Beta law; plain "
                 f"Monte Carlo over networks, 95% t-intervals; networks per width {networks}; N-point probability "
                 "bracketed by the union and its Bonferroni term)")
    t_last, widest = taus[-1], widths[-1]
    main = depths[0]
    w_row = ex[(ex["depth"] == main) & (ex["width"] == widest) & np.isclose(ex["tau"], t_last)].iloc[0]
    floor_row = w_row
    # 1. the floor (exact), with the widest finite width beside it
    positive_floor = bool((ex["floor_lower"] > 0).all())
    rows.append({
        "claim": "Infinite-width floor of the normalised confusion: at infinite width the gradient cosines tend to "
                 "y_i y_j f(<x_i, x_j>), so Pr[min cos < -tau] tends to a positive constant set by the data (d, N), "
                 "not to 0 (random +-1 labels independent of the data)",
        "check": "theory.infinite_width_cosine_floor (exact Beta integral per pair; union/Bonferroni bracket for "
                 f"N = {N}, tight because the pair events are pairwise independent in the limit) beside the widest "
                 f"finite width by the {estimator}",
        "numbers": "; ".join(
            f"beta={int(b)}, tau={t:g}: floor [{g['floor_lower'].iloc[0]:.3g}, {g['floor_upper'].iloc[0]:.3g}]; "
            f"l={int(g['width'].iloc[-1])}: {g['probability'].iloc[-1]:.3g} [{g['lower'].iloc[-1]:.3g}, "
            f"{g['upper'].iloc[-1]:.3g}]"
            for (b, t), g in ex[ex["depth"].isin(depths)].groupby(["depth", "tau"])),
        "verdict": ("no bound N^2 exp(-c l^2 ...) on the normalised confusion can hold at all widths: the floor is "
                    "positive at every tau < 1" if positive_floor else "the floor is 0 at some tau"),
        "finding_priority": 1,
        "finding": _floor_finding(fits, floor_row, w_row, main, t_last, widest),
        "quotes": _floor_quotes(fits, w_row, main, t_last, widest),
    })
    # 2. the finite-width excess and its decay law
    checks = width_fits(data, start=CHECK_FROM)

    def fit_texts(found):
        return "; ".join(f"beta={int(d)}, tau={t:g}: {f if isinstance(f, str) else f.describe()}"
                         for (d, t), f in sorted(found.items()) if d in depths)

    rows.append({
        "claim": "Theorem 4.1 direction in width for the normalised confusion: Pr falls to 0 like N^2 exp(-c l^2 ...); "
                 "here Pr against the positive infinite-width floor, and the excess log(Pr_l / floor) against width",
        "check": f"{SETTING}; {estimator}; weighted least squares of log(Pr_l / floor) = C l^-a on widths >= "
                 f"{FIT_FROM}, and from {CHECK_FROM} as a check of the cut (one estimate per width, its s.e. from the "
                 "networks; Wald 95% intervals, normal quantile, Student t on n - 2 dof once the errors are scaled by "
                 f"sqrt(chi^2/dof) > 1); 'falls' needs every interval of a above 0; a misfit when the chi^2 p-value "
                 f"is below {LAW_P:g}; 'consistent with 1/width' when the law fits and every interval of a contains "
                 "1; the cut 'agrees' when the two fits' intervals of a overlap",
        "numbers": "; ".join(
            f"beta={int(b)}, tau={t:g}: log(Pr/floor) " + ", ".join(
                f"l={int(r.width)} {r.log_ratio:.3g} +- {1.96 * r.log_ratio_se:.2g}" for r in g.itertuples())
            for (b, t), g in ex[ex["depth"].isin(depths)].groupby(["depth", "tau"]))
        + f"; fits from l = {FIT_FROM}: " + fit_texts(fits) + f"; fits from l = {CHECK_FROM}: " + fit_texts(checks),
        "verdict": excess_verdict({k: f for k, f in fits.items() if k[0] in depths},
                                  {k: f for k, f in checks.items() if k[0] in depths}, positive_floor),
        "quotes": _law_quotes(fits, depths, taus),
    })
    # 3. depth: the finite-width probability against the floor's own depth dependence
    dp = depth_panel(data)
    dwidth = int(dp["width"].iloc[0])
    d_depths = sorted(dp["depth"].unique())
    slopes = {}
    for tau, g in dp.groupby("tau"):
        g = g.sort_values("depth")
        few = too_few(g["depth"])
        if few:
            slopes[tau] = few
            continue
        # weighted slope of log(Pr/floor) against depth, with its standard error from the given errors
        try:
            line = mc.fit_weighted_line(g["depth"], g["log_ratio"], g["log_ratio_se"])
        except ValueError as error:
            slopes[tau] = f"no fit: {error}"
            continue
        slopes[tau] = (line.slope, line.slope_se)
    words = []
    for tau, v in slopes.items():
        if isinstance(v, str):
            words.append(f"tau={tau:g}: {v}")
        elif v[0] - 1.96 * v[1] > 0:
            words.append(f"tau={tau:g}: depth raises the excess over the floor")
        elif v[0] + 1.96 * v[1] < 0:
            words.append(f"tau={tau:g}: depth lowers the excess over the floor")
        else:
            words.append(f"tau={tau:g}: no significant depth effect on the excess")
    floor_change = {tau: g.sort_values("depth")["floor_pair"].to_numpy() for tau, g in dp.groupby("tau")}
    rows.append({
        "claim": "Depth at fixed width (Theorem 4.1: the exponent falls like (beta + 2)^-4, so Pr rises with depth): "
                 "the finite-width depth effect against the floor's own depth dependence",
        "check": f"{SETTING}; width {dwidth}, depths {[int(b) for b in d_depths]}; {estimator}; weighted slope of "
                 "log(Pr/floor) against depth with its 95% interval (1.96 s.e.); 'raises'/'lowers' when the interval "
                 "excludes 0",
        "numbers": "; ".join(
            f"tau={t:g}: " + ", ".join(f"beta={int(r.depth)} Pr {r.probability:.3g} [{r.lower:.3g}, {r.upper:.3g}] "
                                       f"floor {r.floor_upper:.3g}" for r in g.sort_values("depth").itertuples())
            + (f"; d log(Pr/floor)/d beta {slopes[t][0]:.3g} +- {1.96 * slopes[t][1]:.2g}"
               if not isinstance(slopes[t], str) else "")
            for t, g in dp.groupby("tau"))
        + "; the floor itself changes by a factor " + ", ".join(
            f"{v[-1] / v[0]:.3g} (tau={t:g})" for t, v in floor_change.items())
        + f" from depth {int(d_depths[0])} to {int(d_depths[-1])}",
        "verdict": "; ".join(words),
        "quotes": _depth_quotes(slopes, floor_change, dwidth, d_depths),
    })
    # 4. subset simulation against the conditional estimator
    checks = subset_check(data)
    if checks:
        agree = all(c["overlap"] for c in checks)
        runs = {c["width"]: c for c in checks}  # one subset run per width (all its taus from one run)
        collapsed = {w: (c["collapsed"], c["repeats"]) for w, c in runs.items()}
        rows.append({
            "claim": "Subset simulation, the cross-check: its estimate of the rare tail agrees with the conditional "
                     "estimator's",
            "check": f"{SETTING}; depth 2; subset simulation (pCN), population "
                     f"{int(data.loc[data.family == 'subset', 'population'].iloc[0])}, {REPEATS} repeats, 95% "
                     "t-interval on the mean of the repeats (Au-Beck's CoV not used as an interval); a repeat is "
                     "flagged collapsed when some level's population sits in one label-sign branch although level 0 "
                     "held both (each >= 5%); 'agree' when the two 95% intervals overlap",
            "numbers": "; ".join(
                f"l={c['width']}, tau={c['tau']:g}: subset {c['subset']:.3g} [{c['subset_lower']:.3g}, "
                f"{c['subset_upper']:.3g}] (single repeats {min(c['single']):.2g}..{max(c['single']):.2g}), "
                + "conditional " + (f"{c['conditional']:.3g}" if c["bonferroni"] >= 0.99 * c["conditional"] else
                                    f"bracket [{c['bonferroni']:.3g}, {c['conditional']:.3g}]")
                + f" [{c['conditional_lower']:.3g}, {c['conditional_upper']:.3g}]"
                for c in checks)
            + "; repeats flagged collapsed: " + ", ".join(f"l={w}: {k} of {n}" for w, (k, n) in collapsed.items())
            + "; levels without a cross-branch move: " + ", ".join(f"l={w}: {c['uncrossed']}" for w, c in runs.items()),
            "verdict": ("agree at every point" if agree else "disagree at " + ", ".join(
                f"l={c['width']} tau={c['tau']:g}" for c in checks if not c["overlap"]))
                       + "".join(f"; {k} of {n} repeats collapsed at l={w}: single repeats are unreliable there and "
                                 f"collapse can bias the mean too (benchmarks/results/subset_coverage.md: at this "
                                 f"population the interval covered 87-89% of 100 groups)"
                                 for w, (k, n) in collapsed.items() if k),
        })
    stopped = data[data["family"] == "stopped"] if "family" in data else data.iloc[:0]
    if len(stopped):
        rows.append({
            "claim": "Subset simulation runs that gave no number",
            "check": "a run whose chains cannot move at some level (ties at the level's quantile or acceptance below "
                     "1%) raises ChainsStoppedMoving rather than report a meaningless estimate",
            "numbers": "; ".join(f"{r.run} (l={int(r.width)}, depth {int(r.depth)}): {r.message}"
                                 for r in stopped.itertuples()),
            "verdict": f"{len(stopped)} run(s) stopped: no estimate there",
        })
    # 5. Theorem 6.1 at 1e-10
    if (data["family"] == "orth").any():
        oc = orth_check(data)
        deep = oc["deepest"]
        rows.append({
            "claim": "Theorem 6.1 (orthogonal deep linear, gamma = 1/sqrt(2 beta)): the law of the cosine does not "
                     "depend on depth; for N = 2 Pr[cos < -tau] = Pr[<x1, x2> > tau] exactly",
            "check": f"subset simulation at depths {[int(b) for b in sorted(deep['depth'])]}, width = d = {D}, random "
                     f"+-1 labels, {REPEATS} repeats (t-interval on the mean), against the exact Beta tail at every "
                     "grid point; 'holds' when the exact value is inside the 95% interval at the threshold at every depth",
            "numbers": f"exact inside the repeats' 95% interval at {100 * oc['fraction_inside']:.0f}% of grid points; "
                       f"max |log(P/exact)| {oc['max_log_ratio']:.2f}; at the threshold: "
                       + ", ".join(f"beta={int(r.depth)} {r.estimate:.3g} [{r.estimate_lower:.3g}, "
                                   f"{r.estimate_upper:.3g}]" for r in deep.itertuples())
                       + f" vs exact {deep['exact'].iloc[0]:.3g}",
            "verdict": "holds at every depth" if all(oc["estimate_inside"]) else
                       "estimate outside its interval at some depth",
            "finding_priority": 3,
            "finding": f"F16: orthogonal deep linear nets match the exact Beta tail {deep['exact'].iloc[0]:.2g} at "
                       f"depths {int(deep['depth'].min())}-{int(deep['depth'].max())} (Theorem 6.1's depth "
                       f"independence at {-np.log10(deep['exact'].iloc[0]):.0f} decades)",
            "quotes": {"F16_orthogonal": f"{sci(deep['exact'].iloc[0], 2)} at depths {int(deep['depth'].min())}-"
                                         f"{int(deep['depth'].max())}"},
        })
    # 6. Theorem 4.1 in eta (raw eta*)
    erates = eta_rates(data)
    if erates:
        def q_words(v):
            m, lo, hi = v["power"]
            if lo <= 2 <= hi:
                return "consistent with a Gaussian tail in eta (the interval of q contains 2)"
            # -log Pr ~ eta^q: q < 2 decays more slowly than a Gaussian, a heavier tail
            return f"heavier than Gaussian in eta (q = {m:.2g} < 2)" if hi < 2 else \
                f"lighter than Gaussian in eta (q = {m:.2g} > 2)"
        rows.append({
            "claim": "Theorem 4.1 in eta: Pr[eta* > eta] <= N^2 exp(-c2 X), X proportional to eta^2 (a Gaussian tail)",
            "check": f"subset simulation, raw eta*, kappa = 4, depth 2, {REPEATS} repeats; the power q of -log Pr ~ "
                     "eta^q fitted on the repeats' mean curve over its tail (Pr < 1e-2), 95% percentile bootstrap "
                     f"over the repeats ({BOOTSTRAP} resamples); Gaussian: q = 2; q < 2 is a heavier tail, q > 2 a "
                     "lighter one",
            "numbers": "; ".join(f"l={int(w)}: power q {_ci(*v['power'])} over {v['points']} points, "
                                 f"{v['decades']:.1f} decades" for w, v in erates.items()),
            "verdict": "; ".join(f"l={int(w)}: {q_words(v)}" for w, v in erates.items()),
        })
        rows.append({
            "claim": "Theorem 4.1 constant c2 on the rare eta* tails (c1 = inf)",
            "check": "theory.fit_constant on the repeats' lower limits of every grid point of the eta* curves",
            "numbers": f"largest admissible c2 = {data['c2_fit'].dropna().iloc[0]:.3g}",
            "verdict": f"{data['c2_verdict'].dropna().iloc[0]}: {data['c2_describe'].dropna().iloc[0]}",
        })
    return rows


#: A power law whose chi-square p-value is below this misfits (the verdict says so).
LAW_P = 0.01


def excess_verdict(fits: dict, checks: dict, positive_floor: bool) -> str:
    """The words of the width row from the fits of ``log(Pr_l / floor) = C l^-a`` (rules in the row's check).

    The contradiction of Theorem 4.1 rests on the positive floor (exact), whatever the excess does; the rest
    says how the excess falls: significantly or not, whether the power law fits, whether a is consistent with 1,
    and whether the fit depends on the width where it starts.
    """
    head = ("contradicted: Pr tends to the positive infinite-width floor (exact), not to 0, so no N^2 exp(-c l^2) "
            "bound can hold" if positive_floor else "the floor is 0 at some tau: Pr may still tend to 0")
    decays = {k: f for k, f in fits.items() if not isinstance(f, str)}
    if not decays:
        return head + "; the excess's decay: no fit (too few widths)"
    where = lambda keys: ", ".join(f"beta={int(d)} tau={t:g}" for d, t in keys)  # noqa: E731
    flat = [k for k, f in decays.items() if f.a_interval[0] <= 0]
    misfit = [k for k, f in decays.items() if f.p_value < LAW_P]
    not_one = [k for k, f in decays.items() if not f.a_interval[0] <= 1 <= f.a_interval[1]]
    a_values = [f.a for f in decays.values()]
    words = [head]
    if flat:
        words.append(f"the excess over the floor does not fall significantly with width at {where(flat)}")
    else:
        words.append(f"the excess over the floor falls like l^-a with a from {min(a_values):.3g} to "
                     f"{max(a_values):.3g}")
    if misfit:
        words.append(f"the power law misfits (chi^2 p < {LAW_P:g}) at {where(misfit)}")
    elif not not_one and not flat:
        words.append("consistent with 1/width (every interval of a contains 1)")
    elif not_one:
        words.append(f"a differs from 1 at {where(not_one)}")
    cut = {k: c for k, c in checks.items() if not isinstance(c, str) and k in decays}
    if cut:
        disagree = [k for k, c in cut.items()
                    if c.a_interval[1] < decays[k].a_interval[0] or decays[k].a_interval[1] < c.a_interval[0]]
        words.append(f"the fit from the next width disagrees at {where(disagree)}: the law depends on where it starts"
                     if disagree else "the fit from the next width agrees")
    return "; ".join(words)


def _floor_finding(fits, floor_row, w_row, depth, tau, widest) -> str:
    """One line: the floor (exact), the widest width's value and, when fitted, how fast width reaches the floor."""
    fit = fits.get((depth, tau))
    law = ("" if fit is None or isinstance(fit, str) else
           f", reached like log(Pr_l / floor) = C l^-a with a = {fit.a:.3g} [{fit.a_interval[0]:.3g}, "
           f"{fit.a_interval[1]:.3g}], C = {fit.C:.3g} (widths {FIT_FROM}-{int(fit.x.max())}, chi^2 p = "
           f"{fit.p_value:.2g})")
    return (f"F16: for the normalised confusion (minimum gradient cosine) with random +-1 labels independent of the "
            f"data, Pr[min cos < -{tau:g}] tends with width to an exact positive floor "
            f"[{floor_row['floor_lower']:.3g}, {floor_row['floor_upper']:.3g}] (d = {D}, N = {N}, depth {int(depth)})"
            f"{law}; width {int(widest)}: {w_row['probability']:.3g} [{w_row['lower']:.3g}, {w_row['upper']:.3g}]: "
            f"no N^2 exp(-c l^2) bound on it can hold")


def _floor_quotes(fits, w_row, depth, tau, widest) -> dict:
    """The floor row's numbers as the documents quote them (``paper_figures._quotes``)."""
    quotes = {"F16_setting": f"tau = {tau:g} (d = {D}, N = {N}, tanh, depth {int(depth)})",
              "F16_floor": sci(w_row["floor_upper"], 3),
              "F16_widest": f"width {int(widest)} is still {w_row['probability'] / w_row['floor_upper']:.2f} times "
                            f"the floor at tau = {tau:g}, depth {int(depth)}"}
    fit = fits.get((depth, tau))
    if fit is not None and not isinstance(fit, str):
        quotes["F16_law"] = (f"a = {fit.a:.2f} [{fit.a_interval[0]:.2f}, {fit.a_interval[1]:.2f}] over widths "
                             f"{FIT_FROM}-{int(fit.x.max())}")
    return quotes


def _law_quotes(fits, depths, taus) -> dict:
    """The width law's range over tau at each depth, as the documents quote it."""
    quotes = {}
    for depth in depths:
        found = [f for (d, _), f in sorted(fits.items()) if d == depth and not isinstance(f, str)]
        if not found:
            continue
        a = [f.a for f in found]
        lo, hi = min(f.a_interval[0] for f in found), max(f.a_interval[1] for f in found)
        C = [f.C for f in found]
        quotes[f"F16_law_depth{int(depth)}"] = (
            f"at depth {int(depth)}, a from {min(a):.2f} to {max(a):.2f} (95% intervals within {lo:.2f}-{hi:.2f}) and C from "
            f"{min(C):.0f} to {max(C):.0f} over tau in {{{', '.join(f'{t:g}' for t in taus)}}}")
    return quotes


def _depth_quotes(slopes, floor_change, width, depths) -> dict:
    """The depth panel's per-layer factor on Pr / floor (the last tau) and the floor's own change, as quoted."""
    quotes = {"F16_floor_depth": (f"by at most {100 * max(abs(v[-1] / v[0] - 1) for v in floor_change.values()):.1g}% "
                                  f"from depth {int(depths[0])} to {int(depths[-1])}")}
    tau, slope = sorted(slopes.items())[-1]
    if not isinstance(slope, str):
        m, se = slope
        quotes["F16_depth_step"] = (f"at width {width} each layer multiplies Pr / floor by {np.exp(m):.2f} "
                                    f"[{np.exp(m - 1.96 * se):.2f}, {np.exp(m + 1.96 * se):.2f}] (tau = {tau:g})")
    return quotes


FIGURE = Figure("F16_rare_tails", "Rare tails: the finite-width excess over the infinite-width floor, subset "
                "simulation cross-checked, Theorem 6.1", compute, plot, report, SCALES, prepare)
