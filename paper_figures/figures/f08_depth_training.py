"""F8, the paper's Figure 2 protocol on digits and MNIST-1D: CNN-beta-l trained with plain SGD, by depth (width fixed).

Each configuration is trained with several seeds (``_training.SEEDS``) on
both datasets (``_training.DATASETS``).  Left: training loss against epoch
(mean over seeds).  Middle: the 5% quantile of the minibatch-pair cosines
(the paper's minimum made stable) against depth, at the end of training, at
initialisation and at matched training loss, each a mean over seeds with its
95% t interval.  Right: the density of the end-of-training cosines.  The
paper (CIFAR-10, depth 16-40, width 2-6) finds deeper nets train slower with
a more negative minimum cosine; the report checks both parts at the end of
training and the confusion at loss levels chosen from the runs, each by a t
interval over seeds (``_depth_width``; settings, training and per-seed
statistics: ``_training``).
"""

from __future__ import annotations

from . import _depth_width, _training

GRIDS = {"fast": dict(depth=[10, 16], width=1),
         "quick": dict(depth=[10, 16, 22], width=2),
         "full": dict(depth=[10, 16, 22, 28], width=2)}


def grid(scale: str) -> dict:
    """The training grid at ``scale``: depths of CNN-beta-l at one width, with the scale's seeds and step sizes."""
    return _training.grid(scale, **GRIDS[scale])


FIGURE = _depth_width.figure("F8_depth_training", "Paper Figure 2 protocol on digits and MNIST-1D: depth", "depth",
                             grid)
