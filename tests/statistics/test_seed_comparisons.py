"""montecarlo.compare_seeds: t intervals on the difference of a per-seed statistic, against scipy and by coverage."""

import numpy as np
import pytest
from scipy import stats

import montecarlo as mc


def test_paired_interval_by_hand_and_against_scipy():
    a = {0: 0.10, 1: 0.30, 2: 0.20, 3: 0.25, 4: 0.15}
    b = {0: 0.20, 1: 0.45, 2: 0.25, 3: 0.40, 4: 0.20}  # differences 0.10, 0.15, 0.05, 0.15, 0.05
    c = mc.compare_seeds(a, b, paired=True, expect="higher")
    d = np.array([0.10, 0.15, 0.05, 0.15, 0.05])
    se = d.std(ddof=1) / np.sqrt(5)
    t = stats.t.ppf(0.975, 4)  # 2.776...
    assert c.difference == pytest.approx(0.10, abs=1e-15) and c.se == pytest.approx(se, rel=1e-12)
    assert (c.lo, c.hi) == pytest.approx((0.10 - t * se, 0.10 + t * se), rel=1e-12)
    reference = stats.ttest_rel(list(b.values()), list(a.values())).confidence_interval(0.95)
    assert (c.lo, c.hi) == pytest.approx((reference.low, reference.high), rel=1e-12)
    assert c.method == "paired t" and c.df == 4 and c.n_a == c.n_b == 5
    assert c.direction == "higher" and c.verdict == "reproduced"
    assert mc.compare_seeds(a, b, paired=True, expect="lower").verdict == "contradicted"
    assert c.describe().startswith("+0.100 [") and "paired t over 5 seeds paired, 95%" in c.describe()


def test_pairs_are_matched_by_seed_not_by_position():
    a = {3: 1.0, 1: 2.0, 2: 4.0, 9: 100.0}  # seed 9 has no partner: left out
    b = {1: 2.5, 2: 4.5, 3: 1.5}
    c = mc.compare_seeds(a, b, paired=True)
    assert c.n_a == 3 and c.difference == pytest.approx(0.5) and c.se == 0 and (c.lo, c.hi) == (0.5, 0.5)
    assert c.verdict is None and c.direction == "higher"


def test_two_sample_is_welch_against_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.0, 0.1, 5), rng.normal(0.3, 0.4, 7)
    c = mc.compare_seeds(a, b, paired=False, expect="higher", confidence=0.9)
    reference = stats.ttest_ind(b, a, equal_var=False)
    low, high = reference.confidence_interval(0.9)
    assert (c.lo, c.hi) == pytest.approx((low, high), rel=1e-12)
    assert c.df == pytest.approx(reference.df, rel=1e-12)
    va, vb = a.var(ddof=1) / 5, b.var(ddof=1) / 7  # Welch-Satterthwaite by hand
    assert c.df == pytest.approx((va + vb) ** 2 / (va**2 / 4 + vb**2 / 6), rel=1e-12)
    assert c.difference == pytest.approx(b.mean() - a.mean(), rel=1e-12)
    assert c.method == "Welch t" and (c.n_a, c.n_b) == (5, 7) and "5 and 7 seeds" in c.describe()


@pytest.mark.parametrize("paired", [True, False])
def test_coverage_of_a_known_effect_is_near_95_percent(paired):
    """4000 synthetic experiments of 5 seeds with a true difference 0.2: the interval covers 0.2 in 95% +- 1.1%
    (3 binomial standard deviations) of them.  Paired: a seed effect shared by both runs of a seed (the same
    initial weights), much larger than the noise; two-sample: unequal variances (Welch's case)."""
    rng = np.random.default_rng(2)
    replicates, seeds, effect = 4000, 5, 0.2
    covered = 0
    for _ in range(replicates):
        if paired:
            shared = rng.normal(0, 1.0, seeds)
            a, b = shared + rng.normal(0, 0.1, seeds), shared + effect + rng.normal(0, 0.1, seeds)
        else:
            a, b = rng.normal(0, 0.1, seeds), effect + rng.normal(0, 0.3, seeds)
        c = mc.compare_seeds(a, b, paired=paired)
        covered += c.lo <= effect <= c.hi
    tolerance = 3 * np.sqrt(0.95 * 0.05 / replicates)
    assert abs(covered / replicates - 0.95) < tolerance, covered / replicates


def test_pairing_where_the_seed_effect_is_shared_resolves_what_two_samples_cannot():
    rng = np.random.default_rng(5)
    shared = rng.normal(0, 1.0, 5)
    a, b = shared + rng.normal(0, 0.05, 5), shared + 0.3 + rng.normal(0, 0.05, 5)
    assert mc.compare_seeds(a, b, paired=True, expect="higher").verdict == "reproduced"
    assert mc.compare_seeds(a, b, paired=False, expect="higher").verdict == "not resolved"


def test_no_effect_is_not_resolved():
    """Both configurations from one law: the verdict is "not resolved" in about 95% of experiments (a false verdict
    either way in 5%), and for a fixed draw whose interval holds 0."""
    rng = np.random.default_rng(3)
    verdicts = [mc.compare_seeds(rng.normal(0, 0.2, 5), rng.normal(0, 0.2, 5), paired=False, expect="lower").verdict
                for _ in range(2000)]
    share = verdicts.count("not resolved") / len(verdicts)
    assert abs(share - 0.95) < 3 * np.sqrt(0.95 * 0.05 / 2000), share
    assert verdicts.count("reproduced") > 0 and verdicts.count("contradicted") > 0  # both errors, about 2.5% each
    a, b = [0.1, 0.3, 0.2, 0.4, 0.25], [0.2, 0.15, 0.35, 0.3, 0.2]
    c = mc.compare_seeds(a, b, paired=False, expect="higher")
    assert c.lo < 0 < c.hi and c.verdict == "not resolved" and c.direction == "not resolved"


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(a=[1.0], b=[1.0, 2.0], paired=False), ValueError, "argument 'a' must hold at least 2 seeds"),
    (dict(a={0: 1.0, 1: 2.0}, b={1: 1.0, 2: 2.0}, paired=True), ValueError, "share at least 2 seeds"),
    (dict(a=[1.0, np.nan], b=[1.0, 2.0], paired=False), ValueError, "argument 'a' must hold finite values"),
    (dict(a=[1.0, 2.0], b=["x", 2.0], paired=False), TypeError, "argument 'b' must hold real numbers"),
    (dict(a=[[1.0, 2.0]], b=[1.0, 2.0], paired=False), ValueError, "argument 'a' must be one-dimensional"),
    (dict(a="12", b=[1.0, 2.0], paired=False), TypeError, "argument 'a' must be a sequence"),
    (dict(a=[1.0, 2.0], b=[1.0, 2.0], paired="yes"), TypeError, "argument 'paired'"),
    (dict(a=[1.0, 2.0], b=[1.0, 2.0], paired=False, expect="up"), ValueError, "argument 'expect'"),
    (dict(a=[1.0, 2.0], b=[1.0, 2.0], paired=False, confidence=95), ValueError, "argument 'confidence'"),
])
def test_bad_input_is_refused_naming_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        mc.compare_seeds(**kwargs)
