"""The documentation builds offline with warnings as errors, documents every public name, and shows no leaks.

The build runs on a copy of ``docs/`` in ``tmp_path`` (``GC_DOCS_REPO`` points the generator at this
repository), with a synthetic ``results/`` holding one figure and its report rows, so both kinds of
figure page are built: with the main job's output and without it.  Notebooks are rendered from their
stored outputs, never executed (``nb_execution_mode = "off"``).

Every page of that build is then read as a reader sees it (:func:`leaks`): no markup shown as text (a pair
of backticks, a raw ``\\(`` formula), no script or style sheet from the network (MathJax is bundled), no
reference to the project's internal tracker, no path of the machine that built it.  A tiny project built
with the same settings shows that each of these checks fails on a page that has the fault.
"""

import ast
import html as html_module
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("myst_nb")
pytest.importorskip("numpydoc")
pytest.importorskip("pydata_sphinx_theme")

ROOT = Path(__file__).resolve().parents[2]


def _text(page: Path) -> str:
    """The words of an HTML page (tags dropped, entities decoded, white space collapsed)."""
    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))).split())


def _synthetic_results(folder: Path, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (folder / "figures" / name).mkdir(parents=True)
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1])
    fig.savefig(folder / "figures" / name / f"{name}.png")
    plt.close(fig)
    (folder / "report.md").write_text(
        "# Gradient confusion: verdict report (fast run)\n\n"
        "| claim | check | numbers | verdict | figure |\n|---|---|---|---|---|\n"
        f"| a *claim* with `markup` and \\|x_i\\| | MC vs <x_i, x_j> $bound$ | p = 0.5 [0.4, 0.6] with `\\|g\\| < 1` "
        f"| **holds** | [{name}](figures/{name}/{name}.png) |\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from paper_figures._registry import FIGURES

    tmp = tmp_path_factory.mktemp("docs")
    source = tmp / "src"
    shutil.copytree(ROOT / "docs", source, ignore=shutil.ignore_patterns("_build", "_generated", "__pycache__"))
    with_results = next(iter(FIGURES))
    _synthetic_results(tmp / "results", with_results)
    env = dict(os.environ, GC_DOCS_REPO=str(ROOT), GC_DOCS_RESULTS=str(tmp / "results"))
    html = tmp / "html"
    run = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
                          str(source), str(html)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
    return html, with_results


def test_every_public_name_has_an_entry(built):
    from sphinx.util.inventory import InventoryFile

    import montecarlo
    import theory

    html, _ = built
    with open(html / "objects.inv", "rb") as stream:
        inventory = InventoryFile.load(stream, "", lambda base, uri: uri)
    documented = {name for kind, entries in inventory.items() if kind.startswith("py:") for name in entries}
    for package in (theory, montecarlo):
        missing = [n for n in package.__all__ if f"{package.__name__}.{n}" not in documented]
        assert not missing, f"{package.__name__}: no API entry for {missing}"


def test_results_show_their_equation(built):
    html, _ = built
    page = (html / "_generated" / "api" / "theory.html").read_text()
    start = page.index('id="theory.theorem_4_1_sphere"')
    assert "math" in page[start:start + 4000] and "zeta_0" in page[start:start + 4000]


def test_every_notebook_is_rendered_with_outputs(built):
    html, _ = built
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        page = (html / "_generated" / "tutorials" / f"{notebook.stem}.html").read_text()
        assert "cell_output" in page, f"{notebook.name} rendered without outputs"


def test_figure_pages_with_and_without_results(built):
    from paper_figures._registry import FIGURES

    html, with_results = built
    for name in FIGURES:
        page = _text(html / "_generated" / "figures" / f"{name}.html")
        if name == with_results:
            assert (html / "_images" / f"{name}.png").exists()
            assert "holds" in page and "a *claim* with markup and |x_i|" in page and "<x_i, x_j> $bound$" in page
            source = re.sub(r"</?span[^>]*>", "", (html / "_generated" / "figures" / f"{name}.html").read_text())
            assert re.search(r"<code[^>]*>markup</code>", source)  # the report's `markup` is set as code
            # a | inside a code span stays in its cell: the table keeps its four cells
            assert re.search(r"<td><p>p = 0.5 \[0.4, 0.6\] with <code[^>]*>\|g\| &lt; 1</code></p></td>", source)
        else:
            assert "python3 tasks.py figures" in page


def test_cli_and_benchmarks_pages(built):
    html, _ = built
    cli = _text(html / "_generated" / "cli.html")
    for command in ("sweep", "train", "tail", "show"):
        assert f"python -m montecarlo {command}" in cli
    assert (html / "_generated" / "benchmarks.html").exists()
    assert "a *claim* with markup" in _text(html / "findings.html")  # the synthetic report row


# -- what a reader must never see --------------------------------------------------------------------------------------
class Leak(NamedTuple):
    page: str     # relative to the site's root
    kind: str     # one of LEAK_KINDS
    excerpt: str


LEAK_KINDS = {
    "markup": "markup shown as text: a pair of backticks or a raw \\( \\[ formula outside a math element",
    "code": "a backtick inside inline code (a literal nested in a literal)",
    "remote": "a script, style sheet, image or frame loaded from the network",
    "missing": "a local script or style sheet that is not in the site",
    "tracker": "a reference to the project's internal issue tracker",
    "path": "a path of the machine that built the site or its notebooks",
}
_TRACKER = re.compile(r"\bissues? #?\d+", re.IGNORECASE)
_PROSE_MARKUP = re.compile(r"``|(?<![\w`])`[^`\s](?:[^`]*[^`\s])?`(?![\w`])|\\\(|\\\[")
_REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Reader(HTMLParser):
    """A page's text as a reader gets it: prose, inline code, code blocks and math kept apart; assets listed."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, str | None]] = []  # (tag, "skip" | "math" | "pre" | "code" | None)
        self.prose: list[str] = []                      # runs of prose (each a block of text between elements)
        self.codes: list[str] = []                      # the text of each inline code element
        self.texts: list[str] = []                      # every text and attribute value, code and math included
        self.assets: list[tuple[str, str]] = []         # (tag, url) of scripts, style sheets, images, frames
        self._code: list[str] | None = None

    def _inside(self, kind: str) -> bool:
        return any(k == kind for _, k in self.open)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.texts += [value for value in attrs.values() if value]
        if tag in ("script", "img", "iframe", "source", "embed") and attrs.get("src"):
            self.assets.append((tag, attrs["src"]))
        if tag == "link" and attrs.get("href") and {"stylesheet", "preload", "modulepreload", "icon"} & set(
                (attrs.get("rel") or "").lower().split()):
            self.assets.append((tag, attrs["href"]))
        if tag in _VOID:
            return
        classes = (attrs.get("class") or "").split()
        kind = ("skip" if tag in ("script", "style", "template") else "math" if "math" in classes
                else "pre" if tag == "pre" else "code" if tag in ("code", "kbd", "samp", "tt") else None)
        if kind == "code" and self._code is None and not self._inside("pre") and not self._inside("math"):
            self._code = []
        self.open.append((tag, kind))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        for depth in range(len(self.open) - 1, -1, -1):
            if self.open[depth][0] == tag:
                del self.open[depth:]
                break
        if self._code is not None and not self._inside("code"):
            self.codes.append("".join(self._code))
            self._code = None

    def handle_data(self, data):
        if self._inside("skip"):
            return
        self.texts.append(data)
        if self._code is not None:
            self._code.append(data)
        elif not (self._inside("math") or self._inside("pre") or self._inside("code")):
            self.prose.append(data)


def _excerpt(text: str, start: int, end: int) -> str:
    return " ".join(text[max(0, start - 50):end + 50].split())


def leaks(site: Path, build_paths=()) -> list[Leak]:
    """Every leak (see ``LEAK_KINDS``) on every HTML page of a built site.

    ``build_paths``: absolute paths of the machine that built it (the repository, the build folder), looked for
    beside ``/tmp/``, ``/home/``, the user's home and ``site-packages/`` anywhere in a page's text or attributes.
    """
    site = Path(site).resolve()
    home = str(Path.home())
    paths = {str(p) for p in (site, *build_paths)} | {"/tmp/", "/home/", "site-packages/"} | (
        {home + "/"} if len(home) > 1 else set())
    found = []
    for page in sorted(site.rglob("*.html")):
        if "_static" in page.relative_to(site).parts:
            continue
        name = page.relative_to(site).as_posix()
        reader = _Reader()
        reader.feed(page.read_text(encoding="utf-8"))
        reader.close()
        prose = " ".join(" ".join(reader.prose).split())
        found += [Leak(name, "markup", _excerpt(prose, m.start(), m.end())) for m in _PROSE_MARKUP.finditer(prose)]
        found += [Leak(name, "code", code[:160]) for code in reader.codes if "`" in code]
        for tag, url in reader.assets:
            if _REMOTE.match(url):
                found.append(Leak(name, "remote", f"<{tag}> {url}"))
            elif not url.startswith("data:"):
                target = (page.parent / url.split("#")[0].split("?")[0]).resolve()
                if not target.is_file():
                    found.append(Leak(name, "missing", f"<{tag}> {url}"))
        for text in reader.texts:
            found += [Leak(name, "tracker", _excerpt(text, m.start(), m.end())) for m in _TRACKER.finditer(text)]
            found += [Leak(name, "path", _excerpt(text, text.index(p), text.index(p) + len(p))) for p in paths
                      if p in text]
    return list(dict.fromkeys(found))


def _describe(found: list[Leak], limit: int = 25) -> str:
    pages = sorted({leak.page for leak in found})
    lines = [f"{len(found)} on {len(pages)} page(s): {', '.join(pages)}"]
    lines += [f"  {leak.page}: {leak.excerpt}" for leak in found[:limit]]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def site_leaks(built):
    html, _ = built
    return leaks(html, build_paths=(ROOT, html.parent))


@pytest.mark.parametrize("kind", sorted(LEAK_KINDS))
def test_site_shows_no_leaks(site_leaks, kind):
    """The built site, read as a reader sees it: none of ``LEAK_KINDS``."""
    found = [leak for leak in site_leaks if leak.kind == kind]
    assert not found, f"{LEAK_KINDS[kind]}: " + _describe(found)


def test_math_is_rendered_by_the_bundled_mathjax(built):
    """Pages with formulas load MathJax from the site itself (sphinx-mathjax-offline), and the file is there."""
    html, _ = built
    page = (html / "_generated" / "api" / "theory.html").read_text()
    sources = re.findall(r"<script[^>]*\bsrc=\"([^\"]*mathjax[^\"]*)\"", page, flags=re.IGNORECASE)
    assert sources and all(not _REMOTE.match(src) for src in sources), sources
    assert all((html / "_generated" / "api" / src).resolve().is_file() for src in sources), sources
    assert re.search(r'class="math notranslate nohighlight">\s*\\\[', page)  # formulas are left for MathJax to typeset


#: Typesets every formula of a built site with the MathJax copied into it (node, no network); prints the errors.
TYPESET_JS = r"""
const fs = require('fs'), path = require('path');
const site = process.argv[2], MJ = path.join(site, '_static', 'mathjax');
const decode = (s) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'")
                       .replace(/&amp;/g, '&');
const pages = (d) => fs.readdirSync(d, {withFileTypes: true}).flatMap((e) => e.isDirectory()
    ? (e.name === '_static' ? [] : pages(path.join(d, e.name))) : e.name.endsWith('.html') ? [path.join(d, e.name)] : []);
require(path.join(MJ, 'node-main.js')).init({
  loader: {paths: {mathjax: MJ}, load: ['input/tex-full', 'output/chtml', 'adaptors/liteDOM']},
}).then((MathJax) => {
  let count = 0;
  for (const file of pages(site)) {
    const pattern = /class="math notranslate nohighlight[^"]*">\s*(?:<span class="eqno">[\s\S]*?<\/span>)?([\s\S]*?)<\/(?:span|div)>/g;
    for (const match of fs.readFileSync(file, 'utf8').matchAll(pattern)) {
      const tex = decode(match[1]).trim(), display = tex.startsWith('\\[');
      const out = MathJax.startup.adaptor.outerHTML(MathJax.tex2chtml(tex.slice(2, -2), {display}));
      count++;
      const error = out.match(/data-mjx-error="([^"]*)"/) || (out.includes('merror') ? ['', 'error'] : null);
      if (error) console.log('ERROR ' + path.relative(site, file) + ': ' + error[1] + ': ' + tex.slice(0, 100));
    }
  }
  console.log('TYPESET ' + count);
}).catch((e) => { console.log('FAILED ' + e); process.exit(1); });
"""


def test_every_formula_typesets_with_the_bundled_mathjax(built, tmp_path):
    """Each formula of the site through the site's own MathJax (TeX in, CHTML out): none is an error box."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("no node.js here to run MathJax outside a browser")
    html, _ = built
    script = tmp_path / "typeset.js"
    script.write_text(TYPESET_JS, encoding="utf-8")
    run = subprocess.run([node, str(script), str(html)], capture_output=True, text=True, timeout=300)
    lines = run.stdout.splitlines()
    assert run.returncode == 0 and any(line.startswith("TYPESET ") for line in lines), run.stdout + run.stderr
    assert int(next(line for line in lines if line.startswith("TYPESET ")).split()[1]) > 50, lines
    errors = [line for line in lines if line.startswith("ERROR ")]
    assert not errors, "\n".join(errors)


