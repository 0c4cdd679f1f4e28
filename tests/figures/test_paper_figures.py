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


def test_the_workers_get_each_shared_training_run_once_and_f4_first(tmp_path):
    """The plan of --jobs > 1: F4 first (numba compiles once), then one piece per distinct training run of F8-F10 on
    each dataset (F9's width-1 runs and F10's plain runs are F8's depth-10 runs, every seed), largest first, then the
    figures; a figure whose data are stored plans no pieces."""
    import montecarlo as mc
    from paper_figures.figures import _training, f08_depth_training, f09_width_training, f10_batchnorm_skip

    names = ["F8_depth_training", "F9_width_training", "F10_batchnorm_skip", "F4_gaussian_init"]
    work = _runner._plan(names, "fast", tmp_path, recompute=False)
    grids = [module.grid("fast") for module in (f08_depth_training, f09_width_training, f10_batchnorm_skip)]
    keys = set()
    for dataset in _training.DATASETS:
        settings = _training.SETTINGS["fast"][dataset]
        keys |= set().union(*(mc.TrainingGrid.from_mapping({**g, **settings}).runs() for g in grids))
    # six models (CNN-10-1 in four variants, CNN-16-1, CNN-10-2) x 3 seeds x 2 datasets
    assert len(keys) == 6 * _training.SEEDS["fast"] * len(_training.DATASETS)
    kinds = [kind for kind, _, _ in work]
    assert work[0][:2] == ("figure", "F4_gaussian_init")
    assert kinds == ["figure"] + ["piece"] * len(keys) + ["figure"] * 3
    labels = [label for kind, label, _ in work if kind == "piece"]
    assert {label[-21:-1] for label in labels} == keys
    # cost depth x width^2 (doubled with batch norm) x epochs x examples: MNIST-1D's CNN-10-2 (1 epoch of 4000), then
    # digits' (2 epochs of 1400), each seed
    seeds = _training.SEEDS["fast"]
    assert all(label.startswith("train mnist1d cnn-10-2 ") for label in labels[:seeds])
    assert all(label.startswith("train digits cnn-10-2 ") for label in labels[seeds:2 * seeds])
    _runner.write_figure_data("F8_depth_training", "fast", tmp_path, pd.DataFrame({"x": [1]}))
    assert len([w for w in _runner._plan(names[:1], "fast", tmp_path, recompute=False) if w[0] == "piece"]) == 0


def test_the_figure_wing_imports_no_circle_and_no_private_montecarlo():
    """paper_figures._figure (Figure, Context, SCALES) imports nothing of paper_figures; no figure module imports the
    registry (which imports them); nothing in paper_figures imports montecarlo._src; one module per figure."""
    import ast
    import importlib
    from pathlib import Path

    from paper_figures import _registry

    root = Path(paper_figures.__file__).parent

    def imports(path):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = "." * node.level + (node.module or "")
                found.add(base)
                found.update(base + ("" if base.endswith(".") else ".") + alias.name for alias in node.names)
        return found

    sources = sorted(root.rglob("*.py"))
    for path in sources:
        assert not any(name.startswith("montecarlo._src") for name in imports(path)), path
    assert not any(name.startswith(".") for name in imports(root / "_figure.py"))
    for path in (root / "figures").glob("*.py"):
        assert not any("_registry" in name for name in imports(path)), path
    # One module per figure: each f<NN>_*.py defines exactly one FIGURE, and the registry lists those, in order
    # (a figure may take its steps from a helper module, as F8-F10 take theirs from _training).
    modules = sorted(p.stem for p in (root / "figures").glob("f[0-9][0-9]_*.py"))
    assert len(modules) == len(paper_figures.FIGURES) == 17
    for module, (name, figure) in zip(modules, paper_figures.FIGURES.items()):
        defined = importlib.import_module(f"paper_figures.figures.{module}")
        assert defined.FIGURE is figure, (module, name)
        assert _registry.MODULE_OF[name] is defined, (module, name)
        assert sum(isinstance(v, paper_figures.Figure) for v in vars(defined).values()) == 1, module
        number, _, rest = module.partition("_")
        assert name == f"F{int(number[1:])}_{rest}", (module, name)  # f08_depth_training defines F8_depth_training
