"""The axes and settings of a training grid: their names, defaults and accepted values, with no heavy import.

One home for each table: ``runs`` and ``loop`` import them from here, and so
does the command line, whose parser (and so ``python -m montecarlo --help``)
is built from them without loading torch or pandas.
"""

from __future__ import annotations

#: Grid axes of a training sweep and their defaults (CLI flags and TOML keys).
TRAIN_DEFAULTS = {
    "model": "cnn", "depth": 16, "width": 2, "skip": False, "batchnorm": False, "base": 8, "lr": 0.05, "seed": 0,
}
TRAIN_SETTINGS = ("data", "data_dir", "epochs", "batch_size", "lr_milestones", "lr_decay", "track", "track_points",
                  "probe_size", "pairs", "pair_batch", "dtype")
SETTING_DEFAULTS = {"data": "digits", "data_dir": None, "epochs": 30, "batch_size": 128, "lr_milestones": (),
                    "lr_decay": 0.1, "track": "log", "track_points": 8, "probe_size": 64, "pairs": 100,
                    "pair_batch": 128, "dtype": "float32"}

#: The ways tracked epochs are spread (``loop.tracked_epochs``).
TRACKS = ("log", "linear")