def test_the_guide_lists_every_figure():
    """The guide's figure table names every figure of the registry (it lacked F16 and F17)."""
    from paper_figures._registry import FIGURES

    guide = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    table = guide[guide.index("| figure | what it checks |"):]
    table = table[:table.index("\n\n")]
    missing = [name for name in FIGURES if f"[{name}]" not in table]
    assert not missing, f"docs/guide.md's figure table lacks {missing}"
    for row in table.splitlines()[2:]:  # a | inside a code span must be escaped, or the row gains cells
        assert len(re.findall(r"(?<!\\)\|", row)) == 3, row


def _conf_settings() -> str:
    """The literal settings of ``docs/conf.py`` (extensions, math, theme), without running its generator and without
    myst-nb: the tiny project is reStructuredText, and importing myst-nb alone takes seconds (nbformat's validators)."""
    tree = ast.parse((ROOT / "docs" / "conf.py").read_text(encoding="utf-8"))
    lines = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            name = node.targets[0].id
            try:
                value = ast.literal_eval(node.value)
            except ValueError:  # computed from the repository (paths, the generator's output, the version)
                continue
            if name == "extensions":
                value = [extension for extension in value if extension != "myst_nb"]
            if name not in ("root_doc", "exclude_patterns", "source_suffix") and not name.startswith(("nb_", "myst_")):
                lines.append(f"{name} = {value!r}")
    return "\n".join(lines) + "\n"


