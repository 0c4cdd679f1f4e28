"""Write the generated pages of the documentation into ``docs/_generated/`` (called from ``conf.py``).

Nothing here is hand-listed: the API pages iterate ``theory.__all__`` and
``montecarlo.__all__``, the figure pages iterate ``paper_figures._registry.FIGURES``,
the CLI page is ``montecarlo.__main__.parser()``'s own help text, the tutorials are
``notebooks/*.ipynb`` (with their stored outputs) and the benchmark page is
``benchmarks/results/*.md``.  The main job's output (``results/``) is used when it
exists; without it the figure pages say how to make it.  A file is rewritten only
when its text changes, so repeated builds stay incremental.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import shutil
import textwrap
import types
from pathlib import Path

DOCS = Path(__file__).resolve().parent
#: The repository whose code, notebooks and benchmarks are documented (``GC_DOCS_REPO`` overrides it, so that a
#: test can build a copy of ``docs/`` elsewhere without writing into the working tree).
ROOT = Path(os.environ.get("GC_DOCS_REPO", DOCS.parent)).resolve()
OUT = DOCS / "_generated"


def results_dir() -> Path:
    """The main job's output folder (``GC_DOCS_RESULTS`` overrides ``<repo>/results``)."""
    return Path(os.environ.get("GC_DOCS_RESULTS", ROOT / "results"))


# -- helpers -------------------------------------------------------------------------------------------------------
def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)


def _heading(text: str, char: str) -> str:
    return f"{text}\n{char * len(text)}\n"


def _md_escape(text: str) -> str:
    """Text shown verbatim in Markdown: every ASCII punctuation character backslash-escaped (CommonMark)."""
    text = str(text).replace("\\|", "|").replace("\n", " ")
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


