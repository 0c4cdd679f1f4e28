"""Rules behind verdict words that several figures share (a verdict's words follow from its numbers by a stated rule,
and the row states it).

* ``MIN_GRID_VALUES``: no power, slope or rate verdict from fewer values along
  the axis it is fitted on: two points fix any line, so a fit through them
  tests nothing.  :func:`too_few` gives the words that replace the verdict.
* :func:`seeds_note`: a result from one seed says so beside its word, and an
  interval from resampling one run's pairs is never the interval of the
  result (that needs replicates: seeds).
"""

from __future__ import annotations

#: The fewest distinct grid values along an axis from which a power, slope or rate verdict is given.
MIN_GRID_VALUES = 3


def too_few(values) -> str | None:
    """``"no verdict: 2 grid values (3 needed)"`` when ``values`` hold fewer than ``MIN_GRID_VALUES`` distinct
    values, else ``None`` (a verdict may be given)."""
    n = len(set(float(v) for v in values))
    if n < MIN_GRID_VALUES:
        return f"no verdict: {n} grid value{'s' if n != 1 else ''} ({MIN_GRID_VALUES} needed)"
    return None


def seeds_note(seeds: int) -> str:
    """How many seeds a training verdict rests on, and that it has no seed-level interval."""
    if seeds == 1:
        return "in one seed (no seed-level interval)"
    return f"in {seeds} seeds (no seed-level interval: spreads over pairs of minibatches only)"
