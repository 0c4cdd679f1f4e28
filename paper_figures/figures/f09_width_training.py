"""F9, the paper's Figure 3 protocol on digits and MNIST-1D: CNN-beta-l trained with plain SGD, by width (depth fixed).

Each configuration is trained with several seeds (``_training.SEEDS``) on
both datasets (``_training.DATASETS``).  Left: training loss against epoch
(mean over seeds).  Middle: the 5% quantile of the minibatch-pair cosines
against width, at the end of training, at initialisation and at matched
training loss, each a mean over seeds with its 95% t interval.  Right: the
density of the end-of-training cosines.  The paper (CIFAR-10, depth 16-40,
width 2-6) finds wider nets train faster with a less negative minimum
cosine; the report checks both parts at the end of training and the
confusion at loss levels chosen from the runs, each by a t interval over
seeds (``_depth_width``; settings, training and per-seed statistics:
``_training``).  The depth is F8's shallowest at quick scale (F9's width-2
runs are F8's depth-10 ones, trained once) and the paper's 16 at full scale.
"""

from __future__ import annotations

from . import _depth_width, _training

GRIDS = {"fast": dict(depth=10, width=[1, 2]),
         "quick": dict(depth=10, width=[1, 2, 4]),
         "full": dict(depth=16, width=[1, 2, 4])}


def grid(scale: str) -> dict:
    """The training grid at ``scale``: widths of CNN-beta-l at one depth, with the scale's seeds and step sizes."""
    return _training.grid(scale, **GRIDS[scale])


FIGURE = _depth_width.figure("F9_width_training", "Paper Figure 3 protocol on digits and MNIST-1D: width", "width",
                             grid)