def test_the_checks_fail_on_a_bad_page(tmp_path):
    """A tiny project with the site's settings: a clean page passes; a page with each fault is flagged for it."""
    source = tmp_path / "src"
    source.mkdir()
    settings = _conf_settings()
    assert "sphinx-mathjax-offline" in settings
    (source / "conf.py").write_text(settings + "root_doc = 'index'\n", encoding="utf-8")
    (source / "index.rst").write_text(
        "Clean\n=====\n\nA formula :math:`\\eta^* = \\max(0, -\\min_{i \\neq j} g_{ij})`, code ``a | b`` and a "
        "display:\n\n.. math::\n\n   \\Pr[\\eta^* > \\eta] \\le 1\n\n.. toctree::\n   :hidden:\n\n   bad\n",
        encoding="utf-8")
    (source / "bad.rst").write_text(
        "Bad\n===\n\n"
        "A raw formula MathJax is never asked to render: \\\\(\\\\eta^*\\\\).\n\n"
        "Stray markup: \\`\\`theory\\`\\`, and code with a literal nested in it: ``x ` `y` ` z``.\n\n"
        "Internal: as asked in issue 15 items 2 and 4.\n\n"
        f"Built at {tmp_path / 'html'}.\n\n"
        ".. raw:: html\n\n   <script src=\"https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js\"></script>\n"
        "   <script src=\"_static/not-here.js\"></script>\n", encoding="utf-8")
    html = tmp_path / "html"
    run = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "-q", str(source), str(html)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    found = leaks(html, build_paths=(tmp_path,))
    clean = [leak for leak in found if leak.page != "bad.html"]
    assert not clean, _describe(clean)
    kinds = {leak.kind for leak in found}
    assert kinds == set(LEAK_KINDS), f"not flagged: {set(LEAK_KINDS) - kinds}\n" + _describe(found)
    bad = [leak.excerpt for leak in found if leak.kind == "markup"]
    assert any("\\(\\eta^*\\)" in text for text in bad) and any("``theory``" in text for text in bad), bad
    index = (html / "index.html").read_text(encoding="utf-8")  # the clean page's formulas: typeset by the bundle
    assert re.search(r'<script[^>]*src="_static/mathjax/tex-chtml\.js"', index) and "\\(\\eta^*" in index
