"""Tails: Clopper-Pearson coverage on known Bernoullis, exceedance counts, exponent fits, bound fits."""

import numpy as np
import pytest
from scipy import stats

import montecarlo as mc
import theory


@pytest.mark.parametrize("n", [5, 20, 100, 400])
def test_clopper_pearson_covers_at_least_nominally_exactly(n):
    """Exact coverage sum_k Bin(k; n, p) 1[p in CI(k)] >= 0.95 for every p on a fine grid."""
    k = np.arange(n + 1)
    lower, upper = mc.clopper_pearson(k, n)
    for p in np.linspace(0.001, 0.999, 499):
        covered = (lower <= p) & (p <= upper)
        assert stats.binom.pmf(k, n, p)[covered].sum() >= 0.95 - 1e-12


def test_exceedance_intervals_cover_a_known_bernoulli_by_simulation():
    """Uniform values, threshold 0.9: Pr[value > 0.9] = 0.1 exactly; CI through the whole pipeline."""
    rng = np.random.default_rng(0)
    hits = 0
    reps = 600
    for _ in range(reps):
        table = mc.exceedance(rng.uniform(size=60), [0.9])
        hits += bool(table["lower"].iloc[0] <= 0.1 <= table["upper"].iloc[0])
    # coverage >= 0.95 nominal; 600 replications give a standard error of about 0.009
    assert hits / reps >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / reps)


def test_confusion_and_cosine_tails_count_directly():
    eta = np.array([0.0, 0.2, 0.5, 0.9, np.nan])
    table = mc.confusion_tail(eta, [0.1, 0.5])
    assert table["k"].tolist() == [3, 1] and table["n"].tolist() == [4, 4]
    cosines = np.array([-0.9, -0.3, 0.1, np.nan])
    tail = mc.cosine_tail(cosines, [0.25, 0.5])
    assert tail["k"].tolist() == [2, 1] and tail["tau"].tolist() == [0.25, 0.5]
    lower, upper = mc.clopper_pearson(3, 4)
    assert table["lower"].iloc[0] == lower and table["upper"].iloc[0] == upper


def test_tail_exponent_fit_recovers_a_known_slope_with_honest_intervals():
    """Binomial counts from Pr = exp(a - b x): the 95% profile interval covers b at about the nominal rate."""
    rng = np.random.default_rng(1)
    x = np.array([16.0, 32.0, 48.0, 64.0, 96.0])
    a, b = 0.5, 0.08
    n = np.full(x.size, 2000)
    covered, slopes = 0, []
    reps = 150
    for _ in range(reps):
        k = rng.binomial(n, np.exp(a - b * x))
        fit = mc.fit_tail_exponent(x, k, n)
        slopes.append(fit.slope)
        covered += fit.lower <= b <= fit.upper
    assert covered / reps >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / reps)
    assert abs(np.mean(slopes) - b) < 3 * np.std(slopes) / np.sqrt(reps)


def test_tail_exponent_fit_with_zero_counts():
    x = np.array([1.0, 2.0, 3.0])
    fit = mc.fit_tail_exponent(x, [50, 3, 0], [100, 100, 100])
    assert 0 < fit.lower < fit.slope < fit.upper
    none = mc.fit_tail_exponent(x, [0, 0, 0], [100, 100, 100])
    assert np.isnan(none.slope) and none.upper == np.inf


def test_fit_bound_constant_maps_sweep_columns_to_theory_symbols():
    table = {"width": np.array([8.0, 16.0]), "depth": np.array([2, 2]), "d": 16, "n_samples": 8, "eta": 0.5,
             "kappa": 4.0}
    import pandas as pd

    frame = pd.DataFrame({k: np.broadcast_to(v, 2) for k, v in table.items()})
    frame["lower"] = [0.2, 0.01]
    fit = mc.fit_bound_constant(frame, theory.theorem_4_1_sphere, "c2", fixed={"c1": np.inf})
    direct = theory.fit_constant(theory.theorem_4_1_sphere, "c2", [0.2, 0.01], fixed={"c1": np.inf},
                                 width=[8.0, 16.0], beta=2, d=16, N=8, eta=0.5, kappa=4.0)
    assert fit.upper == direct.upper and fit.binding == direct.binding


def test_fit_bound_constant_reads_the_figures_columns_through_the_one_table():
    # Corollary 5.1 has the radius r and N: a table with the figures' names N and r (not a sweep's n_samples) is
    # read under theory's symbols, as a hand-written call of theory.fit_constant does
    import pandas as pd

    assert mc.THEORY_SYMBOLS["N"] == mc.THEORY_SYMBOLS["n_samples"] == "N"
    assert mc.THEORY_SYMBOLS["gain"] == "weight_norm" and mc.THEORY_SYMBOLS["depth"] == "beta"
    frame = pd.DataFrame({"N": [8, 8], "d": [16, 16], "eta": [0.3, 0.6], "depth": [2, 4], "r": [0.5, 0.5],
                          "lower": [0.2, 0.01]})
    fit = mc.fit_bound_constant(frame, theory.corollary_5_1, "c")
    direct = theory.fit_constant(theory.corollary_5_1, "c", [0.2, 0.01], N=[8, 8], d=[16, 16], eta=[0.3, 0.6],
                                 beta=[2, 4], r=[0.5, 0.5])
    assert fit.upper == direct.upper and fit.binding == direct.binding
