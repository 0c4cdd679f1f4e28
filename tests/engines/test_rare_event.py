"""Subset simulation of rare tails (``montecarlo.rare_tail_of``, generic in f; ``montecarlo.rare_tail``, of a trial)
against exact laws.

Exact laws used:

* two independent points uniform on ``S^{d-1}``: ``<x1, x2> = 2B - 1`` with
  ``B ~ Beta((d-1)/2, (d-1)/2)``, so ``Pr[<x1, x2> > t] = I_{(1-t)/2}(a, a)``;
* a linear limit state: ``Pr[sum(xi)/sqrt(D) > beta] = Phi(-beta)``;
* forward norms of a deep linear Gaussian network: ``|z_(beta-1)|^2/|z_0|^2`` is a product
  of ``L = beta - 1`` independent ``chi^2_n / n`` (``theory/_src/chi_square_products.py``),
  whose CDF is a Meijer G function (checked here against a quadrature);
* orthogonal deep linear networks with +-1 labels and square loss: the gradient
  cosine of two examples is exactly ``y1 y2 <x1, x2>`` (checked here with plain
  Monte Carlo), whose law is that of ``<x1, x2>``.

Tolerances: an estimate ``P`` with Au-Beck coefficient of variation ``delta`` is
held to ``|log(P / exact)| < 3 delta`` (about a 3-sigma band of the log-normal
approximation), after checking that ``delta`` is small enough for that to mean
something.  Every run has a fixed seed.

Categories and frozen populations: a rare event made of two disconnected
half-lines of ``xi_1`` (exact probabilities from the normal law), whose small
populations freeze into one part in some repeats, against the flags; the
categories' shares and cross moves are recomputed from the saved populations
themselves, not from the counts under test.
"""

from __future__ import annotations

import math
from dataclasses import replace

import mpmath
import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from montecarlo import MLP, ChainsStoppedMoving, PopulationCollapsed, rare_tail, rare_tail_of, sample_confusion
from montecarlo.testing import MIN_BRANCH_SHARE, SplittingState, SubsetSimulation, correlation_factor, population_flags

TARGETS = (1e-4, 1e-8, 1e-12)


# ---------------------------------------------------------------------------------------------- exact laws

def sphere_tail(t, d):
    """``Pr[<x1, x2> > t]`` for independent uniform points on ``S^{d-1}`` (the Beta law, symmetric form)."""
    a = (d - 1) / 2
    return special.betainc(a, a, (1 - t) / 2)


def sphere_threshold(p, d):
    """``t`` with ``Pr[<x1, x2> > t] = p``."""
    high = 0.5
    while sphere_tail(high, d) > p:  # a bracket whose tail is below p but not yet 0 (no underflow)
        high = (1 + high) / 2
    return optimize.brentq(lambda t: math.log(sphere_tail(t, d)) - math.log(p), 0.0, high, xtol=1e-15,
                           rtol=1e-15)


def cosine_of_halves(d):
    """``f(xi)``: the cosine between the two halves of ``xi`` (two points uniform on the sphere)."""
    def f(xi):
        a, b = xi[:, :d], xi[:, d:]
        return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return f


def chi_square_product_cdf(r, L, n):
    """``Pr[prod_{l<=L} X_l / n < r]``, ``X_l ~ chi^2_n`` iid: ``G^{L,1}_{1,L+1}(z | 1; a..a, 0) / Gamma(a)^L``.

    ``X / n = (2 / n) Y`` with ``Y ~ Gamma(a = n/2)``, and the CDF of a product
    of ``L`` iid ``Gamma(a)`` at ``z`` is the Meijer G function above.
    """
    a = mpmath.mpf(n) / 2
    z = mpmath.mpf(r) * a**L
    return float(mpmath.meijerg([[1], []], [[a] * L, [0]], z) / mpmath.gamma(a) ** L)


def chi_square_product_threshold(p, L, n):
    return math.exp(optimize.brentq(lambda u: math.log(chi_square_product_cdf(math.exp(u), L, n)) - math.log(p),
                                    -80.0, 0.0, xtol=1e-13))


def curve_at(result, s, column="probability"):
    """The tail curve (or its interval's ``column``) at ``s``, interpolated on the log scale."""
    curve = result.tail
    sign = 1.0 if result.config["direction"] == "upper" else -1.0
    x = sign * curve["s"].to_numpy()  # increasing
    with np.errstate(divide="ignore"):  # a lower end of 0 (the interval clipped at 0) stays 0
        return math.exp(float(np.interp(sign * s, x, np.log(curve[column].to_numpy()))))


