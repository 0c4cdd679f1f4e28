#!/usr/bin/env python3
"""The project's commands, for a fresh machine that has only Python (>= 3.11).

    python3 tasks.py figures [ARGS...]   # main job: figures + verdict report (python -m paper_figures --quick)
                                         # (--update-docs: the documents' quoted numbers from this run)
    python3 tasks.py test [PYTEST ARGS]  # the test suite (what .ci/run calls), one worker process per core
                                         # (pytest-xdist, at most 4; ``-n 0`` after it: one process)
    python3 tasks.py docs [SPHINX ARGS]  # the documentation site, offline, into docs/_build/html
    python3 tasks.py notebook NAME [--scale fast|small|large] [--open]
                                         # execute a copy of notebooks/NAME.ipynb in results/notebooks/
                                         # (--open: JupyterLab on the copy); tracked files stay as they are

All of them create ``.venv`` beside this file on first use and install the
package into it (editable; ``test`` and ``docs`` with the test extras,
``notebook`` with the ``notebooks`` extra: JupyterLab, the kernel
``gradient-confusion``); later runs reinstall only when ``pyproject.toml``
changed or an extra is missing.  Extra
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
#: pytest-xdist: one worker per core, at most 4, a test module's tests in one worker (its module fixtures made once)
PYTEST_WORKERS = ("-n", "auto", "--maxprocesses", "4", "--dist", "loadscope")


def _run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, cwd=ROOT, check=True)


def ensure_environment(extras: tuple[str, ...] = ("test",)) -> None:
    """Create the virtual environment and install the package with ``extras`` if pyproject.toml changed or one of
    them is missing (the stamp records the file's hash, a marker, and the extras installed with it)."""
    if sys.version_info < (3, 11):
        sys.exit(f"Python >= 3.11 is required, this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = STAMP.read_text().split() if STAMP.exists() else []
    # "<hash> extras: <extra>...": a stamp of another form (an older tasks.py's) counts as nothing installed
    installed = set(stamp[2:]) if stamp[:2] == [wanted, "extras:"] else None
    if installed is None or not set(extras) <= installed:
        every = sorted((installed or set()) | set(extras))
        _run(str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e",
             f".[{','.join(every)}]" if every else ".")
        STAMP.write_text(" ".join([wanted, "extras:", *every]))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("figures", "test", "docs", "notebook"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    # the main job needs the package alone; the tests and the documentation site the test extras
    ensure_environment({"figures": (), "notebook": ("notebooks",)}.get(command, ("test",)))
    try:
        if command == "figures":
            _run(str(PYTHON), "-m", "paper_figures", *(rest or ["--quick"]))
        elif command == "docs":
            _run(str(PYTHON), "-m", "sphinx", "-b", "html", "-W", "--keep-going", *rest, "docs", "docs/_build/html")
            print(f"documentation: {ROOT / 'docs' / '_build' / 'html' / 'index.html'}", flush=True)
        elif command == "notebook":
            _run(str(PYTHON), "notebooks/_run_notebook.py", *rest)
        else:
            _run(str(PYTHON), "-m", "pytest", *PYTEST_WORKERS, *rest)
    except subprocess.CalledProcessError as error:
        return error.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
