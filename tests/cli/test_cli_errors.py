"""Every user error on the command line is one line on stderr naming the argument or file, and a non-zero exit.

The cases are the probes of issue 13: TOML values of the wrong type, an ``--out``
that is a file or cannot be created, NaN or negative thresholds, files that are
not TOML.  ``main`` is called in-process: an exception escaping it (a traceback
for the user) fails the test.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from montecarlo.__main__ import main
from montecarlo.testing import provenance, sweep

TINY = ["--width", "4", "--depth", "1", "--d", "3", "--n-samples", "3", "--backend", "numpy"]


def run_cli(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err.strip()


def one_line_error(code, err, *fragments):
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize("toml, fragments", [
    ("trials = 2.5\n", ("'trials'", "integer")),
    ("trials = 10\nseed = -1\n", ("'seed'",)),
    ("trials = 10\nwidth = 'wide'\n", ("'width'",)),
    ("trials = [\n", ("not valid TOML",)),
])
def test_sweep_config_of_the_wrong_type_is_a_message(capsys, tmp_path, toml, fragments):
    config = tmp_path / "sweep.toml"
    config.write_text(toml)
    code, err = run_cli(capsys, ["sweep", "--config", str(config), "--out", str(tmp_path / "out")])
    one_line_error(code, err, *fragments)
    assert not (tmp_path / "out").exists()


def test_config_that_is_a_folder_or_missing_is_named(capsys, tmp_path):
    code, err = run_cli(capsys, ["sweep", "--config", str(tmp_path), "--out", str(tmp_path / "out")])
    one_line_error(code, err, "--config", "not a file")
    code, err = run_cli(capsys, ["sweep", "--config", str(tmp_path / "absent.toml"), "--out", str(tmp_path / "o")])
    one_line_error(code, err, "--config", "no such file")


@pytest.mark.parametrize("toml, fragment", [
    ("lr_milestones = 3\n", "'lr_milestones'"),
    ("epochs = 2.5\n", "'epochs'"),
    ("batch_size = 'many'\n", "'batch_size'"),
])
def test_train_config_of_the_wrong_type_is_a_message(capsys, tmp_path, toml, fragment):
    config = tmp_path / "train.toml"
    config.write_text(toml)
    code, err = run_cli(capsys, ["train", "--config", str(config), "--out", str(tmp_path / "out")])
    one_line_error(code, err, fragment)
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_or_under_a_file_is_named(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, err = run_cli(capsys, ["sweep", *TINY, "--trials", "8", "--out", str(blocker)])
    one_line_error(code, err, "--out", "not a folder")
    code, err = run_cli(capsys, ["sweep", *TINY, "--trials", "8", "--out", str(blocker / "store")])
    one_line_error(code, err, "--out", "not a folder")
    assert blocker.read_text() == "not a folder"


def test_a_file_system_refusal_is_one_line_naming_the_file(capsys, tmp_path, monkeypatch):
    # A read-only folder cannot be made here (the tests may run as root, which ignores permissions), so the
    # store's own write is refused the way a read-only mount refuses it.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "out" / "manifest.json"))

    monkeypatch.setattr(sweep, "run_sweep", refuse)  # the command imports it from there when it runs
    code, err = run_cli(capsys, ["sweep", *TINY, "--trials", "8", "--out", str(tmp_path / "out")])
    one_line_error(code, err, "manifest.json", "Permission denied")


@pytest.mark.parametrize("eta", ["nan", "-1", "inf"])
def test_meaningless_thresholds_are_refused_before_computing(capsys, tmp_path, eta):
    code, err = run_cli(capsys, ["sweep", *TINY, "--trials", "8", "--out", str(tmp_path / "out"), "--eta", eta])
    one_line_error(code, err, "--eta")
    assert not (tmp_path / "out").exists()


def test_show_refuses_bad_thresholds_and_non_stores(capsys, tmp_path):
    code, err = run_cli(capsys, ["show", str(tmp_path)])
    one_line_error(code, err, str(tmp_path), "not a results store")
    code, err = run_cli(capsys, ["show", str(tmp_path), "--tau", "2"])
    one_line_error(code, err, "--tau")
    code, err = run_cli(capsys, ["show", str(tmp_path), "--confidence", "1.5"])
    one_line_error(code, err, "--confidence")


def test_the_installed_command_prints_no_traceback(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text("trials = 2.5\n")
    done = subprocess.run([sys.executable, "-m", "montecarlo", "sweep", "--config", str(config), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "'trials'" in done.stderr


@pytest.mark.parametrize("lr", ["1000", "1e30"])
def test_a_diverged_training_run_is_named_and_exits_non_zero(capsys, tmp_path, lr):
    argv = ["train", "--model", "mlp", "--depth", "1", "--width", "16", "--lr", lr, "--data", "digits",
            "--epochs", "2", "--track", "linear", "--track-points", "3", "--pairs", "2", "--pair-batch", "16",
            "--probe-size", "8", "--out", str(tmp_path / "out")]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 3, captured.err
    assert "diverged at epoch 1" in captured.err and f"lr={float(lr)}" in captured.err
    assert "yes" in captured.out.splitlines()[-1]  # the printed row says so too, rather than a bare NaN row


def test_show_names_corrupt_and_stale_points_and_leaves_the_store_as_it_is(capsys, tmp_path, monkeypatch):
    out = tmp_path / "store"
    assert main(["sweep", *TINY, "--width", "4", "6", "--trials", "8", "--out", str(out)]) == 0
    capsys.readouterr()
    points = sorted((out / "points").glob("*.parquet"))
    assert len(points) == 2
    damaged = points[0]
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    before = sorted(p.name for p in (out / "points").iterdir())
    code, err = run_cli(capsys, ["show", str(out)])
    assert code == 0 and f"1 corrupt (a rerun recomputes them): {damaged.stem}" in err and "1/2 points done" in err
    assert sorted(p.name for p in (out / "points").iterdir()) == before  # a reader removes and rewrites nothing
    monkeypatch.setattr(provenance, "code_fingerprint", lambda: "0123456789abcdef")
    code, err = run_cli(capsys, ["show", str(out)])
    assert code == 0 and "0/2 points done" in err and "1 stale" in err and points[1].stem in err


def test_a_bad_scheduler_is_named_and_leaves_no_store(capsys, tmp_path):
    code, err = run_cli(capsys, ["sweep", *TINY, "--trials", "8", "--scheduler", "bogus", "--out", str(tmp_path / "B")])
    one_line_error(code, err, "'scheduler'")
    assert not (tmp_path / "B").exists()