def assert_curve_close_to_exact(result, s, exact):
    """The tail curve at an intermediate level ``s`` is within ``3 delta`` of the exact tail there.

    ``delta`` is the run's final Au-Beck CoV: the curve below the final level is a product of fewer level
    probabilities, so its CoV is at most about that.
    """
    delta = result.coefficient_of_variation
    value = curve_at(result, s)
    assert abs(math.log(value / exact)) < 3 * delta, (
        f"tail curve at s = {s:.6g}: {value:.4g} vs exact {exact:.4g} (ratio {value / exact:.3f}, CoV {delta:.3f})")


def assert_close_to_exact(result, exact, max_cov=0.5):
    """The estimate is within ``3 delta`` of the exact value on the log scale, with ``delta`` informative."""
    delta = result.coefficient_of_variation
    assert 0 < delta < max_cov, f"Au-Beck CoV {delta:.3f} too large for a meaningful check"
    ratio = result.estimate / exact
    assert abs(math.log(ratio)) < 3 * delta, (
        f"estimate {result.estimate:.4g} vs exact {exact:.4g} (ratio {ratio:.3f}, CoV {delta:.3f}, "
        f"interval {result.interval})")


# ---------------------------------------------------------------------------------------------- sphere law

@pytest.fixture(scope="module")
def sphere_runs():
    """One run to 1e-12 per dimension; its tail curve gives the estimates at 1e-4 and 1e-8."""
    return {d: rare_tail_of(cosine_of_halves(d), 2 * d, threshold=sphere_threshold(TARGETS[-1], d), seed=7,
                            population=1000, grid_points=1000) for d in (8, 32, 128)}


@pytest.mark.parametrize("d", [8, 32, 128])
@pytest.mark.parametrize("p", TARGETS)
def test_sphere_cosine_tail(sphere_runs, d, p):
    result, t = sphere_runs[d], sphere_threshold(p, d)
    if p == TARGETS[-1]:
        assert_close_to_exact(result, p)
        # at least 10 times cheaper than plain Monte Carlo at the same CoV, (1 - p) / (p delta^2) draws
        assert result.evaluations < (1 - p) / (p * result.coefficient_of_variation**2) / 10
        # the tail curve ends at the estimate
        curve = result.tail
        assert curve["s"].iloc[-1] == pytest.approx(t) and curve["probability"].iloc[-1] == pytest.approx(
            result.estimate, rel=1e-12)
    else:
        # the tail curve follows the exact law over the decades it crossed
        assert_curve_close_to_exact(result, t, p)


@pytest.fixture(scope="module")
def coverage_runs():
    """20 seeded runs to 1e-12 on the sphere law (d = 32); each also estimates 1e-4 and 1e-8 on its tail curve."""
    d = 32
    t = sphere_threshold(TARGETS[-1], d)
    return [rare_tail_of(cosine_of_halves(d), 2 * d, threshold=t, seed=100 + seed, population=1000,
                         grid_points=1000) for seed in range(20)]


def test_coverage_and_bias_on_the_sphere_law(coverage_runs):
    """20 runs: the 95% intervals cover the exact value >= 85% of the time at each of 1e-4, 1e-8, 1e-12; bias < 10%.

    The intervals at 1e-4 and 1e-8 are the repeat intervals of the tail curve; at 1e-12 both the repeat
    interval and the Au-Beck one are checked.  The bias is held to 10% on the mean ratio over the 60
    estimates and to 25% per target.
    """
    d, covered, au_beck_covered, ratios = 32, 0, 0, {}
    for p in TARGETS:
        t = sphere_threshold(p, d)
        if p == TARGETS[-1]:
            ratios[p] = [r.estimate / p for r in coverage_runs]
            covered += sum(r.interval[0] <= p <= r.interval[1] for r in coverage_runs)
            au_beck_covered = sum(r.cov_interval[0] <= p <= r.cov_interval[1] for r in coverage_runs)
        else:
            ratios[p] = [curve_at(r, t) / p for r in coverage_runs]
            covered += sum(curve_at(r, t, "lower") <= p <= curve_at(r, t, "upper") for r in coverage_runs)
        assert abs(np.mean(ratios[p]) - 1) < 0.25, f"p = {p:g}: relative bias {np.mean(ratios[p]) - 1:+.3f}"
    pooled = np.mean([ratios[p] for p in TARGETS])
    assert abs(pooled - 1) < 0.10, f"relative bias {pooled - 1:+.3f} ({ {p: np.mean(v) for p, v in ratios.items()} })"
    runs = len(coverage_runs)
    assert covered / (runs * len(TARGETS)) >= 0.85, f"repeat intervals cover {covered}/{runs * len(TARGETS)}"
    assert au_beck_covered / runs >= 0.85, f"Au-Beck intervals cover {au_beck_covered}/{runs}"


# ---------------------------------------------------------------------------------------------- peer library

