"""Sweeps: resumable, interrupt-safe, refusing foreign stores, identical serially and on Dask (with dying workers)."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

import montecarlo as mc
from montecarlo.__main__ import main
from montecarlo.testing import sweep as sweep_module
from montecarlo.testing import sweep_dask_client, writer_host

GRID = {"width": [8, 16], "depth": [1, 2], "d": 4, "n_samples": 5, "activation": "tanh", "trials": 20, "seed": 3}


def spec(**changes):
    return mc.SweepSpec.from_mapping(GRID | changes)


def frames(store):
    return {key: store.read_point(key)[0] for key in sorted(store.done())}


def assert_same_results(a, b):
    fa, fb = frames(a), frames(b)
    assert fa.keys() == fb.keys()
    for key in fa:
        pd.testing.assert_frame_equal(fa[key], fb[key], check_exact=True)


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    return mc.run_sweep(spec(), tmp_path_factory.mktemp("serial") / "store", backend="numpy", progress=False)


def test_serial_sweep_stores_every_point_with_its_metadata(serial):
    points = spec().points()
    assert serial.done() == set(points)
    frame, metadata = serial.read_point(next(iter(points)))
    assert len(frame) == 20
    assert metadata["config"] == points[next(iter(points))]
    assert {"config_hash", "seed", "backend", "seconds", "versions"} <= set(metadata)
    assert serial.manifest["hash"] == serial.hash and len(serial.manifest["points"]) == 4


def test_rerun_computes_nothing_already_done(serial, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("recomputed a finished point")

    monkeypatch.setattr(sweep_module, "compute_point", refuse)
    store = mc.run_sweep(spec(), serial.root, backend="numpy", progress=False)
    assert store.done() == set(spec().points())


def test_interrupted_sweep_loses_only_the_point_in_flight_and_resumes(serial, tmp_path, monkeypatch):
    calls = []
    real = sweep_module.compute_point

    def interrupt_on_third(point, **kwargs):
        calls.append(point)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the third point is being computed
        return real(point, **kwargs)

    monkeypatch.setattr(sweep_module, "compute_point", interrupt_on_third)
    with pytest.raises(KeyboardInterrupt):
        mc.run_sweep(spec(), tmp_path / "store", backend="numpy", progress=False)
    assert len(mc.ResultsStore(tmp_path / "store", spec().to_dict()).done()) == 2
    calls.clear()
    monkeypatch.setattr(sweep_module, "compute_point", lambda point, **kw: calls.append(point) or real(point, **kw))
    resumed = mc.run_sweep(spec(), tmp_path / "store", backend="numpy", progress=False)
    assert len(calls) == 2  # only the missing points
    # no duplicates, no leftovers (temporaries, claims): one Parquet file and its checksum file per point
    assert sorted(p.name for p in (tmp_path / "store" / "points").iterdir()) == sorted(
        f"{key}{suffix}" for key in spec().points() for suffix in (".parquet", ".sha256"))
    assert_same_results(resumed, serial)


def test_a_half_written_file_is_not_a_result(serial, tmp_path):
    store = mc.run_sweep(spec(), tmp_path / "store", backend="numpy", progress=False)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)  # a process that has exited: its temporary is abandoned
    stale = store.points_dir / f".abc.parquet.{writer_host()}.{dead_pid}.{'0' * 32}.tmp"
    stale.write_bytes(b"partial")
    reopened = mc.ResultsStore(tmp_path / "store", spec().to_dict())
    assert not stale.exists() and reopened.done() == store.done()


def test_a_store_of_another_configuration_is_refused(serial):
    with pytest.raises(mc.StoreMismatch, match=r"different configuration \(differs in: trials\)"):
        mc.run_sweep(spec(trials=21), serial.root, backend="numpy", progress=False)


def test_bad_sweep_configurations_are_refused_before_computing():
    with pytest.raises(ValueError, match=r"unknown sweep key\(s\) 'widht'"):
        mc.SweepSpec.from_mapping({"widht": [3], "trials": 2})
    with pytest.raises(ValueError, match=r"is impossible: argument 'kappa' must be a finite real number > 0"):
        mc.SweepSpec.from_mapping({"kappa": [1.0, -1.0], "trials": 2})
    with pytest.raises(ValueError, match=r"a sweep needs 'trials'"):
        mc.SweepSpec.from_mapping({"width": [3]})


@pytest.mark.parametrize("workers", [1, 2])
def test_dask_sweep_equals_serial_for_any_worker_count(serial, tmp_path, workers, dask_client):
    import dask

    pids = dask_client.run(os.getpid)  # {address: pid} of the shared cluster's two workers
    allowed = sorted(pids)[:workers]
    # one worker: every task restricted to it, which computes every point in turn as a one-worker cluster would
    with dask.annotate(workers=allowed) if workers < len(pids) else contextlib.nullcontext():
        store = mc.run_sweep(spec(), tmp_path / "store", scheduler=dask_client, backend="numpy", progress=False)
    assert_same_results(store, serial)
    computed_by = {store.read_point(key)[1]["computed_by"]["pid"] for key in store.done()}
    assert computed_by <= {pids[address] for address in allowed} and os.getpid() not in computed_by


def test_cli_sweep_on_a_dask_cluster_equals_the_serial_result(tmp_path, dask_client, dask_cluster, capsys):
    """The command line computes on a running cluster it reaches by address (``--scheduler tcp://...``); ``main``
    in this process, as in test_cli_errors (test_training_dask runs ``train --scheduler`` as a process of its own)."""
    grid = {"width": [8, 16], "depth": 1, "d": 4, "n_samples": 5, "activation": "tanh", "trials": 16, "seed": 3}
    reference = mc.run_sweep(mc.SweepSpec.from_mapping(grid), tmp_path / "serial", backend="numpy", progress=False)
    argv = ["sweep", "--width", "8", "16", "--depth", "1", "--d", "4", "--n-samples", "5", "--activation", "tanh",
            "--trials", "16", "--seed", "3", "--backend", "numpy", "--scheduler", dask_cluster.scheduler_address,
            "--out", str(tmp_path / "cli")]
    code, done = main(argv), capsys.readouterr()
    assert code == 0, done.err[-2000:]
    assert "2/2 points stored" in done.out and "95% CI" in done.out
    store = mc.ResultsStore(tmp_path / "cli", mc.SweepSpec.from_mapping(grid).to_dict())
    assert_same_results(store, reference)
    workers = set(dask_client.run(os.getpid).values())
    assert all(store.read_point(key)[1]["computed_by"]["pid"] in workers - {os.getpid()} for key in store.done())
    assert main(["show", str(tmp_path / "cli"), "--eta", "0.1"]) == 0
    shown = capsys.readouterr().out
    assert "eta* > 0.1" in shown and "min cos < -0.25" in shown


def test_points_of_a_worker_that_dies_are_rerun_not_lost(tmp_path, dask_client):
    """Kill a worker process (SIGKILL) while it computes a point; the sweep still finishes with every point.

    After the other tests on the shared cluster in this file, so that its replacement starts while tests that do
    not need it run."""
    slow = spec(trials=3000, width=[32, 48], depth=[2, 3])
    reference = mc.run_sweep(slow, tmp_path / "serial", backend="numpy", progress=False)
    client = dask_client
    pids = client.run(os.getpid)
    errors = []
    runner = threading.Thread(target=lambda: _capture(errors, mc.run_sweep, slow, tmp_path / "dask",
                                                      scheduler=client, backend="numpy", progress=False))
    runner.start()
    killed = None
    deadline = time.time() + 60
    while killed is None and time.time() < deadline:
        busy = [address for address, tasks in client.processing().items() if tasks]
        if busy:
            time.sleep(0.3)  # let it get into the point
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed = busy[0]
        time.sleep(0.05)
    runner.join(timeout=300)
    assert killed is not None and not errors, errors
    store = mc.ResultsStore(tmp_path / "dask", slow.to_dict())
    assert_same_results(store, reference)


def _capture(errors, func, *args, **kwargs):
    try:
        func(*args, **kwargs)
    except BaseException as error:  # noqa: BLE001 (reported by the test)
        errors.append(error)


def test_scheduler_local_is_one_single_threaded_worker_process_per_core_and_is_closed_after():
    """``scheduler="local"`` (the command line's ``--scheduler local``): the cluster it starts, and stops."""
    with sweep_dask_client("local") as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == (os.cpu_count() or 1) and all(w["nthreads"] == 1 for w in workers.values())
        pids = set(client.run(os.getpid).values())
        assert len(pids) == len(workers) and os.getpid() not in pids  # worker processes, not threads here
        cluster = client.cluster
    assert client.status == "closed" and cluster.status.name == "closed"


def test_cli_refuses_a_bad_configuration_before_computing(tmp_path, capsys):
    config = tmp_path / "sweep.toml"
    config.write_text('width = [16]\ntrials = 10\nwidht = [3]\n')
    assert main(["sweep", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "unknown sweep key(s) 'widht'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    config.write_text('width = [16, 0]\ntrials = 10\n')
    assert main(["sweep", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "argument 'width' must be an integer >= 1, got 0" in capsys.readouterr().err


def test_bound_fitting_hook_applies_to_a_sweep_tail_table(serial):
    import numpy as np

    import theory

    table = mc.tail_table(serial, etas=[0.05, 0.2])
    fit = mc.fit_bound_constant(table, theory.theorem_4_1_sphere, "c2", fixed={"c1": np.inf})
    rows = table[table["event"] == "eta* > threshold"]
    direct = theory.fit_constant(theory.theorem_4_1_sphere, "c2", rows["lower"], fixed={"c1": np.inf},
                                 width=rows["width"], beta=rows["depth"], d=rows["d"], N=rows["n_samples"],
                                 eta=rows["threshold"], kappa=rows["kappa"])
    assert fit.upper == direct.upper and fit.exists
