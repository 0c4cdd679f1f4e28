"""The settings of sweeps and tail runs: their names, defaults and accepted values, with no heavy import.

One home for each table: ``sweep``, ``tail_run`` and ``subset_simulation``
import them from here, and so does the command line, whose parser (and so
``python -m montecarlo --help``) is built from them without loading numpy's
neighbours, numba, torch or pandas.
"""

from __future__ import annotations

#: The grid axes and their defaults (a sweep varies any of them).
GRID_DEFAULTS = {
    "width": 64, "depth": 2, "d": 32, "n_samples": 16, "activation": "relu", "init": "gaussian",
    "kappa": 1.0, "loss": "square", "labels": "linear", "output_activation": True, "bias": False,
    "gain": 1.0, "gamma": 1.0,
}

#: The tail's side: ``Pr[S > s]`` ("upper") or ``Pr[S < s]`` ("lower").
DIRECTIONS = ("upper", "lower")
DEFAULT_REPEATS = 10  # independent repeats behind the interval (``tail_result``'s docstring, "Interval")

#: Splitting settings of a tail run and their defaults (``threshold`` has none).
TAIL_SETTINGS = {"statistic": "eta_star", "threshold": None, "direction": "upper", "population": 1000,
                 "level_probability": 0.1, "target_acceptance": 0.3, "repeats": DEFAULT_REPEATS, "seed": 0,
                 "method": "auto", "dtype": "float64", "max_levels": None, "grid_points": 200, "strict": False}