def test_openturns_subset_sampling_agrees():
    """OpenTURNS' SubsetSampling and ours on Pr[sum(xi)/sqrt(D) > beta] = Phi(-beta) at 1e-4, 1e-8, 1e-12.

    Ours is one run to 1e-12 whose tail curve gives 1e-4 and 1e-8; OpenTURNS runs once per target.
    """
    ot = pytest.importorskip("openturns")
    D = 16

    def linear(xi):
        return np.asarray(xi).sum(1) / math.sqrt(D)

    ours = rare_tail_of(linear, D, threshold=stats.norm.isf(TARGETS[-1]), seed=3, population=1000,
                        grid_points=1000)
    delta = ours.coefficient_of_variation
    assert_close_to_exact(ours, TARGETS[-1])
    for p in TARGETS:
        beta = stats.norm.isf(p)
        mine = ours.estimate if p == TARGETS[-1] else curve_at(ours, beta)
        g = ot.PythonFunction(D, 1, func_sample=lambda x: linear(x)[:, None])
        event = ot.ThresholdEvent(ot.CompositeRandomVector(g, ot.RandomVector(ot.Normal(D))), ot.Greater(), beta)
        ot.RandomGenerator.SetSeed(3)
        algo = ot.SubsetSampling(event)
        algo.setMaximumOuterSampling(2000)
        algo.setConditionalProbability(0.1)
        algo.run()
        theirs, their_cov = algo.getResult().getProbabilityEstimate(), algo.getResult().getCoefficientOfVariation()
        assert abs(math.log(mine / p)) < 3 * delta, (p, mine, delta)
        assert abs(math.log(theirs / p)) < 3 * their_cov, (p, theirs, their_cov)
        both = math.hypot(delta, their_cov)
        assert abs(math.log(mine / theirs)) < 3 * both, (p, mine, theirs, both)


# ---------------------------------------------------------------------------------------------- networks

def test_chi_square_product_oracle_matches_quadrature():
    """The Meijer-G CDF used below agrees with a 1-D quadrature of chi^2 laws at L = 2 (and MC at L = 3)."""
    n = 16
    for r in (1e-3, 1e-2, 0.1, 0.7):
        quad = integrate.quad(lambda u: stats.chi2.pdf(u, n) * stats.chi2.cdf(r * n * n / u, n), 0, np.inf,
                              limit=200, epsabs=0, epsrel=1e-12)[0]
        assert chi_square_product_cdf(r, 2, n) == pytest.approx(quad, rel=1e-9)
    x = np.prod(np.random.default_rng(0).chisquare(n, (200_000, 3)) / n, axis=1)
    assert (x < 0.4).mean() == pytest.approx(chi_square_product_cdf(0.4, 3, n), abs=4 * math.sqrt(0.13 * 0.87 / 2e5))


@pytest.fixture(scope="module")
def norm_ratio_run():
    net = MLP(4, 16, 4, activation="linear", output_activation=False)
    r = chi_square_product_threshold(TARGETS[-1], 3, 16)
    return rare_tail(net, 2, statistic="norm_ratio", threshold=r, direction="lower", labels="linear",
                     loss="square", seed=5, population=1000, grid_points=1000)


@pytest.mark.parametrize("p", TARGETS)
def test_linear_gaussian_network_norm_ratio_lower_tail(norm_ratio_run, p):
    """|z_3|^2 / |z_0|^2 of a width-16 depth-4 linear net is a product of 3 chi^2_16/16: its lower tail.

    One run to 1e-12; 1e-4 and 1e-8 are read on its tail curve.
    """
    result = norm_ratio_run
    assert "lazy" in result.config["method"]
    if p == TARGETS[-1]:
        assert_close_to_exact(result, p)
    else:
        assert_curve_close_to_exact(result, chi_square_product_threshold(p, 3, 16), p)


def _orthogonal_net(width):
    # gain 1 and gamma <= 1/sqrt(2): |gamma g(x)| < 1, so the square-loss factor gamma g - y has the sign of -y
    return MLP(16, width, 4, activation="linear", output_activation=False, init="orthogonal", gamma=2**-0.5)


@pytest.mark.parametrize("method,trials", [("dense", 500), ("lazy", 2000)])
def test_orthogonal_linear_cosine_is_the_sphere_cosine(method, trials):
    """Plain Monte Carlo: min cosine of N = 2 has the law of <x1, x2> (cosine = y1 y2 <x1, x2>)."""
    sample = sample_confusion(_orthogonal_net(64), 2, trials, labels="random_sign", loss="square", seed=21,
                              method=method)
    cos = sample.stats["min_cosine"]
    d = 16
    assert stats.kstest((cos + 1) / 2, stats.beta((d - 1) / 2, (d - 1) / 2).cdf).pvalue > 1e-3
    k, p = int((cos < -0.3).sum()), sphere_tail(0.3, d)
    assert abs(k - trials * p) < 4 * math.sqrt(trials * p * (1 - p))


