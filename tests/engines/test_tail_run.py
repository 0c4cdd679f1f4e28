"""Rare-tail runs in a results store: resumable level by level, repeats on Dask equal to serial, the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import montecarlo as mc
from montecarlo import TailSpec, rare_tail, run_tail
from montecarlo.__main__ import main
from montecarlo.testing import state_frame, state_from_frame, tail_run

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
    original = tail_run.trial_sampler

    def counting_sampler(*args, **kwargs):
        sampler, config = original(*args, **kwargs)
        function = sampler.function

        def counted(xi):
            evaluated.append(len(xi))
            return function(xi)
        sampler.function = counted
        return sampler, config

    monkeypatch.setattr(tail_run, "trial_sampler", counting_sampler)
    resumed = run_tail(spec, tmp_path / "store", progress=False)
    same_result(resumed, uninterrupted)
    # repeat 0 was finished and repeat 1 resumed after its level 2: far fewer evaluations than a fresh run
    assert 0 < sum(evaluated) < uninterrupted.evaluations / 2


def test_state_tables_round_trip_and_refuse_damage():
    spec = TailSpec.from_mapping(CONFIG)
    sampler, _ = spec.sampler("numpy")
    state = sampler.advance(sampler.advance(sampler.start(0)))
    # eta_star is attained by one pair: its label-sign branch and the pair are tracked
    assert state.summaries == 2 and state.category_counts.shape[0] == 3 and state.detail_counts.shape == (3, 3)
    back = state_from_frame(state_frame(state), "x.parquet")
    for name, array in state.to_arrays().items():
        np.testing.assert_array_equal(back.to_arrays()[name], array)
        assert back.to_arrays()[name].dtype == array.dtype and back.to_arrays()[name].shape == array.shape
    frame = state_frame(state)
    frame.loc[0, "data"] = frame.loc[0, "data"][:-8]
    with pytest.raises(mc.StoreCorrupt, match=r"x.parquet: not a saved subset-simulation state"):
        state_from_frame(frame, "x.parquet")
    frame = state_frame(state)
    frame.loc[0, "dtype"] = "object"
    with pytest.raises(mc.StoreCorrupt, match=r"dtype 'object'"):
        state_from_frame(frame, "x.parquet")


def test_a_state_without_categories_round_trips():
    """A statistic no single pair attains (norm_ratio) tracks no categories: empty (k, 0) tables survive the store."""
    spec = TailSpec.from_mapping(dict(CONFIG, depth=2, statistic="norm_ratio", threshold=0.2, direction="lower"))
    sampler, _ = spec.sampler("numpy")
    state = sampler.advance(sampler.start(0))
    assert state.summaries == 0 and state.category_counts.shape == (2, 0) and state.seed_counts.shape == (1, 0)
    back = state_from_frame(state_frame(state), "x.parquet")
    for name, array in state.to_arrays().items():
        assert back.to_arrays()[name].shape == array.shape
        np.testing.assert_array_equal(back.to_arrays()[name], array)


def _damaged(state, name, change):
    """The state's table with array ``name`` replaced by ``change(array)`` (bytes, dtype and shape consistent)."""
    arrays = state.to_arrays()
    arrays[name] = change(arrays[name])
    frame = state_frame(state)
    row = frame.index[frame["name"] == name][0]
    array = np.ascontiguousarray(arrays[name], dtype="<i8" if arrays[name].dtype.kind in "iu" else "<f8")
    frame.loc[row, ["shape", "data"]] = [",".join(map(str, array.shape)), array.tobytes()]
    return frame


@pytest.mark.parametrize("name,change,message", [
    ("category", lambda a: a.reshape(len(a), 1), r"'category' has shape \(100, 1\)"),
    ("category_counts", lambda a: a[:, ::-1].copy(), r"'category_counts': its last row"),
    ("category_counts", lambda a: a[:-1], r"'category_counts' has shape"),
    ("seed_counts", lambda a: a - 2 * a.max(), r"non-negative"),
    ("cross_moves", lambda a: np.append(a, 0), r"'cross_moves' has shape"),
    ("detail", lambda a: a + 7, r"'detail' holds codes outside"),
    ("detail_counts", lambda a: a + 1, r"every row must count the 100 members"),
])
def test_damaged_category_arrays_are_refused(name, change, message):
    spec = TailSpec.from_mapping(CONFIG)
    sampler, _ = spec.sampler("numpy")
    state = sampler.advance(sampler.advance(sampler.start(0)))
    with pytest.raises(mc.StoreCorrupt, match=rf"x.parquet: not a saved subset-simulation state .*{message}"):
        state_from_frame(_damaged(state, name, change), "x.parquet")


def test_repeats_on_a_local_dask_cluster_equal_the_serial_run(tmp_path, uninterrupted, dask_client):
    distributed = run_tail(TailSpec.from_mapping(CONFIG), tmp_path / "dask", scheduler=dask_client, progress=False)
    same_result(distributed, uninterrupted)


