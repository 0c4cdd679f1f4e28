"""Tail repeats are claimed as sweep points are: two writers on one folder compute every level of every repeat
once between them and end with the same result; a repeat held by a live writer is waited for, and the claim of a
dead writer is taken over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import montecarlo as mc
from montecarlo import TailSpec, run_tail
from montecarlo.testing import tail_run, writer_host

CONFIG = dict(width=8, depth=1, d=4, n_samples=3, activation="tanh", statistic="eta_star", threshold=1.0,
              population=100, repeats=2, seed=5)


WRITER = r"""
import json, os, sys, time
import montecarlo as mc
from montecarlo.testing import provenance, tail_run
out, log, go, mapping = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
real = tail_run._saver
def saver(store, key, spec):
    save = real(store, key, spec)
    def logged(state):
        with open(log, "a") as handle:
            handle.write(f"{key} {state.level} {int(state.done)}\n")
        time.sleep(0.1)  # long enough for the two writers to overlap on every repeat
        save(state)
    return logged
tail_run._saver = saver
spec = mc.TailSpec.from_mapping(mapping)
open(log + ".ready", "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
result = mc.run_tail(spec, out, backend="numpy", progress=False)
print(json.dumps({"code": provenance.code_fingerprint(), "estimate": result.estimate,
                  "interval": list(result.interval), "estimates": result.estimates.tolist(),
                  "evaluations": result.evaluations, "tail": result.tail.to_numpy().tolist()}))
"""


def _logging_saver(monkeypatch, lines):
    real = tail_run._saver

    def saver(store, key, spec):
        save = real(store, key, spec)

        def logged(state):
            lines.append(f"{key} {state.level} {int(state.done)}")
            save(state)
        return logged

    monkeypatch.setattr(tail_run, "_saver", saver)


def test_two_tail_writers_on_one_folder_compute_each_level_once_and_end_alike(tmp_path, monkeypatch):
    mapping = {**CONFIG, "repeats": 4}
    expected = []
    _logging_saver(monkeypatch, expected)
    serial = run_tail(TailSpec.from_mapping(mapping), tmp_path / "serial", backend="numpy", progress=False)
    go = tmp_path / "go"
    logs = [tmp_path / f"writer{i}.log" for i in range(2)]
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "shared"), str(log), str(go),
                                 json.dumps(mapping)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
               for log in logs]
    deadline = time.monotonic() + 180
    while not all(log.with_name(log.name + ".ready").exists() for log in logs):
        assert time.monotonic() < deadline and all(w.poll() is None for w in writers), \
            [w.communicate()[1][-2000:] for w in writers if w.poll() is not None]
        time.sleep(0.05)
    go.touch()  # both start at once
    results = []
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    if results[0]["code"] != results[1]["code"]:
        pytest.skip("the package source changed between the two writers' starts")
    computed = [line for log in logs if log.exists() for line in log.read_text().splitlines()]
    assert sorted(computed) == sorted(expected)  # every level of every repeat once, between the two
    assert all(log.exists() and log.read_text() for log in logs), "one writer computed everything: no overlap"
    first, second = results
    assert first == second
    assert first["estimate"] == serial.estimate and first["interval"] == list(serial.interval)
    assert first["estimates"] == serial.estimates.tolist() and first["evaluations"] == serial.evaluations
    np.testing.assert_array_equal(np.array(first["tail"]), serial.tail.to_numpy())
    assert not list((tmp_path / "shared" / "points").glob("*.claim"))


def _plant_claim(store, key, pid):
    path = store.points_dir / f"{key}.claim"
    path.write_text(json.dumps({"pid": pid, "host": writer_host(), "time": time.time(), "token": "0" * 32}))
    return path


def test_a_repeat_held_by_a_live_writer_is_waited_for_and_a_dead_writers_claim_taken_over(tmp_path, monkeypatch):
    """A claim on repeat-0 of a live process: run_tail computes repeat-1 and waits; once that process has exited
    (its claim now a dead writer's), repeat-0 is taken over and the result is the uninterrupted run's."""
    spec = TailSpec.from_mapping(CONFIG)
    computed, outcome = [], {}
    _logging_saver(monkeypatch, computed)
    serial = run_tail(spec, tmp_path / "serial", backend="numpy", progress=False)
    expected = list(computed)
    computed.clear()
    store = mc.ResultsStore(tmp_path / "store", spec.to_dict())
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        claim = _plant_claim(store, "repeat-0", holder.pid)
        worker = threading.Thread(target=lambda: outcome.update(
            result=run_tail(spec, tmp_path / "store", backend="numpy", progress=False)), daemon=True)
        worker.start()
        deadline = time.monotonic() + 60
        while not any(line.startswith("repeat-1") and line.endswith(" 1") for line in computed):
            assert time.monotonic() < deadline and worker.is_alive(), computed
            time.sleep(0.05)
        time.sleep(1.5)  # three looks at the claim: still held
        assert worker.is_alive() and not any(line.startswith("repeat-0") for line in computed)
        assert claim.exists()
    finally:
        holder.kill()
        holder.wait()  # reaped: its pid is gone, its claim a dead writer's
    worker.join(timeout=120)
    assert not worker.is_alive()
    result = outcome["result"]
    assert sorted(computed) == sorted(expected)  # repeat-0 computed once, after the takeover
    assert result.estimate == serial.estimate and result.interval == serial.interval
    np.testing.assert_array_equal(result.estimates, serial.estimates)
    assert not claim.exists()
