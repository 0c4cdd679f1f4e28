"""Every number the README, the user guide and the findings page quote is the code's own output.

Three ways a number may stand in those documents' prose, and nothing else:

* between quote markers, ``<!--q KEY-->text<!--/q-->``: the text must be the one the main job made
  (``docs/quotes.json``, a complete quick run, written by ``python3 tasks.py figures --update-docs``) or the one the
  code makes now (``paper_figures._quotes.code_quotes``);
* in code (fenced blocks, inline code spans) or in a formula (``$...$``): inputs and definitions, not results;
  the guide's console blocks that show output are run and compared with it (the last test here);
* matching one of :data:`EXEMPT`: names and numbering that are not measurements (F16, Theorem 4.1, Python 3.11).

The main job checks the other direction: its report says whether these documents still quote what it made
(``documents_row``), and the tests below plant a wrong number to show each check can fail.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from paper_figures import _quotes
from paper_figures._registry import FIGURES

ROOT = Path(__file__).resolve().parents[2]

#: Numbers in prose that are not measurements, each with why.
EXEMPT = (
    r"\bF\d+(?:-F\d+)?\b",                                     # figure names: F16, F1-F17
    r"\b(?:Theorems?|Corollary|Definition|Lemma|[Ss]ection|eq\.|Figures?|Strategy|prediction)\s+\d+(?:\.\d+)?"
    r"(?:\s*(?:,|and|-)\s*\d+(?:\.\d+)?)*",                    # the paper's numbering
    r"Python >= \d+\.\d+",                                     # the versions the package needs
    r"\b\d+\.\d+ CPU series",
    r"\bICML \d{4}|\bICLR\b",                                  # the paper's venue
    r"\b1/width\b|\b1/sqrt\b",                                 # a rate's name, not a measurement
    r"[+-]+1 labels|\+-1\b",                                   # the label model
    r"\b95% (?:Clopper-Pearson |t-|confidence )?intervals?\b|\b95%\b",  # the interval level the report states
    r"\b2-core\b|\b\d+ cores\b|\bone core\b",                  # the machine
    r"\b1% of the trials\b",                                   # a stated warning rule of the CLI
    r"\bN x N\b|\bN x P\b|\b3x32x32\b|\bCNN-\d+-\d+\b",        # shapes and model names
    r"\bSHA-256\b|\bCIFAR-10\b|\bMNIST-1D\b",                     # names of a hash and of data sets
)
_EXEMPT = re.compile("|".join(f"(?:{pattern})" for pattern in EXEMPT))
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?%?")


def snapshot() -> dict:
    return _quotes.read_quotes(ROOT / _quotes.SNAPSHOT)


def texts() -> dict[str, str]:
    made = {key: entry["text"] for key, entry in snapshot()["quotes"].items()}
    return {**made, **_quotes.code_quotes()}


def prose(text: str) -> str:
    """A document less what is not prose: fenced code blocks, inline code, formulas, quote markers with their
    text, link targets, HTML comments and MyST directives' options."""
    text = re.sub(r"^(```|~~~).*?^\1\s*$", " ", text, flags=re.DOTALL | re.MULTILINE)
    text = _quotes.MARKER.sub(" ", text)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)
    text = re.sub(r"``.*?``|`[^`]*`", " ", text, flags=re.DOTALL)
    text = re.sub(r"\$\$.*?\$\$|\$[^$\n]+\$", " ", text, flags=re.DOTALL)
    text = re.sub(r"\]\([^)]*\)", "]", text)                  # link targets (file names)
    return text


def unaccounted(text: str) -> list[str]:
    """Numbers in the prose of ``text`` that no marker, code span, formula or exemption accounts for."""
    body = _EXEMPT.sub(" ", prose(text))
    return [m.group(0) for m in _NUMBER.finditer(body)]


@pytest.mark.parametrize("name", _quotes.DOCUMENTS)
def test_every_number_in_the_prose_is_a_quote_or_exempt(name):
    found = unaccounted((ROOT / name).read_text())
    assert not found, f"{name}: numbers no quote marker accounts for: {found}"


@pytest.mark.parametrize("name", _quotes.DOCUMENTS)
def test_every_quote_is_what_the_code_made(name):
    made = texts()
    problems = [p for p in _quotes.check_documents(ROOT, made) if p.startswith(name + ":")]
    assert not problems, "\n".join(problems) + "\n(python3 tasks.py figures --update-docs rewrites them)"
    assert _quotes.marked((ROOT / name).read_text()), f"{name} quotes nothing"


def test_the_snapshot_is_one_complete_quick_run():
    record = snapshot()
    assert record["scale"] == "quick"
    assert record["figures"] == sorted(FIGURES)
    assert re.fullmatch(r"[0-9a-f]{16}", record["code"]) and record.get("commit")
    assert {entry["figure"] for entry in record["quotes"].values()} <= set(FIGURES)
    quoted = {key for name in _quotes.DOCUMENTS for key, _ in _quotes.marked((ROOT / name).read_text())}
    assert quoted <= set(texts()), sorted(quoted - set(texts()))


