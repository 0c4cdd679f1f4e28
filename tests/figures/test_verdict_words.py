"""Verdict words that follow from their numbers by a stated rule (issue 23 item 4), one test per wording defect.

Each test builds a small table in the layout a figure's ``report(data)`` reads, with numbers chosen here so that the
right words follow from a rule (how many grid values, which tolerance, how many seeds), and checks the words and
that the rule's value is stated in the row.  No test compares with a number the code printed before.
"""

import re

import numpy as np
import pandas as pd
import pytest

import montecarlo as mc
import theory
from paper_figures.figures import (
    _depth_width,
    f01_linear_regression,
    f02_sgd_theorems,
    f03_sphere,
    f04_gaussian_init,
    f06_orthogonal_linear,
    f07_small_weights,
    f10_batchnorm_skip,
    f11_infinite_width,
    f12_fisher_jacobian,
    f13_vanishing_curvature,
    f14_depth_fluctuations,
    f15_invariant_measure,
)

TOO_FEW = "no verdict: 2 grid values (3 needed)"


def _tail(k, n):
    lower, upper = mc.clopper_pearson(k, n)
    return dict(k=k, n=n, p=k / n, lower=float(lower), upper=float(upper))


# -- F7 (through theory.fit_constant): "non-vacuous" only at most points -----------------------------------------------


def _f7(theorem_points):
    """F7's table: Theorem 5.1 points ``(eta, k)`` at depth 1, d = 8, gain 1 (800 trials), fitted as ``compute`` does,
    and a ball part of six radii."""
    theorem = pd.DataFrame([dict(part="theorem", n_samples=8, d=8, depth=1, gain=1.0, eta=eta, **_tail(k, 800))
                            for eta, k in theorem_points])
    f07_small_weights.THEOREM_5_1.record(theorem, f07_small_weights.THEOREM_5_1.fit(theorem))
    ball = pd.DataFrame([dict(part="ball", r=r, eta=0.06, depth=2, d=16, n_samples=8, gain=0.9, **_tail(40, 200))
                         for r in f07_small_weights.RADII])
    fit = f07_small_weights.COROLLARY_5_1.fit(ball.assign(r=ball["r"].clip(lower=1e-12)))
    f07_small_weights.COROLLARY_5_1.record(ball, fit)
    return pd.concat([theorem, ball], ignore_index=True)


def test_f7_says_vacuous_when_the_fitted_bound_is_below_one_at_no_more_than_half_of_the_points():
    # The bound is N^2 exp(-c X) with X proportional to eta^2; the eta = 0.03 point (1 failure in 800) sets c, so at
    # eta_i the fitted bound is 64 (p_lower(0.03) / 64)^((eta_i / 0.03)^2): about 58 and 20 at eta = 0.003, 0.01.
    points = [(0.003, 480), (0.01, 400), (0.03, 1)]
    p_binding = float(mc.clopper_pearson(1, 800)[0])
    by_hand = [64 * (p_binding / 64) ** ((eta / 0.03) ** 2) for eta, _ in points]
    assert sum(b < 1 for b in by_hand) == 1  # below 1 at 1 of 3 points: not most of the grid
    row = f07_small_weights.report(_f7(points))[0]
    assert row["verdict"].startswith("vacuous: ")
    assert "vacuous at 2 of 3 points" in row["verdict"] and "more than half" in row["verdict"]
    # 3 points at eta = 0.03 beside one at 0.003: below 1 at 3 of 4 points, most of the grid
    most = f07_small_weights.report(_f7([(0.003, 480), (0.03, 1), (0.03, 2), (0.03, 3)]))[0]
    assert most["verdict"].startswith("non-vacuous: ") and "at 3 of 4 points" in most["verdict"]


# -- F4: the direction row and the trend of c2 -----------------------------------------------------------------------


