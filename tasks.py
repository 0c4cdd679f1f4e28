#!/usr/bin/env python3
"""The project's commands, for a fresh machine that has only Python (>= 3.11).

    python3 tasks.py figures [ARGS...]   # main job: figures + verdict report (python -m paper_figures --quick)
                                         # (--update-docs: the documents' quoted numbers from this run)
    python3 tasks.py test [PYTEST ARGS]  # the test suite (what .ci/run calls)
    python3 tasks.py docs [SPHINX ARGS]  # the documentation site, offline, into docs/_build/html
    python3 tasks.py notebook NAME [--scale fast|small|large] [--open]
                                         # execute a copy of notebooks/NAME.ipynb in results/notebooks/
                                         # (--open: JupyterLab on the copy); tracked files stay as they are

All of them create ``.venv`` beside this file on first use and install the
package into it (editable, with its test extras; ``notebook`` adds the
``notebooks`` extra: JupyterLab, the kernel ``gradient-confusion``); later runs
reinstall only when ``pyproject.toml`` changed or an extra is missing.  Extra
arguments go to ``paper_figures``, to pytest, to sphinx-build (``docs`` builds
with warnings as errors; it uses the figures and report in ``results/`` when the
main job has made them) or to ``notebooks/_run_notebook.py``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".install-stamp"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, cwd=ROOT, check=True)


def ensure_environment(extras: tuple[str, ...] = ("test",)) -> None:
    """Create the virtual environment and install the package with ``extras`` if pyproject.toml changed or one of
    them is missing (the stamp records the file's hash and the extras installed with it)."""
    if sys.version_info < (3, 11):
        sys.exit(f"Python >= 3.11 is required, this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = STAMP.read_text().split() if STAMP.exists() else []
    installed = set(stamp[1:] or ["test"]) if stamp[:1] == [wanted] else set()   # a bare hash: the test extras
    if not set(extras) <= installed:
        every = sorted(installed | set(extras))
        _run(str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e",
             f".[{','.join(every)}]")
        STAMP.write_text(" ".join([wanted, *every]))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("figures", "test", "docs", "notebook"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_environment(("notebooks",) if command == "notebook" else ("test",))
    try:
        if command == "figures":
            _run(str(PYTHON), "-m", "paper_figures", *(rest or ["--quick"]))
        elif command == "docs":
            _run(str(PYTHON), "-m", "sphinx", "-b", "html", "-W", "--keep-going", *rest, "docs", "docs/_build/html")
            print(f"documentation: {ROOT / 'docs' / '_build' / 'html' / 'index.html'}", flush=True)
        elif command == "notebook":
            _run(str(PYTHON), "notebooks/_run_notebook.py", *rest)
        else:
            _run(str(PYTHON), "-m", "pytest", *rest)
    except subprocess.CalledProcessError as error:
        return error.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
