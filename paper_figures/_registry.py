"""The ordered list of the figures the main job produces (``FIGURES``: name -> :class:`Figure`, in paper order).

The figure type and its context live in ``paper_figures._figure``, which
imports no figure; this module imports the figure modules
(``paper_figures.figures``) and is imported by none of them.
"""

from __future__ import annotations

from ._figure import SCALES, Context, Figure
from .figures import ALL, MODULES

__all__ = ["FIGURES", "MODULE_OF", "SCALES", "Context", "Figure"]

#: Every figure by name, in the order of ``paper_figures.figures.ALL`` (the paper's).
FIGURES: dict[str, Figure] = {figure.name: figure for figure in ALL}

#: The module that defines each figure (its ``FIGURE``), by figure name: where its settings and docstring live.
MODULE_OF = {module.FIGURE.name: module for module in MODULES}