# Dense sampling draws D = 13410 normals per trial at width 64 (the lazy one 1122, 4386 at width 256) and a Haar
# frame (QR) per layer, so it runs to 1e-8 only, with a small population and two repeats.
#: (method, width) -> (population, repeats, deepest target)
ORTHOGONAL_RUNS = {("lazy", 64): (1000, 4, 1e-12), ("lazy", 256): (500, 4, 1e-12), ("dense", 64): (300, 2, 1e-8)}


@pytest.fixture(scope="module")
def orthogonal_runs():
    return {}


def _orthogonal_run(cache, method, width):
    if (method, width) not in cache:
        population, repeats, deepest = ORTHOGONAL_RUNS[method, width]
        cache[method, width] = rare_tail(
            _orthogonal_net(width), 2, statistic="min_cosine", threshold=-sphere_threshold(deepest, 16),
            direction="lower", labels="random_sign", loss="square", seed=9, method=method, population=population,
            repeats=repeats, grid_points=1000)
    return cache[method, width]


@pytest.mark.parametrize("method,width,p", [(m, w, p) for m, w in [("lazy", 64), ("lazy", 256)] for p in TARGETS]
                         + [("dense", 64, 1e-4), ("dense", 64, 1e-8)])
def test_orthogonal_linear_min_cosine_lower_tail(orthogonal_runs, method, width, p):
    """Through the whole Gram pipeline: Pr[min cosine < -tau] = Pr[<x1, x2> > tau] (Beta law, d = 16).

    One run per (method, width) to its deepest target; the shallower targets are read on its tail curve.
    Width 1024 (lazy) is in benchmarks/rare_tail.py.
    """
    result = _orthogonal_run(orthogonal_runs, method, width)
    population, _, deepest = ORTHOGONAL_RUNS[method, width]
    assert result.config["method"].startswith(method)
    if p == deepest:
        assert_close_to_exact(result, p, max_cov=0.5 if population >= 1000 else 0.8)
    else:
        assert_curve_close_to_exact(result, -sphere_threshold(p, 16), p)


@pytest.fixture(scope="module")
def plain_monte_carlo():
    """A pilot (thresholds) and an independent plain sample of the same trials, shared by both statistics."""
    net = MLP(4, 16, 2, activation="tanh")
    kwargs = dict(labels="tanh", loss="square")
    pilot = sample_confusion(net, 4, 2000, seed=31, **kwargs).stats
    plain = sample_confusion(net, 4, 20_000, seed=32, **kwargs).stats
    return net, kwargs, pilot, plain


@pytest.mark.parametrize("statistic,direction", [("eta_star", "upper"), ("min_cosine", "lower")])
def test_agrees_with_plain_monte_carlo_at_one_percent(plain_monte_carlo, statistic, direction):
    net, kwargs, pilot, plain = plain_monte_carlo
    threshold = float(np.quantile(pilot[statistic], 0.99 if direction == "upper" else 0.01))
    plain = plain[statistic]
    k = int((plain > threshold).sum() if direction == "upper" else (plain < threshold).sum())
    p_mc = k / plain.size
    result = rare_tail(net, 4, statistic=statistic, threshold=threshold, direction=direction, seed=33,
                       population=1000, **kwargs)
    assert result.coefficient_of_variation < 0.2 and 50 < k < 500
    sd = math.hypot(result.coefficient_of_variation * result.estimate, math.sqrt(p_mc * (1 - p_mc) / plain.size))
    assert abs(result.estimate - p_mc) < 3 * sd, (result.estimate, p_mc, sd)


def test_torch_and_numba_backends_agree():
    net = _orthogonal_net(32).replace(activation="tanh")
    kwargs = dict(statistic="min_cosine", threshold=-0.5, direction="lower", labels="random_sign", loss="square",
                  seed=4, population=100, n_samples=3)
    numba = rare_tail(net, backend="numba", **kwargs)
    torch = rare_tail(net, backend="torch", **kwargs)
    assert numba.config["backend"] == "numba" and torch.config["backend"] == "torch"
    both = math.hypot(numba.coefficient_of_variation, torch.coefficient_of_variation)
    assert abs(math.log(numba.estimate / torch.estimate)) < 3 * both
    # same normals, same trial up to rounding: the first levels coincide closely
    assert numba.levels[0][0] == pytest.approx(torch.levels[0][0], rel=1e-9)


# ---------------------------------------------------------------------------------------------- determinism

