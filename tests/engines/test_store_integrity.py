"""The results store under damage, concurrency and code changes: nothing stale, nothing corrupt, nothing lost."""

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest

import montecarlo as mc
from montecarlo import StoreCorrupt, StoreMismatch
from montecarlo.testing import provenance, writer_host
from montecarlo.testing import sweep as sweep_module

TINY = {"width": [8, 12], "depth": 1, "d": 4, "n_samples": 4, "activation": "tanh", "trials": 16, "seed": 5}


def tiny(**changes):
    return mc.SweepSpec.from_mapping(TINY | changes)


def values(store, keys):
    return {key: store.read_point(key)[0] for key in sorted(keys)}


def assert_same_values(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        pd.testing.assert_frame_equal(a[key], b[key], check_exact=True)


def counting(calls):
    """``compute_point`` that records the point it computes."""
    real = sweep_module.compute_point

    def compute(point, **kwargs):
        calls.append(point)
        return real(point, **kwargs)

    return compute


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def temporary(folder, name, pid):
    path = folder / f".{name}.{writer_host()}.{pid}.{'a' * 32}.tmp"
    path.write_bytes(b"half written")
    return path


def test_atomic_write_puts_a_whole_file_or_leaves_the_old_one(tmp_path, monkeypatch):
    """``montecarlo.atomic_write``, the store's write that checkpoints and the figures' runner use too: bytes, or text
    as UTF-8; no temporary is left behind; a write that fails before its rename leaves the old file as it was."""
    target = tmp_path / "f.txt"
    mc.atomic_write(target, b"old")
    mc.atomic_write(str(target), "ne\u0301w\n")  # a path as a string, text as UTF-8
    assert target.read_bytes() == "ne\u0301w\n".encode() and list(tmp_path.iterdir()) == [target]

    def crash(source, destination):
        raise OSError("the machine went down before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="before the rename"):
        mc.atomic_write(target, b"new bytes that never land")
    assert target.read_bytes() == "ne\u0301w\n".encode() and list(tmp_path.iterdir()) == [target]


def test_only_temporaries_of_dead_writers_are_removed_and_readers_remove_nothing(tmp_path):
    spec = tiny()
    store = mc.run_sweep(spec, tmp_path / "s", backend="numpy", progress=False)
    live = temporary(store.points_dir, "k.parquet", os.getpid())  # this process: a writer in flight
    dead = temporary(store.points_dir, "k.parquet", dead_pid())
    dead_manifest = temporary(store.root, "manifest.json", dead_pid())
    unnamed = store.points_dir / ".k.parquet.0123.tmp"  # no writer in its name, and young: kept
    unnamed.write_bytes(b"?")

    reader = mc.ResultsStore.open_existing(store.root)  # what `show` opens
    assert live.exists() and dead.exists() and dead_manifest.exists() and unnamed.exists()
    assert reader.done() == set(spec.points()) and reader.corrupt() == {} and reader.stale() == {}

    mc.ResultsStore(store.root, spec.to_dict())  # a second writer
    assert live.exists() and unnamed.exists()
    assert not dead.exists() and not dead_manifest.exists()


def test_readers_and_a_second_opener_during_a_writer_see_no_error_and_end_verified(tmp_path):
    spec = tiny(width=[8, 12, 16])
    store = mc.run_sweep(spec, tmp_path / "s", backend="numpy", progress=False)
    stored = {key: store.read_point(key) for key in spec.points()}
    errors, stop = [], threading.Event()

    def writer():
        own = mc.ResultsStore(store.root, spec.to_dict())
        try:
            while not stop.is_set():
                for key, (frame, metadata) in stored.items():
                    own.write_point(key, frame, metadata)  # rewrites: same numbers, new files
        except BaseException as error:  # noqa: BLE001 (reported by the test)
            errors.append(error)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline, looks = time.monotonic() + 4, 0
        while time.monotonic() < deadline and not errors:
            reader = (mc.ResultsStore.open_existing(store.root) if looks % 2
                      else mc.ResultsStore(store.root, spec.to_dict()))
            assert reader.corrupt() == {}
            for key in reader.done():
                frame, _ = reader.read_point(key)
                pd.testing.assert_frame_equal(frame, stored[key][0], check_exact=True)
            looks += 1
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors, errors
    assert looks > 5
    final = mc.ResultsStore.open_existing(store.root)
    assert final.done() == set(spec.points()) and final.corrupt() == {} and final.in_flight() == {}
    assert not list(store.points_dir.glob(".*.tmp")) and not list(store.points_dir.glob("*.claim"))


WRITER = r"""
import hashlib, json, os, sys, time
import pandas as pd
import montecarlo as mc
from montecarlo.testing import provenance, sweep
out, log, go, mapping = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
real = sweep.compute_point
def counted(point, **kwargs):
    with open(log, "a") as handle:
        handle.write(json.dumps(point, sort_keys=True) + "\n")
    time.sleep(0.3)  # long enough for the two writers to overlap on every point
    return real(point, **kwargs)
sweep.compute_point = counted
spec = mc.SweepSpec.from_mapping(mapping)
open(log + ".ready", "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
store = mc.run_sweep(spec, out, backend="numpy", progress=False)
digest = lambda frame: hashlib.sha256(pd.util.hash_pandas_object(frame).values.tobytes()).hexdigest()
print(json.dumps({"code": provenance.code_fingerprint(), "done": sorted(store.done()),
                  "values": {k: digest(store.read_point(k)[0]) for k in sorted(store.done())}}))
"""


def test_two_identical_sweeps_started_together_compute_each_point_once_and_both_end_complete(tmp_path):
    mapping = TINY | {"width": [8, 12, 16], "activation": ["tanh", "relu"]}
    spec = mc.SweepSpec.from_mapping(mapping)
    go = tmp_path / "go"
    logs = [tmp_path / f"writer{i}.log" for i in range(2)]
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "shared"), str(log), str(go),
                                 json.dumps(mapping)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for log in logs]
    deadline = time.monotonic() + 180
    while not all((tmp_path / f"writer{i}.log.ready").exists() for i in range(2)):
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
    assert sorted(computed) == sorted(json.dumps(p, sort_keys=True) for p in spec.points().values())  # once each
    assert all(log.exists() for log in logs), "one writer computed everything: the test did not overlap them"
    assert results[0]["done"] == results[1]["done"] == sorted(spec.points())
    assert results[0]["values"] == results[1]["values"]
    shared = mc.ResultsStore.open_existing(tmp_path / "shared")
    serial = mc.run_sweep(spec, tmp_path / "serial", backend="numpy", progress=False)
    assert_same_values(values(shared, spec.points()), values(serial, spec.points()))


