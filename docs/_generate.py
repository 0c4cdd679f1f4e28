"""Write the generated pages of the documentation into ``docs/_generated/`` (called from ``conf.py``).

Nothing here is hand-listed: the API pages iterate ``theory.__all__`` and
``montecarlo.__all__``, the figure pages iterate ``paper_figures._registry.FIGURES``,
the CLI page is ``montecarlo.__main__.parser()``'s own help text, the tutorials are
``notebooks/*.ipynb`` (with their stored outputs) and the benchmark page is
``benchmarks/results/*.md``.  The main job's output (``results/``) is used when it
exists; without it the figure pages say how to make it.  A file is rewritten only
when its text changes, so repeated builds stay incremental.

Docstring and report text reaches the pages through ``_rst_inline`` / ``_md_inline``
(its double-backtick literals and roles kept as markup, every other character escaped) and
module docstrings through ``_rst_docstring``, so no markup is ever shown as text:
``tests/project/test_docs.py`` reads the built pages and fails on any that is.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import shutil
import sys
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
    """The summary of an object's own docstring: its first paragraph on one line."""
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


#: The inline markup of a docstring that the generated pages keep as markup: ``literal``, :role:`target` and
#: `single backticks` (RST's default role, meant as code in these docstrings); the rest of the text is escaped.
_INLINE = re.compile(r"(``(?:(?!``).)+``(?!`)|:[A-Za-z][\w:.-]*:`[^`]+`|(?<![`\\])`[^`\s](?:[^`]*[^`\s])?`(?!`))")


def _inline_pieces(text: str) -> list[tuple[str, str]]:
    """``(kind, text)`` pieces of one line of docstring text: kind ``"text"``, ``"literal"`` (the code inside the
    backticks) or ``"role"`` (``:role:`target``` as written)."""
    pieces = []
    for i, piece in enumerate(_INLINE.split(text)):
        if i % 2 == 0:
            if piece:
                pieces.append(("text", piece))
        elif piece.startswith("``"):
            pieces.append(("literal", piece[2:-2]))
        elif piece.startswith(":"):
            pieces.append(("role", piece))
        else:
            pieces.append(("literal", piece[1:-1]))
    return pieces


def _md_code(code: str) -> str:
    """A Markdown code span of ``code`` (a fence longer than any run of backticks inside; ``|`` escaped, as a
    table cell needs)."""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", code)), default=0) + 1)
    pad = " " if code.startswith("`") or code.endswith("`") else ""
    return f"{fence}{pad}{code}{pad}{fence}".replace("|", "\\|")


def _md_inline(text: str) -> str:
    """Docstring or report text in Markdown (a page or a table cell): its ``literals`` as code, its roles as MyST
    roles, every other character shown as it is (CommonMark-escaped)."""
    out = []
    for kind, piece in _inline_pieces(" ".join(str(text).replace("\\|", "|").split())):
        if kind == "text":
            out.append(_md_escape(piece))
        elif kind == "literal":
            out.append(_md_code(piece))
        else:
            role, target = re.match(r":([^`]+):`([^`]+)`", piece).groups()
            out.append(f"{{{role}}}`{target}`")
    return "".join(out)


def _rst_inline(text: str, link: tuple[str, set[str]] | None = None) -> str:
    """Docstring text in reStructuredText: its ``literals`` and :roles:`x` kept as markup, every other character
    shown as it is (escaped).  ``link=(package, names)``: bare words that are public names become references."""
    out: list[str] = []
    after_markup = False

    def add(piece: str, markup: bool) -> None:
        # inline markup needs a boundary on both sides: an escaped space (rendered as nothing) where a word touches it
        previous = out[-1][-1] if out and out[-1] else " "
        if markup and not previous.isspace() and previous not in "([{<'\"/-":
            out.append("\\ ")
        elif after_markup and not piece[0].isspace() and piece[0] not in "-.,:;!?\\/'\")]}>":
            out.append("\\ ")
        out.append(piece)

    for kind, piece in _inline_pieces(" ".join(str(text).split())):
        if kind == "text":
            for j, word in enumerate(re.split(r"(?<![\w.])([A-Za-z_]\w*)(?![\w(])", piece)):
                if j % 2 and link and word in link[1]:
                    add(f":py:obj:`~{link[0]}.{word}`", True)
                    after_markup = True
                elif word:
                    add(_rst_escape(word), False)
                    after_markup = False
        else:
            add(_rst_literal(piece) if kind == "literal" else piece, True)
            after_markup = True
    text = "".join(out)
    return "\\" + text if re.match(r"([-*+]|\d+[.)]|#\.)(\s|$)", text) else text