def _f4(widths, probability, depths=(1, 2)):
    """F4's table: ``probability(width)`` (1000 trials) at every depth and eta, fitted as ``compute`` does."""
    rows = [dict(width=w, depth=d, eta=eta, d=16, n_samples=8, kappa=4.0, p_infinite_width=np.nan,
                 **_tail(int(round(1000 * probability(w))), 1000))
            for d in depths for w in widths for eta in f04_gaussian_init.ETAS]
    table = pd.DataFrame(rows)
    f04_gaussian_init.THEOREM_4_1.record(table, f04_gaussian_init.THEOREM_4_1.fit(table), per_point=True)
    f04_gaussian_init.THEOREM_4_2_ICLR.record(table, f04_gaussian_init.THEOREM_4_2_ICLR.fit(table), suffix="_iclr")
    return table


def test_f4_direction_holds_only_where_pr_falls_with_disjoint_intervals():
    flat = f04_gaussian_init.report(_f4([8, 32, 128], lambda w: 0.3))[1]
    # equal probabilities at every width: neither a rise nor a fall ("holds on this grid" before)
    assert "holds" not in flat["verdict"] and flat["verdict"].startswith("not resolved")
    assert "narrowest and widest" in flat["check"] and "at least 3 widths" in flat["check"]
    falling = f04_gaussian_init.report(_f4([8, 32, 128], lambda w: 0.5 * 8 / w))[1]  # 0.5 -> 0.03, disjoint
    assert falling["verdict"].startswith("holds on this grid")
    rising = f04_gaussian_init.report(_f4([8, 32, 128], lambda w: {8: 0.05, 32: 0.3, 128: 0.8}[w]))[1]
    assert rising["verdict"].startswith("violated: Pr rises with width at depths [1, 2]") and "finding" in rising


def test_f4_gives_no_rate_verdict_from_two_widths():
    rows = f04_gaussian_init.report(_f4([8, 128], lambda w: {8: 0.05, 128: 0.8}[w]))
    assert rows[1]["verdict"] == TOO_FEW and "finding" not in rows[1]
    assert f"trend of the admissible c2 in width: {TOO_FEW}" in rows[0]["verdict"]
    assert "no fixed c2" not in rows[0]["verdict"]


def test_f4_says_c2_falls_with_width_only_when_it_falls_at_every_step():
    table = _f4([8, 16, 32, 64], lambda w: 0.3)
    table["c2_point"] = table["width"].map({8: 100.0, 16: 50.0, 32: 80.0, 64: 10.0})  # last < first, not monotone
    verdict = f04_gaussian_init.report(table)[0]["verdict"]
    assert "no fixed c2" not in verdict and "does not fall at every step of the 4 widths" in verdict
    table["c2_point"] = table["width"].map({8: 100.0, 16: 50.0, 32: 20.0, 64: 10.0})
    verdict = f04_gaussian_init.report(table)[0]["verdict"]
    assert "falls at each of the 4 widths" in verdict and "if the fall goes on beyond the grid" in verdict


# -- F11: tolerances stated, s.e. distances given --------------------------------------------------------------------


def _f11(widths, power, factor_scale=1.0, depths=(1, 2, 4)):
    """F11's table: sd = 0.5 w^power (times a +-0.2% wobble per pair) for 3 pairs, means on their limits; relu's
    fluctuation factor ``factor_scale`` x its formula with a 1% s.e."""
    rows = []
    for activation in f11_infinite_width.ACTIVATIONS:
        for width in widths:
            for pair, wobble in enumerate((1.002, 0.998, 1.001)):
                wobble = wobble if width % 256 else 2 - wobble
                rows.append(dict(kind="cosine", activation=activation, width=width, depth=3, pair=f"0-{pair + 1}",
                                 mean=0.1 * pair, sd=0.5 * width**power * wobble, n=400, limit=0.1 * pair))
        for depth in depths:
            formula = theory.ntk_relative_variance(depth, "relu")
            limit = formula if activation == "relu" else np.nan
            mean = factor_scale * formula if activation == "relu" else 2.0
            rows.append(dict(kind="variance", activation=activation, width=512, depth=depth, mean=mean,
                             sd=0.01 * formula, n=2000, limit=limit))
    return pd.DataFrame(rows)


