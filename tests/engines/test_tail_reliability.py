"""Rare-tail runs: one rule per setting for rare_tail and TailSpec, probabilities in [0, 1], and argument errors
that name the argument.

* Every numeric setting of a tail run is refused by ``TailSpec`` exactly when ``rare_tail`` refuses it, with the
  same message, which states the real accepted values (``repeats >= 2``, ``population >= 10``, ...).
* The interval of a tiny run (two repeats of a population of 20, where ``t_{1, 0.975} = 12.7`` times the spread
  leaves [0, 1]) is scipy's t-interval clipped to [0, 1], and a run on an exact law still covers the truth.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special, stats

import montecarlo as mc
from montecarlo import TailSpec, rare_tail, rare_tail_of, run_tail

SETTINGS = dict(statistic="eta_star", threshold=1.0, population=100, repeats=2, seed=5)
CONFIG = dict(width=8, depth=1, d=4, n_samples=3, activation="tanh", **SETTINGS)
NET = dict(labels="linear", loss="square")  # the tail run's defaults, for the same trial through rare_tail


def _linear(xi):
    return xi[:, 0]


# ------------------------------------------------------------------------------------ one rule per setting

@pytest.mark.parametrize("key, value, accepted", [
    ("repeats", 1, "integer >= 2"),
    ("repeats", 0, "integer >= 2"),
    ("grid_points", 1, "integer >= 2"),
    ("population", -1, "integer >= 10"),
    ("population", 9, "integer >= 10"),
    ("population", 20.5, "integer >= 10"),
    ("max_levels", 0, "integer >= 1"),
    ("level_probability", 0.7, "number in (0, 0.5]"),
    ("level_probability", 0.0, "number in (0, 0.5]"),
    ("target_acceptance", 1.0, "number in (0, 1)"),
    ("threshold", "0.5", "finite real number"),
    ("threshold", math.inf, "finite real number"),
    ("seed", -1, "non-negative integer"),
])
def test_tail_spec_refuses_what_rare_tail_refuses_with_the_same_message(key, value, accepted):
    """The message names the setting and states what is accepted (population's minimum is 10, not 0)."""
    with pytest.raises((ValueError, TypeError)) as direct:
        rare_tail(mc.MLP(4, 8, 1, activation="tanh"), 3, **NET, **{**SETTINGS, key: value})
    with pytest.raises(ValueError) as spec:
        TailSpec.from_mapping({**CONFIG, key: value})
    assert f"argument '{key}'" in str(spec.value) and accepted in str(spec.value), str(spec.value)
    assert str(spec.value) == str(direct.value)


@pytest.mark.parametrize("key, value", [("repeats", 2), ("grid_points", 2), ("population", 10), ("max_levels", 1),
                                        ("level_probability", 0.5), ("target_acceptance", 0.01)])
def test_the_smallest_accepted_values_are_accepted_by_both(key, value):
    assert TailSpec.from_mapping({**CONFIG, key: value}).settings[key] == value
    kwargs = {**dict(threshold=1.0, seed=0, population=100, repeats=2), key: value}
    result = rare_tail_of(_linear, 2, **kwargs)
    assert len(result.estimates) == kwargs["repeats"] and result.config["population"] == kwargs["population"]
    assert len(result.tail) == kwargs.get("grid_points", 200)


def test_a_tail_spec_built_directly_meets_the_same_rules():
    spec = TailSpec.from_mapping(CONFIG)
    with pytest.raises(ValueError, match=r"argument 'repeats' must be an integer >= 2, got 1"):
        TailSpec(spec.point, {**spec.settings, "repeats": 1})
    with pytest.raises(ValueError, match=r"argument 'grid_points' must be an integer >= 2, got 1"):
        TailSpec(spec.point, {**spec.settings, "grid_points": 1})


def test_one_repeat_never_reaches_a_store(tmp_path):
    with pytest.raises(ValueError, match=r"'repeats' must be an integer >= 2"):
        run_tail(TailSpec.from_mapping({**CONFIG, "repeats": 1}), tmp_path / "store", progress=False)
    assert not (tmp_path / "store").exists()


# ------------------------------------------------------------------------------------ probabilities in [0, 1]

def test_a_tiny_runs_interval_is_the_t_interval_clipped_to_probabilities():
    """Two repeats of a population of 20 on MLP(8, 8, 1, tanh): estimates 0.45 and 0.2, so the t-interval of their
    mean, 0.325 +- 12.71 x 0.125, leaves [0, 1] at both ends (a log-scale interval reached 220 here)."""
    result = rare_tail(mc.MLP(8, 8, 1, "tanh"), 4, statistic="min_cosine", direction="lower", threshold=-0.5, seed=0,
                       population=20, repeats=2, labels="tanh", loss="square")
    P = result.estimates
    low, high = stats.t.interval(0.95, len(P) - 1, loc=P.mean(), scale=stats.sem(P))
    assert low < 0 and high > 1  # the case the clipping is for
    assert result.interval == (max(0.0, low), min(1.0, high)) == (0.0, 1.0)
    assert 0 <= result.estimate <= 1 and np.all((0 <= P) & (P <= 1))
    bounds = result.tail[["probability", "lower", "upper"]].to_numpy()
    assert np.all((0 <= bounds) & (bounds <= 1)) and np.all((0 <= result.repeat_tails) & (result.repeat_tails <= 1))
    table = result.summary()
    assert 0 <= table.loc["mean", "lower"] <= table.loc["mean", "upper"] <= 1


def _sphere_tail(t, d):
    """``Pr[<x1, x2> > t]`` for independent uniform points on ``S^{d-1}`` (the Beta law)."""
    a = (d - 1) / 2
    return special.betainc(a, a, (1 - t) / 2)


def test_a_run_on_an_exact_law_still_covers_the_truth():
    """Orthogonal deep linear net, N = 2, random signs: min cosine = y1 y2 <x1, x2>, whose law is the sphere's
    Beta law (tests/engines/test_rare_event.py); Pr[min cos < -t] = 1e-4 lies in the clipped interval, which
    lies in [0, 1]."""
    d = 16
    t = optimize.brentq(lambda s: math.log(_sphere_tail(s, d)) - math.log(1e-4), 0.0, 0.99, xtol=1e-14)
    net = mc.MLP(d, 16, 4, activation="linear", output_activation=False, init="orthogonal", gamma=2**-0.5)
    result = rare_tail(net, 2, statistic="min_cosine", threshold=-t, direction="lower", labels="random_sign",
                       loss="square", seed=11, population=200, repeats=10, grid_points=20)
    assert 0 <= result.interval[0] <= 1e-4 <= result.interval[1] <= 1
    assert abs(math.log(result.estimate / 1e-4)) < 1.0


# ------------------------------------------------------------------------------------ unclear errors

@pytest.mark.parametrize("kwargs, error, message", [
    (dict(on_level=5), TypeError, r"argument 'on_level' must be None or a callable"),
    (dict(threshold="0.5"), ValueError, r"argument 'threshold' must be a finite real number, got '0.5'"),
    (dict(progress="x"), TypeError, r"argument 'progress' must be True or False, got 'x'"),
    (dict(resume=5), TypeError, r"argument 'resume' must be None or an iterable of SplittingState"),
    (dict(resume=[5]), TypeError, r"argument 'resume' must hold SplittingState objects"),
    (dict(population=-1), ValueError, r"argument 'population' must be an integer >= 10, got -1"),
    (dict(population="100"), TypeError, r"argument 'population' must be an integer >= 10"),
    (dict(direction="up"), ValueError, r"argument 'direction' must be one of 'upper', 'lower'; got 'up'"),
    (dict(max_levels=0), ValueError, r"argument 'max_levels' must be an integer >= 1, got 0"),
])
def test_rare_tail_names_the_argument_and_what_it_accepts(kwargs, error, message):
    net = mc.MLP(4, 8, 1, activation="tanh")
    settings = dict(statistic="eta_star", threshold=1.0, seed=0, population=100, repeats=2, **NET)
    with pytest.raises(error, match=message):
        rare_tail(net, 3, **{**settings, **kwargs})


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(on_level=5), TypeError, r"argument 'on_level' must be None or a callable"),
    (dict(progress="x"), TypeError, r"argument 'progress' must be True or False"),
    (dict(config=[1]), TypeError, r"argument 'config' must be None or a dict"),
    (dict(resume=5), TypeError, r"argument 'resume' must be None or an iterable"),
])
def test_rare_tail_of_refuses_before_computing_anything(kwargs, error, message):
    calls = []

    def counted(xi):
        calls.append(len(xi))
        return xi[:, 0]

    with pytest.raises(error, match=message):
        rare_tail_of(counted, 2, threshold=2.0, seed=0, population=20, **kwargs)
    assert calls == []


def test_two_states_of_one_repeat_in_resume_are_refused():
    states = []
    rare_tail_of(_linear, 2, threshold=2.0, seed=0, population=20, repeats=2, on_level=states.append)
    first = [s for s in states if s.repeat == 0]
    with pytest.raises(ValueError, match=r"argument 'resume' holds two states of repeat 0"):
        rare_tail_of(_linear, 2, threshold=2.0, seed=0, population=20, repeats=2, resume=first[:2])
