"""``python -m montecarlo``: run sweeps into a results store and show their tails."""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd

from .store import StoreMismatch
from .sweep import GRID_DEFAULTS, ResultsStore, SweepSpec, run_sweep, tail_table


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


AXIS_TYPES = {"width": int, "depth": int, "d": int, "n_samples": int, "kappa": float, "gain": float, "gamma": float,
              "activation": str, "init": str, "loss": str, "labels": str, "output_activation": _boolean,
              "bias": _boolean}
assert set(AXIS_TYPES) == set(GRID_DEFAULTS)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m montecarlo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    sweep = commands.add_parser("sweep", help="run a grid of configurations x trials into a results store")
    sweep.add_argument("--config", type=Path, help="TOML file with grid axes and settings (flags override it)")
    for axis, kind in AXIS_TYPES.items():
        sweep.add_argument(f"--{axis.replace('_', '-')}", dest=axis, nargs="+", type=kind, metavar="V",
                           help=f"values of {axis} (default {GRID_DEFAULTS[axis]!r})")
    sweep.add_argument("--trials", type=int, help="trials per grid point (required here or in --config)")
    sweep.add_argument("--seed", type=int, help="sweep seed (default 0)")
    sweep.add_argument("--dtype", choices=("float64", "float32"), help="working precision (default float64)")
    sweep.add_argument("--method", choices=("auto", "lazy", "dense"),
                       help="weight sampling: lazy where it applies (auto, the default) or dense")
    sweep.add_argument("--backend", default="auto", choices=("auto", "numpy", "numba", "torch"))
    sweep.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786), or 'local' for a local "
                       "cluster; by default the points run one by one in this process")
    sweep.add_argument("--out", type=Path, required=True, help="results store folder")
    sweep.add_argument("--eta", type=float, nargs="+", help="thresholds of eta* for the summary table")

    show = commands.add_parser("show", help="table of tail probabilities with Clopper-Pearson intervals")
    show.add_argument("store", type=Path)
    show.add_argument("--eta", type=float, nargs="+", help="thresholds of eta* (default: pooled 50%%, 90%% quantiles)")
    show.add_argument("--tau", type=float, nargs="+", default=[0.25, 0.5], help="thresholds of -min cosine")
    show.add_argument("--confidence", type=float, default=0.95)
    return parser


def _spec_from(args) -> SweepSpec:
    mapping = {}
    if args.config is not None:
        if not args.config.exists():
            raise ValueError(f"--config {args.config}: no such file")
        mapping.update(tomllib.loads(args.config.read_text()))
    for key in (*AXIS_TYPES, "trials", "seed", "dtype", "method"):
        value = getattr(args, key)
        if value is not None:
            mapping[key] = value
    return SweepSpec.from_mapping(mapping)


def format_tails(table: pd.DataFrame, grid: dict, confidence: float = 0.95) -> str:
    """The tail table as aligned text: varying axes, event, k/n, estimate and interval."""
    if table.empty:
        return "(no finished points)"
    varying = [axis for axis, values in grid.items() if len(values) > 1]
    shown = table[varying].copy()
    shown["event"] = [e.replace("threshold", f"{t:g}") for e, t in zip(table["event"], table["threshold"])]
    shown["k/n"] = [f"{k}/{n}" for k, n in zip(table["k"], table["n"])]
    shown["P"] = table["p"].map(lambda p: f"{p:.4f}")
    shown[f"{confidence:.0%} CI"] = [f"[{lo:.4f}, {hi:.4f}]" for lo, hi in zip(table["lower"], table["upper"])]
    return shown.sort_values([*varying, "event"]).to_string(index=False)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "sweep":
            spec = _spec_from(args)
            points = spec.points()
            print(f"sweep: {len(points)} point(s) x {spec.trials} trials -> {args.out}", flush=True)
            start = time.perf_counter()
            store = run_sweep(spec, args.out, scheduler=args.scheduler, backend=args.backend)
            print(f"done in {time.perf_counter() - start:.1f} s: {len(store.done())}/{len(points)} points stored\n")
            print(format_tails(tail_table(store, etas=args.eta), spec.grid))
        else:
            manifest = args.store / "manifest.json"
            if not manifest.exists():
                raise ValueError(f"{args.store} is not a results store (no manifest.json)")
            configuration = json.loads(manifest.read_text())["configuration"]
            store = ResultsStore(args.store, configuration)
            print(format_tails(tail_table(store, etas=args.eta, taus=args.tau, confidence=args.confidence),
                               configuration["grid"], args.confidence))
    except (ValueError, StoreMismatch) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
