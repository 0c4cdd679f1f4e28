"""``python -m montecarlo``: run sweeps into a results store and show their tails; train models tracking confusion."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd

from .training.datasets import DATASETS
from .gram import backend_names
from .engines.splitting_state import PopulationCollapsed
from .statistics.gram_statistics import STATISTICS
from .engines.store import StoreMismatch
from .engines.tail_run import TAIL_SETTINGS, TailSpec, format_tail, run_tail, stored_tail
from .engines.sweep import (GRID_DEFAULTS, ResultsStore, SweepSpec, run_sweep, tail_table,
                            undefined_cosine_note)
from .training.runs import DIVERGENCE_FACTOR, SETTING_DEFAULTS, TRAIN_DEFAULTS, TrainingGrid, diverged_runs, run_training


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
TRAIN_AXIS_TYPES = {"model": str, "depth": int, "width": int, "skip": _boolean, "batchnorm": _boolean, "base": int,
                    "lr": float, "seed": int}
assert set(TRAIN_AXIS_TYPES) == set(TRAIN_DEFAULTS)


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
    sweep.add_argument("--backend", default="auto", choices=backend_names())
    sweep.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786), or 'local' for a local "
                       "cluster; by default the points run one by one in this process")
    sweep.add_argument("--out", type=Path, required=True, help="results store folder")
    sweep.add_argument("--eta", type=float, nargs="+", help="thresholds of eta* for the summary table")
    sweep.add_argument("--conditional-cosine", action="store_true",
                       help="min cos rows conditional on a defined minimum cosine (trials with at most one non-zero "
                       "gradient left out); by default such a trial counts as not confused, as Definition 2.1's "
                       "inner products say (a zero gradient has inner product 0)")

    train = commands.add_parser("train", help="train models with plain SGD, tracking gradient confusion (paper section 7)")
    train.add_argument("--config", type=Path, help="TOML file with axes and settings (flags override it)")
    for axis, kind in TRAIN_AXIS_TYPES.items():
        train.add_argument(f"--{axis.replace('_', '-')}", dest=axis, nargs="+", type=kind, metavar="V",
                           help=f"values of {axis} (default {TRAIN_DEFAULTS[axis]!r})")
    train.add_argument("--data", choices=DATASETS, help="dataset (default digits, bundled with scikit-learn)")
    train.add_argument("--data-dir", type=Path, help="folder with the MNIST IDX files or the CIFAR-10 python batches")
    train.add_argument("--epochs", type=int, help=f"epochs (default {SETTING_DEFAULTS['epochs']})")
    train.add_argument("--batch-size", type=int, help="SGD minibatch size (default 128)")
    train.add_argument("--lr-milestones", type=int, nargs="*", help="epochs after which the learning rate decays")
    train.add_argument("--lr-decay", type=float, help="learning-rate factor at each milestone (default 0.1)")
    train.add_argument("--track", choices=("log", "linear"), help="spacing of the tracked epochs (default log)")
    train.add_argument("--track-points", type=int, help="number of tracked epochs (default 8)")
    train.add_argument("--probe-size", type=int, help="examples in the per-example confusion probe (default 64)")
    train.add_argument("--pairs", type=int, help="minibatch pairs per tracked epoch (default 100, as the paper)")
    train.add_argument("--pair-batch", type=int, help="minibatch size of the pair protocol (default 128)")
    train.add_argument("--dtype", choices=("float32", "float64"), help="precision (default float32)")
    train.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786), or 'local' for a local "
                       "cluster (one single-threaded worker per core); by default the runs train one by one in this "
                       "process.  On a cluster, --out must be on a file system the workers share (checkpoints)")
    train.add_argument("--out", type=Path, required=True, help="results store folder")

    tail = commands.add_parser("tail", help="a rare-event tail probability by subset simulation, resumable level "
                               "by level")
    tail.add_argument("--config", type=Path, help="TOML file with the network axes and the settings (flags override)")
    for axis, kind in AXIS_TYPES.items():
        tail.add_argument(f"--{axis.replace('_', '-')}", dest=axis, type=kind, metavar="V",
                          help=f"{axis} (default {GRID_DEFAULTS[axis]!r})")
    tail.add_argument("--trial", metavar="MODULE:NAME",
                      help="any trial instead of the network flags: a montecarlo.Trial (a ModuleTrial of your torch "
                      "module, say), or a function returning one, named as package.module:name; the module is "
                      "imported (its code runs), here and on Dask workers")
    tail.add_argument("--statistic", help="a statistic's name (default eta_star): "
                      + ", ".join(STATISTICS) + ", or norm_ratio of the paper's network")
    tail.add_argument("--threshold", type=float, help="the level s of Pr[S > s] (or < s); required here or in --config")
    tail.add_argument("--direction", choices=("upper", "lower"), help="upper: Pr[S > s] (default); lower: Pr[S < s]")
    tail.add_argument("--population", type=int, help=f"samples per level (default {TAIL_SETTINGS['population']})")
    tail.add_argument("--level-probability", type=float, help="conditional probability per level (default 0.1)")
    tail.add_argument("--target-acceptance", type=float, help="pCN acceptance the step adapts to (default 0.3)")
    tail.add_argument("--repeats", type=int, help=f"independent repeats behind the interval: the t-interval of "
                      f"their mean (default {TAIL_SETTINGS['repeats']})")
    tail.add_argument("--strict", action="store_true", default=None,
                      help="stop with exit code 4 when a level's population collapsed into one category (label-sign "
                      "branch of the attaining pair) while level 0 held several; by default it is a warning")
    tail.add_argument("--seed", type=int, help="seed (default 0)")
    tail.add_argument("--method", choices=("auto", "lazy", "dense"), help="weight sampling (default auto)")
    tail.add_argument("--dtype", choices=("float64", "float32"))
    tail.add_argument("--max-levels", type=int, help="refuse targets needing more levels than this")
    tail.add_argument("--backend", default="auto", choices=backend_names())
    tail.add_argument("--scheduler", help="Dask scheduler address or 'local': one task per repeat")
    tail.add_argument("--out", type=Path, required=True, help="results store folder (a killed run resumes there)")

    show = commands.add_parser("show", help="table of tail probabilities with Clopper-Pearson intervals")
    show.add_argument("store", type=Path)
    show.add_argument("--eta", type=float, nargs="+", help="thresholds of eta* (default: pooled 50%%, 90%% quantiles)")
    show.add_argument("--tau", type=float, nargs="+", default=[0.25, 0.5], help="thresholds of -min cosine")
    show.add_argument("--confidence", type=float, default=0.95)
    show.add_argument("--conditional-cosine", action="store_true",
                      help="min cos rows conditional on a defined minimum cosine; by default a trial without one "
                      "counts as not confused")
    return parser


def _mapping_from(args, keys) -> dict:
    """The TOML file of ``--config`` (if any) overridden by the flags that were given."""
    mapping = {}
    if args.config is not None:
        if not args.config.is_file():
            raise ValueError(f"--config {args.config}: no such file" if not args.config.exists()
                             else f"--config {args.config}: not a file")
        try:
            mapping.update(tomllib.loads(args.config.read_text()))
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"--config {args.config}: not valid TOML ({error})") from None
        except UnicodeDecodeError:
            raise ValueError(f"--config {args.config}: not a text (UTF-8) file") from None
    for key in keys:
        value = getattr(args, key, None)
        if value is not None:
            mapping[key] = value
    return mapping


def check_thresholds(flag: str, values, *, lower: float, upper: float = math.inf) -> list[float] | None:
    """Thresholds given on the command line: finite and within ``[lower, upper]``, else a message naming ``flag``."""
    if values is None:
        return None
    bad = [v for v in values if not (math.isfinite(v) and lower <= v <= upper)]
    if bad:
        accepted = f">= {lower:g}" if upper == math.inf else f"in [{lower:g}, {upper:g}]"
        raise ValueError(f"{flag} must be finite numbers {accepted}, got {', '.join(map(str, bad))}")
    return list(values)


def check_output_folder(path: Path) -> Path:
    """An ``--out`` folder that can be created or written: refuse a file, or a folder we cannot write, by name."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path}: exists and is not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--out {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {path}: no permission to write in {existing}")
    return path


