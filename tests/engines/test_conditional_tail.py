"""The conditional (exact-data) estimator of pair-cosine tails (``montecarlo.conditional_cosine_tail``).

Checked against what does not share its machinery:

* plain Monte Carlo of the gradient cosine (``sample_confusion`` / ``sample_grams``: the numba kernel, lazy
  sampling, the real labels and loss) near 1e-2, and the N-point union with its Bonferroni term for N = 3;
* subset simulation (``rare_tail``) near 1e-8;
* the exact Beta law: for orthogonal deep linear networks with +-1 labels the gradient cosine is exactly
  ``y1 y2 <x1, x2>`` (Theorem 6.1's identity), so every plane's probability is the Beta tail itself;
* the exact infinite-width floor (``theory.infinite_width_cosine_floor``) as the width grows;
* a refined grid (no crossing is missed) and the seeding rule (network i depends on nothing else).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

import montecarlo as mc
import theory
from montecarlo.testing import conditional

D = 16


def beta_tail(tau, d=D):
    """``Pr[<x1, x2> > tau]`` on S^{d-1}, written here from scipy's incomplete beta (not theory's helper)."""
    a = (d - 1) / 2
    return special.betainc(a, a, (1 - np.asarray(tau)) / 2)


def _within(estimate, se, reference, reference_se=0.0, z=3.5):
    return abs(estimate - reference) <= z * np.sqrt(se**2 + reference_se**2)


def test_pair_tail_agrees_with_plain_monte_carlo_near_1e_2():
    net = mc.MLP(D, 16, 2, "tanh", kappa=4.0)
    tau = 0.7
    c = mc.conditional_cosine_tail(net, 2, tau, networks=600, seed=1, grid=33)
    assert 3e-3 < c.pair[0] < 3e-2 and c.relative_se[0] < 0.1
    trials = 25000
    sample = mc.sample_confusion(net, 2, trials, labels="random_sign", loss="square", seed=2)
    hits = int(np.sum(sample.stats["min_cosine"] < -tau))
    p = hits / trials
    assert _within(c.pair[0], c.pair_se[0], p, np.sqrt(p * (1 - p) / trials)), (c.pair[0], p)
    # the two label branches: with tanh odd and no bias k(x1, -x2) = -k(x1, x2), so they are equal in law
    assert _within(c.branches[0, 0], c.pair_se[0], c.branches[0, 1], c.pair_se[0])


def test_union_and_bonferroni_bracket_plain_monte_carlo_for_three_points():
    net = mc.MLP(D, 16, 2, "tanh", kappa=4.0)
    tau = 0.5
    c = mc.conditional_cosine_tail(net, 3, tau, networks=2000, seed=3, grid=33)
    trials = 30000
    G = mc.sample_grams(net, 3, trials, labels="random_sign", loss="square", seed=4).G
    cos = G / np.sqrt(np.einsum("tii,tjj->tij", G, G))
    events = np.stack([cos[:, 0, 1] < -tau, cos[:, 0, 2] < -tau, cos[:, 1, 2] < -tau], axis=1)
    union = events.any(axis=1).mean()
    shared = (events[:, 0] & events[:, 1]).mean()  # E_01 and E_02 share point 0
    se = lambda q: np.sqrt(q * (1 - q) / trials)  # noqa: E731
    # the estimator's shared-point intersection E[q(W, x_i)^2] against the direct frequency
    assert c.intersections["n_shared"] == 3 and c.intersections["n_disjoint"] == 0
    assert _within(c.intersections["shared"][0], c.intersections["shared_se"][0], shared, se(shared))
    # Bonferroni: M p - S_2 <= Pr[union] <= M p (exact), here with Monte Carlo errors on both sides (M = 3)
    union_se = 3 * c.pair_se[0]
    bonferroni_se = np.hypot(union_se, 3 * c.intersections["shared_se"][0])
    assert c.bonferroni[0] - 3.5 * np.hypot(bonferroni_se, se(union)) <= union
    assert union <= c.union[0] + 3.5 * np.hypot(union_se, se(union))
    assert c.interval[0][0] <= union <= c.interval[1][0] + 3 * se(union)
    # the bracket is informative here: its width S_2 is a real correction, not rounding
    assert c.union[0] - c.bonferroni[0] > 0.05 * c.union[0]


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_orthogonal_deep_linear_network_gives_the_exact_beta_tail_on_every_plane(depth):
    # g = gamma u^T W_beta-1 ... W_0 x with Haar layers: cos(grad f_1, grad f_2) = y1 y2 <x1, x2> exactly, so
    # k(t) = t and p(W, x_1, v) = (Pr[t > tau] + Pr[t < -tau]) / 2 = Pr[t > tau] with no randomness left
    net = mc.MLP(D, D, depth, "linear", init="orthogonal", gamma=1 / np.sqrt(2 * depth))
    taus = np.array([0.3, 0.8, 0.95, 0.99])
    c = mc.conditional_cosine_tail(net, 2, taus, networks=6, seed=5)
    pair = c.per_plane.mean(axis=-1)
    np.testing.assert_allclose(pair, np.broadcast_to(beta_tail(taus), pair.shape), rtol=1e-9)
    np.testing.assert_allclose(c.per_plane[..., 0], c.per_plane[..., 1], rtol=1e-9)
    assert np.all(c.pair_se <= 1e-9 * c.pair)


def test_rare_pair_tail_agrees_with_subset_simulation_near_1e_8():
    net = mc.MLP(D, 16, 2, "tanh", kappa=4.0)
    tau = 0.97
    c = mc.conditional_cosine_tail(net, 2, tau, networks=3000, seed=6, grid=33)
    assert 3e-9 < c.pair[0] < 1e-7
    rare = mc.rare_tail(net, 2, statistic="min_cosine", threshold=-tau, direction="lower", labels="random_sign",
                        loss="square", seed=7, population=400, repeats=12)
    spread = rare.estimates.std(ddof=1) / np.sqrt(len(rare.estimates))
    assert _within(c.pair[0], c.pair_se[0], rare.estimate, spread, z=4.0), (c.pair[0], rare.estimate, spread)


def test_converges_to_the_infinite_width_floor():
    # depth 1: no width x width matrix, so wide networks are cheap.  The excess over the exact floor must be
    # clearly positive at width 64, fall with width about as 1/width (the next issue's law: C / width with C of
    # order 100 here; asked here only to fall at least half as fast) and be within 5% at width 4096
    tau = np.array([0.9, 0.95])
    floor = theory.infinite_width_cosine_floor(tau, 1, "tanh", D, kappa=4.0, n_samples=2).pair
    ratio, se = {}, {}
    for width, networks in ((64, 1000), (256, 300), (4096, 50)):
        c = mc.conditional_cosine_tail(mc.MLP(D, width, 1, "tanh", kappa=4.0), 2, tau, networks=networks, seed=8,
                                       grid=33)
        ratio[width], se[width] = c.pair / floor, c.pair_se / floor
    assert np.all(ratio[64] - 1 > 4 * se[64])
    assert np.all(ratio[256] < ratio[64])
    assert np.all(ratio[4096] - 1 < 2 * (ratio[256] - 1) * 256 / 4096 + 3 * se[4096])
    assert np.all(np.abs(ratio[4096] - 1) < 0.05)


def test_a_finer_grid_finds_the_same_crossings():
    net = mc.MLP(D, 8, 3, "tanh", kappa=1.0)  # narrow and deep: the roughest k(theta) of this family
    coarse = mc.conditional_cosine_tail(net, 2, [0.5, 0.9, 0.98], networks=40, seed=9, grid=33)
    fine = mc.conditional_cosine_tail(net, 2, [0.5, 0.9, 0.98], networks=40, seed=9, grid=513)
    np.testing.assert_allclose(coarse.per_plane, fine.per_plane, rtol=1e-8, atol=1e-300)


def test_network_i_depends_only_on_the_seed_and_i(monkeypatch, tmp_path):
    net = mc.MLP(D, 32, 2, "tanh", kappa=4.0)
    whole = mc.conditional_cosine_tail(net, 2, [0.8, 0.95], networks=12, seed=10)
    tail = mc.conditional_cosine_tail(net, 2, [0.8, 0.95], networks=5, seed=10, first=7)
    np.testing.assert_allclose(tail.per_plane, whole.per_plane[7:], rtol=1e-12)
    monkeypatch.setattr(conditional, "MEMORY_PER_BATCH", 1)  # one network per batch
    single = mc.conditional_cosine_tail(net, 2, [0.8, 0.95], networks=12, seed=10)
    np.testing.assert_allclose(single.per_plane, whole.per_plane, rtol=1e-12)
    other = mc.conditional_cosine_tail(net, 2, [0.8, 0.95], networks=12, seed=11)
    assert not np.allclose(other.per_plane, whole.per_plane)


def test_a_stored_run_resumes_from_its_blocks(monkeypatch, tmp_path):
    net = mc.MLP(D, 16, 2, "tanh", kappa=4.0)
    monkeypatch.setattr(conditional, "STORE_BLOCK", 4)
    first = mc.conditional_cosine_tail(net, 4, 0.9, networks=10, seed=12, out=tmp_path / "s")
    calls = []
    original = conditional.pair_probabilities
    monkeypatch.setattr(conditional, "pair_probabilities", lambda *a, **k: calls.append(k) or original(*a, **k))
    again = mc.conditional_cosine_tail(net, 4, 0.9, networks=10, seed=12, out=tmp_path / "s")
    assert calls == []  # every block read back
    np.testing.assert_array_equal(again.per_plane, first.per_plane)
    # a damaged block is named and recomputed, not used
    victim = next((tmp_path / "s" / "points").glob("networks-4-4.parquet"))
    victim.write_bytes(victim.read_bytes()[:-7] + b"garbage")
    third = mc.conditional_cosine_tail(net, 4, 0.9, networks=10, seed=12, out=tmp_path / "s")
    assert [k["first"] for k in calls] == [4]
    np.testing.assert_array_equal(third.per_plane, first.per_plane)


@pytest.mark.parametrize("net, kwargs, argument", [
    (mc.MLP(D, 16, 2, "tanh"), dict(labels="linear"), "labels"),
    (mc.MLP(D, 16, 2, "relu"), {}, "net"),  # a relu output: zero gradients
    (mc.MLP(D, 16, 2, "tanh", output_activation=False), {}, "loss"),  # unbounded output with the square loss
    (mc.MLP(D, 16, 2, "tanh", gamma=1.5), {}, "loss"),
    (mc.MLP(D, 16, 2, "linear", init="orthogonal", gain=1.2), {}, "loss"),
    (mc.MLP(D, 16, 0, "tanh"), {}, "net"),
    (mc.MLP(D, 16, 2, "tanh"), dict(taus=1.0), "taus"),
    (mc.MLP(D, 16, 2, "tanh"), dict(taus=[]), "taus"),
    (mc.MLP(D, 16, 2, "tanh"), dict(planes=5), "planes"),
    (mc.MLP(D, 16, 2, "tanh"), dict(networks=1), "networks"),
    (mc.MLP(D, 16, 2, "tanh"), dict(seed=-1), "seed"),
    (mc.MLP(D, 16, 2, "tanh"), dict(loss="output"), "loss"),  # l' = 1: sign(a_i) does not follow the label
    (mc.MLP(D, 16, 2, "linear", init="orthogonal", bias=True, bias_std=0.1), {}, "loss"),  # biases move |g|
])
def test_settings_where_it_is_not_exact_are_refused_naming_the_argument(net, kwargs, argument):
    arguments = dict(taus=0.9, seed=0, networks=4) | kwargs
    with pytest.raises(ValueError, match=f"'{argument}'"):
        mc.conditional_cosine_tail(net, 2, **arguments)


def test_the_logistic_loss_and_an_unbounded_output_are_exact():
    # l' = -y sigma(-y g) has the sign of -y whatever g is: the estimator must agree with plain Monte Carlo
    net = mc.MLP(D, 16, 1, "tanh", output_activation=False, gamma=3.0)
    c = mc.conditional_cosine_tail(net, 2, 0.6, loss="logistic", networks=800, seed=13, grid=33)
    assert any("logistic" in h for h in c.hypotheses)
    trials = 30000
    sample = mc.sample_confusion(net, 2, trials, labels="random_sign", loss="logistic", seed=14)
    p = float(np.mean(sample.stats["min_cosine"] < -0.6))
    assert _within(c.pair[0], c.pair_se[0], p, np.sqrt(p * (1 - p) / trials))


def test_exact_settings_at_the_edge_are_accepted():
    # zero biases and gamma gain^(beta + 1) = 1 keep |g| <= 1 (equality on a null set): still exact
    edge = mc.MLP(D, D, 2, "linear", init="orthogonal", bias=True, bias_std=0.0, gain=1.0, gamma=1.0)
    hypotheses = conditional.exactness_hypotheses(edge, "random_sign", "square")
    assert any("gamma gain^(beta+1) = 1 <= 1" in h for h in hypotheses)


def test_relu_hidden_layers_follow_the_unconditional_convention():
    # at width 3 a relu layer often has every unit dead: the gradient of z_beta vanishes, the cosine is undefined
    # and the pair counts as not confused -- as in plain Monte Carlo's unconditional tail (NaN is never < -tau)
    net = mc.MLP(D, 3, 2, "relu", output_activation=False)
    c = mc.conditional_cosine_tail(net, 2, 0.5, loss="logistic", networks=800, seed=15, grid=33)
    assert any("unconditional" in h for h in c.hypotheses)
    trials = 20000
    sample = mc.sample_confusion(net, 2, trials, labels="random_sign", loss="logistic", seed=16)
    undefined = float(np.mean(np.isnan(sample.stats["min_cosine"])))
    assert undefined > 0.1  # the convention matters here
    p = float(np.mean(sample.stats["min_cosine"] < -0.5))
    assert _within(c.pair[0], c.pair_se[0], p, np.sqrt(p * (1 - p) / trials))
