"""The Statistic table: one declaration per statistic, read by gram_statistics, sample_confusion and rare_tail.

A toy statistic registered here (and removed after) is used by ``sample_confusion`` and by ``rare_tail``
without any other change; every declared statistic is checked against a direct computation from its
definition on random Grams.
"""

from __future__ import annotations

import numpy as np
import pytest

import montecarlo as mc


@pytest.fixture
def toy():
    """``max_minus_cosine`` = -(minimum pairwise cosine), declared once and removed again."""
    stat = mc.register_statistic(mc.Statistic(
        "max_minus_cosine", lambda G, blocks: -mc.min_cosine(G), "minus the minimum pairwise cosine"))
    yield stat
    del mc.STATISTICS[stat.name]


def random_grams(T=6, L=3, N=5, P=7, seed=0):
    J = np.random.default_rng(seed).standard_normal((T, L, N, P))
    blocks = J @ J.transpose(0, 1, 3, 2)
    return blocks.sum(1), blocks, J


def test_a_toy_statistic_is_one_declaration_used_by_sample_confusion_and_rare_tail(toy):
    net = mc.MLP(6, 8, 2, activation="tanh")
    sample = mc.sample_confusion(net, 4, 64, labels="random_sign", loss="square", seed=1)
    np.testing.assert_array_equal(sample.stats["max_minus_cosine"], -sample.stats["min_cosine"])
    # Pr[-min cos > 0.9] and Pr[min cos < -0.9] are the same event: with the same seeds subset simulation
    # moves through the same internal values (both orientations make the event S = -min cos > 0.9).
    kwargs = dict(labels="random_sign", loss="square", seed=4, population=100, repeats=2)
    toy_tail = mc.rare_tail(net, 4, statistic="max_minus_cosine", threshold=0.9, **kwargs)
    builtin = mc.rare_tail(net, 4, statistic="min_cosine", direction="lower", threshold=-0.9, **kwargs)
    assert toy_tail.estimate == builtin.estimate and toy_tail.config["statistic"] == "max_minus_cosine"
    assert toy_tail.branch_shares is None  # no pair attains it: nothing tracked


def test_every_declared_statistic_against_its_definition():
    G, blocks, J = random_grams()
    stats = mc.gram_statistics(G, blocks, quantiles=(0.1, 0.5))
    i, j = np.triu_indices(5, 1)
    g = J.transpose(0, 2, 1, 3).reshape(6, 5, 21)  # each example's whole gradient: its layers side by side
    norms = np.linalg.norm(g, axis=-1)
    cos = np.einsum("tip,tip->ti", g[:, i], g[:, j]) / (norms[:, i] * norms[:, j])
    direct = {
        "eta_star": np.maximum(0, -G[:, i, j].min(1)), "min_cosine": cos.min(1),
        "fraction_negative": (G[:, i, j] < 0).mean(1), "m_coherence": G.sum((1, 2)) / np.trace(G, axis1=1, axis2=2),
        "grad_norm_sq_max": (norms**2).max(1), "fisher_lambda_max": np.linalg.eigvalsh(G / 5)[:, -1],
        "cosine_q0.5": np.median(cos, 1), "eta_star_layer2": np.maximum(0, -blocks[:, 2][:, i, j].min(1)),
    }
    for name, values in direct.items():
        np.testing.assert_allclose(stats[name], values, rtol=1e-12, err_msg=name)
    assert {"min_cosine_layer0", "min_cosine_layer2", "cosine_q0.1", "undefined_cosine_pairs"} <= set(stats)


def test_names_resolve_to_one_statistic_and_bad_names_are_refused():
    from montecarlo.testing import resolve_statistic

    G, blocks, _ = random_grams()
    assert np.array_equal(resolve_statistic("min_cosine_layer1", 3).values(G, blocks), mc.min_cosine(blocks[:, 1]))
    assert np.array_equal(resolve_statistic("cosine_q0.25", 3).values(G, blocks),
                          mc.cosine_quantiles(G, (0.25,))[:, 0])
    for bad in ("min_cosine_layer3", "cosine_q1.5", "eta_star_layer01", "nonsense", 3.0):
        with pytest.raises(ValueError, match="argument 'statistic' must be one of"):
            resolve_statistic(bad, 3)
    with pytest.raises(ValueError, match="is taken"):
        mc.register_statistic(mc.Statistic("eta_star", lambda G, blocks: G[..., 0, 0]))