def _spec_from(args) -> SweepSpec:
    return SweepSpec.from_mapping(_mapping_from(args, (*AXIS_TYPES, "trials", "seed", "dtype", "method")))


def format_runs(store: ResultsStore, grid: dict) -> str:
    """One line per finished run: its varying axes and its final loss, accuracy and confusion."""
    rows = []
    for key in sorted(store.done()):
        frame, metadata = store.read_point(key)
        last = frame.iloc[-1]
        config = metadata["config"]
        rows.append({**{axis: config[axis] for axis, values in grid.items() if len(values) > 1},
                     "epochs": int(last["epoch"]), "train loss": round(float(last["train_loss"]), 4),
                     "test acc": round(float(last["test_accuracy"]), 3),
                     "min minibatch cos": round(float(last["minibatch_min_cosine"]), 3),
                     "probe min cos": round(float(last["probe_min_cosine"]), 3),
                     "diverged": "yes" if frame["diverged"].any() else "no"})
    if not rows:
        return "(no finished runs)"
    frame = pd.DataFrame(rows)
    varying = [axis for axis, values in grid.items() if len(values) > 1]
    return (frame.sort_values(varying) if varying else frame).to_string(index=False)


def describe_status(store: ResultsStore) -> str:
    """How many planned points are done, and which are stale (other code), corrupt or being computed, by key."""
    planned = store.manifest.get("points") or {}
    done, stale, corrupt, flight = store.done(), store.stale(), store.corrupt(), store.in_flight()
    lines = [f"{len(done)}/{len(planned) or len(done)} points done (made by this code, checksums verified)"]
    for label, entries in (("stale (made by other code; a rerun recomputes them)", stale),
                           ("corrupt (a rerun recomputes them)", corrupt),
                           ("being computed by another process", flight)):
        if entries:
            details = ", ".join(f"{key} ({value})" if isinstance(value, str) else key for key, value in entries.items())
            lines.append(f"{len(entries)} {label}: {details}")
    return "\n".join(lines)