def test_truncated_emptied_bit_flipped_and_unchecksummed_points_are_named_and_recomputed(tmp_path, monkeypatch):
    spec = tiny(width=[8, 12, 16, 20])
    store = mc.run_sweep(spec, tmp_path / "s", backend="numpy", progress=False)
    original = values(store, spec.points())
    truncated, emptied, flipped, unchecked = sorted(spec.points())

    def path(key):  # the store's layout: points/<key>.parquet, and its checksum file points/<key>.sha256
        return store.points_dir / f"{key}.parquet"

    data = path(truncated).read_bytes()
    path(truncated).write_bytes(data[: len(data) // 2])
    path(emptied).write_bytes(b"")
    data = bytearray(path(flipped).read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, in the middle of the file
    path(flipped).write_bytes(bytes(data))
    (store.points_dir / f"{unchecked}.sha256").unlink()

    corrupt = mc.ResultsStore.open_existing(store.root).corrupt()
    assert set(corrupt) == {truncated, emptied, flipped, unchecked}
    assert "truncated" in corrupt[truncated] and "empty" in corrupt[emptied]
    assert "changed bytes" in corrupt[flipped] and "no checksum file" in corrupt[unchecked]
    assert store.done() == set()
    with pytest.raises(StoreCorrupt, match=rf"{flipped}\.parquet: .*changed bytes"):
        store.read_point(flipped)
    assert mc.tail_table(store).empty  # nothing damaged reaches a table

    calls = []
    monkeypatch.setattr(sweep_module, "compute_point", counting(calls))
    again = mc.run_sweep(spec, store.root, backend="numpy", progress=False)
    assert len(calls) == 4 and again.corrupt() == {} and again.done() == set(spec.points())
    assert_same_values(values(again, spec.points()), original)


def test_a_damaged_manifest_is_reported_by_name_and_never_silently_replaced(tmp_path):
    spec = tiny()
    store = mc.run_sweep(spec, tmp_path / "s", backend="numpy", progress=False)
    manifest = store.root / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(text[: len(text) // 2])
    for opener in (lambda: mc.ResultsStore.open_existing(store.root), lambda: mc.ResultsStore(store.root,
                                                                                               spec.to_dict())):
        with pytest.raises(StoreCorrupt, match=rf"{manifest}: not valid JSON"):
            opener()
    with pytest.raises(StoreCorrupt, match="verified point"):  # a writer refuses: it would orphan results
        mc.run_sweep(spec, store.root, backend="numpy", progress=False)
    assert manifest.read_text() == text[: len(text) // 2]  # left as it was

    manifest.write_text("{}")
    with pytest.raises(StoreCorrupt, match=rf"{manifest}: missing 'format', 'hash', 'configuration'"):
        mc.ResultsStore.open_existing(store.root)
    manifest.write_text(json.dumps({**json.loads(text), "hash": "0" * 64}))
    with pytest.raises(StoreCorrupt, match="'hash' does not match its 'configuration'"):
        mc.ResultsStore.open_existing(store.root)

    with pytest.raises(StoreMismatch, match=rf"{tmp_path} is not a results store \(no manifest.json\)"):
        mc.ResultsStore.open_existing(tmp_path)
    empty = tmp_path / "empty"
    (empty / "points").mkdir(parents=True)
    (empty / "manifest.json").write_text("{")  # a crash while the store was created: nothing to lose
    fresh = mc.ResultsStore(empty, spec.to_dict())
    assert fresh.manifest["hash"] == fresh.hash


def test_points_of_other_code_are_stale_recomputed_and_never_mixed(tmp_path, monkeypatch):
    spec = tiny()
    store = mc.run_sweep(spec, tmp_path / "s", backend="numpy", progress=False)
    old_code = provenance.code_fingerprint()
    first, second = sorted(spec.points())
    assert store.read_point(first)[1]["provenance"]["code"] == old_code
    monkeypatch.setattr(provenance, "code_fingerprint", lambda: "feedfacefeedface")  # the code changed

    assert store.done() == set() and set(store.stale()) == {first, second}
    assert store.stale()[first]["code"] == old_code
    assert mc.tail_table(store).empty and store.frame().empty

    calls = []
    real = sweep_module.compute_point

    def interrupt_on_second(point, **kwargs):
        calls.append(point)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(point, **kwargs)

    monkeypatch.setattr(sweep_module, "compute_point", interrupt_on_second)
    with pytest.raises(KeyboardInterrupt):
        mc.run_sweep(spec, store.root, backend="numpy", progress=False)
    half = mc.ResultsStore.open_existing(store.root)
    (recomputed,) = half.done()
    assert set(half.stale()) == {first, second} - {recomputed}
    assert set(mc.tail_table(half)["point"]) == {recomputed}  # old numbers are not mixed in

    monkeypatch.setattr(sweep_module, "compute_point", real)
    resumed = []
    monkeypatch.setattr(sweep_module, "compute_point", counting(resumed))
    again = mc.run_sweep(spec, store.root, backend="numpy", progress=False)
    assert len(resumed) == 1 and again.done() == {first, second} and again.stale() == {}
    for key in (first, second):
        assert again.read_point(key)[1]["provenance"]["code"] == "feedfacefeedface"
    assert set(mc.tail_table(again)["point"]) == {first, second}


def test_figure_data_are_recomputed_when_the_monte_carlo_code_changes(tmp_path, monkeypatch):
    import paper_figures
    from paper_figures import _runner

    name = "F1_linear_regression"
    calls = []

    def compute(scale, context):
        calls.append(scale)
        return pd.DataFrame({"run": [len(calls)]})

    monkeypatch.setitem(paper_figures.FIGURES, name, dataclasses.replace(paper_figures.FIGURES[name],
                                                                         compute=compute))
    assert _runner.figure_data(name, "fast", tmp_path, progress=False)["run"].tolist() == [1]
    assert _runner.figure_data(name, "fast", tmp_path, progress=False)["run"].tolist() == [1]  # reused
    record = json.loads((tmp_path / "figures" / name / f"{name}.json").read_text())
    assert record["commit"] == provenance.git_commit() and record["code"] == _runner.figure_fingerprint()

    monkeypatch.setattr(provenance, "code_fingerprint", lambda: "feedfacefeedface")  # montecarlo/theory changed
    assert _runner.figure_data(name, "fast", tmp_path, progress=False)["run"].tolist() == [2]
    assert calls == ["fast", "fast"]
    assert not list((tmp_path / "figures" / name).glob(".*.tmp"))
