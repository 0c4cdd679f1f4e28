"""``tasks.py``: what each command installs (the main job the package alone, the tests and docs the test extras) and
how the tests run (one pytest-xdist worker per core).  Nothing is installed here: pip's calls are recorded."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tasks(tmp_path, monkeypatch):
    """``tasks.py`` loaded with its project root in ``tmp_path`` (an environment that exists) and pip recorded."""
    spec = importlib.util.spec_from_file_location("tasks_under_test", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "VENV", venv)
    monkeypatch.setattr(module, "STAMP", venv / ".install-stamp")
    monkeypatch.setattr(module, "PYTHON", venv / "bin" / "python")
    module.calls = []
    monkeypatch.setattr(module, "_run", lambda *args: module.calls.append(args))
    return module


def installs(tasks, extras) -> list[str]:
    """What pip installed when the environment was asked for ``extras`` (an empty list: nothing)."""
    tasks.calls.clear()
    tasks.ensure_environment(extras)
    assert len(tasks.calls) <= 1
    return [call[-1] for call in tasks.calls if "pip" in call]


def test_each_extra_is_installed_once_and_the_main_job_needs_none(tasks):
    assert installs(tasks, ()) == ["."]                              # the main job: the package alone
    assert installs(tasks, ()) == []
    assert installs(tasks, ("test",)) == [".[test]"]                 # the tests add their extras
    assert installs(tasks, ()) == []                                 # ... which the main job then has
    assert installs(tasks, ("test",)) == []
    assert installs(tasks, ("notebooks",)) == [".[notebooks,test]"]  # kept, not lost
    assert installs(tasks, ("test",)) == []


def test_a_changed_pyproject_or_an_older_stamp_installs_again(tasks):
    assert installs(tasks, ("test",)) == [".[test]"]
    (tasks.ROOT / "pyproject.toml").write_text("[project]\nname = 'y'\n")
    assert installs(tasks, ()) == ["."]                              # what was installed before is not assumed
    digest = tasks.STAMP.read_text().split()[0]
    tasks.STAMP.write_text(digest)                                   # an older tasks.py's stamp: a bare hash
    assert installs(tasks, ("test",)) == [".[test]"]


def test_commands_ask_for_their_extras_and_the_tests_run_on_workers(tasks, monkeypatch):
    asked = []
    monkeypatch.setattr(tasks, "ensure_environment", lambda extras: asked.append(extras))
    for command in ("figures", "test", "docs", "notebook"):
        assert tasks.main([command, "arg"]) == 0
    assert asked == [(), ("test",), ("test",), ("notebooks",)]
    pytest_call = next(call for call in tasks.calls if call[1:3] == ("-m", "pytest"))
    assert pytest_call[3:] == (*tasks.PYTEST_WORKERS, "arg")


def test_the_defaults_start_workers_and_a_later_n_0_turns_them_off(tmp_path):
    """The defaults run a test in an xdist worker; ``python3 tasks.py test -n 0`` (pytest takes the last ``-n``) in
    the pytest process itself.  A probe test outside the project says where it ran."""
    spec = importlib.util.spec_from_file_location("tasks_defaults", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "test_probe.py").write_text("import os\n\ndef test_probe():\n"
                                             "    assert 'PYTEST_XDIST_WORKER' not in os.environ\n")

    # as from a shell: not the variables of the xdist worker this test may run in
    outside = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_XDIST")}

    def probe(*options):
        return subprocess.run([sys.executable, "-m", "pytest", *module.PYTEST_WORKERS, *options, "-q",
                               "-p", "no:cacheprovider", "test_probe.py"],
                              capture_output=True, text=True, cwd=tmp_path, timeout=120, env=outside)

    in_a_worker, here = probe(), probe("-n", "0")
    assert in_a_worker.returncode == 1 and "1 failed" in in_a_worker.stdout, in_a_worker.stdout[-2000:]
    assert here.returncode == 0 and "1 passed" in here.stdout, here.stdout[-2000:]
