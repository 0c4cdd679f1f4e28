"""python -m montecarlo: run sweeps into a results store and show their tails; rare-event tails; training.

The parser is built from light tables only (``engines.settings``,
``training.settings`` and the registries, none of which imports torch, numba,
sympy or pandas), so ``--help`` answers at once; each command imports its
machinery when it runs.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from .validation import DTYPES
from .draw.data import LABELS
from .draw.elementwise import ACTIVATIONS, LOSSES
from .draw.network import INITS
from .gram import backend_names
from .statistics.gram_statistics import STATISTICS
from .engines.settings import DIRECTIONS, GRID_DEFAULTS, TAIL_SETTINGS
from .training.datasets import DATASETS
from .training.settings import SETTING_DEFAULTS, TRACKS, TRAIN_DEFAULTS

if TYPE_CHECKING:  # imported by the commands when they run
    import pandas as pd

    from .engines.store import ResultsStore
    from .engines.sweep import SweepSpec

DESCRIPTION = """Monte Carlo of gradient confusion on random networks (Sankararaman et al., ICML 2020).

python -m montecarlo COMMAND --help lists a command's options, their accepted values and examples."""

#: Example command lines of each command (its help's epilog), each one runnable as it stands (tests/cli parse every
#: one and run the first sweep and the shows of its store at a tiny scale).
EXAMPLES = {
    "sweep": (
        "python -m montecarlo sweep --width 16 64 --depth 2 --trials 200 --out runs/width",
        "python -m montecarlo sweep --activation tanh --labels random_sign --width 32 --trials 500 --eta 1 2 "
        "--out runs/tanh",
        "python -m montecarlo sweep --width 64 256 --depth 2 4 --n-samples 8 --trials 1000 --scheduler local "
        "--out runs/grid",
    ),
    "tail": (
        "python -m montecarlo tail --width 16 --threshold 0.2 --population 500 --repeats 4 --out runs/tail",
        "python -m montecarlo tail --width 16 --activation tanh --statistic min_cosine --direction lower "
        "--threshold -0.9 --population 500 --repeats 4 --out runs/cosine",
    ),
    "train": (
        "python -m montecarlo train --model mlp --depth 1 --width 16 --epochs 3 --out runs/mlp",
        "python -m montecarlo train --depth 10 --width 1 2 --lr 0.05 0.1 --epochs 5 --scheduler local --out runs/cnn",
    ),
    "show": (
        "python -m montecarlo show runs/width",
        "python -m montecarlo show runs/width --eta 0.01 0.1 --tau 0.25 0.5 --confidence 0.99",
    ),
}

EPILOG = "examples:\n" + "\n".join(f"  {EXAMPLES[name][0]}" for name in ("sweep", "show", "tail"))


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

#: What each network axis is (the paper's eq. 4 network and its data).
AXIS_HELP = {
    "width": "hidden width l (neurons per hidden layer)",
    "depth": "depth beta (hidden layers; beta + 1 weight matrices)",
    "d": "input dimension d (data on the unit sphere S^(d-1))",
    "n_samples": "examples N per trial",
    "kappa": "variance divisor of the gaussian init: W_p entries N(0, 1/(kappa fan_in)) for p >= 1",
    "gain": "scale of the orthogonal init's matrices",
    "gamma": "output rescaling g = gamma s(...) (Theorem 6.1 uses 1/sqrt(2 beta))",
    "activation": "activation s",
    "init": "weight initialisation (gaussian: the paper's Strategy 4.1; orthogonal: Haar, times gain)",
    "loss": "loss of one example (output: l = g, the tangent kernel)",
    "labels": "labelling of the data (random_sign lies outside the theorems' assumptions)",
    "output_activation": "apply the activation at the output, as the paper does",
    "bias": "a bias vector in every layer (the paper has none)",
}
assert set(AXIS_HELP) == set(GRID_DEFAULTS)

#: The accepted values of the axes that take names, read from their tables.
AXIS_VALUES = {"activation": ACTIVATIONS, "init": INITS, "loss": LOSSES, "labels": tuple(LABELS)}

TRAIN_AXIS_HELP = {
    "model": "cnn (CNN-beta-l, the paper's section 7) or mlp (fully connected, on flattened inputs)",
    "depth": "depth of the model: the CNN's beta, 6 n + 4 (10, 16, 22, ...), or the MLP's hidden layers",
    "width": "width of the model: the CNN's width factor l, or the MLP's hidden width",
    "skip": "residual (skip) connections in the CNN",
    "batchnorm": "batch normalisation in the CNN",
    "base": "channels of the CNN's stem convolution (its groups have base l, 2 base l, 4 base l)",
    "lr": "SGD learning rate",
    "seed": "seed of the initialisation and the minibatch order",
}
assert set(TRAIN_AXIS_HELP) == set(TRAIN_DEFAULTS)

