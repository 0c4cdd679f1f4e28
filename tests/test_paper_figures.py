"""The main job: figures, data and report are written; stored data are re-plotted, never recomputed."""

import dataclasses

import pandas as pd
import pytest

import paper_figures
from paper_figures import _runner
from paper_figures.__main__ import main

CHEAP = ["F1_linear_regression", "F3_sphere"]


def test_every_figure_has_the_three_scales():
    assert list(paper_figures.FIGURES)[:10] == [
        "F1_linear_regression", "F2_sgd_theorems", "F3_sphere", "F4_gaussian_init", "F5_normalised_confusion",
        "F6_orthogonal_linear", "F7_small_weights", "F8_depth_training", "F9_width_training", "F10_batchnorm_skip"]
    for figure in paper_figures.FIGURES.values():
        assert set(figure.scales) == set(paper_figures.SCALES), figure.name


def test_main_job_writes_figures_data_and_report(tmp_path):
    assert main([*CHEAP, "--fast", "--out", str(tmp_path), "--jobs", "2"]) == 0  # in two worker processes
    for name in CHEAP:
        folder = tmp_path / "figures" / name
        for suffix in ("png", "pdf", "csv"):
            assert (folder / f"{name}.{suffix}").stat().st_size > 0, (name, suffix)
    report = (tmp_path / "report.md").read_text()
    assert report.count("| [F") == 3  # F1: one claim, F3: two
    assert "**holds" in report
    html = (tmp_path / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "figures/F3_sphere/F3_sphere.png" in html
    # one after another in this process: the same data (F1's cosines up to BLAS's thread-dependent rounding: the
    # workers run numpy on one thread) and the same report rows
    _runner.run(CHEAP, "fast", tmp_path / "here", progress=False)
    for name in CHEAP:
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "figures" / name / f"{name}.csv"),
                                      pd.read_csv(tmp_path / "here" / "figures" / name / f"{name}.csv"),
                                      check_exact=name != "F1_linear_regression", rtol=1e-12)
    rows = [[line for line in (folder / "report.md").read_text().splitlines() if line.startswith("| ")]
            for folder in (tmp_path, tmp_path / "here")]
    assert rows[0] == rows[1] and len(rows[0]) == 4  # header and three claims


def test_second_run_replots_from_stored_data(tmp_path, monkeypatch):
    _runner.run(CHEAP, "fast", tmp_path, progress=False)
    before = {n: pd.read_csv(tmp_path / "figures" / n / f"{n}.csv") for n in CHEAP}

    def refuse(scale, context):
        raise AssertionError("recomputed although the data were stored")

    for name in CHEAP:
        monkeypatch.setitem(paper_figures.FIGURES, name, dataclasses.replace(paper_figures.FIGURES[name],
                                                                             compute=refuse))
    _runner.run(CHEAP, "fast", tmp_path, progress=False)  # re-plots only
    for name in CHEAP:
        pd.testing.assert_frame_equal(before[name], pd.read_csv(tmp_path / "figures" / name / f"{name}.csv"))
    with pytest.raises(AssertionError, match="recomputed"):
        _runner.run(CHEAP[:1], "fast", tmp_path, recompute=True, progress=False)
    # another scale is other data: computed, not mixed with the stored fast data
    with pytest.raises(AssertionError, match="recomputed"):
        _runner.run(CHEAP[:1], "quick", tmp_path, progress=False)


def test_unknown_figure_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["F99_nothing"])
    assert "unknown figure(s) F99_nothing" in capsys.readouterr().err