def _rst_docstring(doc: str, link: tuple[str, set[str]] | None = None) -> str:
    """A module docstring as reStructuredText that builds without warnings and shows no raw markup.

    Section titles become rubrics (a docstring's sections are not the page's), a paragraph that ends in ``::``
    keeps its literal block, a block shaped as terms with indented definitions becomes a definition list, any other
    indented block a line block (its line breaks kept), and the text of each is :func:`_rst_inline`'s (with
    ``link``, the public names in those listings become references; prose is left as written).
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    out: list[str] = []
    indent = lambda line: len(line) - len(line.lstrip())  # noqa: E731
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        block = []
        while i < len(lines) and lines[i].strip():
            block.append(lines[i])
            i += 1
        if (len(block) >= 2 and re.fullmatch(r"([=\-~^\"'+*#`:.])\1+", block[1].strip())
                and len(block[1].strip()) >= len(block[0].strip())):
            out += [".. rubric:: " + _rst_inline(block[0]), ""]
            block = block[2:]
            if not block:
                continue
        if block[-1].rstrip().endswith("::") and all(indent(line) == indent(block[0]) for line in block):
            paragraph = " ".join(line.strip() for line in block)[:-2].rstrip()
            out += [(_rst_inline(paragraph) + "::") if paragraph else "::", ""]
            base = indent(block[0])
            literal = []
            while i < len(lines) and (not lines[i].strip() or indent(lines[i]) > base):
                literal.append(lines[i])
                i += 1
            while literal and not literal[-1].strip():
                literal.pop()
            if literal:
                out += [textwrap.indent(textwrap.dedent("\n".join(literal)), "   "), ""]
            else:  # no indented block follows: the paragraph keeps one colon, as docutils would print it
                out[-2] = out[-2][:-1]
        elif all(indent(line) == indent(block[0]) for line in block):
            out += [_rst_inline(" ".join(line.strip() for line in block)), ""]
        elif indent(block[0]) == 0 and indent(block[-1]) > 0 and all(
                indent(block[k]) > 0 or indent(block[k + 1]) > 0 for k in range(len(block) - 1)):
            for line in block:  # term, its definition on the indented lines below it
                if indent(line) == 0:
                    out.append(_rst_inline(line, link))
                else:
                    out.append("   " + _rst_inline(line, link))
            out.append("")
        else:
            base = min(indent(line) for line in block)
            out += ["| " + " " * (indent(line) - base) + _rst_inline(line, link) for line in block]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


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
        body += ["Verdict of our checks: " + _rst_inline(result.verdicts), ""]
    if result.notes:
        body += ["Reading chosen: " + _rst_inline(result.notes), ""]
    lines += ["   " + line if line else "" for line in body]
    return "\n".join(lines) + "\n"


def _rst_literal(text: str) -> str:
    """Free text shown in reStructuredText without being parsed as markup (inline literal)."""
    text = " ".join(str(text).split()).replace("``", "` `")
    return f"``{text}``" if text else ""


def _rst_text(text: str) -> str:
    """Free text shown in reStructuredText as plain words: inline markup characters backslash-escaped."""
    return _rst_escape(" ".join(str(text).split()))


def _rst_escape(text: str) -> str:
    return re.sub(r"([\\\\*|`_\[\]<>:])", r"\\\1", text)


def _attribute_doc(package: str, name: str, obj) -> str:
    """The ``#:`` comment above the assignment of a public constant, in the module of the package that defines it."""
    from sphinx.pycode import ModuleAnalyzer

    for module_name, module in sorted(sys.modules.items()):
        if module is None or not (module_name == package or module_name.startswith(package + ".")):
            continue
        if getattr(module, name, None) is not obj:
            continue
        try:
            lines = ModuleAnalyzer.for_module(module_name).find_attr_docs().get(("", name))
        except Exception:  # no source (a compiled or namespace module): no comment to read
            continue
        if lines:
            return "\n".join(lines).strip()
    return ""


def _data_summary(package: str, name: str, obj) -> str:
    """A constant's summary: the first sentence of its ``#:`` comment, or its type and value (or size)."""
    doc = " ".join(_attribute_doc(package, name, obj).split("\n\n")[0].split())
    for end in re.finditer(r"[.!?](?=\s+[A-Z])", doc):  # the first sentence (not a full stop inside a ``literal``)
        if doc[:end.start()].count("``") % 2 == 0:
            return doc[:end.end()]
    if doc:
        return doc
    value = repr(obj)
    if len(value) <= 80 and "``" not in value and value.strip() == value:
        return f"``{type(obj).__name__}``: ``{value}``"
    size = f" with {len(obj)} entries" if isinstance(obj, (dict, list, tuple, set, frozenset)) else ""
    return f"``{type(obj).__name__}``{size}"


def _data_entry(package: str, name: str, obj) -> str:
    value = repr(obj)
    lines = [f".. py:data:: {name}", ""]
    lines += [f"   Type ``{type(obj).__name__}``" + (f"; value ``{value}``" if len(value) <= 200 and "``" not in value
                                                     and value.strip() == value
                                                     else f" with {len(obj)} entries" if hasattr(obj, "__len__")
                                                     else "") + ".", ""]
    doc = _attribute_doc(package, name, obj)
    if doc:
        lines += [textwrap.indent(_rst_docstring(doc), "   ")]
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
    link = (package, set(names))
    out += [_rst_docstring(inspect.getdoc(module) or "", link), ""]
    out += [f"Every name in ``{package}.__all__`` ({len(names)}), by kind.", ""]
    for kind in ("result", "function", "class", "exception", "data", "module"):
        if kind not in groups:
            continue
        out += [_heading(titles[kind], "-")]
        out += [".. list-table::", "   :widths: 30 70", ""]
        for name in groups[kind]:
            obj = getattr(module, name)
            summary = (_rst_text(obj.name) if kind == "result" else _rst_inline(_data_summary(package, name, obj))
                       if kind == "data" else _rst_inline(_first_line(obj)))
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
                        textwrap.indent(_rst_docstring(inspect.getdoc(obj) or ""), "   "), ""]
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
                f"# {name}", "", f"*{_md_inline(figure.title)}*", "",
                f"Made by `{MODULE_OF[name].__name__}` (`python3 tasks.py figures {name}`).", ""]
        doc = _first_line(MODULE_OF[name])
        if doc:
            text += [_md_inline(doc), ""]
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
                text.append("| " + " | ".join(_md_inline(row.get(c, "")) for c in ("claim", "check", "numbers"))
                            + f" | **{_md_inline(row.get('verdict', ''))}** |")
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
    index += [f"| [{name}]({name}.md) | {_md_inline(FIGURES[name].title)} |" for name in names]
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
            out.append(f"| {link} | {_md_inline(row.get('claim', ''))} | {_md_inline(row.get('numbers', ''))} "
                       f"| **{_md_inline(row.get('verdict', ''))}** |")
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
