"""A stored point is the point its name says: one point's files copied over another's are named and recomputed.

A point's checksum file records which point it is (the store and the key); the checksum alone cannot tell a copy
of point B under the name of point A, since B's bytes match B's checksum.
"""

import shutil

import pandas as pd
import pytest

import montecarlo as mc
from montecarlo import StoreCorrupt, StoreMismatch
from montecarlo.__main__ import main
from montecarlo.testing import sweep as sweep_module

GRID = {"width": [8, 12, 16], "depth": 1, "d": 4, "n_samples": 4, "activation": "tanh", "trials": 16, "seed": 5}


def spec():
    return mc.SweepSpec.from_mapping(GRID)


def test_a_point_copied_over_another_is_named_and_recomputed_with_its_own_numbers(tmp_path, monkeypatch, capsys):
    store = mc.run_sweep(spec(), tmp_path / "s", backend="numpy", progress=False)
    original = {key: store.read_point(key) for key in spec().points()}
    a, b, _ = sorted(spec().points())
    for suffix in (".parquet", ".sha256"):  # the store's layout: points/<key>.parquet and points/<key>.sha256
        shutil.copyfile(store.points_dir / f"{b}{suffix}", store.points_dir / f"{a}{suffix}")

    reader = mc.ResultsStore.open_existing(store.root)
    assert set(reader.corrupt()) == {a} and reader.done() == set(spec().points()) - {a}
    assert b in reader.corrupt()[a] and a in reader.corrupt()[a]  # the reason names the point it claims to be
    with pytest.raises(StoreCorrupt, match=rf"{a}\.parquet: .*{b}"):
        reader.read_point(a)
    table = mc.tail_table(reader)
    assert set(table["point"]) == set(spec().points()) - {a}  # B once, A absent: never B under A's name
    assert table.groupby("point")["width"].nunique().eq(1).all()
    assert main(["show", str(store.root)]) == 0
    shown = capsys.readouterr()
    assert "2/3 points done" in shown.err and f"1 corrupt (a rerun recomputes them): {a} (" in shown.err
    assert shown.out.count("eta* >") == 2 * 2  # two rows (thresholds) for each of the two points left

    calls = []
    real = sweep_module.compute_point
    monkeypatch.setattr(sweep_module, "compute_point", lambda point, **kw: calls.append(point) or real(point, **kw))
    again = mc.run_sweep(spec(), store.root, backend="numpy", progress=False)
    assert calls == [spec().points()[a]] and again.corrupt() == {} and again.done() == set(spec().points())
    assert f"recomputing corrupt point {a}" in capsys.readouterr().err
    frame, metadata = again.read_point(a)
    pd.testing.assert_frame_equal(frame, original[a][0], check_exact=True)
    assert metadata["config"] == spec().points()[a] == original[a][1]["config"]


def test_a_point_copied_from_another_store_is_not_taken_for_this_stores(tmp_path):
    """Same key, other store (another seed: the same point configuration, other numbers)."""
    here = mc.run_sweep(spec(), tmp_path / "here", backend="numpy", progress=False)
    other_spec = mc.SweepSpec.from_mapping(GRID | {"seed": 6})
    other = mc.run_sweep(other_spec, tmp_path / "other", backend="numpy", progress=False)
    key, other_key = sorted(spec().points())[0], sorted(other_spec.points())[0]
    for suffix in (".parquet", ".sha256"):
        shutil.copyfile(other.points_dir / f"{other_key}{suffix}", here.points_dir / f"{key}{suffix}")
    assert set(mc.ResultsStore.open_existing(here.root).corrupt()) == {key}


def test_read_verified_names_the_file_for_damage_and_for_a_claim_of_another_file(tmp_path):
    path = tmp_path / "data.bin"
    record = mc.write_verified(path, b"0123456789", claims={"what": "a"}, code="c0de")
    assert mc.read_verified(path, claims={"what": "a"}) == (b"0123456789", record)
    assert (tmp_path / "data.sha256").exists() and record["bytes"] == 10
    with pytest.raises(StoreMismatch, match=r"data\.bin: .*what 'a', not 'b'"):
        mc.read_verified(path, claims={"what": "b"})
    path.write_bytes(b"0123456780")
    with pytest.raises(StoreCorrupt, match=r"data\.bin: data\.bin has changed bytes"):
        mc.read_verified(path, claims={"what": "a"})
    path.write_bytes(b"01234")
    with pytest.raises(StoreCorrupt, match=r"data\.bin: data\.bin is truncated or extended: 5 bytes, 10 written"):
        mc.read_verified(path)
    (tmp_path / "data.sha256").unlink()
    with pytest.raises(StoreCorrupt, match=r"no checksum file data\.sha256"):
        mc.read_verified(path)
    path.unlink()
    with pytest.raises(FileNotFoundError, match=r"data\.bin: no such file"):
        mc.read_verified(path)


def test_a_file_written_in_place_verifies_as_its_old_or_its_new_content_and_nothing_else(tmp_path):
    """``in_place``: the record first, naming the content it replaces; a writer killed between the two writes
    leaves the old content, which still verifies (with the old code), never an unverifiable file."""
    path = tmp_path / "state.bin"
    mc.write_verified(path, b"old content", claims={"run": 1}, code="old", in_place=True)
    mc.write_verified(path, b"new content!", claims={"run": 1}, code="new", in_place=True)
    assert mc.read_verified(path, claims={"run": 1})[1]["code"] == "new"
    path.write_bytes(b"old content")  # the new record is there, the new content never came
    data, record = mc.read_verified(path, claims={"run": 1})
    assert data == b"old content" and record["code"] == "old"
    with pytest.raises(StoreMismatch):
        mc.read_verified(path, claims={"run": 2})
    path.write_bytes(b"new contenT!")  # neither
    with pytest.raises(StoreCorrupt, match="changed bytes"):
        mc.read_verified(path)
