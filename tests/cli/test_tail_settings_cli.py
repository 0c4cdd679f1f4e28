"""``python -m montecarlo tail``: a setting the engine refuses is one line on stderr naming its flag (or its key in
--config) and what it accepts, exit 2, and no store folder; one repeat (no spread, so no interval) among them."""

from __future__ import annotations

import pytest

from montecarlo.__main__ import main

BASE = ["tail", "--width", "8", "--depth", "1", "--d", "4", "--n-samples", "3", "--activation", "tanh",
        "--threshold", "1", "--seed", "5", "--backend", "numpy"]
TAIL = [*BASE, "--population", "100", "--repeats", "2"]


def one_line_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("flags, fragments", [
    (["--repeats", "1"], ("--repeats", "integer >= 2", "got 1")),
    (["--repeats", "0"], ("--repeats", "integer >= 2", "got 0")),
    (["--population", "-1"], ("--population", "integer >= 10", "got -1")),
    (["--population", "5"], ("--population", "integer >= 10", "got 5")),
    (["--max-levels", "0"], ("--max-levels", "integer >= 1", "got 0")),
    (["--level-probability", "0.7"], ("--level-probability", "(0, 0.5]", "got 0.7")),
])
def test_a_refused_setting_names_its_flag_and_the_accepted_values(capsys, tmp_path, flags, fragments):
    err = one_line_error(capsys, [*TAIL, *flags, "--out", str(tmp_path / "store")])
    for fragment in fragments:
        assert fragment in err, err
    assert not (tmp_path / "store").exists()  # refused before anything was computed or stored


@pytest.mark.parametrize("toml, fragments", [
    ("repeats = 1\n", ("'repeats' in --config", "integer >= 2")),
    ("grid_points = 1\n", ("'grid_points' in --config", "integer >= 2")),
    ("population = -1\n", ("'population' in --config", "integer >= 10")),
])
def test_a_refused_setting_of_a_config_file_is_named(capsys, tmp_path, toml, fragments):
    config = tmp_path / "tail.toml"
    config.write_text(toml)
    err = one_line_error(capsys, [*BASE, "--config", str(config), "--out", str(tmp_path / "store")])
    for fragment in fragments:
        assert fragment in err, err
    assert not (tmp_path / "store").exists()
