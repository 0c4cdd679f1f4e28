"""Results that read well: compact reprs, ``summary()`` tables checked against direct computations, and
``RareTail.threshold_at`` against an exact Gaussian quantile."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import montecarlo as mc


@pytest.fixture(scope="module")
def sample():
    return mc.sample_confusion(mc.MLP(6, 16, 2, activation="tanh"), 4, 1000, labels="random_sign", loss="square",
                               seed=0)


def test_a_sample_prints_in_one_line_and_summarises_each_statistic(sample):
    assert len(repr(sample).splitlines()) == 1 and len(repr(sample)) < 300 and "1000 trials" in repr(sample)
    table = sample.summary()
    eta = sample.stats["eta_star"]
    row = table.loc["eta_star"]
    assert row["trials"] == 1000
    np.testing.assert_allclose([row["mean"], row["se"], row["median"], row["q95"]],
                               [eta.mean(), stats.sem(eta), np.median(eta), np.quantile(eta, 0.95)], rtol=1e-12)
    grams = mc.sample_grams(mc.MLP(6, 16, 2, activation="tanh"), 4, 1000, labels="random_sign", loss="square",
                            seed=0, per_layer=True)
    assert repr(grams) == "GramSample(G of shape (1000, 4, 4), blocks 3 per trial, seed 0)"


def test_threshold_at_inverts_the_tail_curve_of_an_exact_gaussian_tail():
    """Pr[xi_0 > s] = Phi-bar(s): the threshold read at p has a true tail within a factor 1.5 of p."""
    tail = mc.rare_tail_of(lambda xi: xi[:, 0], 2, threshold=5.0, seed=1, population=1000, repeats=10)
    for p in (1e-2, 1e-4, 1e-6):
        s = tail.threshold_at(p)
        assert p / 1.5 < stats.norm.sf(s) < 1.5 * p, (p, s, stats.norm.isf(p))
    grid = tail.tail.iloc[40]  # on the curve itself it is the curve's own point
    assert tail.threshold_at(grid["probability"]) == pytest.approx(grid["s"], rel=1e-9)
    with pytest.raises(ValueError, match="argument 'probability' = 1e-12 lies outside"):
        tail.threshold_at(1e-12)
    assert len(repr(tail).splitlines()) == 1 and "Pr[S > 5] = " in repr(tail)
    table = tail.summary()
    np.testing.assert_allclose(table["estimate"].iloc[:-1].to_numpy(), tail.estimates)
    assert table.loc["mean", "estimate"] == tail.estimate and table.loc["mean", "upper"] == tail.interval[1]


def test_a_store_prints_its_points_by_status(tmp_path):
    spec = mc.SweepSpec.from_mapping(dict(width=[8, 16], depth=1, d=4, n_samples=3, trials=16))
    store = mc.run_sweep(spec, tmp_path / "s", progress=False)
    assert store.summary()["status"].tolist() == ["done", "done"]
    (next((tmp_path / "s" / "points").glob("*.parquet"))).write_bytes(b"damaged")
    reopened = mc.ResultsStore.open_existing(tmp_path / "s")
    assert sorted(reopened.summary()["status"]) == ["corrupt", "done"]
    assert "sweep: 1 done, 1 corrupt" in repr(reopened) or "sweep: 1 corrupt, 1 done" in repr(reopened)


def test_the_tail_curve_is_fine_in_its_deepest_decades():
    """S = 1 - exp(-|xi_0|): Pr[S > 1 - e^-t] = 2 Phi-bar(t) crowds its last decades against 1.  threshold_at(1e-10)
    must still land where the exact tail is 1e-10 (within 1.5x); a grid even in s put one point in them."""
    tail = mc.rare_tail_of(lambda xi: 1 - np.exp(-np.abs(xi[:, 0])), 2, threshold=1 - np.exp(-7.0), seed=3,
                           population=1000, repeats=10)
    for p in (1e-6, 1e-10):
        s = tail.threshold_at(p)
        exact = 2 * stats.norm.sf(-np.log1p(-s))
        assert p / 1.5 < exact < 1.5 * p, (p, s, exact)
