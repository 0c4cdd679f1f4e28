"""A figure's stored data are reused only if they are the bytes their record (written last) says: the CSV edited,
truncated or swapped for another figure's is named and recomputed, with the numbers of the first run."""

import io
import json
import shutil

import pandas as pd
import pytest

from paper_figures import _runner

NAME = "F3_sphere"  # seconds at --fast


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """A fast F3 stored under a temporary --out: (out, the CSV's bytes, its report rows)."""
    out = tmp_path_factory.mktemp("out")
    data = _runner.figure_data(NAME, "fast", out, progress=False)
    csv = out / "figures" / NAME / f"{NAME}.csv"
    return out, csv.read_bytes(), _runner.FIGURES[NAME].report(data)


def _copy(first, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(first[0], out)
    return out, out / "figures" / NAME / f"{NAME}.csv", out / "figures" / NAME / f"{NAME}.json"


def _read_back(out, capsys):
    data = _runner.figure_data(NAME, "fast", out, progress=False)
    return data, capsys.readouterr().out


def test_the_record_holds_the_checksum_and_length_of_the_data(first, tmp_path, capsys):
    out, csv, meta = _copy(first, tmp_path)
    record = json.loads(meta.read_text())
    assert record["bytes"] == len(first[1]) and record["claims"] == {"figure": NAME, "scale": "fast",
                                                                     "data_version": _runner.DATA_VERSION}
    assert record["code"] == _runner.figure_fingerprint()
    assert _runner.is_stored(NAME, "fast", out)
    data, printed = _read_back(out, capsys)
    assert "reusing stored data" in printed
    pd.testing.assert_frame_equal(data, pd.read_csv(io.BytesIO(first[1])))


@pytest.mark.parametrize("damage, why", [
    (lambda b: b[: len(b) * 2 // 5], "truncated or extended"),  # F3's report fell from 147 points to 59 this way
    (lambda b: b.replace(b"0.", b"9.", 1), "changed bytes"),  # one digit edited, same length
    (lambda b: b"", "empty"),
])
def test_edited_or_truncated_data_are_named_and_recomputed_to_the_first_runs_numbers(first, tmp_path, capsys, damage,
                                                                                    why):
    out, csv, meta = _copy(first, tmp_path)
    csv.write_bytes(damage(first[1]))
    assert not _runner.is_stored(NAME, "fast", out)
    data, printed = _read_back(out, capsys)
    assert f"[{NAME}] stored data not reused: {csv}: " in printed and why in printed and "recomputing" in printed
    assert "reusing" not in printed
    assert csv.read_bytes() == first[1]  # the same numbers as the first run, to the last digit
    assert _runner.FIGURES[NAME].report(data) == first[2]
    assert "reusing stored data" in _read_back(out, capsys)[1]  # and verified again


def test_a_missing_record_or_another_figures_data_are_recomputed(first, tmp_path, capsys):
    out, csv, meta = _copy(first, tmp_path)
    meta.unlink()
    assert "no checksum file" in _read_back(out, capsys)[1] and csv.read_bytes() == first[1]
    # another figure's data and record under F3's names: intact bytes, but the record names the other figure
    other = "F1_linear_regression"
    _runner.write_figure_data(other, "fast", out, pd.DataFrame({"x": [1.0, 2.0]}))
    folder = out / "figures" / other
    shutil.copyfile(folder / f"{other}.csv", csv)
    shutil.copyfile(folder / f"{other}.json", meta)
    printed = _read_back(out, capsys)[1]
    assert f"figure '{other}', not '{NAME}'" in printed and csv.read_bytes() == first[1]