def test_no_quote_starts_a_line():
    """A line that starts with ``<!--`` is an HTML block to Markdown: its text would lose its formatting."""
    for name in _quotes.DOCUMENTS:
        for number, line in enumerate((ROOT / name).read_text().splitlines(), 1):
            assert not line.lstrip().startswith("<!--q"), f"{name}:{number}"


# -- each check can fail ---------------------------------------------------------------------------------------------

def _plant(tmp_path: Path, text: str) -> Path:
    (tmp_path / "docs").mkdir(exist_ok=True)
    (tmp_path / "README.md").write_text(text)
    return tmp_path


def test_a_changed_number_is_found_and_rewritten(tmp_path):
    made = {"F16_floor": "1.73e-9", "F16_law": "a = 1.03 [0.97, 1.09] over widths 64-1024"}
    root = _plant(tmp_path, "floor <!--q F16_floor-->1.74e-9<!--/q--> and\n<!--q F16_law-->a = 1.03 [0.97,\n"
                            "1.09] over widths 64-1024<!--/q-->, <!--q gone-->7<!--/q-->.\n")
    problems = _quotes.check_documents(root, made)
    assert any("F16_floor quotes '1.74e-9'" in p for p in problems)
    assert any("'gone' is not made" in p for p in problems)
    assert not any("F16_law" in p for p in problems)          # a quote may wrap over lines
    with pytest.raises(ValueError, match="gone"):
        _quotes.update_documents(root, made)
    _plant(tmp_path, "floor <!--q F16_floor-->1.74e-9<!--/q-->.\n")
    assert _quotes.update_documents(root, made) == ["README.md"]
    assert (root / "README.md").read_text() == "floor <!--q F16_floor-->1.73e-9<!--/q-->.\n"
    assert _quotes.check_documents(root, made) == []


def test_the_report_row_says_which_quotes_differ(tmp_path):
    root = _plant(tmp_path, "x <!--q F4_vacuous-->70 of 72 grid points<!--/q--> y "
                            "<!--q F2_counterexample-->a left side of 16 against a printed bound of 8<!--/q-->\n")
    row = _quotes.documents_row(root, {"F4_vacuous": {"text": "71 of 72 grid points", "figure": "F4"}}, ["F4"])
    assert row["numbers"].startswith("1 of 2 quotes agree")
    assert row["verdict"].startswith("disagree at 1 of 2") and "'70 of 72 grid points'" in row["verdict"]
    from paper_figures._report import verdict_class

    assert verdict_class(row) == "contradicted"


def test_a_bare_number_in_prose_is_caught():
    assert unaccounted("the floor is 1.73e-9 at F16 (Theorem 4.1)") == ["1.73e-9"]
    assert unaccounted("the floor is <!--q F16_floor-->1.73e-9<!--/q--> and `width=128`, $e^{0.25}$") == []


def test_collect_refuses_a_key_given_twice_and_a_bad_key():
    with pytest.raises(ValueError, match="two rows"):
        _quotes.collect([{"figure": "F1", "quotes": {"k": "1"}}, {"figure": "F2", "quotes": {"k": "2"}}])
    with pytest.raises(ValueError, match="letters, digits"):
        _quotes.collect([{"figure": "F1", "quotes": {"a-b": "1"}}])


def test_a_quotes_file_is_validated(tmp_path):
    bad = tmp_path / "quotes.json"
    for content, words in (("[1]", "expected an object"), ('{"quotes": {}, "scale": 1, "code": "x"}', "'scale'"),
                           ('{"quotes": {"k": {"text": 1}}, "scale": "quick", "code": "x"}', "entry 'k'"),
                           ("{", "cannot be read")):
        bad.write_text(content)
        with pytest.raises(ValueError, match=words):
            _quotes.read_quotes(bad)


def test_sci_writes_numbers_as_the_documents_do():
    assert [_quotes.sci(x) for x in (1.7312e-9, 0.0123, 123456.0, 0.5)] == ["1.73e-9", "0.0123", "1.23e5", "0.5"]
    assert _quotes.sci(1.2e-10, 2) == "1.2e-10"


# -- console output in the guide -----------------------------------------------------------------------------------

def _console_blocks(text: str):
    """``(command, expected output lines)`` for each console command of ``text`` that shows its output."""
    for block in re.findall(r"^```console\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ "):
                i += 1
                continue
            command = lines[i][2:]
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + lines[i].strip()
            output = []
            while i + 1 < len(lines) and not lines[i + 1].startswith("$ "):
                i += 1
                output.append(lines[i])
            i += 1
            if output:
                yield command, output


def test_the_guides_console_output_is_what_the_command_prints(tmp_path):
    blocks = list(_console_blocks((ROOT / "docs" / "guide.md").read_text()))
    assert blocks, "the guide shows no console output"
    for command, expected in blocks:
        args = command.split()
        assert args[:3] == ["python", "-m", "montecarlo"], command
        run = subprocess.run([sys.executable, *args[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
        assert run.returncode == 0, run.stderr
        printed = run.stdout.splitlines()
        shown = expected[:expected.index("   ...")] if "   ..." in expected else expected
        timing = re.compile(r"done in \d+(\.\d+)? s")
        for have, want in zip(printed, shown, strict=False):
            assert timing.sub("done in T s", have.rstrip()) == timing.sub("done in T s", want.rstrip()), command
        assert len(printed) >= len(shown), command