#: The ways to draw a network's weights (``trials.mlp.METHODS``; a test holds the two to the same names).
METHODS = ("auto", "lazy", "dense")


def _axis_help(what: str, kind, default, values=None) -> str:
    """An axis flag's help: what it is, its accepted values when they are names or booleans, its default."""
    if values is not None:
        what += f"; one of {', '.join(values)}"
    elif kind is _boolean:
        what += "; true or false"
        default = str(default).lower()
    return f"{what} (default {default})"


def _command_parser(commands, name: str, help: str, description: str) -> argparse.ArgumentParser:
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[name])
    return commands.add_parser(name, help=help, description=description, epilog=epilog,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m montecarlo", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(title="commands", dest="command", required=True)
    backends = backend_names()

    sweep = _command_parser(
        commands, "sweep", "run a grid of configurations x trials into a results store",
        "Run a grid of network configurations x trials into a results store (resumable: run the same command\n"
        "again), then print its tail table: Pr[eta* > threshold] and Pr[min cos < -tau] with Clopper-Pearson\n"
        "intervals.  Every axis flag takes one or more values; the grid is their product.")
    sweep.add_argument("--config", type=Path, help="TOML file with grid axes and settings (flags override it)")
    for axis, kind in AXIS_TYPES.items():
        sweep.add_argument(f"--{axis.replace('_', '-')}", dest=axis, nargs="+", type=kind, metavar="V",
                           help=_axis_help(AXIS_HELP[axis], kind, GRID_DEFAULTS[axis], AXIS_VALUES.get(axis)))
    sweep.add_argument("--trials", type=int, help="trials per grid point (required here or in --config)")
    sweep.add_argument("--seed", type=int, help="sweep seed (default 0)")
    sweep.add_argument("--dtype", choices=DTYPES, help="working precision (default float64)")
    sweep.add_argument("--method", choices=METHODS,
                       help="weight sampling: lazy where it applies (auto, the default) or dense")
    sweep.add_argument("--backend", default="auto", choices=backends,
                       help="Gram backend (default auto: numba on the CPU)")
    sweep.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786), or 'local' for a local "
                       "cluster; by default the points run one by one in this process")
    sweep.add_argument("--out", type=Path, required=True, help="results store folder")
    sweep.add_argument("--eta", type=float, nargs="+", help="thresholds of eta* for the summary table")
    sweep.add_argument("--conditional-cosine", action="store_true",
                       help="min cos rows conditional on a defined minimum cosine (trials with at most one non-zero "
                       "gradient left out); by default such a trial counts as not confused, as Definition 2.1's "
                       "inner products say (a zero gradient has inner product 0)")

    tail = _command_parser(
        commands, "tail", "a rare-event tail probability (to 1e-10 and below) by subset simulation, resumable",
        "Estimate Pr[S > s] (or Pr[S < s]) of a statistic S of the gradient Gram of a random network, down to\n"
        "1e-10 and below, by subset simulation: independent repeats, each saved level by level into the store\n"
        "(a killed run resumes where it stopped), and a confidence interval from their spread.")
    tail.add_argument("--config", type=Path, help="TOML file with the network axes and the settings (flags override)")
    for axis, kind in AXIS_TYPES.items():
        tail.add_argument(f"--{axis.replace('_', '-')}", dest=axis, type=kind, metavar="V",
                          help=_axis_help(AXIS_HELP[axis], kind, GRID_DEFAULTS[axis], AXIS_VALUES.get(axis)))
    tail.add_argument("--trial", metavar="MODULE:NAME",
                      help="any trial instead of the network flags: a montecarlo.Trial (a ModuleTrial of your torch "
                      "module, say), or a function returning one, named as package.module:name; the module is "
                      "imported (its code runs), here and on Dask workers")
    families = {"q": "q in [0, 1], cosine_q0.05 say", "p": "p a layer, from 0"}
    statistics = ", ".join(stat.name + (f" ({families[stat.parameter]})" if stat.parameter in families else "")
                           for stat in STATISTICS.values())
    tail.add_argument("--statistic", help=f"the statistic S, one of {statistics}, or norm_ratio of the paper's "
                      f"network (default {TAIL_SETTINGS['statistic']})")
    tail.add_argument("--threshold", type=float, help="the level s of Pr[S > s] (or < s); required here or in --config")
    tail.add_argument("--direction", choices=DIRECTIONS, help="upper: Pr[S > s] (default); lower: Pr[S < s]")
    tail.add_argument("--population", type=int,
                      help=f"samples per level, at least 10 (default {TAIL_SETTINGS['population']})")
    tail.add_argument("--level-probability", type=float,
                      help=f"conditional probability per level (default {TAIL_SETTINGS['level_probability']})")
    tail.add_argument("--target-acceptance", type=float,
                      help=f"pCN acceptance the step adapts to (default {TAIL_SETTINGS['target_acceptance']})")
    tail.add_argument("--repeats", type=int, help=f"independent repeats behind the interval: the t-interval of "
                      f"their mean, so at least 2 (default {TAIL_SETTINGS['repeats']})")
    tail.add_argument("--strict", action="store_true", default=None,
                      help="stop with exit code 4 when a level's population collapsed into one category (label-sign "
                      "branch of the attaining pair) while level 0 held several; by default it is a warning")
    tail.add_argument("--seed", type=int, help=f"seed (default {TAIL_SETTINGS['seed']})")
    tail.add_argument("--method", choices=METHODS, help=f"weight sampling (default {TAIL_SETTINGS['method']})")
    tail.add_argument("--dtype", choices=DTYPES, help=f"working precision (default {TAIL_SETTINGS['dtype']})")
    tail.add_argument("--max-levels", type=int, help="refuse targets needing more levels than this")
    tail.add_argument("--backend", default="auto", choices=backends,
                      help="Gram backend of the paper's network (default auto: numba on the CPU)")
    tail.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786) or 'local': one task per repeat; "
                      "by default the repeats run one by one in this process")
    tail.add_argument("--out", type=Path, required=True, help="results store folder (a killed run resumes there)")

    train = _command_parser(
        commands, "train", "train models with plain SGD, tracking gradient confusion (paper section 7)",
        "Train a grid of models with plain SGD into a results store, tracking the gradient confusion of\n"
        "minibatch pairs and of a per-example probe at spread-out epochs (paper section 7).  Every axis flag\n"
        "takes one or more values; the grid is their product.  A run resumes from its checkpoint.")
    train.add_argument("--config", type=Path, help="TOML file with axes and settings (flags override it)")
    for axis, kind in TRAIN_AXIS_TYPES.items():
        train.add_argument(f"--{axis.replace('_', '-')}", dest=axis, nargs="+", type=kind, metavar="V",
                           help=_axis_help(TRAIN_AXIS_HELP[axis], kind, TRAIN_DEFAULTS[axis]))
    train.add_argument("--data", choices=DATASETS,
                       help=f"dataset (default {SETTING_DEFAULTS['data']}, bundled with scikit-learn)")
    train.add_argument("--data-dir", type=Path, help="folder with the MNIST IDX files or the CIFAR-10 python batches")
    train.add_argument("--epochs", type=int, help=f"epochs (default {SETTING_DEFAULTS['epochs']})")
    train.add_argument("--batch-size", type=int,
                       help=f"SGD minibatch size (default {SETTING_DEFAULTS['batch_size']})")
    train.add_argument("--lr-milestones", type=int, nargs="*", help="epochs after which the learning rate decays")
    train.add_argument("--lr-decay", type=float,
                       help=f"learning-rate factor at each milestone (default {SETTING_DEFAULTS['lr_decay']})")
    train.add_argument("--track", choices=TRACKS,
                       help=f"spacing of the tracked epochs (default {SETTING_DEFAULTS['track']})")
    train.add_argument("--track-points", type=int,
                       help=f"number of tracked epochs (default {SETTING_DEFAULTS['track_points']})")
    train.add_argument("--probe-size", type=int, help=f"examples in the per-example confusion probe (default "
                       f"{SETTING_DEFAULTS['probe_size']})")
    train.add_argument("--pairs", type=int, help=f"minibatch pairs per tracked epoch (default "
                       f"{SETTING_DEFAULTS['pairs']}, as the paper)")
    train.add_argument("--pair-batch", type=int, help=f"minibatch size of the pair protocol (default "
                       f"{SETTING_DEFAULTS['pair_batch']})")
    train.add_argument("--dtype", choices=DTYPES, help=f"precision (default {SETTING_DEFAULTS['dtype']})")
    train.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786), or 'local' for a local "
                       "cluster (one single-threaded worker per core); by default the runs train one by one in this "
                       "process.  On a cluster, --out must be on a file system the workers share (checkpoints)")
    train.add_argument("--out", type=Path, required=True, help="results store folder")

    show = _command_parser(
        commands, "show", "the table of a results store made by sweep, tail or train",
        "Print the table of a results store: a sweep's tail probabilities with Clopper-Pearson intervals, a\n"
        "tail run's estimate and interval, or a training grid's final losses and confusion; then, on stderr,\n"
        "how many points are done, stale or corrupt.")
    show.add_argument("store", type=Path, help="results store folder (the --out of sweep, tail or train)")
    show.add_argument("--eta", type=float, nargs="+", help="thresholds of eta* (default: pooled 50%%, 90%% quantiles)")
    show.add_argument("--tau", type=float, nargs="+", default=[0.25, 0.5],
                      help="thresholds tau of Pr[min cos < -tau] (default 0.25 0.5)")
    show.add_argument("--confidence", type=float, default=0.95,
                      help="confidence level of the intervals, in (0, 1) (default 0.95)")
    show.add_argument("--conditional-cosine", action="store_true",
                      help="min cos rows conditional on a defined minimum cosine; by default a trial without one "
                      "counts as not confused")
    return parser


