"""Statistics of a Gram against direct computation from explicit gradient vectors."""

import numpy as np
import pytest

import montecarlo as mc


def _gradients(n=6, p=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, p))


def test_statistics_match_explicit_vectors():
    g = _gradients()
    g[2] = 0.0  # one vanishing gradient: its cosines are undefined and left out
    G = g @ g.T
    cos = [
        g[i] @ g[j] / (np.linalg.norm(g[i]) * np.linalg.norm(g[j]))
        for i in range(6) for j in range(i + 1, 6) if i != 2 and j != 2
    ]
    inner = [g[i] @ g[j] for i in range(6) for j in range(i + 1, 6)]
    stats = mc.gram_statistics(G, quantiles=(0.0, 0.5, 1.0))
    assert stats["eta_star"] == pytest.approx(max(0.0, -min(inner)), rel=1e-12)
    assert stats["min_cosine"] == pytest.approx(min(cos), rel=1e-12)
    assert stats["cosine_q0"] == pytest.approx(min(cos), rel=1e-12)
    assert stats["cosine_q0.5"] == pytest.approx(np.median(cos), rel=1e-12)
    assert stats["cosine_q1"] == pytest.approx(max(cos), rel=1e-12)
    assert stats["fraction_negative"] == pytest.approx(np.mean(np.array(inner) < 0))
    assert stats["fraction_zero_gradient"] == pytest.approx(1 / 6)
    total = g.sum(axis=0)
    assert stats["m_coherence"] == pytest.approx(total @ total / np.sum(g**2), rel=1e-12)
    assert stats["gradient_diversity"] == pytest.approx(np.sum(g**2) / (total @ total), rel=1e-12)
    assert stats["grad_norm_sq_max"] == pytest.approx(np.max(np.sum(g**2, axis=1)), rel=1e-12)


def test_eta_star_is_zero_without_negative_pairs():
    g = np.abs(_gradients())
    assert mc.eta_star(g @ g.T) == 0.0
    assert mc.fraction_negative(g @ g.T) == 0.0


def test_m_coherence_limits():
    """Orthogonal equal-norm gradients give 1, identical gradients give N (Chatterjee & Zielinski)."""
    orthogonal = 3.0 * np.eye(5)
    identical = np.ones((5, 5)) * 2.0
    assert mc.m_coherence(orthogonal) == pytest.approx(1.0)
    assert mc.m_coherence(identical) == pytest.approx(5.0)
    assert mc.gradient_diversity(identical) == pytest.approx(0.2)


def test_fisher_spectrum_is_the_nonzero_spectrum_of_the_empirical_fisher():
    g = _gradients(n=5, p=9, seed=4)
    fisher = g.T @ g / 5  # P x P
    dense = np.sort(np.linalg.eigvalsh(fisher))[::-1][:5]
    np.testing.assert_allclose(mc.fisher_spectrum(g @ g.T), dense, rtol=1e-10, atol=1e-13)


def test_statistics_are_vectorised_over_trials():
    g = np.random.default_rng(1).standard_normal((3, 5, 4))
    G = g @ np.swapaxes(g, -1, -2)
    stacked = mc.gram_statistics(G)
    for t in range(3):
        single = mc.gram_statistics(G[t])
        for key, value in single.items():
            assert stacked[key][t] == pytest.approx(value, rel=1e-12, nan_ok=True), key


def test_per_layer_statistics_use_each_block():
    rng = np.random.default_rng(2)
    blocks = []
    for _ in range(3):
        g = rng.standard_normal((4, 3))
        blocks.append(g @ g.T)
    blocks = np.array(blocks)
    stats = mc.gram_statistics(blocks.sum(axis=0), blocks=blocks)
    for p in range(3):
        assert stats[f"eta_star_layer{p}"] == pytest.approx(mc.eta_star(blocks[p]))


def test_all_zero_gradients_give_nan_cosines_not_errors():
    stats = mc.gram_statistics(np.zeros((4, 4)))
    assert np.isnan(stats["min_cosine"]) and np.isnan(stats["m_coherence"])
    assert stats["eta_star"] == 0.0
