"""The main job: figures and report are written, and stored data are reused instead of recomputed."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

import paper_figures
from paper_figures import _runner
from paper_figures.figures import f0_cosines


@pytest.fixture
def tiny_f0(monkeypatch):
    monkeypatch.setitem(f0_cosines.SCALES, "quick", dict(depths=(0, 3), width=16, d=8, n=6, trials=3))


def test_main_job_writes_figure_data_and_report(tmp_path, tiny_f0):
    from paper_figures.__main__ import main

    assert main(["F0_gradient_cosines", "--out", str(tmp_path)]) == 0
    folder = tmp_path / "figures" / "F0_gradient_cosines"
    for suffix in ("png", "pdf", "csv"):
        assert (folder / f"F0_gradient_cosines.{suffix}").stat().st_size > 0
    data = pd.read_csv(folder / "F0_gradient_cosines.csv")
    assert len(data) == 2 * 3 * (6 * 5 // 2)  # depths x trials x pairs
    assert np.all(np.abs(data["cosine"].dropna()) <= 1 + 1e-12)
    report = (tmp_path / "report.md").read_text()
    assert "F0_gradient_cosines" in report and "beta=3" in report
    assert (tmp_path / "report.html").read_text().startswith("<!doctype html>")


def test_second_run_reuses_stored_data(tmp_path, tiny_f0, monkeypatch):
    _runner.run(["F0_gradient_cosines"], "quick", tmp_path)
    first = pd.read_csv(tmp_path / "figures" / "F0_gradient_cosines" / "F0_gradient_cosines.csv")

    def refuse(scale):
        raise AssertionError("recomputed although the data were stored")

    figure = paper_figures.FIGURES["F0_gradient_cosines"]
    monkeypatch.setitem(paper_figures.FIGURES, "F0_gradient_cosines", dataclasses.replace(figure, compute=refuse))
    _runner.run(["F0_gradient_cosines"], "quick", tmp_path)
    with pytest.raises(AssertionError, match="recomputed"):
        _runner.run(["F0_gradient_cosines"], "quick", tmp_path, recompute=True)
    again = pd.read_csv(tmp_path / "figures" / "F0_gradient_cosines" / "F0_gradient_cosines.csv")
    pd.testing.assert_frame_equal(first, again)


def test_figure_data_are_a_pure_function_of_the_scale(tiny_f0):
    pd.testing.assert_frame_equal(f0_cosines.compute("quick"), f0_cosines.compute("quick"))
