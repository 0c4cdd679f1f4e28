"""The README starts with the commands that do everything, stays one screen long, and CI runs its test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_opens_with_the_commands_and_is_short():
    text = (ROOT / "README.md").read_text()
    first_block = text.split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands[:3] == ["python3 tasks.py figures", "python3 tasks.py test", "python3 tasks.py docs"]
    assert all(command.startswith("python3 tasks.py ") for command in commands)  # one entry script for everything
    assert len(re.sub(r"<!--.*?-->", "", text)) < 6000  # as read: the quote markers are invisible
    assert "MAIN_JOB_TIME" not in text  # the measured time of the main job is filled in


def test_ci_runs_exactly_the_readme_test_command():
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[-1] == "python3 tasks.py test"
