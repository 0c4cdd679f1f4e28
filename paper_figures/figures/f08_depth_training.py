"""F8, the paper's Figure 2 protocol on digits: CNN-beta-l trained with plain SGD, by depth (width fixed).

Left: training loss against epoch (the step size with the lowest final
training loss per model, as the paper tunes it; mean over seeds).  Middle:
the minimum cosine of 100 (full) minibatch-gradient pairs at the end of
training.  Right: the density of those cosines.  The paper (CIFAR-10, depth
16-40, width 2-6) finds deeper nets train slower with a more negative minimum
cosine.

On digits the deeper nets end far from a fit, so the end-of-training cosines
compare models at different losses; the data also hold, per model, the
minimum cosine at the first tracked epoch whose training loss is at or below
each of ``_training.LEVELS`` (rows of kind "matched_loss"), drawn as open
markers in the middle panel and checked in a second report row.  Plot and
report: ``_depth_width``; settings, training and tables: ``_training``.
"""

from __future__ import annotations

from . import _depth_width, _training

GRIDS = {"fast": dict(depth=[10, 16], width=1, lr=0.1, seed=0),
         "quick": dict(depth=[10, 16, 22], width=2, lr=[0.03, 0.1], seed=0),
         "full": dict(depth=[10, 16, 22, 28], width=2, lr=[0.03, 0.1, 0.3], seed=[0, 1])}


def grid(scale: str) -> dict:
    """The training grid at ``scale``: depths x step sizes (x seeds) of CNN-beta-l at one width."""
    return {**_training.BASE, **GRIDS[scale]}


FIGURE = _depth_width.figure("F8_depth_training", "Paper Figure 2 protocol on digits: depth", "depth", grid)
