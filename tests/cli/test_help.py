"""The command line's help: every choice lists its accepted values (read from the tables the code validates with),
every option says what it is, no reStructuredText markup, and each command's examples parse and run (issue 26).

The examples are the parser's own (``EXAMPLES``, each command's epilog); the first sweep runs as written, into a
temporary store, and both show examples read that store.
"""

from __future__ import annotations

import argparse
import shlex

import pytest

import montecarlo as mc
from montecarlo.__main__ import main, parser
from montecarlo.testing import backend_names, cli, runs, sweep, tail_run, validation

COMMANDS = ("sweep", "tail", "train", "show")


def _commands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _option(command: str, flag: str) -> argparse.Action:
    return next(a for a in _commands()[command]._actions if flag in a.option_strings)


def test_every_command_has_help_a_description_and_examples():
    commands = _commands()
    assert tuple(commands) == COMMANDS
    top = parser().format_help()
    for name, command in commands.items():
        assert name in top
        text = command.format_help()
        assert command.description and command.description.split("\n")[0] in text
        assert "examples:" in text and len(cli.EXAMPLES[name]) >= 2
        for line in cli.EXAMPLES[name]:
            assert f"  {line}" in text  # kept as written (RawDescriptionHelpFormatter), one line each


def test_every_option_has_a_description_and_no_rst_markup():
    texts = [parser().format_help()]
    for name, command in _commands().items():
        for action in command._actions:
            assert action.help, (name, action.option_strings or action.dest)
        texts.append(command.format_help())
    for text in texts:
        assert "``" not in text and ":func:" not in text and ":data:" not in text


@pytest.mark.parametrize("command, flag, values", [
    ("sweep", "--backend", backend_names()),
    ("tail", "--backend", backend_names()),
    ("sweep", "--method", sweep.METHODS),
    ("tail", "--method", sweep.METHODS),
    ("tail", "--direction", tail_run.DIRECTIONS),
    ("sweep", "--dtype", validation.DTYPES),
    ("tail", "--dtype", validation.DTYPES),
    ("train", "--dtype", validation.DTYPES),
    ("train", "--data", runs.DATASETS),
    ("train", "--track", runs.TRACKS),
])
def test_choice_options_accept_exactly_the_tables_values(command, flag, values):
    assert tuple(_option(command, flag).choices) == tuple(values)


def test_every_choice_option_lists_its_values_in_its_help():
    for name, command in _commands().items():
        text = " ".join(command.format_help().split())
        for action in command._actions:
            for value in action.choices or ():
                assert str(value) in text, (name, action.option_strings, value)


@pytest.mark.parametrize("command", ["sweep", "tail"])
@pytest.mark.parametrize("flag, values", [
    ("--activation", mc.ACTIVATIONS),
    ("--loss", mc.LOSSES),
    ("--labels", tuple(mc.LABELS)),
    ("--init", mc.INITS),
])
def test_network_name_options_list_the_registries(command, flag, values):
    words = " ".join(_option(command, flag).help.split())
    assert f"one of {', '.join(values)}" in words


def test_statistic_lists_every_statistic_and_the_networks_own():
    words = " ".join(_option("tail", "--statistic").help.split())
    for name in mc.STATISTICS:
        assert name in words, name
    assert "norm_ratio" in words and "default eta_star" in words


def test_boolean_and_model_axes_say_what_they_accept():
    for command, flag in (("sweep", "--bias"), ("tail", "--output-activation"), ("train", "--skip"),
                          ("train", "--batchnorm")):
        assert "true or false" in " ".join(_option(command, flag).help.split())
    model = " ".join(_option("train", "--model").help.split())
    assert "cnn" in model and "mlp" in model


def test_every_example_parses():
    for name, lines in cli.EXAMPLES.items():
        for line in lines:
            words = shlex.split(line)
            assert words[:4] == ["python", "-m", "montecarlo", name], line
            args = parser().parse_args(words[3:])
            assert args.command == name


def test_the_first_sweep_example_runs_and_the_show_examples_read_its_store(tmp_path, capsys):
    store = tmp_path / "width"
    words = shlex.split(cli.EXAMPLES["sweep"][0])[3:]
    words[words.index("--out") + 1] = str(store)
    assert main(words) == 0
    out = capsys.readouterr().out
    assert "2/2 points stored" in out and "eta* >" in out
    for line in cli.EXAMPLES["show"]:
        words = [str(store) if word == "runs/width" else word for word in shlex.split(line)[3:]]
        assert main(words) == 0
        captured = capsys.readouterr()
        assert "eta* >" in captured.out and "2/2 points done" in captured.err
