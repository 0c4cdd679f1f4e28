"""The figure type and its context: what a figure module defines, with nothing that imports a figure.

Figure modules (``paper_figures.figures``), and the helper modules that build
a figure for them (``_depth_width.figure``), import :class:`Figure` from here;
the ordered list of figures is ``paper_figures._registry``, which imports
the figure modules, so nothing imports in a circle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

#: The scales every figure has: "fast" (seconds; tests and notebooks), "quick" (the main job), "full" (paper scale).
SCALES = ("fast", "quick", "full")


@dataclass(frozen=True)
class Context:
    """Where a figure's compute step keeps its results stores, and how it runs sweeps.

    ``store`` is the figure's own folder; ``shared_store`` holds results
    that several figures use (the training runs of F8-F10, each a pure
    function of its configuration, in one pool per training settings), and
    :attr:`shared` is that folder, or ``store`` when it is not given.
    """

    store: Path
    scheduler: str | None = None
    progress: bool = True
    shared_store: Path | None = None

    @property
    def shared(self) -> Path:
        """The folder of results shared between figures (``shared_store``, or ``store`` when not given)."""
        return self.store if self.shared_store is None else self.shared_store


@dataclass(frozen=True)
class Figure:
    """One figure: a compute step that returns its data, a plot step and report rows.

    ``compute(scale, context)`` returns a DataFrame and is a pure function of
    ``scale`` (all randomness from fixed seeds); Monte Carlo and training go
    through results stores under ``context.store`` (and ``context.shared``),
    so an interrupted run resumes.  ``plot(data, stem)`` draws ``stem.png``
    and ``stem.pdf`` from the data alone; ``report(data)`` returns rows
    ``{"claim", "check", "numbers", "verdict"}``.  Scales: "fast" (seconds;
    tests and notebooks), "quick" (the main job) and "full" (paper scale).

    ``prepare(scale, context)``, optional, lists independent pieces of the
    compute step, ``(label, cost, piece)``: ``piece()`` computes one of them
    into the figure's stores (a training run, say), ``label`` names it
    uniquely across figures (a piece two figures share is done once) and
    ``cost`` orders them (larger first).  The main job may run the pieces in
    worker processes before ``compute``, which then finds them stored; they
    change nothing in what ``compute`` returns.
    """

    name: str
    title: str
    compute: Callable[[str, Context], pd.DataFrame]
    plot: Callable[[pd.DataFrame, object], None]
    report: Callable[[pd.DataFrame], list[dict]]
    scales: dict = field(default_factory=dict)
    prepare: Callable[[str, Context], list] | None = None