@pytest.mark.parametrize("mapping, message", [
    (dict(CONFIG, widht=3), r"unknown tail key\(s\) 'widht'"),
    ({k: v for k, v in CONFIG.items() if k != "threshold"}, r"needs 'threshold'"),
    (dict(CONFIG, width=[8, 16]), r"argument 'width': a tail run takes one value"),
    (dict(CONFIG, threshold=float("nan")), r"argument 'threshold' must be a finite real number"),
    (dict(CONFIG, statistic="eta"), r"argument 'statistic'"),
    (dict(CONFIG, population=5), r"population"),
    (dict(CONFIG, repeats=2.5), r"argument 'repeats' must be an integer"),
    (dict(CONFIG, strict="yes"), r"argument 'strict' must be true or false"),
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
    assert "t-interval of the mean of 2 repeats" in printed and "Au-Beck approximate CoV" in printed
    for r, shares in enumerate(uninterrupted.branch_shares):  # one line per repeat: level 0 -> last level
        assert f"repeat {r}: {shares[0][0]:.2f}/{shares[0][1]:.2f} -> {shares[-1][0]:.2f}/" in printed
    assert all(f"warning: {w}" in printed for w in uninterrupted.warnings)
    if not uninterrupted.warnings:
        assert "no collapsed population" in printed
    assert main(["show", str(tmp_path / "cli")]) == 0
    shown = capsys.readouterr()
    assert f"= {uninterrupted.estimate:.4g}" in shown.out and "3/3 points done" in shown.err
    assert main([*argv[:-2], "--out", str(tmp_path / "cli"), "--threshold", "nan"]) == 2


def test_defaults_and_strict_leave_the_store_identity_alone():
    spec = TailSpec.from_mapping({k: v for k, v in CONFIG.items() if k != "repeats"})
    assert spec.settings["repeats"] == 10 and spec.settings["strict"] is False
    strict = TailSpec.from_mapping(dict(CONFIG, strict=True))
    assert strict.to_dict() == TailSpec.from_mapping(CONFIG).to_dict()  # a policy, not a number
    assert strict.sampler("numpy")[0].strict


def test_cli_prints_warnings_and_strict_exits_4(tmp_path, capsys):
    """Population 50 (5 seeds per level): both repeats' populations fall into one label-sign branch of the pair
    attaining eta*.  The tail output prints each warning; --strict exits with code 4 naming repeat 0, both on a
    fresh store (raised at the level) and on the finished store of the run without it (raised at the summary)."""
    argv = ["tail", "--width", "8", "--depth", "1", "--d", "4", "--n-samples", "3", "--activation", "tanh",
            "--statistic", "eta_star", "--threshold", "1", "--population", "50", "--repeats", "2", "--seed", "0"]
    assert main([*argv, "--out", str(tmp_path / "lenient")]) == 0
    printed = capsys.readouterr().out
    assert "warning: repeat 0: the population collapsed into one category at level" in printed
    assert "warning: repeat 1: the population collapsed" in printed
    for out in ("strict", "lenient"):
        assert main([*argv, "--out", str(tmp_path / out), "--strict"]) == 4
        error = capsys.readouterr().err.rsplit("\r", 1)[-1]  # after the progress bar, if any
        assert error.startswith("error: repeat 0: the population collapsed into one category at level ")
        assert "(shares at level 0: y_i y_j = +1: " in error


TRIAL_MODULE = '''
import torch
from torch import nn
import montecarlo as mc


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp, self.norm, self.out = nn.Linear(4, 6), nn.LayerNorm(6), nn.Linear(6, 1)

    def forward(self, x):
        return self.out(torch.tanh(self.norm(self.inp(x))))


def trial():
    return mc.ModuleTrial(Tiny, 3, labels="random_sign", loss="square")
'''


def test_cli_tail_of_any_trial_named_module_colon_name_is_the_api_result(tmp_path, monkeypatch, capsys):
    """``tail --trial pkg:name`` runs a user's torch module through the store: the numbers of ``rare_tail`` itself."""
    (tmp_path / "user_trials.py").write_text(TRIAL_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = dict(statistic="min_cosine", direction="lower", threshold=-0.9, population=100, repeats=2, seed=3)
    flags = ["--statistic", "min_cosine", "--direction", "lower", "--threshold", "-0.9", "--population", "100",
             "--repeats", "2", "--seed", "3"]
    assert main(["tail", "--trial", "user_trials:trial", *flags, "--out", str(tmp_path / "store")]) == 0
    import user_trials

    direct = rare_tail(user_trials.trial(), **settings)
    frame, summary = tail_run.stored_tail(mc.ResultsStore.open_existing(tmp_path / "store"))
    assert summary["estimate"] == direct.estimate and summary["interval"] == list(direct.interval)
    assert summary["config"]["point"]["config"]["module"] == "Tiny"
    assert "Pr[min_cosine < -0.9]" in capsys.readouterr().out
    for argv, message in ((["--trial", "user_trials:nothing"], "has no 'nothing'"),
                          (["--trial", "no_such_module:trial"], "cannot import 'no_such_module'"),
                          (["--trial", "user_trials"], "must read 'package.module:name'"),
                          (["--trial", "user_trials:trial", "--width", "8"], "leave out 'width'")):
        assert main(["tail", *argv, *flags, "--out", str(tmp_path / "other")]) == 2
        assert message in capsys.readouterr().err


def test_a_config_file_may_not_name_code_to_import(tmp_path, monkeypatch, capsys):
    """A TOML file is data (it may come from someone else): 'trial' in it is refused before anything is imported."""
    (tmp_path / "planted.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "tail.toml").write_text('trial = "planted:trial"\nthreshold = -0.9\n')
    assert main(["tail", "--config", str(tmp_path / "tail.toml"), "--out", str(tmp_path / "store")]) == 2
    assert "may not name code to import (trial); give --trial on the command line" in capsys.readouterr().err
    assert not (tmp_path / "ran").exists()
