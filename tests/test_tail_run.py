"""Rare-tail runs in a results store: resumable level by level, repeats on Dask equal to serial, the CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import montecarlo as mc
from montecarlo._src.engines import tail_run
from montecarlo._src.cli import main
from montecarlo._src.engines.rare_event import rare_tail
from montecarlo._src.engines.tail_run import TailSpec, run_tail, state_frame, state_from_frame

CONFIG = dict(width=8, depth=1, d=4, n_samples=3, activation="tanh", statistic="eta_star", threshold=1.0,
              population=100, repeats=2, seed=5)


def same_result(a, b):
    assert a.estimate == b.estimate and a.interval == b.interval and a.evaluations == b.evaluations
    np.testing.assert_array_equal(a.estimates, b.estimates)
    pd.testing.assert_frame_equal(a.tail, b.tail)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return run_tail(TailSpec.from_mapping(CONFIG), tmp_path_factory.mktemp("tail") / "store", progress=False)


def test_the_stored_run_is_the_direct_computation(uninterrupted):
    direct = rare_tail(mc.MLP(4, 8, 1, activation="tanh"), 3, statistic="eta_star", threshold=1.0,
                       labels="linear", loss="square", seed=5, population=100, repeats=2)
    same_result(uninterrupted, direct)
    assert len(uninterrupted.levels[0]) >= 3  # the kill below interrupts a run of several levels


def test_a_killed_run_resumes_from_its_last_level_and_ends_with_the_same_numbers(tmp_path, monkeypatch,
                                                                                uninterrupted):
    saver, saves = tail_run._saver, []

    def dying_saver(store, key, spec):
        save = saver(store, key, spec)

        def wrapped(state):
            save(state)
            saves.append((key, state.level))
            if key == "repeat-1" and state.level == 2:
                raise KeyboardInterrupt  # as a kill right after the level was stored
        return wrapped

    monkeypatch.setattr(tail_run, "_saver", dying_saver)
    spec = TailSpec.from_mapping(CONFIG)
    with pytest.raises(KeyboardInterrupt):
        run_tail(spec, tmp_path / "store", progress=False)
    store = mc.ResultsStore.open_existing(tmp_path / "store")
    assert store.done() == {"repeat-0", "repeat-1"} and not store.is_done("result")
    frame, meta = store.read_point("repeat-1")
    assert meta["level"] == 2 and not meta["done"]
    monkeypatch.setattr(tail_run, "_saver", saver)
    evaluated = []
    original = tail_run.network_sampler

    def counting_sampler(*args, **kwargs):
        sampler, config = original(*args, **kwargs)
        function = sampler.function

        def counted(xi):
            evaluated.append(len(xi))
            return function(xi)
        sampler.function = counted
        return sampler, config

    monkeypatch.setattr(tail_run, "network_sampler", counting_sampler)
    resumed = run_tail(spec, tmp_path / "store", progress=False)
    same_result(resumed, uninterrupted)
    # repeat 0 was finished and repeat 1 resumed after its level 2: far fewer evaluations than a fresh run
    assert 0 < sum(evaluated) < uninterrupted.evaluations / 2


def test_state_tables_round_trip_and_refuse_damage():
    spec = TailSpec.from_mapping(CONFIG)
    sampler, _ = spec.sampler("numpy")
    state = sampler.advance(sampler.start(0))
    back = state_from_frame(state_frame(state), "x.parquet")
    for name, array in state.to_arrays().items():
        np.testing.assert_array_equal(back.to_arrays()[name], array)
    frame = state_frame(state)
    frame.loc[0, "data"] = frame.loc[0, "data"][:-8]
    with pytest.raises(mc.StoreCorrupt, match=r"x.parquet: not a saved subset-simulation state"):
        state_from_frame(frame, "x.parquet")
    frame = state_frame(state)
    frame.loc[0, "dtype"] = "object"
    with pytest.raises(mc.StoreCorrupt, match=r"dtype 'object'"):
        state_from_frame(frame, "x.parquet")


def test_repeats_on_a_local_dask_cluster_equal_the_serial_run(tmp_path, uninterrupted):
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        distributed = run_tail(TailSpec.from_mapping(CONFIG), tmp_path / "dask", scheduler=client, progress=False)
    same_result(distributed, uninterrupted)


@pytest.mark.parametrize("mapping, message", [
    (dict(CONFIG, widht=3), r"unknown tail key\(s\) 'widht'"),
    ({k: v for k, v in CONFIG.items() if k != "threshold"}, r"needs 'threshold'"),
    (dict(CONFIG, width=[8, 16]), r"argument 'width': a tail run takes one value"),
    (dict(CONFIG, threshold=float("nan")), r"argument 'threshold' must be a finite real number"),
    (dict(CONFIG, statistic="eta"), r"argument 'statistic'"),
    (dict(CONFIG, population=5), r"population"),
    (dict(CONFIG, repeats=2.5), r"argument 'repeats' must be an integer"),
])
def test_bad_tail_configurations_are_refused_by_name(mapping, message):
    with pytest.raises(ValueError, match=message):
        TailSpec.from_mapping(mapping)


def test_cli_tail_then_show(tmp_path, capsys, uninterrupted):
    argv = ["tail", "--width", "8", "--depth", "1", "--d", "4", "--n-samples", "3", "--activation", "tanh",
            "--statistic", "eta_star", "--threshold", "1", "--population", "100", "--repeats", "2", "--seed", "5",
            "--out", str(tmp_path / "cli")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"Pr[eta_star > 1] = {uninterrupted.estimate:.4g}" in printed and "95% CI" in printed
    shown = subprocess.run([sys.executable, "-m", "montecarlo", "show", str(tmp_path / "cli")], capture_output=True,
                           text=True, timeout=300)
    assert shown.returncode == 0 and f"= {uninterrupted.estimate:.4g}" in shown.stdout
    assert "3/3 points done" in shown.stderr
    assert main([*argv[:-2], "--out", str(tmp_path / "cli"), "--threshold", "nan"]) == 2