def test_same_seed_same_result_and_other_seed_differs():
    f, t = cosine_of_halves(8), sphere_threshold(1e-6, 8)
    a = rare_tail_of(f, 16, threshold=t, seed=12, population=200)
    b = rare_tail_of(f, 16, threshold=t, seed=12, population=200)
    c = rare_tail_of(f, 16, threshold=t, seed=13, population=200)
    assert a.estimate == b.estimate and np.array_equal(a.estimates, b.estimates)
    assert all(np.array_equal(x, y) for x, y in zip(a.levels, b.levels))
    assert a.tail.equals(b.tail)
    assert a.estimate != c.estimate


def _quadrant(xi):
    """Category: the signs of the first coordinates of the two halves (four categories)."""
    return (xi[:, 0] > 0).astype(np.int64) + 2 * (xi[:, 8] > 0)


def test_resume_from_a_saved_level_is_bit_identical(tmp_path):
    f, t = cosine_of_halves(8), sphere_threshold(1e-8, 8)
    kwargs = dict(threshold=t, seed=(5, 6), population=300, repeats=3, summary=_quadrant)
    saved = {}

    def on_level(state):
        if state.level == 2 and not state.done:
            path = tmp_path / f"repeat{state.repeat}.npz"
            np.savez(path, **state.to_arrays())
            saved[state.repeat] = path

    full = rare_tail_of(f, 16, on_level=on_level, **kwargs)
    assert sorted(saved) == [0, 1, 2]
    states = []
    for path in saved.values():
        with np.load(path, allow_pickle=False) as arrays:
            states.append(SplittingState.from_arrays(arrays))
    assert all(s.level == 2 for s in states)
    # the saved state carries the categories (a non-empty table per level)
    assert all(s.category_counts.shape == (3, 4) and s.seed_counts.shape[0] == 2 for s in states)
    resumed = rare_tail_of(f, 16, resume=states, **kwargs)
    assert np.array_equal(full.estimates, resumed.estimates)
    assert full.coefficient_of_variation == resumed.coefficient_of_variation
    assert all(np.array_equal(x, y) for x, y in zip(full.rhos, resumed.rhos))
    assert full.tail.equals(resumed.tail)
    assert all(np.array_equal(x, y) for x, y in zip(full.branch_shares, resumed.branch_shares))
    assert all(np.array_equal(x, y) for x, y in zip(full.cross_moves, resumed.cross_moves))
    assert full.warnings == resumed.warnings
    assert all(np.array_equal(x, y) for x, y in zip(full.collapsed_levels, resumed.collapsed_levels))
    # a state saved with categories cannot continue a run without them
    with pytest.raises(ValueError, match="category code"):
        rare_tail_of(f, 16, resume=states, **{**kwargs, "summary": None})
    # a state is refused by a run with other settings
    with pytest.raises(ValueError, match="resume"):
        rare_tail_of(f, 16, resume=states, **{**kwargs, "population": 400})


def test_correlation_factor_of_identical_chain_states():
    """Chains that never move: every chain's indicator is constant, so gamma = 2 sum (1 - k/Ns) = Ns - 1."""
    chains, length = 50, 10
    chain = np.repeat(np.arange(chains), length)
    step = np.tile(np.arange(length), chains)
    indicator = np.repeat((np.arange(chains) % 3 == 0).astype(float), length)
    assert correlation_factor(indicator, chain, step) == pytest.approx(length - 1)
    independent = np.random.default_rng(1).random(chains * length) < 0.3
    assert abs(correlation_factor(independent.astype(float), chain, step)) < 0.5


# ---------------------------------------------------------------------------------------------- refusals

def _linear(xi):
    return xi[:, 0]


@pytest.mark.parametrize("kwargs,argument", [
    (dict(population=5), "population"),
    (dict(level_probability=0.0), "level_probability"),
    (dict(level_probability=0.6), "level_probability"),
    (dict(target_acceptance=1.5), "target_acceptance"),
    (dict(repeats=1), "repeats"),
    (dict(direction="above"), "direction"),
    (dict(threshold=math.nan), "threshold"),
    (dict(threshold=-1.0), "threshold"),  # 84% of draws already exceed it: not rare
    (dict(seed=-1), "seed"),
])
def test_bad_input_names_the_argument(kwargs, argument):
    arguments = dict(threshold=3.0, seed=0, population=100)
    with pytest.raises((ValueError, TypeError), match=f"'{argument}'"):
        rare_tail_of(_linear, 2, **{**arguments, **kwargs})


def test_not_rare_says_use_plain_monte_carlo():
    with pytest.raises(ValueError, match="plain Monte Carlo"):
        rare_tail_of(_linear, 2, threshold=-1.0, seed=0, population=100)


def test_probability_below_float_range_is_refused():
    # Pr[xi_0 > 40] = Phi(-40) ~ 4e-350, below what a product of level probabilities can hold
    with pytest.raises(ValueError, match="max_levels"):
        rare_tail_of(_linear, 1, threshold=40.0, seed=0, population=100)
    with pytest.raises(ValueError, match="max_levels = 3"):
        rare_tail_of(_linear, 1, threshold=5.0, seed=0, population=100, max_levels=3)