def test_f11_slope_far_from_its_prediction_holds_only_within_the_stated_tolerance():
    rows = f11_infinite_width.report(_f11([64, 128, 256, 512], -0.47))
    spread = rows[1]
    cosines = _f11([64, 128, 256, 512], -0.47).query("kind == 'cosine' and activation == 'relu'")
    s, se = f11_infinite_width._spread_slope(cosines)
    assert abs(s + 0.5) > 3 * se and abs(s + 0.5) < 3 * se + 0.05  # the construction: many s.e. off, inside 0.05
    assert spread["verdict"].startswith("holds only within the stated tolerance of 0.05")
    assert spread["verdict"].endswith("rejected at 3 s.e. for relu and tanh")
    assert re.search(r"relu 0\.03\d from -1/2 \(\d+\.\d s\.e\.\)", spread["verdict"])
    assert "0.05" in spread["check"] and "3 s.e." in spread["check"]
    exact = f11_infinite_width.report(_f11([64, 128, 256, 512], -0.5))[1]
    assert exact["verdict"].startswith("holds (within 3 s.e. of -1/2")
    far = f11_infinite_width.report(_f11([64, 128, 256, 512], -0.3))[1]
    assert far["verdict"].startswith("violated")


def test_f11_gives_no_slope_verdict_from_two_widths():
    rows = f11_infinite_width.report(_f11([128, 512], -0.5, depths=(1, 4)))
    assert rows[1]["verdict"] == TOO_FEW and rows[2]["verdict"] == TOO_FEW


def test_f11_fluctuation_factor_eight_s_e_off_holds_only_within_the_stated_ten_percent():
    factor = f11_infinite_width.report(_f11([64, 128, 256], -0.5, factor_scale=1.08))[2]
    assert factor["verdict"].startswith("holds at every depth only within the stated 10% tolerance")
    assert "beta=1 8.0% off (8.0 s.e.)" in factor["verdict"]
    assert "10% + 3 s.e." in factor["check"]
    close = f11_infinite_width.report(_f11([64, 128, 256], -0.5, factor_scale=1.02))[2]
    assert close["verdict"] == "holds at every depth (within 3 s.e. of the formula)"
    off = f11_infinite_width.report(_f11([64, 128, 256], -0.5, factor_scale=1.2))[2]
    assert off["verdict"].startswith("departs at depths [1, 2, 4]")


# -- F8-F10: words from intervals over seeds --------------------------------------------------------------------------


def _run(run, losses, centre, depth=10, skip=False, batchnorm=False, seed=0):
    """One training run in the layout of ``_training.tabulate``: 21 pair cosines ``centre + linspace(-0.5, 0.5)`` at
    every epoch."""
    cosines = centre + np.linspace(-0.5, 0.5, 21)
    config = dict(data="digits", depth=depth, width=2, skip=skip, batchnorm=batchnorm, lr=0.05, seed=seed, base=4)
    curve = pd.DataFrame({"epoch": range(len(losses)), "train_loss": losses, "diverged": False, "test_accuracy": 0.5,
                          "batch_size": 32, "pair_batch": 32}).assign(kind="curve", run=run, **config)
    pairs = [pd.DataFrame({"kind": "pair_cosine", "run": run, "epoch": e, "pair": np.arange(21), "cosine": cosines,
                           **config}) for e in range(len(losses))]
    return pd.concat([curve, *pairs], ignore_index=True)


def _depths(seeds=5, confusion=-0.3, spread=0.02):
    """Depth 16 ends at a 3 times higher loss than depth 10 (same seed noise), its cosines ``confusion`` apart, each
    seed shifted by a draw of s.d. ``spread`` (depth 16's own draws)."""
    rng = np.random.default_rng(0)
    noise = {10: rng.normal(0, 0.02, seeds), 16: rng.normal(0, spread, seeds)}
    return pd.concat([_run(f"{depth}-{s}", [2.3, 1.0, final * (1 + 0.1 * s)], shift + noise[depth][s], depth=depth,
                           seed=s)
                      for s in range(seeds) for depth, final, shift in ((10, 0.1, 0.2), (16, 0.3, 0.2 + confusion))],
                     ignore_index=True)


