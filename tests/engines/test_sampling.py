"""sample_confusion: every trial a pure function of (configuration, seed, trial), checked against its own draws and exact laws."""

import numba
import numpy as np
import pytest
from scipy import stats

import montecarlo as mc
import theory
from montecarlo.testing import NormalSource, block_seed

NET = mc.MLP(6, 12, 2, activation="tanh", bias=True, bias_std=0.3)


def _sample(**kwargs):
    args = dict(labels="tanh", loss="square", seed=11) | kwargs
    return mc.sample_confusion(NET, 7, args.pop("trials", 27), **args)


def assert_same(a, b, rtol=0.0):
    assert a.stats.keys() == b.stats.keys()
    for key in a.stats:
        if rtol == 0:
            np.testing.assert_array_equal(a.stats[key], b.stats[key], err_msg=key)
        else:
            np.testing.assert_allclose(a.stats[key], b.stats[key], rtol=rtol, atol=1e-13, err_msg=key)


def test_each_trial_is_the_gram_of_its_documented_draws():
    """Trial t = trial t % 8 of block t // 8, drawn from SeedSequence(seed, spawn_key=(block,)): weights, data, labels."""
    sample = _sample(trials=19, method="dense")
    assert sample.meta["method"].startswith("dense")
    for t in (0, 9, 18):
        source = NormalSource.numpy(block_seed(11, t // 8))
        params = NET.init(source, batch=8)
        X = mc.sample_sphere(7, 6, source, batch=8)
        y = mc.TanhTeacher()(X, source)
        j = t % 8
        one = mc.Parameters(tuple(w[j] for w in params.weights), tuple(b[j] for b in params.biases))
        G, blocks = mc.gradient_gram(NET, one, X[j], y[j], per_layer=True, backend="numpy")
        expected = mc.gram_statistics(G, blocks)
        for key, value in expected.items():
            assert sample.stats[key][t] == pytest.approx(value, rel=1e-12, abs=1e-14, nan_ok=True), key


def test_lazy_trials_are_the_gram_of_their_documented_draws():
    """With method='lazy' a trial draws lazy layers (gram/lazy.py) in place of wide weights, then data and labels."""
    from montecarlo.testing import LayerDraw, draw_layers, gram_blocks, lazy_layers

    modes = lazy_layers(NET, 7)
    assert modes == (0, 1, 0)  # 12 x 6 (fan-in 6 <= N = 7): dense; 12 x 12: lazy; 1 x 12: dense
    sample = _sample(trials=11, method="lazy")
    assert sample.meta["method"] == "lazy: layers [1]; dense: layers [0, 2]"
    source = NormalSource.numpy(block_seed(11, 1))
    layers, biases = draw_layers(NET, 7, source, (8,), modes)
    X = mc.sample_sphere(7, 6, source, batch=8)
    y = mc.TanhTeacher()(X, source)
    j = 10 % 8
    one = [LayerDraw(l.mode, l.weight[j], None if l.g1 is None else l.g1[j], None if l.g2 is None else l.g2[j],
                     l.scale) for l in layers]
    blocks = np.stack(gram_blocks(np, NET, one, [b[j] for b in biases], X[j], y[j], "square"))
    expected = mc.gram_statistics(blocks.sum(0), blocks)
    for key, value in expected.items():
        assert sample.stats[key][10] == pytest.approx(value, rel=1e-11, abs=1e-14, nan_ok=True), key


def test_identical_whatever_the_batch_size():
    reference = _sample()
    for batch_size in (1, 8, 24, 1000):
        assert_same(_sample(batch_size=batch_size), reference)


def test_identical_whatever_the_thread_count():
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _sample(trials=40)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = _sample(trials=40)
    finally:
        numba.set_num_threads(before)
    assert_same(one, many)


def test_fewer_trials_are_a_prefix_of_more():
    short, long = _sample(trials=13), _sample(trials=40)
    for key in short.stats:
        np.testing.assert_array_equal(short.stats[key], long.stats[key][:13])


def test_backends_fed_the_same_weights_agree_to_rounding():
    reference = _sample(backend="numpy")
    assert_same(_sample(backend="numba"), reference, rtol=1e-11)
    assert_same(_sample(backend="torch"), reference, rtol=1e-11)


def test_torch_random_source_agrees_in_distribution():
    """torch's own generator (the CUDA path; here on the CPU) against numpy's: two-sample KS and Anderson-Darling."""
    net = mc.MLP(8, 16, 2, activation="tanh")
    args = dict(labels="tanh", loss="square")
    numpy_draws = mc.sample_confusion(net, 8, 1200, seed=1, **args)
    torch_draws = mc.sample_confusion(net, 8, 1200, seed=2, backend="torch", random_source="torch", **args)
    assert torch_draws.meta["random_source"] == "torch"
    for key in ("eta_star", "min_cosine", "grad_norm_sq_mean"):
        a, b = numpy_draws.stats[key], torch_draws.stats[key]
        assert stats.ks_2samp(a, b).pvalue > 1e-3, key
        assert stats.anderson_ksamp([a, b]).pvalue > 1e-3, key
    # and the torch stream differs from numpy's (so the test above is not trivially comparing equal arrays)
    assert not np.array_equal(mc.sample_confusion(net, 8, 16, seed=1, **args).stats["eta_star"],
                              mc.sample_confusion(net, 8, 16, seed=1, backend="torch", random_source="torch",
                                                  **args).stats["eta_star"])


def test_glm_cosine_follows_the_exact_sphere_law():
    """Depth 0, linear activation, N = 2: cos(grad f_1, grad f_2) = sign(r_1 r_2) <x_1, x_2> exactly,
    so |min cosine| has the law of |<x, y>| on S^{d-1}: (1 + t)/2 ~ Beta((d-1)/2, (d-1)/2) (theory)."""
    d = 9
    glm = mc.MLP(d, 1, 0, activation="linear")
    sample = mc.sample_confusion(glm, 2, 3000, labels="linear", loss="square", seed=5)
    absolute = np.abs(sample.stats["min_cosine"])
    cdf = lambda s: 1 - theory.sphere_inner_product_tail.evaluate(d=d, epsilon=np.clip(s, 1e-12, 1 - 1e-12))  # noqa: E731
    assert stats.kstest(absolute, cdf).pvalue > 1e-3
    # E <x, y>^2 = 1/d exactly (theory.sphere_inner_product_variance)
    second = absolute**2
    assert abs(second.mean() - 1 / d) < 4 * second.std() / np.sqrt(second.size)


def test_frame_has_one_row_per_trial_and_the_configuration():
    sample = _sample(trials=10)
    frame = sample.to_frame()
    assert len(frame) == 10 and list(frame["trial"]) == list(range(10))
    assert {"eta_star", "min_cosine", "fraction_negative", "grad_norm_sq_mean", "eta_star_layer2",
            "cosine_q0.5"} <= set(frame.columns)
    assert frame.attrs["config"]["width"] == 12 and frame.attrs["config"]["labels"] == "tanh"
    assert frame.attrs["meta"]["versions"]["numpy"] == np.__version__


@pytest.mark.parametrize("kwargs, message", [
    (dict(trials=0), r"argument 'trials' must be an integer >= 1, got 0"),
    (dict(seed=-1), r"argument 'seed' must be a non-negative integer"),
    (dict(labels="xor"), r"argument 'labels' must be one of"),
    (dict(loss="hinge"), r"argument 'loss' must be one of"),
    (dict(random_source="torch", backend="numba"), r"random_source='torch' needs backend='torch'"),
    (dict(random_source="jax"), r"argument 'random_source' must be one of 'numpy', 'torch'"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _sample(**kwargs)
    with pytest.raises(ValueError, match=r"argument 'n_samples' must be an integer >= 2, got 1"):
        mc.sample_confusion(NET, 1, 3, labels="tanh", loss="square", seed=0)


def test_fixed_data_is_shared_by_every_seed_block_of_a_batch():
    """With data=(X, y) every trial uses X itself: the Grams of 20 trials (three seed blocks in one batch) are the
    exact Grams of their own networks on X (the seam once stacked X per block: 4 rows became 12)."""
    net = mc.MLP(16, 64, 1, activation="tanh")
    X, y = mc.sample_sphere(4, 16, 1), np.linspace(-1, 1, 4)
    for backend in ("numpy", "numba"):
        sample = mc.sample_grams(net, 4, 20, labels="tanh", loss="square", seed=1, data=(X, y), backend=backend,
                                 method="dense")
        assert sample.G.shape == (20, 4, 4)
        trial = mc.MLPTrial(net, 4, labels="tanh", loss="square", method="dense", data=(X, y))
        draw = trial.draw(NormalSource.numpy(block_seed(1, 2)), 8)  # block 2 holds trials 16..23
        weights = [layer.weight for layer in draw.network[0]]
        expected = mc.gradient_gram(net, weights, X, y, loss="square", backend="numpy")
        np.testing.assert_allclose(sample.G[16:20], expected[:4], rtol=1e-10)