def test_unknown_statistic_lists_accepted_names():
    net = MLP(4, 8, 2)
    with pytest.raises(ValueError, match="'statistic'.*'eta_star'.*'min_cosine'.*norm_ratio"):
        rare_tail(net, 3, statistic="eta", threshold=0.1, labels="tanh", loss="square", seed=0)
    with pytest.raises(ValueError, match="'statistic'"):
        rare_tail(net, 3, statistic="eta_star_layer7", threshold=0.1, labels="tanh", loss="square", seed=0)


def test_plateau_stops_the_chains():
    """min(xi_0, 2) is flat beyond 2: the levels pile up on the plateau and no seed lies above the quantile."""
    with pytest.raises(ChainsStoppedMoving, match="plateau"):
        rare_tail_of(lambda xi: np.minimum(xi[:, 0], 2.0), 3, threshold=2.5, seed=0, population=200)


def test_chains_that_cannot_move_are_flagged():
    """sin(1e8 xi_0) is pseudo-random at any usable step: acceptance collapses with the level."""
    with pytest.raises(ChainsStoppedMoving, match="accepted"):
        rare_tail_of(lambda xi: np.sin(1e8 * xi[:, 0]), 2, threshold=1 - 1e-12, seed=0, population=200)


def test_sampler_advance_is_one_level():
    sampler = SubsetSimulation(_linear, 2, threshold=4.0, seed=1, population=100)
    state = sampler.start(0)
    assert state.level == 0 and state.evaluations == 100
    nxt = sampler.advance(state)
    assert nxt.level == 1 and nxt.evaluations == 190 and nxt.values.min() > nxt.levels[0]
    assert nxt.conditional[0] == pytest.approx(0.1)


# ---------------------------------------------------------------------------------------------- categories

#: The two-branch event: f(xi) = max(xi_1, -xi_1 / C) > t  <=>  xi_1 > t (branch 0) or xi_1 < -C t (branch 1).
C = 0.9


def two_branches(xi):
    return np.maximum(xi[:, 0], -xi[:, 0] / C)


def which_branch(xi):
    return (xi[:, 0] < 0).astype(np.int64)


def two_branch_threshold(p):
    """``t`` with ``Pr[f > t] = Phi(-t) + Phi(-C t) = p`` (exact)."""
    return optimize.brentq(lambda t: math.log(stats.norm.sf(t) + stats.norm.sf(C * t)) - math.log(p), 0.0, 40.0,
                           xtol=1e-14)


def _all_states(sink):
    """An ``on_level`` that keeps every state of every repeat: ``sink[repeat]`` is the list by level."""
    def keep(state):
        states = sink.setdefault(state.repeat, [])
        if state.done:
            states[-1] = state
        else:
            states.append(state)
    return keep


@pytest.fixture(scope="module")
def frozen_run():
    """Population 200, 10 repeats, Pr = 1e-6: some repeats freeze into one branch, others keep both."""
    states = {}
    t = two_branch_threshold(1e-6)
    result = rare_tail_of(two_branches, 2, threshold=t, seed=1, population=200, summary=which_branch,
                          grid_points=2, on_level=_all_states(states))
    return result, states, t


def test_the_two_branch_case_is_a_real_trap(frozen_run):
    """Both parts reach the target (exact shares at the target both above MIN_BRANCH_SHARE), so a population
    holding one of them has lost a part that matters; and the chains cannot cross (the gap is 2 b wide)."""
    result, _, t = frozen_run
    thin, fat = stats.norm.sf(t), stats.norm.sf(C * t)
    assert min(thin, fat) / (thin + fat) > MIN_BRANCH_SHARE
    assert all(moves[1:].sum() == 0 for moves in result.cross_moves)


def test_collapsed_populations_are_flagged_with_their_shares(frozen_run):
    """The flags, recomputed from each level's saved population ``xi`` (not from the counts under test)."""
    result, states, _ = frozen_run
    assert 0 < len(result.collapsed_repeats) < len(states)  # some frozen, some not: the flag has to tell them apart
    for r, by_level in states.items():
        observed = np.array([np.bincount(which_branch(s.xi), minlength=2) / s.xi.shape[0] for s in by_level])
        np.testing.assert_array_equal(result.branch_shares[r], observed)
        both_at_level0 = np.count_nonzero(observed[0] >= MIN_BRANCH_SHARE) == 2
        expected = [k for k in range(1, len(by_level)) if np.count_nonzero(observed[k]) == 1 and both_at_level0]
        np.testing.assert_array_equal(result.collapsed_levels[r], expected)
        messages = [w for w in result.warnings if w.startswith(f"repeat {r}: the population collapsed")]
        assert len(messages) == (1 if expected else 0)
        if expected:
            k = expected[0]
            assert f"at level {k} " in messages[0] and f"code 0: {observed[0][0]:.3f}" in messages[0]