def format_number(value: float) -> str:
    """A threshold as a person writes it: ``0``, not ``-0``; ``0.25``, not ``0.25000000000000006`` (``%g``)."""
    return f"{float(value) + 0.0:g}"  # -0.0 + 0.0 is +0.0


def _event_text(event: str, threshold: float) -> str:
    """``eta* > 0.05`` or ``min cos < -0.25``: the event with its level, the cosine's written as ``-tau``."""
    if event.startswith("min cos"):
        return f"min cos < {format_number(-threshold)}"
    return event.replace("threshold", format_number(threshold))


def format_tails(table: pd.DataFrame, grid: dict, confidence: float = 0.95) -> str:
    """The tail table as aligned text: varying axes, event, k/n, estimate and interval, and what it is conditional on.

    A first line says how the ``min cos`` rows treat a trial whose minimum
    cosine is undefined; the columns ``undefined trials`` (such trials, of
    the point's trials) and ``undefined pairs`` (pairs with an undefined
    cosine, left out of the minimum, of all pairs) give the counts; ``-`` on
    the eta* rows, which every trial and pair enters.
    """
    if table.empty:
        return "(no finished points)"
    varying = [axis for axis, values in grid.items() if len(values) > 1]
    shown = table[varying].copy()
    shown["event"] = [_event_text(e, t) for e, t in zip(table["event"], table["threshold"])]
    shown["k/n"] = [f"{k}/{n}" for k, n in zip(table["k"], table["n"])]
    shown["P"] = table["p"].map(lambda p: f"{p:.4f}")
    shown[f"{confidence:.0%} CI"] = [f"[{lo:.4f}, {hi:.4f}]" for lo, hi in zip(table["lower"], table["upper"])]
    cosine = table["event"].str.startswith("min cos").to_numpy()
    shown["undefined trials"] = [f"{u}/{t}" if c else "-"
                                 for u, t, c in zip(table["undefined"], table["trials"], cosine)]
    shown["undefined pairs"] = [f"{int(u)}/{int(n)}" if c else "-"
                                for u, n, c in zip(table["undefined_pairs"], table["pairs"], cosine)]
    conditional = bool(table.loc[cosine, "conditional"].any())
    rule = ("min cos rows: conditional on a defined minimum cosine (n = trials - undefined trials; "
            "--conditional-cosine)" if conditional else
            "min cos rows: unconditional (a trial with an undefined minimum cosine counts as not confused; "
            "--conditional-cosine leaves it out)") + "; pairs with an undefined cosine are left out of the minimum"
    return rule + "\n" + shown.sort_values([*varying, "event"]).to_string(index=False)


def _warn_undefined(table: pd.DataFrame) -> None:
    """Once per run, on stderr: how often the minimum cosine was undefined, when it was in 1% of trials or more."""
    note = undefined_cosine_note(table)
    if note:
        print(note, file=sys.stderr)


def _os_message(error: OSError) -> str:
    """One line for a file-system error: the file and the system's reason."""
    where = f"{error.filename}: " if error.filename else ""
    return f"{where}{error.strerror or error}"


