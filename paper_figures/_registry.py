"""The figure type and the ordered list of figures the main job produces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Figure:
    """One figure: a compute step that returns its data, a plot step and report rows.

    ``compute(scale)`` returns a DataFrame (``scale`` is "quick" or "full") and
    must be a pure function of ``scale`` (all randomness from fixed seeds);
    ``plot(data, stem)`` draws it and saves ``stem.png`` and ``stem.pdf``;
    ``report(data)`` returns rows ``{"claim", "check", "numbers", "verdict"}``.
    """

    name: str
    title: str
    compute: Callable[[str], pd.DataFrame]
    plot: Callable[[pd.DataFrame, object], None]
    report: Callable[[pd.DataFrame], list[dict]]


def _figures() -> dict[str, Figure]:
    from .figures import f0_cosines

    return {figure.name: figure for figure in (f0_cosines.FIGURE,)}


FIGURES = _figures()