#: Keys whose value names code to import (``tail --trial package.module:name``): refused in a ``--config`` file, which
#: may come from someone else; only the command line, typed by the user, may name code.
CODE_KEYS = ("trial",)


def _mapping_from(args, keys) -> dict:
    """The TOML file of ``--config`` (if any) overridden by the flags that were given (``CODE_KEYS`` refused in it)."""
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
        named = sorted(set(mapping) & set(CODE_KEYS))
        if named:  # checked before anything reads the value: nothing is imported
            raise ValueError(f"--config {args.config}: a configuration file is data and may not name code to import "
                             f"({', '.join(named)}); give --{named[0]} on the command line")
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
    from .engines.sweep import SweepSpec

    return SweepSpec.from_mapping(_mapping_from(args, (*AXIS_TYPES, "trials", "seed", "dtype", "method")))


def format_runs(store: ResultsStore, grid: dict) -> str:
    """One line per finished run: its varying axes and its final loss, accuracy and confusion."""
    import pandas as pd

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
    from .engines.sweep import undefined_cosine_note

    note = undefined_cosine_note(table)
    if note:
        print(note, file=sys.stderr)


def _tail_flag_named(message: str, flags) -> str:
    """A tail setting's refusal ("argument 'repeats' must be ...") naming its flag: "--repeats (or 'repeats' in
    --config) must be ...".  ``flags``: the keys that have a flag; ``trial``, which a configuration file may not
    give, is named by its flag alone, and a setting without a flag as the key of --config."""
    import re

    match = re.match(r"argument '(\w+)'", message)
    if match is None or match.group(1) not in (*AXIS_TYPES, *TAIL_SETTINGS, *CODE_KEYS):
        return message
    key = match.group(1)
    flag = f"--{key.replace('_', '-')}"
    if key not in flags:
        named = f"'{key}' in --config"
    else:
        named = flag if key in CODE_KEYS else f"{flag} (or '{key}' in --config)"
    return named + message[match.end():]


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
    from .engines.splitting_state import PopulationCollapsed
    from .engines.store import StoreMismatch

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
    """Run the parsed command; each imports its machinery here, so that the parser (and --help) stays light."""
    if args.command == "sweep":
        from .engines.sweep import refuse_sweep_too_large, run_sweep, tail_table

        etas = check_thresholds("--eta", args.eta, lower=0.0)
        spec = _spec_from(args)
        check_output_folder(args.out)
        # a point that cannot fit in memory, before anything starts; the message names this command's flags
        refuse_sweep_too_large(spec, args.backend, spell=lambda key: "--" + key.replace("_", "-"))
        points = spec.points()
        print(f"sweep: {len(points)} point(s) x {spec.trials} trials -> {args.out}", flush=True)
        start = time.perf_counter()
        store = run_sweep(spec, args.out, scheduler=args.scheduler, backend=args.backend)
        print(f"done in {time.perf_counter() - start:.1f} s: {len(store.done())}/{len(points)} points stored\n")
        table = tail_table(store, etas=etas, conditional_cosine=args.conditional_cosine)
        print(format_tails(table, spec.grid))
        _warn_undefined(table)
    elif args.command == "train":
        from .training.runs import DIVERGENCE_FACTOR, TrainingGrid, diverged_runs, run_training

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
        from .engines.store import ResultsStore
        from .engines.tail_run import TailSpec, format_tail, run_tail, stored_tail

        try:
            spec = TailSpec.from_mapping(_mapping_from(args, (*AXIS_TYPES, *TAIL_SETTINGS, "trial")))
        except (ValueError, TypeError) as error:
            raise ValueError(_tail_flag_named(str(error), vars(args))) from None
        check_output_folder(args.out)
        print(f"tail: Pr[{spec.settings['statistic']} {'>' if spec.settings['direction'] == 'upper' else '<'} "
              f"{spec.settings['threshold']:g}], {spec.settings['repeats']} repeats x population "
              f"{spec.settings['population']} -> {args.out}", flush=True)
        run_tail(spec, args.out, scheduler=args.scheduler, backend=args.backend)
        print(format_tail(*stored_tail(ResultsStore.open_existing(args.out))))
    else:
        from .engines.store import ResultsStore
        from .engines.sweep import tail_table
        from .engines.tail_run import format_tail, stored_tail

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
