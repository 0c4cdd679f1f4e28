#!/usr/bin/env python3
"""The project's commands, for a fresh machine that has only Python (>= 3.11).

    python3 tasks.py figures [ARGS...]   # main job: figures + verdict report (python -m paper_figures --quick)
    python3 tasks.py test [PYTEST ARGS]  # the test suite (what .ci/run calls)
    python3 tasks.py docs [SPHINX ARGS]  # the documentation site, offline, into docs/_build/html

All three create ``.venv`` beside this file on first use and install the package
into it (editable, with its test extras); later runs reinstall only when
``pyproject.toml`` changed.  Extra arguments go to ``paper_figures``, to pytest
or to sphinx-build (``docs`` builds with warnings as errors; it uses the
figures and report in ``results/`` when the main job has made them).
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


def ensure_environment() -> None:
    """Create the virtual environment and install the package if pyproject.toml changed."""
    if sys.version_info < (3, 11):
        sys.exit(f"Python >= 3.11 is required, this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != wanted:
        _run(str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", ".[test]")
        STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("figures", "test", "docs"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_environment()
    try:
        if command == "figures":
            _run(str(PYTHON), "-m", "paper_figures", *(rest or ["--quick"]))
        elif command == "docs":
            _run(str(PYTHON), "-m", "sphinx", "-b", "html", "-W", "--keep-going", *rest, "docs", "docs/_build/html")
            print(f"documentation: {ROOT / 'docs' / '_build' / 'html' / 'index.html'}", flush=True)
        else:
            _run(str(PYTHON), "-m", "pytest", *rest)
    except subprocess.CalledProcessError as error:
        return error.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
