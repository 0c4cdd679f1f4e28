"""Sphinx configuration of the gradient-confusion documentation (built by ``python3 tasks.py docs``).

Offline by construction: no intersphinx, no remote images; the notebooks are
rendered from their stored outputs (``nb_execution_mode = "off"``).  The pages
that depend on the code (API reference, CLI help, figure pages, tutorials,
benchmark tables) are written by ``_generate.py`` at the start of every build.
"""

from __future__ import annotations

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
    "numpydoc",
    "myst_nb",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "_readme_draft.md", "_generated/report_rows.md", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]

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
