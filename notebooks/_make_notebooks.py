"""Write notebooks/<name>.ipynb from the readable sources notebooks/src/<name>.py, executed, outputs stored.

    python notebooks/_make_notebooks.py            # every notebook
    python notebooks/_make_notebooks.py NAME ...   # only these

The sources are jupytext percent-format scripts (``# %%`` cells), so diffs stay
readable; this script converts each one, executes it once with nbclient at the
scale named by ``GC_NOTEBOOK_SCALE`` (default "small") and stores the outputs,
which the documentation renders without executing anything.  It needs the
``notebooks`` extra (``pip install -e .[notebooks]``): without ipywidgets the
stored outputs would carry tqdm's warning and this machine's paths
(tests/project/test_notebooks.py checks they carry neither).  Cell ids are
stable, so regenerating an unchanged source gives the same cells.  The test
suite (tests/project/test_notebooks.py) executes every notebook again at the "fast"
scale and checks the numbers each one leaves in its ``CHECK`` dictionary.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def convert(source: Path) -> nbformat.NotebookNode:
    """The notebook of one percent-format source, with stable cell ids and no outputs yet."""
    notebook = jupytext.read(source)
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{source.stem[:40]}-{index}"
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["kernelspec"] = KERNELSPEC
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


#: What no stored output may show: a warning, or a path of the machine that executed it.
FORBIDDEN = ("Warning", "/tmp/", "/home/", "/work/", str(HERE.parent))


def output_problems(notebook: nbformat.NotebookNode) -> list[str]:
    """The forbidden strings each code cell's outputs contain, as ``"cell <id>: <string>"``."""
    found = []
    for cell in notebook.cells:
        text = json.dumps(cell.get("outputs", []))
        found += [f"cell {cell.get('id')}: {word!r}" for word in FORBIDDEN if word in text]
    return found


def build(source: Path, scale: str) -> Path:
    notebook = convert(source)
    previous = os.environ.get("GC_NOTEBOOK_SCALE")
    os.environ["GC_NOTEBOOK_SCALE"] = scale
    try:
        NotebookClient(notebook, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
    finally:
        if previous is None:
            os.environ.pop("GC_NOTEBOOK_SCALE", None)
        else:
            os.environ["GC_NOTEBOOK_SCALE"] = previous
    for cell in notebook.cells:  # no timings or execution counts in the stored file: reproducible diffs
        cell.get("metadata", {}).pop("execution", None)
    problems = output_problems(notebook)
    if problems:
        raise SystemExit(f"{source.stem}: not stored, its outputs show " + "; ".join(problems))
    target = HERE / f"{source.stem}.ipynb"
    nbformat.write(notebook, target)
    return target


def require_widgets() -> None:
    """Refuse to store outputs from a kernel without ipywidgets: ``tqdm.auto`` (imported by ``montecarlo``) then
    writes a ``TqdmWarning`` with this machine's paths into the first cell that imports it."""
    if importlib.util.find_spec("ipywidgets") is None:
        sys.exit("ipywidgets is missing: install the notebooks extra first (pip install -e .[notebooks])")


def main(names: list[str]) -> None:
    require_widgets()
    sources = sorted(SOURCES.glob("*.py"))
    if names:
        sources = [s for s in sources if s.stem in names]
    scale = os.environ.get("GC_NOTEBOOK_SCALE", "small")
    for source in sources:
        start = time.perf_counter()
        target = build(source, scale)
        print(f"{target.name}: executed at scale {scale!r} in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
