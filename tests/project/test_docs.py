"""The documentation builds offline with warnings as errors, and documents every public name.

The build runs on a copy of ``docs/`` in ``tmp_path`` (``GC_DOCS_REPO`` points the generator at this
repository), with a synthetic ``results/`` holding one figure and its report rows, so both kinds of
figure page are built: with the main job's output and without it.  Notebooks are rendered from their
stored outputs, never executed (``nb_execution_mode = "off"``).
"""

import html as html_module
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")
pytest.importorskip("numpydoc")
pytest.importorskip("pydata_sphinx_theme")

ROOT = Path(__file__).resolve().parents[2]


def _text(page: Path) -> str:
    """The words of an HTML page (tags dropped, entities decoded, white space collapsed)."""
    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))).split())


def _synthetic_results(folder: Path, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (folder / "figures" / name).mkdir(parents=True)
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1])
    fig.savefig(folder / "figures" / name / f"{name}.png")
    plt.close(fig)
    (folder / "report.md").write_text(
        "# Gradient confusion: verdict report (fast run)\n\n"
        "| claim | check | numbers | verdict | figure |\n|---|---|---|---|---|\n"
        f"| a *claim* with `markup` and \\|x_i\\| | MC vs <x_i, x_j> $bound$ | p = 0.5 [0.4, 0.6] | **holds** "
        f"| [{name}](figures/{name}/{name}.png) |\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from paper_figures._registry import FIGURES

    tmp = tmp_path_factory.mktemp("docs")
    source = tmp / "src"
    shutil.copytree(ROOT / "docs", source, ignore=shutil.ignore_patterns("_build", "_generated", "__pycache__"))
    with_results = next(iter(FIGURES))
    _synthetic_results(tmp / "results", with_results)
    env = dict(os.environ, GC_DOCS_REPO=str(ROOT), GC_DOCS_RESULTS=str(tmp / "results"))
    html = tmp / "html"
    run = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
                          str(source), str(html)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
    return html, with_results


def test_every_public_name_has_an_entry(built):
    from sphinx.util.inventory import InventoryFile

    import montecarlo
    import theory

    html, _ = built
    with open(html / "objects.inv", "rb") as stream:
        inventory = InventoryFile.load(stream, "", lambda base, uri: uri)
    documented = {name for kind, entries in inventory.items() if kind.startswith("py:") for name in entries}
    for package in (theory, montecarlo):
        missing = [n for n in package.__all__ if f"{package.__name__}.{n}" not in documented]
        assert not missing, f"{package.__name__}: no API entry for {missing}"


def test_results_show_their_equation(built):
    html, _ = built
    page = (html / "_generated" / "api" / "theory.html").read_text()
    start = page.index('id="theory.theorem_4_1_sphere"')
    assert "math" in page[start:start + 4000] and "zeta_0" in page[start:start + 4000]


def test_every_notebook_is_rendered_with_outputs(built):
    html, _ = built
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        page = (html / "_generated" / "tutorials" / f"{notebook.stem}.html").read_text()
        assert "cell_output" in page, f"{notebook.name} rendered without outputs"


def test_figure_pages_with_and_without_results(built):
    from paper_figures._registry import FIGURES

    html, with_results = built
    for name in FIGURES:
        page = _text(html / "_generated" / "figures" / f"{name}.html")
        if name == with_results:
            assert (html / "_images" / f"{name}.png").exists()
            assert "holds" in page and "a *claim* with `markup` and |x_i|" in page and "<x_i, x_j> $bound$" in page
        else:
            assert "python3 tasks.py figures" in page


def test_cli_and_benchmarks_pages(built):
    html, _ = built
    cli = _text(html / "_generated" / "cli.html")
    for command in ("sweep", "train", "tail", "show"):
        assert f"python -m montecarlo {command}" in cli
    assert (html / "_generated" / "benchmarks.html").exists()
    assert "a *claim* with `markup`" in _text(html / "findings.html")  # the synthetic report row
