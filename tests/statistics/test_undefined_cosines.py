"""What a cosine tail is conditional on (issue 29): zero gradients, undefined cosines, the two tails.

The reference is independent of the Gram code: for the one-layer relu network with its activation at the output
(depth 0, the generalised linear model g = relu(w . x)), example i's gradient is (relu(a_i) - y_i) relu'(a_i) x_i
with a = X w, so it is exactly zero iff a_i < 0, and a trial's minimum cosine is undefined iff at most one a_i is
positive.  Given the data, a = X w is a centred Gaussian vector with covariance proportional to X X^T (for a Haar
row w as well: w = g / |g| has the signs of the Gaussian g), so the probability is a sum of Gaussian orthant
probabilities (Sheppard's closed form for two and three components, scipy's Genz integration beyond, to an
absolute error of about 1e-5: the 99.9% intervals it is compared with are about 0.04 wide).
"""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

import montecarlo as mc
from montecarlo.__main__ import main

ORTHANT_ABSEPS = 1e-5


def _orthant(correlation: np.ndarray) -> float:
    """``Pr[z > 0 componentwise]`` for ``z ~ N(0, correlation)``: Sheppard's closed form for N <= 3, else Genz.

    Genz's absolute error target is ORTHANT_ABSEPS = 1e-5 (ten repeated five-component references spread by 2e-5,
    against intervals 0.04 wide); a 1e-9 target was never met for five components (its point budget ran out with
    the same 1e-5 spread) and took 8 s per reference instead of 1.4 s."""
    n = correlation.shape[0]
    if n == 2:
        return 0.25 + math.asin(correlation[0, 1]) / (2 * math.pi)
    if n == 3:
        r = [correlation[0, 1], correlation[0, 2], correlation[1, 2]]
        return 0.125 + sum(math.asin(v) for v in r) / (4 * math.pi)
    # Pr[z <= 0] = Pr[z > 0] by symmetry
    return float(stats.multivariate_normal.cdf(np.zeros(n), np.zeros(n), correlation, abseps=ORTHANT_ABSEPS,
                                               releps=0))


def _exact_undefined(X: np.ndarray) -> tuple[float, float]:
    """(Pr[at most one a_i > 0], E[pairs with a zero gradient]) for a = X w, w isotropic."""
    gram = X @ X.T
    scale = np.sqrt(np.diagonal(gram))
    correlation = gram / np.outer(scale, scale)
    n = X.shape[0]
    probability = 0.0
    for signs in itertools.product((-1.0, 1.0), repeat=n):
        if sum(s > 0 for s in signs) <= 1:
            probability += _orthant(correlation * np.outer(signs, signs))
    pairs = sum(1 - _orthant(correlation[np.ix_([i, j], [i, j])]) for i, j in itertools.combinations(range(n), 2))
    return probability, pairs


def _glm_sample(n, init, trials, seed=0, d=5):
    rng = np.random.default_rng(100 + n)
    X = mc.sample_sphere(n, d, rng)
    X[1] = -0.6 * X[0] + 0.8 * X[1] / np.linalg.norm(X[1])  # a negative correlation: the orthants are unequal
    X[1] /= np.linalg.norm(X[1])
    y = np.linspace(-0.5, 0.7, n)
    net = mc.MLP(d, 1, 0, activation="relu", output_activation=True, init=init)
    sample = mc.sample_confusion(net, n, trials, labels="tanh", loss="square", seed=seed, data=(X, y))
    return X, sample


def test_the_orthant_reference_agrees_with_itself():
    """Sheppard's N = 3 closed form against scipy's integration, so the reference is not one formula alone."""
    rng = np.random.default_rng(7)
    X = mc.sample_sphere(3, 4, rng)
    gram = X @ X.T
    correlation = gram / np.sqrt(np.outer(np.diagonal(gram), np.diagonal(gram)))
    genz = stats.multivariate_normal.cdf(np.zeros(3), np.zeros(3), correlation, abseps=1e-10, releps=1e-10)
    assert _orthant(correlation) == pytest.approx(float(genz), abs=1e-7)