def _first_line(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def _kind(obj) -> str:
    from theory import Result

    if isinstance(obj, Result):
        return "result"
    if isinstance(obj, types.ModuleType):
        return "module"
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "data"


# -- API reference -------------------------------------------------------------------------------------------------
def _result_entry(package: str, name: str, result) -> str:
    """A theory.Result: its source, its statement as an equation (from ``latex()``), hypotheses and verdicts."""
    lines = [f".. py:data:: {name}", "   :type: theory.Result", ""]  # the current module is {package}
    body = [f"**{_rst_text(result.name)}** ({result.kind.replace('_', ' ')}). {_rst_text(result.source.describe())}",
            ""]
    if result.meaning:
        body += [_rst_text(result.meaning), ""]
    body += [".. math::", "", "   " + result.latex().replace("\n", " "), ""]
    if result.hypotheses:
        body += ["Hypotheses:", ""]
        for hypothesis in result.hypotheses:
            body += ["- " + _rst_literal(hypothesis.label)]
        body += [""]
    if result.constants:
        body += ["Free absolute constants: " + ", ".join(f"``{c.name}``" for c in result.constants), ""]
    if result.verdicts:
        body += ["Verdict of our checks: " + _rst_literal(result.verdicts), ""]
    if result.notes:
        body += ["Reading chosen: " + _rst_literal(result.notes), ""]
    lines += ["   " + line if line else "" for line in body]
    return "\n".join(lines) + "\n"


def _rst_literal(text: str) -> str:
    """Free text shown in reStructuredText without being parsed as markup (inline literal)."""
    text = " ".join(str(text).split()).replace("``", "` `")
    return f"``{text}``" if text else ""


def _rst_text(text: str) -> str:
    """Free text shown in reStructuredText as plain words: inline markup characters backslash-escaped."""
    text = " ".join(str(text).split())
    return re.sub(r"([\\\\*|`_\[\]<>:])", r"\\\1", text)


def _data_entry(package: str, name: str, obj) -> str:
    value = repr(obj)
    lines = [f".. py:data:: {name}", ""]
    lines += [f"   Type ``{type(obj).__name__}``" + (f"; value ``{value}``" if len(value) <= 200 and "``" not in value
                                                     else f" with {len(obj)} entries" if hasattr(obj, "__len__")
                                                     else "")]
    return "\n".join(lines) + "\n"


def _api_page(package: str) -> tuple[str, dict[str, list[str]]]:
    module = __import__(package)
    names = list(dict.fromkeys(module.__all__))
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(_kind(getattr(module, name)), []).append(name)
    titles = {"result": "Results of the paper (each shows its equation)", "function": "Functions",
              "class": "Classes", "exception": "Exceptions", "data": "Constants and tables", "module": "Modules"}
    out = [f".. This file is generated by docs/_generate.py from {package}.__all__; do not edit.", "",
           _heading(f"``{package}``", "="), f".. py:module:: {package}", "   :no-index:", ""]
    doc = inspect.getdoc(module) or ""
    out += ["::", "", textwrap.indent(doc, "   "), ""]
    out += [f"Every name in ``{package}.__all__`` ({len(names)}), by kind.", ""]
    for kind in ("result", "function", "class", "exception", "data", "module"):
        if kind not in groups:
            continue
        out += [_heading(titles[kind], "-")]
        out += [".. list-table::", "   :widths: 30 70", ""]
        for name in groups[kind]:
            summary = _rst_literal(_first_line(getattr(module, name)) if kind != "result"
                                   else getattr(module, name).name)
            out += [f"   * - :py:{'data' if kind in ('result', 'data') else 'obj'}:`{package}.{name}`",
                    f"     - {summary or '(no docstring)'}"]
        out += [""]
        for name in groups[kind]:
            obj = getattr(module, name)
            if kind == "result":
                out.append(_result_entry(package, name, obj))
            elif kind == "function":
                out += [f".. autofunction:: {package}.{name}", ""]
            elif kind in ("class", "exception"):
                out += [f".. autoclass:: {package}.{name}", "   :members:", ""]
            elif kind == "data":
                out.append(_data_entry(package, name, obj))
            else:
                out += [f".. py:data:: {name}", "", f"   The module ``{obj.__name__}``.", "",
                        "   ::", "", textwrap.indent(inspect.getdoc(obj) or "", "      "), ""]
    return "\n".join(out) + "\n", groups


def write_api() -> dict[str, dict[str, list[str]]]:
    summary = {}
    for package in ("theory", "montecarlo"):
        text, groups = _api_page(package)
        _write(OUT / "api" / f"{package}.rst", text)
        summary[package] = groups
    return summary


# -- figures -------------------------------------------------------------------------------------------------------
def report_rows(report: Path) -> dict[str, list[dict]]:
    """Rows of ``results/report.md`` by figure name: ``{"claim", "check", "numbers", "verdict"}`` (+ extra columns)."""
    rows: dict[str, list[dict]] = {}
    if not report.exists():
        return rows
    lines = [line for line in report.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    if len(lines) < 2:
        return rows
    split = lambda line: [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]  # noqa: E731
    header = split(lines[0])
    for line in lines[2:]:
        cells = split(line)
        if len(cells) != len(header):
            continue
        link = re.match(r"\[([^\]]+)\]", cells[-1])
        if not link:
            continue
        row = {h: c.replace("\\|", "|") for h, c in zip(header[:-1], cells[:-1])}
        row["verdict"] = row.get("verdict", "").strip("*")
        rows.setdefault(link.group(1), []).append(row)
    return rows


def write_figures() -> list[str]:
    from paper_figures._registry import FIGURES, MODULE_OF

    results = results_dir()
    rows = report_rows(results / "report.md")
    names = list(FIGURES)
    for name, figure in FIGURES.items():
        png = results / "figures" / name / f"{name}.png"
        text = [f"<!-- generated by docs/_generate.py from paper_figures._registry.FIGURES; do not edit -->", "",
                f"# {name}", "", f"*{_md_escape(figure.title)}*", "",
                f"Made by `{MODULE_OF[name].__name__}` (`python3 tasks.py figures {name}`).", ""]
        doc = _first_line(MODULE_OF[name])
        if doc:
            text += [_md_escape(doc), ""]
        if png.exists():
            _copy(png, OUT / "figures" / f"{name}.png")
            text += [f"```{{image}} {name}.png", f":alt: {name}", ":width: 100%", "```", ""]
        else:
            text += ["```{note}", f"The figure has not been made here yet: run `python3 tasks.py figures` first "
                     f"(it writes `results/figures/{name}/{name}.png` and `results/report.md`), then rebuild the "
                     "documentation with `python3 tasks.py docs`.", "```", ""]
        if rows.get(name):
            text += ["## Report rows", "", "| claim | check | numbers | verdict |", "|---|---|---|---|"]
            for row in rows[name]:
                text.append("| " + " | ".join(_md_escape(row.get(c, "")) for c in ("claim", "check", "numbers"))
                            + f" | **{_md_escape(row.get('verdict', ''))}** |")
            text.append("")
        elif png.exists():
            text += ["No rows for this figure in `results/report.md`.", ""]
        _write(OUT / "figures" / f"{name}.md", "\n".join(text))
    index = ["# Figures", "", "One page per figure of the main job (`python3 tasks.py figures`), in the registry's "
             "order (`paper_figures._registry.FIGURES`): the figure and its rows of the verdict report.", ""]
    if not (results / "report.md").exists():
        index += ["```{note}", "No results here yet: run `python3 tasks.py figures` first, then "
                  "`python3 tasks.py docs`.", "```", ""]
    index += ["| figure | title |", "|---|---|"]
    index += [f"| [{name}]({name}.md) | {_md_escape(FIGURES[name].title)} |" for name in names]
    index += ["", "```{toctree}", ":hidden:", "", *names, "```", ""]
    _write(OUT / "figures" / "index.md", "\n".join(index))
    _write(OUT / "report_rows.md", _report_table(rows, names))
    return names


def _report_table(rows: dict[str, list[dict]], names: list[str]) -> str:
    """Every row of the verdict report, for the findings page (or how to make the report)."""
    if not rows:
        return ("```{note}\nNo verdict report here yet: run `python3 tasks.py figures` first (it writes "
                "`results/report.md`), then `python3 tasks.py docs`.\n```\n")
    out = ["| figure | claim | numbers | verdict |", "|---|---|---|---|"]
    for name in [n for n in names if n in rows] + sorted(set(rows) - set(names)):
        link = f"{{doc}}`{name} </_generated/figures/{name}>`" if name in names else _md_escape(name)
        for row in rows[name]:
            out.append(f"| {link} | {_md_escape(row.get('claim', ''))} | {_md_escape(row.get('numbers', ''))} "
                       f"| **{_md_escape(row.get('verdict', ''))}** |")
    return "\n".join(out) + "\n"


# -- CLI -----------------------------------------------------------------------------------------------------------
def _help(parser: argparse.ArgumentParser) -> str:
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return parser.format_help()
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


def write_cli() -> list[str]:
    from montecarlo.__main__ import parser as cli_parser

    parser = cli_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = [".. This file is generated by docs/_generate.py from montecarlo.__main__.parser(); do not edit.", "",
           _heading("Command line: ``python -m montecarlo``", "="),
           "The help text of the parser itself, so it cannot drift from the code.", "",
           "::", "", textwrap.indent(_help(parser), "   "), ""]
    for name, sub in commands.choices.items():
        out += [_heading(f"``python -m montecarlo {name}``", "-"), "::", "", textwrap.indent(_help(sub), "   "), ""]
    _write(OUT / "cli.rst", "\n".join(out))
    return list(commands.choices)


# -- benchmarks ----------------------------------------------------------------------------------------------------
def write_benchmarks() -> list[str]:
    tables = sorted((ROOT / "benchmarks" / "results").glob("*.md"))
    out = ["# Benchmarks", "", "Tables written by the scripts in `benchmarks/` (run by hand, not by the test suite: "
           "`python benchmarks/<name>.py`), as stored in `benchmarks/results/`.", ""]
    scripts = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_"))
    out += ["Scripts: " + ", ".join(f"`{s}.py`" for s in scripts), ""]
    if not tables:
        out += ["```{note}", "No benchmark tables stored yet (`benchmarks/results/*.md`).", "```", ""]
    for table in tables:
        _copy(table, OUT / "benchmarks" / table.name)
        out += [f"## {table.stem}", "", f"```{{include}} benchmarks/{table.name}", ":heading-offset: 2", "```", ""]
    _write(OUT / "benchmarks.md", "\n".join(out))
    return [t.stem for t in tables]


# -- tutorials -----------------------------------------------------------------------------------------------------
def write_tutorials() -> list[str]:
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    target = OUT / "tutorials"
    wanted = {p.name for p in notebooks}
    if target.exists():
        for old in target.glob("*.ipynb"):
            if old.name not in wanted:
                old.unlink()
    for notebook in notebooks:
        _copy(notebook, target / notebook.name)
    order = sorted(notebooks, key=lambda p: (p.stem != "theory_tour", p.stem))
    out = ["# Tutorials", "", "The notebooks of `notebooks/`, rendered with the outputs stored in them (the "
           "documentation build never executes them; the test suite does, at a small scale). Each one is written "
           "from a readable percent-format source in `notebooks/src/` by `python notebooks/_make_notebooks.py`, "
           "which also executes it once to store its outputs.", "",
           "```{toctree}", ":maxdepth: 1", "", *[p.stem for p in order], "```", ""]
    _write(target / "index.md", "\n".join(out))
    return [p.stem for p in order]


def generate() -> dict:
    """Write every generated page; returns what was written (for the build's log)."""
    OUT.mkdir(exist_ok=True)
    return {"api": write_api(), "figures": write_figures(), "cli": write_cli(), "benchmarks": write_benchmarks(),
            "tutorials": write_tutorials()}


if __name__ == "__main__":
    written = generate()
    print({k: (len(v) if not isinstance(v, dict) else {p: sum(map(len, g.values())) for p, g in v.items()})
           for k, v in written.items()})