def main(argv=None) -> int:
    """Run the command line.

    Exit codes: 0 done; 2 a user error (one line on stderr naming the argument or file); 3 a training run
    diverged (each such run named on stderr); 4 a tail run under ``--strict`` whose population collapsed into one
    category (the repeat, level and shares on stderr; finished levels are kept); 130 interrupted (finished points
    are kept).
    """
    args = _parser().parse_args(argv)
    try:
        return _command(args)
    except (ValueError, TypeError, StoreMismatch, KeyError) as error:
        # TypeError: a TOML value of the wrong type (validation names the argument); KeyError: a malformed file.
        message = str(error) if not isinstance(error, KeyError) else f"missing entry {error}"
        print(f"error: {message}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {_os_message(error)}", file=sys.stderr)
        return 2
    except PopulationCollapsed as error:
        print(f"error: {error}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print("interrupted: finished points are stored; run the same command again to resume", file=sys.stderr)
        return 130


def _command(args) -> int:
    if args.command == "sweep":
        etas = check_thresholds("--eta", args.eta, lower=0.0)
        spec = _spec_from(args)
        check_output_folder(args.out)
        points = spec.points()
        print(f"sweep: {len(points)} point(s) x {spec.trials} trials -> {args.out}", flush=True)
        start = time.perf_counter()
        store = run_sweep(spec, args.out, scheduler=args.scheduler, backend=args.backend)
        print(f"done in {time.perf_counter() - start:.1f} s: {len(store.done())}/{len(points)} points stored\n")
        table = tail_table(store, etas=etas, conditional_cosine=args.conditional_cosine)
        print(format_tails(table, spec.grid))
        _warn_undefined(table)
    elif args.command == "train":
        keys = (*TRAIN_AXIS_TYPES, "data", "data_dir", "epochs", "batch_size", "lr_milestones", "lr_decay", "track",
                "track_points", "probe_size", "pairs", "pair_batch", "dtype")
        spec = TrainingGrid.from_mapping(_mapping_from(args, keys))
        check_output_folder(args.out)
        runs = spec.runs()
        print(f"training: {len(runs)} run(s) x {spec.settings['epochs']} epochs on {spec.settings['data']} "
              f"-> {args.out}", flush=True)
        start = time.perf_counter()
        store = run_training(spec, args.out, scheduler=args.scheduler)
        print(f"done in {time.perf_counter() - start:.1f} s: {len(store.done())}/{len(runs)} runs stored\n")
        print(format_runs(store, spec.grid))
        diverged = diverged_runs(store)
        if diverged:
            for key, config, epoch in diverged:
                axes = ", ".join(f"{axis}={config[axis]}" for axis in TRAIN_AXIS_TYPES if axis in config)
                print(f"error: run {key} ({axes}) diverged at epoch {epoch} (loss non-finite or above "
                      f"{DIVERGENCE_FACTOR:g} x its initial value); its rows up to there are stored", file=sys.stderr)
            return 3
    elif args.command == "tail":
        spec = TailSpec.from_mapping(_mapping_from(args, (*AXIS_TYPES, *TAIL_SETTINGS, "trial")))
        check_output_folder(args.out)
        print(f"tail: Pr[{spec.settings['statistic']} {'>' if spec.settings['direction'] == 'upper' else '<'} "
              f"{spec.settings['threshold']:g}], {spec.settings['repeats']} repeats x population "
              f"{spec.settings['population']} -> {args.out}", flush=True)
        run_tail(spec, args.out, scheduler=args.scheduler, backend=args.backend)
        print(format_tail(*stored_tail(ResultsStore.open_existing(args.out))))
    else:
        etas = check_thresholds("--eta", args.eta, lower=0.0)
        taus = check_thresholds("--tau", args.tau, lower=-1.0, upper=1.0)
        if not (math.isfinite(args.confidence) and 0 < args.confidence < 1):
            raise ValueError(f"--confidence must be in (0, 1), got {args.confidence}")
        if not (args.store / "manifest.json").exists():
            raise ValueError(f"{args.store} is not a results store (no manifest.json)")
        store = ResultsStore.open_existing(args.store)
        configuration = store.manifest["configuration"]
        grid = {axis: tuple(values) for axis, values in configuration.get("grid", {}).items()}
        if configuration.get("kind") == "tail":
            stored = stored_tail(store)
            print(format_tail(*stored) if stored else "(unfinished: run the same tail command again to resume)")
        elif configuration.get("kind") == "training":
            print(format_runs(store, grid))
        else:
            table = tail_table(store, etas=etas, taus=taus, confidence=args.confidence,
                               conditional_cosine=args.conditional_cosine)
            print(format_tails(table, grid, args.confidence))
            _warn_undefined(table)
        print(describe_status(store), file=sys.stderr)
    return 0