def test_f8_says_reproduced_only_where_each_interval_over_seeds_excludes_zero():
    end, matched = _depth_width.report_for("depth")(_depths())
    assert end["verdict"].startswith("reproduced: depth 10 -> 16, training speed reproduced, confusion reproduced")
    assert "95% Welch t interval over seeds" in end["check"] and "5 seeds per configuration" in end["check"]
    assert "(Welch t over 5 and 5 seeds, 95%): reproduced" in end["numbers"]
    # the same mean gap, seed noise ten times larger: the confusion interval holds 0, the claim is only partly seen
    noisy = _depth_width.report_for("depth")(_depths(spread=0.5))[0]
    assert noisy["verdict"].startswith("partly reproduced: depth 10 -> 16, training speed reproduced, confusion not "
                                       "resolved")
    # the opposite direction is contradicted, and a claim with a contradicted part is contradicted
    assert _depth_width.report_for("depth")(_depths(confusion=0.3))[0]["verdict"].startswith(
        "contradicted: depth 10 -> 16, training speed reproduced, confusion contradicted")


def test_f8_and_f10_from_two_seeds_are_not_testable():
    end, matched = _depth_width.report_for("depth")(_depths(seeds=2))
    assert end["verdict"].startswith("not testable: fewer than two depths with 3 or more seeds")
    assert matched["verdict"].startswith("not testable at matched loss")
    variants = pd.concat([_run(f"{name}-{s}", [2.3, 1.0, 0.2], 0.1, depth=10, skip=skip, batchnorm=bn, seed=s)
                          for name, (skip, bn) in f10_batchnorm_skip.VARIANTS.items() for s in range(2)],
                         ignore_index=True)
    end, matched = f10_batchnorm_skip.report(variants)
    assert end["verdict"].startswith("not testable: plain and batch norm + skip have 3+ seeds")
    assert matched["verdict"].startswith("not testable at matched loss")


# -- F12-F15: rules stated, words implied ----------------------------------------------------------------------------


def test_f12_says_holds_only_when_the_slope_is_at_most_one_too():
    rng = np.random.default_rng(0)
    rows = []
    for init in f12_fisher_jacobian.INITS:
        sigma = np.exp(rng.normal(0, 1, 100))
        for power in (1.5,):
            rows.append(pd.DataFrame(dict(init=init, sigma_w=1.0, depth=8, width=16, jacobian_sigma_max_sq=sigma,
                                          fisher_lambda_max=sigma**power * np.exp(0.05 * rng.normal(size=100)))))
    verdict = f12_fisher_jacobian.report(pd.concat(rows, ignore_index=True))[0]["verdict"]
    # a log-log slope of 1.5: lambda_max grows faster than sigma_max(J)^2, so "at most quadratic" fails
    assert verdict.startswith("partly: positive correlation for both inits") and "not at most quadratic" in verdict


def _f13(z, inside=(True, True, True)):
    rows = []
    for depth, zi, ok in zip((2, 4, 8), (0.0, 0.0, z), inside):
        rows.append({"width": 4, "depth": depth, "ratio_mean": 1.0, "ratio_mean_se": 0.1, "ratio_q0.5": 0.8,
                     "theory_median_clt": 0.8, "exact_median": 0.8, "ratio_median_lo": 0.7 if ok else 0.85,
                     "ratio_median_hi": 0.9, "theory_log_mean": -0.3, "log_mean": -0.3 + zi * 0.02,
                     "log_mean_se": 0.02, "hessian_median": 1.0 / depth})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("z", [3.2, 3.8])
def test_f13_states_the_tolerance_its_verdict_uses(z):
    row = f13_vanishing_curvature.report(_f13(z))[0]
    tolerance = float(re.search(r"within ([\d.]+) s\.e\.", row["check"]).group(1))
    assert (row["verdict"] == "holds") == (z < tolerance)
    share = f13_vanishing_curvature.report(_f13(0.0, inside=(True, True, False)))[0]  # exact median inside at 2 of 3
    assert "90%" in share["check"] and share["verdict"].startswith("departs") and "67%" in share["verdict"]


