"""Training grids on Dask: the stored frames equal the serial ones, and interrupted or killed runs resume exactly."""

import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
import torch

import montecarlo as mc
from montecarlo.__main__ import main

# a tiny MLP on digits: 2 runs (two seeds) of 2 epochs, every epoch tracked
GRID = {"model": "mlp", "depth": 1, "width": 16, "lr": 0.1, "seed": [0, 1], "data": "digits", "epochs": 2,
        "track": "linear", "track_points": 3, "pairs": 2, "pair_batch": 16, "probe_size": 8, "batch_size": 100}
# long enough (6 epochs of 144 steps: about a second a run on an idle core) that a worker can be killed between
# a run's first checkpoint and its end
SLOW = dict(GRID, lr=0.02, epochs=6, batch_size=10)


def spec(mapping=GRID):
    return mc.TrainingGrid.from_mapping(mapping)


def frames(store):
    """``{key: frame}`` of every stored run, without the tracking's wall time (the one column that is not a result)."""
    return {key: store.read_point(key)[0].drop(columns="tracking_seconds") for key in sorted(store.done())}


def assert_same_runs(store, reference: dict):
    got = frames(store)
    assert sorted(got) == sorted(reference) and len(got) == 2
    for key in reference:
        pd.testing.assert_frame_equal(got[key], reference[key], check_exact=True)


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The serial grid (the reference), stored by ``run_training`` without a scheduler."""
    store = mc.run_training(spec(), tmp_path_factory.mktemp("serial") / "store", progress=False)
    reference = frames(store)
    assert len(reference) == 2 and all(list(f["epoch"]) == [0, 1, 2] for f in reference.values())
    a, b = reference.values()
    assert not a["train_loss"].equals(b["train_loss"])  # two seeds: two different runs
    return reference


@pytest.fixture
def client(dask_client):
    """A client of the shared two-worker cluster (conftest.py)."""
    return dask_client


def test_a_grid_on_dask_stores_the_frames_of_the_serial_grid(serial, client, tmp_path):
    out = tmp_path / "store"
    store = mc.run_training(spec(), out, scheduler=client, progress=False)
    assert_same_runs(store, serial)
    workers = set(client.run(os.getpid).values())
    for key in store.done():
        metadata = store.read_point(key)[1]
        # trained in a worker process, from the start, by the same code as here
        assert metadata["computed_by"]["pid"] in workers and metadata["computed_by"]["pid"] != os.getpid()
        assert metadata["resumed_from_epoch"] == 0
        assert metadata["provenance"]["code"] == mc.ResultsStore.open_existing(out).status()[key][1]["code"]
    assert list((out / "checkpoints").iterdir()) == []  # removed once stored
    assert list((out / "points").glob("*.claim")) == []  # claims released


def test_a_run_interrupted_after_one_epoch_resumes_on_dask_with_the_numbers_of_an_uninterrupted_run(
        serial, client, tmp_path):
    out = tmp_path / "store"
    grid = spec()
    runs = grid.runs()
    mc.ResultsStore(out, grid.to_dict(), points=runs)  # the store a first call made before it was killed
    (out / "checkpoints").mkdir()
    interrupted = sorted(runs)[0]
    checkpoint = out / "checkpoints" / f"{interrupted}.pt"
    first = mc.train_run(runs[interrupted], grid.settings, checkpoint=checkpoint, progress=False, stop_after=1)
    assert list(first["epoch"]) == [0, 1]
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1

    store = mc.run_training(grid, out, scheduler=client, progress=False)
    assert_same_runs(store, serial)
    resumed = {key: store.read_point(key)[1]["resumed_from_epoch"] for key in runs}
    assert resumed == {key: 1 if key == interrupted else 0 for key in runs}  # the checkpoint was used, not ignored


def test_a_bad_scheduler_is_refused_by_name_before_the_store_is_made(tmp_path):
    for bad in ("nowhere", "", 8786, "tcp:// host:1"):
        with pytest.raises(ValueError, match=r"argument 'scheduler' must be None .* got"):
            mc.run_training(spec(), tmp_path / "store", scheduler=bad, progress=False)
    assert not (tmp_path / "store").exists()


def test_cli_train_on_a_dask_cluster_stores_the_serial_frames(serial, tmp_path, client, dask_cluster, capsys):
    """The command, in a process of its own, trains on a running cluster it reaches by address."""
    config = tmp_path / "grid.toml"
    config.write_text("".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in GRID.items()))
    command = [sys.executable, "-m", "montecarlo", "train", "--config", str(config), "--scheduler",
               dask_cluster.scheduler_address, "--out", str(tmp_path / "cli")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-2000:]
    assert "2/2 runs stored" in stdout and "min minibatch cos" in stdout
    store = mc.ResultsStore(tmp_path / "cli", spec().to_dict())
    assert_same_runs(store, serial)
    workers = set(client.run(os.getpid).values())
    assert all(store.read_point(key)[1]["computed_by"]["pid"] in workers - {process.pid} for key in store.done())
    assert main(["train", "--config", str(config), "--scheduler", "nowhere", "--out", str(tmp_path / "bad")]) == 2
    assert "argument 'scheduler'" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_a_run_whose_worker_is_killed_is_rerun_and_resumes_from_its_checkpoint(tmp_path, client):
    """SIGKILL the worker training a run once its first checkpoint exists; the retry continues from the checkpoint.

    Last in this file, so that the replacement of the killed worker of the shared cluster starts while tests that
    do not need it run."""
    grid = spec(SLOW)
    runs = grid.runs()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # faster on busy cores; the thread count does not enter the numbers (first test)
    try:
        reference = frames(mc.run_training(grid, tmp_path / "serial", progress=False))
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "store"
    pids = client.run(os.getpid)
    errors = []
    runner = threading.Thread(target=_capture, args=(errors, mc.run_training, grid, out),
                              kwargs=dict(scheduler=client, progress=False))
    runner.start()
    killed = None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline and runner.is_alive():
        for address, keys in client.processing().items():
            key = next((k for k in runs if f"gc-train-{k}" in keys
                        and (out / "checkpoints" / f"{k}.pt").exists()), None)
            if key is not None:
                os.kill(pids[address], signal.SIGKILL)
                killed = key, pids[address]
                break
        time.sleep(0.01)
    runner.join(timeout=300)
    assert killed is not None, "no worker was caught between a run's first checkpoint and its end"
    assert not runner.is_alive() and not errors, errors
    store = mc.ResultsStore(out, grid.to_dict())
    assert_same_runs(store, reference)
    key, pid = killed
    metadata = store.read_point(key)[1]
    assert metadata["computed_by"]["pid"] != pid and metadata["resumed_from_epoch"] >= 1


def _capture(errors, func, *args, **kwargs):
    try:
        func(*args, **kwargs)
    except BaseException as error:  # noqa: BLE001 (reported by the test)
        errors.append(error)