@pytest.mark.parametrize("n, init, seed", [(4, "gaussian", 0), (5, "gaussian", 0), (4, "orthogonal", 1)])
def test_reported_undefined_fraction_matches_the_gaussian_orthant_probability(n, init, seed):
    """The fraction of trials whose minimum cosine is undefined, as ``sample_confusion`` reports it, against the
    exact probability given the data; the pairs left out against their exact mean.  (N = 3 would be a weak
    check: Pr[at most one a_i > 0] = Pr[at least two > 0] by a -> -a, so it is 1/2 whatever the data.)"""
    X, sample = _glm_sample(n, init, trials=4000, seed=seed)
    exact, exact_pairs = _exact_undefined(X)
    report = mc.undefined_cosines(sample, confidence=0.999)
    assert report.trials == 4000 and report.n_samples == n and report.pairs == 4000 * n * (n - 1) // 2
    assert report.undefined_trials == int(np.isnan(sample.stats["min_cosine"]).sum())
    assert report.lower <= exact <= report.upper, (report.fraction, exact)
    assert 0.1 < exact < 0.9  # a fraction the test can see, not a corner case
    assert sample.meta["undefined_cosines"]["undefined_trials"] == report.undefined_trials
    assert sample.meta["undefined_cosines"]["undefined_pairs"] == report.undefined_pairs
    per_trial = sample.stats["undefined_cosine_pairs"]
    assert abs(per_trial.mean() - exact_pairs) < 4 * per_trial.std(ddof=1) / np.sqrt(per_trial.size)
    assert report.noticeable


def test_conditional_and_unconditional_tails_relate_exactly_on_the_same_draws():
    """Same k; n = T against T - u; P_uncond = P_cond (1 - u / T); and the unconditional Pr[min cos < 0] is
    Pr[eta* > 0] (Definition 2.1: some pair has a negative inner product), which the conditional one is not."""
    _, sample = _glm_sample(3, "gaussian", trials=2000, seed=4)
    taus = [-0.3, 0.0, 0.25, 0.5, 0.9]
    unconditional = mc.cosine_tail(sample, taus)  # the default
    conditional = mc.cosine_tail(sample, taus, conditional=True)
    u = int(np.isnan(sample.stats["min_cosine"]).sum())
    assert u > 0
    assert (unconditional["k"] == conditional["k"]).all()
    assert (unconditional["n"] == 2000).all() and (conditional["n"] == 2000 - u).all()
    assert (unconditional["undefined"] == u).all() and (conditional["undefined"] == u).all()
    assert not unconditional["conditional"].any() and conditional["conditional"].all()
    np.testing.assert_allclose(unconditional["p"], conditional["p"] * (1 - u / 2000), rtol=1e-14, atol=0)
    eta = mc.confusion_tail(sample, [0.0])
    at_zero = unconditional[unconditional["tau"] == 0.0]
    assert int(at_zero["k"].iloc[0]) == int(eta["k"].iloc[0]) and float(at_zero["p"].iloc[0]) == float(eta["p"].iloc[0])
    assert float(conditional[conditional["tau"] == 0.0]["p"].iloc[0]) > float(eta["p"].iloc[0])


def test_exceedance_rules_for_undefined_values():
    values = np.array([-0.9, -0.3, 0.1, np.nan, np.nan])
    left_out = mc.exceedance(values, [-0.25], above=False)
    counted = mc.exceedance(values, [-0.25], above=False, undefined="not_in_event")
    assert left_out[["k", "n", "undefined"]].iloc[0].tolist() == [2, 3, 2]
    assert counted[["k", "n", "undefined"]].iloc[0].tolist() == [2, 5, 2]
    assert mc.exceedance(np.full(3, np.nan), [0.0], undefined="not_in_event")["n"].tolist() == [3]
    with pytest.raises(ValueError, match="undefined"):
        mc.exceedance(values, [0.0], undefined="drop")
    with pytest.raises(TypeError, match="conditional"):
        mc.cosine_tail(values, [0.5], conditional="yes")


def test_undefined_cosine_pairs_count_pairs_with_a_zero_gradient():
    g = np.random.default_rng(0).standard_normal((6, 4))
    g[[1, 4]] = 0.0
    assert mc.undefined_cosine_pairs(g @ g.T) == 15 - 6  # C(6, 2) - C(4, 2)
    stats_ = mc.gram_statistics(g @ g.T)
    assert stats_["undefined_cosine_pairs"] == 9 and np.isfinite(stats_["min_cosine"])
    g[[0, 2, 3]] = 0.0  # one non-zero gradient left: no pair is defined
    assert np.isnan(mc.min_cosine(g @ g.T)) and mc.undefined_cosine_pairs(g @ g.T) == 15


def test_eta_star_is_never_negative_zero():
    """A Gram whose smallest off-diagonal entry is 0 (a zero gradient) gave max(0, -0) = -0.0, printed '-0'."""
    G = np.diag([1.0, 0.0, 2.0])
    assert mc.eta_star(G) == 0.0 and not np.signbit(mc.eta_star(G))
    assert not np.any(np.signbit(mc.eta_star(np.zeros((4, 3, 3)))))


