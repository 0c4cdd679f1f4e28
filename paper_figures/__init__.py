"""Regenerate the paper's figures and the verdict report.

``python -m paper_figures [NAMES...] [--quick | --full] [--out DIR]``

Each figure is a module in ``paper_figures.figures`` with a compute step
(whose data are stored and reused, so re-plotting never recomputes) and a plot
step; the data behind each figure are saved as CSV beside its PNG and PDF.
"""

from ._figure import SCALES, Context, Figure
from ._registry import FIGURES

__all__ = ["FIGURES", "SCALES", "Context", "Figure"]
