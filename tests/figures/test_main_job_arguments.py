"""The main job's command line refuses an --out it cannot write and a --scheduler that is no scheduler: exit 2 and
one line naming the option and what it accepts, before anything is computed (it used to end in a traceback, or
to exit 0 with the scheduler never looked at)."""

import contextlib
import io
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from paper_figures.__main__ import main


def run_job(*args, cwd=None, process=False):
    """The main job on F3 at --fast with ``args``: in a new process when ``process`` (the real exit status and
    streams), else in this one (the same parser, seconds faster): ``(returncode, stdout, stderr)``."""
    if process:
        return subprocess.run([sys.executable, "-m", "paper_figures", "F3_sphere", "--fast", *args],
                              capture_output=True, text=True, timeout=300, cwd=cwd)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["F3_sphere", "--fast", *args])
        except SystemExit as stop:
            code = stop.code
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def refused(done, option, *words):
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"python -m paper_figures: error: {option}") and "Traceback" not in done.stderr, last
    assert all(word in last for word in words), last
    assert "[F3_sphere]" not in done.stdout  # nothing was computed


def unwritable_folder(tmp_path) -> Path:
    """A folder in which no file can be created, also for root (which ignores permissions): procfs refuses."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder / "out"
    if Path("/proc/self").is_dir():
        return Path("/proc/self/gc-out")
    pytest.skip("no folder that root cannot write to on this system")


def test_an_out_that_is_a_file_under_a_file_or_unwritable_is_refused_naming_out(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    refused(run_job("--out", str(blocker)), "--out", str(blocker), "not a folder", "a folder the results can be written")
    refused(run_job("--out", str(blocker / "results")), "--out", "cannot write there", "Not a directory")
    assert blocker.read_text() == "not a folder"
    folder = unwritable_folder(tmp_path)
    refused(run_job("--out", str(folder)), "--out", str(folder), "cannot write there")


def test_a_scheduler_that_is_no_scheduler_is_refused_naming_scheduler_and_addresses_pass(tmp_path, capsys):
    for scheduler in ("nonsense", "tcp://host", "tcp://host:99999", "tcp://ho st:8786", ""):
        done = run_job("--out", str(tmp_path / "out"), "--scheduler", scheduler, process=scheduler == "nonsense")
        refused(done, "--scheduler", "'local'", "tcp://host:port", repr(scheduler))
        assert not (tmp_path / "out").exists()  # refused before the output folder is made
    for scheduler in ("local", "tcp://127.0.0.1:8786", "scheduler.example.org:8786", "tls://[::1]:8786"):
        # accepted: the refusal that follows is the next check's (an unknown figure), not the scheduler's
        with pytest.raises(SystemExit) as stop:
            main(["F99_nothing", "--scheduler", scheduler, "--jobs", "1", "--out", str(tmp_path / "out")])
        assert stop.value.code == 2 and "unknown figure(s) F99_nothing" in capsys.readouterr().err
