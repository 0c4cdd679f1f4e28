"""F16 (rare tails) and the exact infinite-width floor ``theory.infinite_width_cosine_floor``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

import montecarlo as mc
import theory
from montecarlo.testing import output_factor

D = 16


def beta_tail(t, d=D):
    a = (d - 1) / 2
    return special.betainc(a, a, (1 - np.asarray(t, dtype=float)) / 2)


def test_sign_of_the_loss_factor_is_minus_the_label():
    """Square loss, tanh output with gamma <= 1, labels +-1: sign(a_i) = -y_i (the floor's sign argument)."""
    rng = np.random.default_rng(0)
    z = 3 * rng.standard_normal(10000)
    y = rng.choice([-1.0, 1.0], size=z.size)
    for gamma in (1.0, 0.5):
        a = output_factor(mc.MLP(D, 1, 1, activation="tanh", gamma=gamma), z, y, "square")
        assert np.all(np.sign(a) == -y)


def test_floor_against_plain_monte_carlo_of_the_infinite_width_law():
    """N = 2: the exact floor inside the 99.9% Clopper-Pearson interval of sample_infinite_width's cosines."""
    net = mc.MLP(input_dim=D, width=1, depth=2, activation="tanh", kappa=4.0)
    sample = mc.sample_infinite_width(net, 2, 20000, labels="random_sign", loss="square", seed=3)
    # the limit cosine: sign(a_1 a_2) Theta_hat_12 / sqrt(Theta_hat_11 Theta_hat_22)
    cos = np.sign(sample.a[:, 0] * sample.a[:, 1]) * sample.theta_hat[:, 0, 1] / np.sqrt(
        sample.theta_hat[:, 0, 0] * sample.theta_hat[:, 1, 1])
    taus = np.array([0.2, 0.35, 0.5])
    floor = theory.infinite_width_cosine_floor(taus, 2, "tanh", D, kappa=4.0, n_samples=2)
    for tau, pair in zip(taus, floor.pair):
        k = int((cos < -tau).sum())
        lower, upper = mc.clopper_pearson(k, cos.size, confidence=0.999)
        assert lower <= pair <= upper, (tau, k, pair)
    # the finite-width part Theta_fixed vanishes relative to width * Theta_hat: statistics() at a huge width agree
    stats = sample.statistics(1e12)
    assert np.allclose(stats["min_cosine"], cos, atol=1e-9)


def test_floor_for_n_points_is_bracketed_by_monte_carlo():
    """N = 4 (6 pairs): Monte Carlo of the limit's min cosine falls inside [lower, upper] of the bracket."""
    net = mc.MLP(input_dim=D, width=1, depth=1, activation="tanh", kappa=1.0)
    sample = mc.sample_infinite_width(net, 4, 20000, labels="random_sign", loss="square", seed=5)
    mins = sample.statistics(1e12)["min_cosine"]
    tau = 0.45
    floor = theory.infinite_width_cosine_floor(tau, 1, "tanh", D, kappa=1.0, n_samples=4)
    k = int((mins < -tau).sum())
    lower, upper = mc.clopper_pearson(k, mins.size, confidence=0.999)
    assert floor.lower <= floor.upper
    assert lower <= floor.upper and floor.lower <= upper, (k, floor)


def test_floor_limit_cases():
    # tau -> 1: the cosine magnitude f(u) < 1 almost surely, so the floor vanishes
    assert theory.infinite_width_cosine_floor(1.0, 2, "tanh", D, kappa=4.0).pair == 0.0
    near = theory.infinite_width_cosine_floor(np.array([0.99, 0.999, 0.9999]), 2, "tanh", D, kappa=4.0)
    assert np.all(np.diff(near.pair) < 0) and near.pair[-1] < 1e-20
    # tau = 0: the sign is a fair coin, Pr[cos < 0] = 1/2 for a pair
    assert theory.infinite_width_cosine_floor(0.0, 2, "tanh", D, kappa=4.0).pair == pytest.approx(0.5)
    # linear activation: f(u) = u, so the floor is (Pr[u > tau] + Pr[u < -tau]) / 2 = Pr[u > tau], the Beta tail
    taus = np.array([0.1, 0.5, 0.9, 0.97])
    linear = theory.infinite_width_cosine_floor(taus, 3, "linear", D)
    np.testing.assert_allclose(linear.pair, beta_tail(taus), rtol=1e-12)
    # the general root-finding path (used for tanh, relu, sigmoid) on the linear kernel gives the same
    from theory._src.infinite_width import _beta_measure_above, _unit_sphere_cosine_table

    grid, values, _ = _unit_sphere_cosine_table(3, "linear", 1.0, D)
    above, below = _beta_measure_above(grid, values, taus, lambda t: t, D)
    np.testing.assert_allclose(0.5 * (above + below), beta_tail(taus), rtol=1e-9)
    # N > 2: the bracket contains M p to first order and is ordered
    f = theory.infinite_width_cosine_floor(0.9, 2, "tanh", D, kappa=4.0, n_samples=8)
    assert f.lower <= f.upper == pytest.approx(28 * f.pair)
    assert f.lower == pytest.approx(28 * f.pair, rel=1e-4)


def test_floor_refuses_bad_input():
    with pytest.raises(ValueError, match="tau"):
        theory.infinite_width_cosine_floor(1.5, 2, "tanh", D)
    with pytest.raises(ValueError, match="depth"):
        theory.infinite_width_cosine_floor(0.5, 0, "tanh", D)
    with pytest.raises(ValueError, match="n_samples"):
        theory.infinite_width_cosine_floor(0.5, 2, "tanh", D, n_samples=1)


@pytest.fixture(scope="module")
def fast_data(tmp_path_factory):
    from paper_figures._registry import Context
    from paper_figures.figures import f16_rare_tails

    context = Context(store=tmp_path_factory.mktemp("f16"), progress=False)
    return f16_rare_tails.compute("fast", context)


def test_f16_fast_rows(fast_data, tmp_path):
    from paper_figures.figures import f16_rare_tails

    rows = f16_rare_tails.report(fast_data)
    assert all({"claim", "check", "numbers", "verdict"} <= set(r) for r in rows)
    assert all(any(ch.isdigit() for ch in r["numbers"]) for r in rows)
    assert sum(bool(r.get("finding")) for r in rows) == 2  # the floor (with its law) and Theorem 6.1
    # every rate row carries a 95% interval "m [lo, hi]", or says why it gives no verdict (too few grid values)
    for r in rows:
        if "rate" in r["claim"].lower() or "direction" in r["claim"] or "in depth" in r["claim"] or "in eta" in r["claim"]:
            assert ("[" in r["numbers"] or "no verdict" in r["numbers"]) and "nan" not in r["numbers"], r
    # the orthogonal linear tail agrees with the exact Beta tail within the reported interval, at every depth
    check = f16_rare_tails.orth_check(fast_data)
    assert all(check["estimate_inside"]), check["deepest"][["depth", "estimate", "estimate_lower",
                                                            "estimate_upper", "exact"]]
    assert check["fraction_inside"] > 0.8
    orth_row = next(r for r in rows if r["claim"].startswith("Theorem 6.1"))
    assert orth_row["verdict"] == "holds at every depth"
    # the floor row reports positive floors
    floor_row = next(r for r in rows if r["claim"].startswith("Infinite-width floor"))
    assert "no bound" in floor_row["verdict"]
    f16_rare_tails.plot(fast_data, tmp_path / "F16")
    assert (tmp_path / "F16.png").exists() and (tmp_path / "F16.pdf").exists()



def test_f16_quotes_are_the_rows_numbers(fast_data):
    """What the documents quote from F16 is the fit and the floor the rows report, rounded as printed."""
    import re

    import theory
    from paper_figures.figures import f16_rare_tails as f16

    rows = f16.report(fast_data)
    quotes = {k: v for r in rows for k, v in (r.get("quotes") or {}).items()}
    ex = f16.excess(fast_data)
    widths = ex.groupby("depth")["width"].nunique()
    depth, tau = int(widths[widths >= 2].index.min()), float(ex["tau"].max())  # the report's main depth
    # the floor: theory's exact Beta integral at the quoted setting, independently of the figure's table
    assert quotes["F16_setting"] == f"tau = {tau:g} (d = {f16.D}, N = {f16.N}, tanh, depth {depth})"
    floor = theory.infinite_width_cosine_floor(tau, depth, "tanh", f16.D, n_samples=f16.N, kappa=4.0)
    assert float(quotes["F16_floor"]) == pytest.approx(floor.upper, rel=5e-3)
    fit = f16.width_fits(fast_data).get((depth, tau))
    if fit is not None and not isinstance(fit, str):
        a, lo, hi = map(float, re.match(r"a = (\S+) \[(\S+), (\S+)\]", quotes["F16_law"]).groups())
        assert (a, lo, hi) == pytest.approx((fit.a, *fit.a_interval), abs=0.006)
    deep = f16.orth_check(fast_data)["deepest"]
    assert quotes["F16_orthogonal"].endswith(f"at depths {int(deep['depth'].min())}-{int(deep['depth'].max())}")
    assert float(quotes["F16_orthogonal"].split()[0]) == pytest.approx(deep["exact"].iloc[0], rel=0.05)

def test_f16_registered():
    from paper_figures._registry import FIGURES

    assert "F16_rare_tails" in FIGURES


def test_report_states_the_findings_first(tmp_path):
    from paper_figures._runner import write_report

    base = {"check": "c", "numbers": "1", "verdict": "holds", "figure": "F16_rare_tails",
            "link": "figures/F16_rare_tails/F16_rare_tails.png"}
    rows = [{**base, "claim": "no finding"},
            # another figure's: the lead has at most one finding per figure (tests/figures/test_report_html.py)
            {**base, "claim": "second", "finding": "F17: second finding 2.5e-9", "finding_priority": 2,
             "figure": "F17_finite_width_law", "link": "figures/F17_finite_width_law/F17_finite_width_law.png"},
            {**base, "claim": "first", "finding": "F16: first finding 1.7e-9", "finding_priority": 1}]
    text = write_report(rows, "fast", tmp_path).read_text()
    head = text.split("| claim |")[0]
    assert head.index("first finding 1.7e-9") < head.index("second finding 2.5e-9")
    assert "finding" not in text.split("| claim |")[1].split("\n")[0]  # not a table column
    assert "Main findings" in (tmp_path / "report.html").read_text()


# ---------------------------------------------------------------------------------------------- the report's words
# Synthetic data built here from a known law (issue 23 item 4: each word follows from its numbers by a stated rule).

def _conditional_rows(widths, depths=(2,), taus=(0.9, 0.95), C=100.0, a=1.0, rel_se=0.02):
    """Conditional-estimator rows whose excess over the floor is exactly log(Pr / floor) = C width^-a."""
    rows = []
    for depth in depths:
        for tau in taus:
            floor = 1e-9 * (1 - tau) * 100
            for width in widths:
                pair = floor * np.exp(C * width ** -a)
                rows.append(dict(family="conditional", statistic="min_cosine", width=width, depth=depth, N=8,
                                 tau=tau, s=-tau, pair=pair, pair_se=rel_se * pair, pair_lower=0.96 * pair,
                                 pair_upper=1.04 * pair, probability=28 * pair, bonferroni=28 * pair,
                                 lower=28 * 0.96 * pair, upper=28 * 1.04 * pair, relative_se=rel_se, networks=1000,
                                 floor_pair=floor, floor_lower=28 * floor, floor_upper=28 * floor))
    return rows


def test_the_excess_fit_recovers_a_known_law_and_says_it_falls_to_the_floor():
    from paper_figures.figures import f16_rare_tails as f16

    data = pd.DataFrame(_conditional_rows([16, 32, 64, 128, 256, 512, 1024], C=80.0, a=1.0))
    fits = f16.width_fits(data)
    for fit in fits.values():
        assert fit.C == pytest.approx(80.0, rel=1e-6) and fit.a == pytest.approx(1.0, rel=1e-6)
    row = next(r for r in f16.report(data) if r["claim"].startswith("Theorem 4.1 direction in width"))
    assert row["verdict"].startswith("contradicted: Pr tends to the positive infinite-width floor (exact)")
    assert "falls like l^-a" in row["verdict"] and "consistent with 1/width" in row["verdict"]
    assert "the fit from the next width agrees" in row["verdict"]
    floor = next(r for r in f16.report(data) if r["claim"].startswith("Infinite-width floor"))
    assert "a = 1 [" in floor["finding"] and "C = 80" in floor["finding"]  # one finding line: floor and law


def test_no_decay_verdict_from_fewer_than_three_widths():
    from paper_figures.figures import f16_rare_tails as f16

    data = pd.DataFrame(_conditional_rows([16, 32, 64, 128]))  # two widths >= FIT_FROM = 64
    row = next(r for r in f16.report(data) if r["claim"].startswith("Theorem 4.1 direction in width"))
    assert "no verdict: 2 grid values (3 needed)" in row["numbers"]
    assert row["verdict"].endswith("the excess's decay: no fit (too few widths)")
    depth = next(r for r in f16.report(data) if r["claim"].startswith("Depth at fixed width"))
    assert "no verdict: 1 grid value (3 needed)" in depth["verdict"]


def test_the_floor_finding_states_the_label_model_and_the_normalisation():
    from paper_figures.figures import f16_rare_tails as f16

    rows = f16.report(pd.DataFrame(_conditional_rows([64, 128, 256])))
    finding = next(r for r in rows if r["claim"].startswith("Infinite-width floor"))["finding"]
    assert "random +-1 labels independent of the data" in finding and "normalised confusion" in finding


@pytest.mark.parametrize("q, word", [(1.4, "heavier than Gaussian"), (2.0, "consistent with a Gaussian tail"),
                                     (3.0, "lighter than Gaussian")])
def test_eta_tail_words_follow_the_power(q, word):
    # -log Pr = (s / 0.3)^q: q < 2 decays more slowly than a Gaussian (a heavier tail), q > 2 faster
    from paper_figures.figures import f16_rare_tails as f16

    s = np.linspace(0.3, 1.5, 80)
    rng = np.random.default_rng(0)
    curves = np.exp(-(s / 0.3) ** q)[None, :] * np.exp(0.05 * rng.standard_normal((10, 1)))
    mean = curves.mean(axis=0)
    frame = pd.DataFrame({"family": "eta", "statistic": "eta_star", "width": 16, "depth": 2, "N": 8, "s": s,
                          "probability": mean, "lower": 0.9 * mean, "upper": 1.1 * mean,
                          **{f"p_repeat{r}": curves[r] for r in range(10)}})
    got = f16.eta_rates(frame)[16]["power"]
    assert got[0] == pytest.approx(q, rel=0.02) and got[1] <= q <= got[2]
    data = pd.concat([pd.DataFrame(_conditional_rows([64, 128, 256])), frame.assign(c2_fit=1.0, c2_verdict="v",
                                                                                   c2_describe="d")])
    row = next(r for r in f16.report(data) if r["claim"].startswith("Theorem 4.1 in eta"))
    assert word in row["verdict"]


def test_a_subset_run_that_stopped_is_reported_not_fatal(monkeypatch, tmp_path):
    from paper_figures._registry import Context
    from paper_figures.figures import f16_rare_tails as f16

    def stuck(*args, **kwargs):
        raise mc.ChainsStoppedMoving("level 5: 108 of 200 members share the statistic's value")

    monkeypatch.setattr(mc, "run_tail", stuck)
    assert "108 of 200" in f16._run_subset(Context(store=tmp_path), "subset-w32", {
        **f16.BASE, "width": 8, "depth": 1, "kappa": 4.0, "statistic": "min_cosine", "direction": "lower",
        "threshold": -0.9, "population": 20, "repeats": 2, "seed": 0})
    data = pd.concat([pd.DataFrame(_conditional_rows([64, 128, 256])), pd.DataFrame([{
        "family": "stopped", "run": "subset-w32", "width": 32, "depth": 2, "stopped_family": "subset",
        "message": "level 5: ties"}])])
    row = next(r for r in f16.report(data) if r["claim"].startswith("Subset simulation runs that gave no number"))
    assert row["verdict"] == "1 run(s) stopped: no estimate there" and "level 5: ties" in row["numbers"]


def _fit(a, lo, hi, p=0.5):
    from montecarlo import PowerDecayFit

    return PowerDecayFit(C=100.0, a=a, C_interval=(80.0, 120.0), a_interval=(lo, hi), chi2=1.0, dof=3, p_value=p,
                         scale=1.0, x=np.array([64.0, 1024.0]), y=np.zeros(2), se=np.ones(2))


@pytest.mark.parametrize("fits, checks, floor, words, absent", [
    # every outcome of the rule, one case each
    ({(2, .9): _fit(1.0, .9, 1.1)}, {}, True, ["contradicted: Pr tends", "falls like l^-a",
                                                 "consistent with 1/width"], ["misfits", "differs"]),
    ({(2, .9): _fit(0.1, -.2, .4)}, {}, True, ["does not fall significantly with width at beta=2 tau=0.9"],
     ["falls like", "consistent"]),
    ({(2, .9): _fit(1.0, .9, 1.1, p=1e-4)}, {}, True, ["the power law misfits (chi^2 p < 0.01) at beta=2 tau=0.9"],
     ["consistent with 1/width"]),
    ({(2, .9): _fit(0.7, .6, .8)}, {}, True, ["a differs from 1 at beta=2 tau=0.9"], ["consistent with 1/width"]),
    ({(2, .9): _fit(1.0, .9, 1.1)}, {(2, .9): _fit(1.5, 1.2, 1.8)}, True,
     ["the fit from the next width disagrees at beta=2 tau=0.9"], ["next width agrees"]),
    ({(2, .9): _fit(1.0, .9, 1.1)}, {}, False, ["the floor is 0 at some tau"], ["contradicted"]),
])
def test_each_outcome_of_the_excess_rule(fits, checks, floor, words, absent):
    from paper_figures.figures import f16_rare_tails as f16

    verdict = f16.excess_verdict(fits, checks, floor)
    assert all(w in verdict for w in words), verdict
    assert not any(w in verdict for w in absent), verdict


@pytest.mark.parametrize("slope, word", [(0.3, "depth raises the excess"), (-0.3, "depth lowers the excess"),
                                         (0.0, "no significant depth effect")])
def test_each_outcome_of_the_depth_rule(slope, word):
    from paper_figures.figures import f16_rare_tails as f16

    rows = []
    for depth in (1, 2, 4, 8):
        rows += _conditional_rows([128], depths=(depth,), taus=(0.9,), C=128 * (1.0 + slope * depth))
    rows += _conditional_rows([64, 256], depths=(2,), taus=(0.9,))
    row = next(r for r in f16.report(pd.DataFrame(rows)) if r["claim"].startswith("Depth at fixed width"))
    assert word in row["verdict"], row["verdict"]


def _subset_rows(width, tau, probability, collapsed=0):
    s = np.linspace(-0.5, -tau, 20)
    return [dict(family="subset", statistic="min_cosine", width=width, depth=2, N=8, s=x, probability=probability,
                 lower=0.8 * probability, upper=1.2 * probability, p_repeat0=probability, p_repeat1=probability,
                 repeats=2, population=200, collapsed_repeats=collapsed, uncrossed_levels=0) for x in s]


@pytest.mark.parametrize("factor, collapsed, words", [
    (1.0, 0, ["agree at every point"]),
    (10.0, 0, ["disagree at l=128 tau=0.9"]),
    (1.0, 2, ["agree at every point", "2 of 2 repeats collapsed at l=128", "can bias the mean"]),
])
def test_each_outcome_of_the_subset_rule(factor, collapsed, words):
    from paper_figures.figures import f16_rare_tails as f16

    rows = _conditional_rows([64, 128, 256], taus=(0.9,))
    truth = next(r["probability"] for r in rows if r["width"] == 128)
    data = pd.DataFrame(rows + _subset_rows(128, 0.9, factor * truth, collapsed))
    row = next(r for r in f16.report(data) if r["claim"].startswith("Subset simulation, the cross-check"))
    assert all(w in row["verdict"] for w in words), row["verdict"]


def test_every_conditional_run_of_the_width_panel_has_a_seed_of_its_own(monkeypatch, tmp_path):
    # one seed for every run made the depth-2 and depth-4 nets of a width share their first layers (and widths
    # share rows), so the estimates behind one fit were not independent (failed before: every seed was 16)
    from paper_figures._registry import Context
    from paper_figures.figures import _tails, f16_rare_tails as f16

    seeds = []
    monkeypatch.setattr(mc, "conditional_cosine_tail", lambda *a, **k: seeds.append(k["seed"]))
    cfg = f16.SCALES["quick"]
    for width, depth, networks in f16._conditional_configs(cfg):
        _tails.conditional(Context(store=tmp_path), _tails.TANH, width, depth, networks, cfg["taus"])
    assert len(seeds) == len(f16._conditional_configs(cfg)) == len(set(seeds))