def test_tail_table_states_what_the_cosine_rows_are_conditional_on(tmp_path):
    spec = mc.SweepSpec.from_mapping({"width": 8, "depth": 1, "d": 4, "n_samples": 3, "trials": 200, "seed": 1})
    store = mc.run_sweep(spec, tmp_path / "store", backend="numpy", progress=False)
    frame = store.read_point(next(iter(store.done())))[0]
    u = int(frame["min_cosine"].isna().sum())
    assert u > 0  # relu at the output, the default
    table = mc.tail_table(store, etas=[0.0], taus=[0.0, 0.5])
    conditional = mc.tail_table(store, etas=[0.0], taus=[0.0, 0.5], conditional_cosine=True)
    cos, cos_c = (t[t["event"] == "min cos < -threshold"] for t in (table, conditional))
    assert (cos["n"] == 200).all() and (cos_c["n"] == 200 - u).all() and (cos["undefined"] == u).all()
    assert (cos["trials"] == 200).all() and (cos["pairs"] == 600).all()
    assert (cos["undefined_pairs"] == frame["undefined_cosine_pairs"].sum()).all()
    eta = table[table["event"] == "eta* > threshold"]
    assert (eta["undefined"] == 0).all() and eta["undefined_pairs"].isna().all()
    assert cos[cos["threshold"] == 0.0]["k"].iloc[0] == eta["k"].iloc[0]  # min cos < 0 iff eta* > 0


def _run(capsys, *args):
    """The command line, in this process as in test_cli_errors (``python -m montecarlo`` exits with ``main``'s
    return value): ``(exit code, stdout, stderr)``."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_prints_the_conditioning_the_counts_and_one_warning(tmp_path, capsys):
    out = tmp_path / "relu"
    code, stdout, stderr = _run(capsys, "sweep", "--width", "8", "--depth", "1", "--d", "4", "--n-samples", "3",
                                "--trials", "200", "--backend", "numpy", "--out", str(out))
    assert code == 0, stderr[-2000:]
    assert "undefined trials" in stdout and "undefined pairs" in stdout
    assert "unconditional (a trial with an undefined minimum cosine counts as not confused" in stdout
    assert "-0 " not in stdout and "eta* > 0 " in stdout  # the pooled median of eta* here is 0
    warnings = [line for line in stderr.splitlines() if line.startswith("warning: the minimum cosine")]
    assert len(warnings) == 1 and "trials (" in warnings[0] and "%" in warnings[0]
    store = mc.ResultsStore.open_existing(out)
    frame = store.read_point(next(iter(store.done())))[0]
    u = int(frame["min_cosine"].isna().sum())
    assert f"{u}/200" in stdout and f"{u}/200 trials ({u / 200:.1%}" in warnings[0]
    code, stdout, stderr = _run(capsys, "show", str(out), "--tau", "0", "0.5", "--conditional-cosine")
    assert code == 0, stderr[-2000:]
    assert "min cos < 0 " in stdout and "min cos < -0 " not in stdout
    assert f"/{200 - u} " in stdout and "conditional on a defined minimum cosine" in stdout
    assert sum(line.startswith("warning: the minimum cosine") for line in stderr.splitlines()) == 1


def test_cli_says_nothing_when_every_cosine_is_defined(tmp_path, capsys):
    code, stdout, stderr = _run(capsys, "sweep", "--width", "8", "--depth", "1", "--d", "4", "--n-samples", "3",
                                "--trials", "16", "--activation", "tanh", "--backend", "numpy", "--out",
                                str(tmp_path / "tanh"))
    assert code == 0, stderr[-2000:]
    assert "warning: the minimum cosine" not in stderr
    assert "0/16" in stdout  # the counts are still printed: zero undefined trials


def test_f5_rows_state_the_conditioning_where_it_is_not_zero():
    import pandas as pd

    from paper_figures.figures import f05_normalised_confusion as f5

    part = pd.DataFrame({"activation": ["relu", "relu", "tanh", "tanh"], "trials": 400,
                         "min_cosine_undefined": [20, 60, 0, 0], "undefined_cosine_pairs": [30000, 33000, 0, 0],
                         "cosine_pairs": 48000})
    text = f5.conditioning(part)
    assert text.startswith("relu: conditional on non-zero gradients") and "tanh" not in text
    assert "80/800 trials" in text and "5.0%-15.0% per point" in text and "63000/96000 pairs" in text
    assert f5.conditioning(part[part["activation"] == "tanh"]) == ""
