"""``python3 tasks.py notebook NAME`` executes a copy of a notebook and leaves every tracked file as it was.

The command (``notebooks/_run_notebook.py``, run by ``tasks.py`` in the project's environment with the ``notebooks``
extra) registers the kernel ``gradient-confusion``, copies ``notebooks/NAME.ipynb`` to an untracked folder and
executes the copy there.  One small notebook at the fast scale, with the kernel registered under a temporary prefix.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
NAME = "fig1_linear_regression"  # the quickest notebook at the fast scale (about 5 s, mostly the kernel's imports)


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def git_status(*paths: str) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", *paths], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


def test_the_command_executes_a_copy_and_changes_no_tracked_file(tmp_path, monkeypatch):
    command = load(ROOT / "notebooks" / "_run_notebook.py")
    tracked = ROOT / "notebooks" / f"{NAME}.ipynb"
    before, digest = git_status("notebooks"), hashlib.sha256(tracked.read_bytes()).hexdigest()
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share" / "jupyter"))   # where the kernel is looked up
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    copy = command.execute(NAME, scale="fast", out=tmp_path / "copies", prefix=tmp_path)

    assert copy == tmp_path / "copies" / f"{NAME}.ipynb"
    notebook = nbformat.read(copy, as_version=4)
    assert notebook.metadata["kernelspec"]["name"] == "gradient-confusion"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code)          # every cell ran, in this kernel
    assert any(output.get("output_type") == "display_data" for cell in code for output in cell.outputs)
    spec = json.loads((tmp_path / "share" / "jupyter" / "kernels" / "gradient-confusion" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    assert git_status("notebooks") == before
    assert hashlib.sha256(tracked.read_bytes()).hexdigest() == digest


def test_the_default_folder_of_the_copies_is_ignored_by_git():
    command = load(ROOT / "notebooks" / "_run_notebook.py")
    probe = (command.OUT / "any.ipynb").relative_to(ROOT)
    assert subprocess.run(["git", "check-ignore", "-q", str(probe)], cwd=ROOT).returncode == 0


def test_tasks_py_runs_the_command_with_the_notebooks_extra(monkeypatch):
    tasks = load(ROOT / "tasks.py")
    calls = []
    monkeypatch.setattr(tasks, "ensure_environment", lambda extras=("test",): calls.append(("extras", extras)))
    monkeypatch.setattr(tasks, "_run", lambda *args: calls.append(args))
    assert tasks.main(["notebook", "rare_tails", "--open"]) == 0
    assert calls == [("extras", ("notebooks",)), (str(tasks.PYTHON), "notebooks/_run_notebook.py", "rare_tails",
                                                 "--open")]


def test_the_notebooks_extra_has_jupyterlab_and_a_kernel():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["notebooks"]
    names = {requirement.split(">")[0].split("<")[0].split("=")[0].strip() for requirement in extras}
    assert {"jupyterlab", "ipykernel", "ipywidgets", "nbclient", "nbformat"} <= names