def test_level0_shares_are_the_exact_branch_probabilities(frozen_run):
    """Level 0 is plain Monte Carlo: the share of branch 1 over the 10 x 200 draws is Phi(0) = 1/2 within 4
    binomial standard deviations."""
    result, _, _ = frozen_run
    n = 10 * 200
    share = np.mean([shares[0, 1] for shares in result.branch_shares])
    assert abs(share - 0.5) < 4 * math.sqrt(0.25 / n)


def test_strict_raises_at_the_first_collapse(frozen_run):
    result, _, t = frozen_run
    r = result.collapsed_repeats[0]
    k = int(result.collapsed_levels[r][0])
    with pytest.raises(PopulationCollapsed, match=rf"^repeat {r}: the population collapsed into one category at "
                                                  rf"level {k} \(shares at level 0: code 0: "):
        rare_tail_of(two_branches, 2, threshold=t, seed=1, population=200, summary=which_branch, grid_points=2,
                     strict=True)


def bins_of_xi2(xi):
    """Four categories of ``xi_2``, independent of the half-space event ``xi_1 > t``."""
    return np.digitize(xi[:, 1], [-1.0, 0.0, 0.5])


BIN_PROBABILITIES = np.diff(stats.norm.cdf([-np.inf, -1.0, 0.0, 0.5, np.inf]))


@pytest.fixture(scope="module")
def healthy_run():
    states = {}
    result = rare_tail_of(lambda xi: xi[:, 0], 3, threshold=stats.norm.isf(1e-6), seed=2, population=200,
                          summary=bins_of_xi2, grid_points=2, on_level=_all_states(states))
    return result, states


def test_a_connected_event_raises_no_flag(healthy_run):
    """A single half-space with categories the event does not decide: no collapse, chains cross at every level."""
    result, _ = healthy_run
    assert result.warnings == ()
    assert not result.collapsed_repeats and all(len(levels) == 0 for levels in result.uncrossed_levels)
    assert all(np.all(moves > 0) for moves in result.cross_moves)


def test_cross_moves_are_the_category_changes_along_the_chains(healthy_run):
    """Recount: consecutive states of a chain differ in category exactly when an accepted move changed it."""
    result, states = healthy_run
    for r, by_level in states.items():
        for k, state in enumerate(by_level[1:], start=1):
            grid = np.full((state.chain.max() + 1, state.step.max() + 1), -1)
            grid[state.chain, state.step] = bins_of_xi2(state.xi)
            both = (grid[:, :-1] >= 0) & (grid[:, 1:] >= 0)
            changed = int(np.count_nonzero((grid[:, :-1] != grid[:, 1:]) & both))
            assert result.cross_moves[r][k - 1] == changed, (r, k)


def test_shares_follow_the_exact_law_of_an_independent_coordinate(healthy_run):
    """Given ``xi_1 > b`` the coordinate ``xi_2`` is still N(0, 1): the bins' shares at level 0 match the exact
    probabilities within 4 binomial standard deviations (2000 iid draws); at deeper levels (correlated chains)
    each repeat's mean share over its levels >= 1 is one independent replicate, and their mean is within 4
    standard errors of the exact probability."""
    result, _ = healthy_run
    level0 = np.mean([shares[0] for shares in result.branch_shares], axis=0)
    assert np.all(np.abs(level0 - BIN_PROBABILITIES) < 4 * np.sqrt(BIN_PROBABILITIES * (1 - BIN_PROBABILITIES) / 2000))
    deep = np.array([shares[1:].mean(axis=0) for shares in result.branch_shares])
    error = deep.std(axis=0, ddof=1) / math.sqrt(len(deep))
    assert np.all(np.abs(deep.mean(axis=0) - BIN_PROBABILITIES) < 4 * error), (deep.mean(axis=0), error)


def test_the_five_percent_rule():
    """A category below MIN_BRANCH_SHARE at level 0 does not count: a later single-category level is then no
    collapse; at or above it, it is."""
    sampler = SubsetSimulation(_linear, 2, threshold=4.0, seed=1, population=100,
                               summary=lambda xi: (xi[:, 0] < 0).astype(np.int64))
    state = sampler.advance(sampler.start(0))
    assert state.category_counts[0].sum() == 100 and np.all(state.category_counts[1] == [100, 0])
    assert state.cross_moves[0] == 0 and list(population_flags(state)[0]) == [1]
    for level0, collapsed in (([96, 4], []), ([95, 5], [1])):
        changed = replace(state, category_counts=np.array([level0, [100, 0]]))
        assert list(population_flags(changed)[0]) == collapsed