def test_f14_gives_no_slope_verdict_from_two_depths_and_says_bounded_only_without_growth():
    def table(depths, orthogonal_slope):
        wobble = {1: 0.01, 2: -0.01, 4: 0.005, 8: -0.004}
        return pd.DataFrame([dict(init=init, depth=d, width=16, relative_variance=s * d + 1 + wobble[d], se=0.01,
                                  linear_gaussian=np.nan)
                             for init, s in (("gaussian", 1.0), ("orthogonal", orthogonal_slope)) for d in depths])
    assert f14_depth_fluctuations.report(table([1, 8], 0.0))[0]["verdict"] == TOO_FEW
    growing = f14_depth_fluctuations.report(table([1, 2, 4, 8], 0.3))[0]
    assert "3 s.e." in growing["check"]
    assert "bounded on this grid" not in growing["verdict"].replace("not bounded on this grid", "")
    assert "grows too" in growing["verdict"]
    flat = f14_depth_fluctuations.report(table([1, 2, 4, 8], 0.0))[0]
    assert "stays bounded on this grid" in flat["verdict"]


@pytest.mark.parametrize("change, word", [(0.04, "holds"), (0.06, "not observed")])
def test_f15_states_the_thresholds_its_verdicts_use(change, word):
    loss = np.r_[np.full(100, 2.0), np.full(100, 1.5), np.full(100, 1.0), np.full(100, 1.0 * (1 - change))]
    trace = pd.DataFrame(dict(kind="trace", step=np.arange(400), loss=loss, grad_norm=np.r_[1.0, np.full(399, 0.3)]))
    windows = pd.DataFrame(dict(kind="window", w1=[0.3, 0.1], displacement=[0.2, 0.15]))
    settle, converge = f15_invariant_measure.report(pd.concat([trace, windows], ignore_index=True))
    assert settle["verdict"] == word
    assert "< 0.05" in settle["check"] and "> 0.05" in settle["check"]
    assert "more than 2x" in converge["check"] and "more than 1 x the last W1" in converge["check"]


# -- F1-F3, F6: the thresholds behind "holds" are in the row ---------------------------------------------------------


def test_f1_f2_f3_f6_state_their_thresholds():
    f1 = pd.concat([pd.DataFrame(dict(kind="curve", d=d, iteration=[0, 50], loss=[1.0, loss], se=0.001))
                    for d, loss in ((80, 0.02), (120, 0.004))]
                   + [pd.DataFrame(dict(kind="cosine", d=d, cosine=np.linspace(-s, s, 20)))
                      for d, s in ((80, 0.2), (120, 0.1))], ignore_index=True)
    row = f01_linear_regression.report(f1)[0]
    assert row["verdict"] == "holds" and "+- 2 s.e." in row["check"]

    f2 = pd.DataFrame(dict(regime="r", s=1.0, T=[1, 2], gap=[0.5, 0.4], gap_se=0.01, bound_3_1=1.0, eta=0.1,
                           min_grad=[0.2, 0.1], bound_3_2_printed=1.0, bound_3_2_rederived=1.0))
    rows = f02_sgd_theorems.report(f2)
    assert "1.96 s.e." in rows[0]["check"] and "no s.e." in rows[1]["check"]

    f3 = pd.DataFrame(dict(d=[8, 32], ks_pvalue=[0.5, 0.0005], var_times_d=1.0, n=100, lower=0.0, union_exact=1.0,
                           union_paper=1.0, epsilon=0.1))
    row = f03_sphere.report(f3)[0]
    assert row["verdict"] == "rejected" and "above 0.001" in row["check"]

    f6 = pd.DataFrame([dict(init=init, depth=depth, min_cosine=m, min_cosine_se=0.01, q10=m - 0.1, q90=m + 0.1,
                            ks_vs_shallowest=ks, p=0.5, c_fit=1.0, c_verdict="vacuous", c_describe="...")
                       for init, rows_ in (("orthogonal", ((1, -0.4, 1.0), (4, -0.4, 0.002))),
                                           ("gaussian", ((1, -0.4, 1.0), (4, -0.8, 1e-6))))
                       for depth, m, ks in rows_])
    same_law, deeper, _ = f06_orthogonal_linear.report(f6)
    assert same_law["verdict"] == "holds" and "above 0.001" in same_law["check"]  # p = 0.002 > 0.001
    assert deeper["verdict"] == "holds" and "2 s.e." in deeper["check"] and "below 0.001" in deeper["check"]
