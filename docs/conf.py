"""Sphinx configuration of the gradient-confusion documentation (built by ``python3 tasks.py docs``).

Offline by construction: no intersphinx, no remote images, MathJax served from the
site itself (``sphinx-mathjax-offline`` copies it to ``_static/mathjax``); the
notebooks are rendered from their stored outputs (``nb_execution_mode = "off"``).  The pages
that depend on the code (API reference, CLI help, figure pages, tutorials,
benchmark tables) are written by ``_generate.py`` at the start of every build.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))

import _generate  # noqa: E402

ROOT = _generate.ROOT
sys.path.insert(0, str(ROOT))

GENERATED = _generate.generate()

project = "gradient-confusion"
author = "gradient-confusion contributors"
copyright = "2025, " + author
try:
    from importlib.metadata import version as _version

    release = _version("gradient-confusion")
except Exception:  # not installed: the docs still build
    release = "0.1.0"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served from _static/mathjax: formulas render without a network
    "numpydoc",
    "myst_nb",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "_generated/report_rows.md", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]

# -- autodoc / numpydoc ----------------------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "none"          # numpydoc's Parameters sections carry the types; signatures stay readable
autodoc_default_options = {"show-inheritance": False}
autodoc_inherit_docstrings = False
numpydoc_show_class_members = False  # members are documented by autodoc's :members:, not numpydoc's tables
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()   # the docstrings are prose-first numpydoc; validation is not the docs' job
numpydoc_xref_param_type = False
add_module_names = False

# -- myst / myst-nb ------------------------------------------------------------------------------------------------
nb_execution_mode = "off"            # render the outputs stored in the notebooks; never execute while building
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# -- HTML --------------------------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "gradient-confusion"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_end": ["theme-switcher"],
}
html_static_path: list[str] = []
html_show_sourcelink = False


# -- page titles -------------------------------------------------------------------------------------------------------
# A heading with a formula gives the browser's <title> its raw TeX (``\(\langle x_i, x_j\rangle\)``): MathJax typesets
# the page, never the title bar.  The title gets the formula as plain text instead (the heading keeps MathJax).
_TEX_SYMBOLS = {
    "langle": "⟨", "rangle": "⟩", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "neq": "≠", "ne": "≠", "cdot": "·",
    "times": "×", "infty": "∞", "to": "→", "sim": "~", "approx": "≈", "pm": "±", "ell": "ℓ", "star": "*",
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "zeta": "ζ", "eta": "η", "theta": "θ",
    "kappa": "κ", "lambda": "λ", "mu": "μ", "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "Theta": "Θ",
}


def _tex_as_text(tex: str) -> str:
    text = re.sub(r"\\([A-Za-z]+)\s*", lambda m: _TEX_SYMBOLS.get(m.group(1), m.group(1)), tex)
    return re.sub(r"[{}]|\\[,;!: ]", "", text).replace("\\", "")


def _plain_page_title(app, pagename, templatename, context, doctree):
    for key in ("title", "pagetitle"):  # the <title> and the breadcrumbs; the page's own heading is the body's
        if isinstance(context.get(key), str) and "\\(" in context[key]:
            context[key] = re.sub(r'(<span class="math[^"]*">)?\\\((.*?)\\\)(?(1)</span>)',
                                  lambda m: _tex_as_text(m.group(2)), context[key])


def setup(app):
    app.connect("html-page-context", _plain_page_title)