def test_no_summary_no_categories():
    result = rare_tail_of(_linear, 2, threshold=3.0, seed=0, population=100, grid_points=2)
    assert result.branch_shares is None and result.cross_moves is None and result.warnings == ()


@pytest.mark.parametrize("summary,message", [
    (lambda xi: -np.ones(len(xi)), "codes in 0"),
    (lambda xi: xi[:, 0], "integer category codes"),
    (lambda xi: np.zeros(3, np.int64), "C = 100 codes"),
])
def test_bad_summaries_are_refused(summary, message):
    with pytest.raises(ValueError, match=message):
        rare_tail_of(_linear, 2, threshold=3.0, seed=0, population=100, summary=summary)


def test_network_categories_are_the_label_sign_branches():
    """Orthogonal deep linear net, N = 2, random signs: the cosine is y1 y2 <x1, x2> exactly, so the event
    cos < -tau splits into y1 y2 = +1 (<x1, x2> < -tau) and y1 y2 = -1 (<x1, x2> > tau), each of probability
    one half of the tail.  Level 0: Pr[y1 y2 = -1] = 1/2 within 4 binomial sd; the attaining pair is pair 0;
    the categories at the last level come from both branches when pooled over the repeats."""
    result = rare_tail(_orthogonal_net(16), 2, statistic="min_cosine", threshold=-sphere_threshold(1e-3, 16),
                       direction="lower", labels="random_sign", loss="square", seed=3, population=100,
                       grid_points=2)
    level0 = np.mean([shares[0, 1] for shares in result.branch_shares])
    assert abs(level0 - 0.5) < 4 * math.sqrt(0.25 / 1000)
    assert all(np.array_equal(shares[:, 0], np.ones(len(shares))) for shares in result.detail_shares)
    final = np.mean([shares[-1, 1] for shares in result.branch_shares])
    assert 0.1 < final < 0.9
    assert result.config["min_branch_share"] == MIN_BRANCH_SHARE


# ---------------------------------------------------------------------------------------------- the interval

def test_interval_is_the_t_interval_of_the_mean_clipped_to_probabilities():
    """Against its formula (scipy's t quantile); then a case whose unclipped ends leave [0, 1]: two repeats of
    a population of 10 make t_{1, 0.975} = 12.7 times a large spread near the level-0 median."""
    result = rare_tail_of(_linear, 2, threshold=2.0, seed=4, population=100, grid_points=50)
    P, R = result.estimates, len(result.estimates)
    half = stats.t.ppf(0.975, R - 1) * P.std(ddof=1) / math.sqrt(R)
    assert result.interval == pytest.approx((max(0.0, P.mean() - half), min(1.0, P.mean() + half)), rel=1e-12)
    assert result.tail["lower"].iloc[-1] == pytest.approx(result.interval[0], rel=1e-12)
    wide = rare_tail_of(_linear, 2, threshold=1.5, seed=4, population=10, repeats=2, grid_points=50)
    for frame in (wide.tail, result.tail):
        assert frame["lower"].between(0, 1).all() and frame["upper"].between(0, 1).all()
        assert (frame["lower"] <= frame["probability"]).all() and (frame["probability"] <= frame["upper"]).all()
    assert (wide.tail["lower"] == 0).any() or (wide.tail["upper"] == 1).any()  # the clip was needed


def test_interval_coverage_on_the_linear_limit_state():
    """200 groups of 10 repeats (population 200) of Pr[sum(xi)/sqrt(4) > beta] = Phi(-beta) = 1e-3.

    Coverage of the 95% interval within 3 binomial standard deviations of 0.95 (sd = sqrt(0.95 * 0.05 / 200)
    = 0.0154: [0.904, 0.996]); every end in [0, 1].  The mean of the 2000 single repeats is within 10% of the
    exact value (subset simulation's bias is O(1/n); it was +6% here, 4 of its standard errors) while their
    median lies below it: one repeat is skewed to the right.
    """
    D, p, groups = 4, 1e-3, 200
    beta = stats.norm.isf(p)
    covered, estimates = 0, []
    for g in range(groups):
        r = rare_tail_of(lambda xi: xi.sum(1) / math.sqrt(D), D, threshold=beta, seed=(11, g), population=200,
                         grid_points=2)
        assert 0 <= r.interval[0] <= r.estimate <= r.interval[1] <= 1
        covered += r.interval[0] <= p <= r.interval[1]
        estimates.append(r.estimates)
    sd = math.sqrt(0.95 * 0.05 / groups)
    assert abs(covered / groups - 0.95) <= 3 * sd, f"coverage {covered}/{groups}"
    estimates = np.concatenate(estimates)
    assert abs(estimates.mean() / p - 1) < 0.10
    assert np.median(estimates) < p
