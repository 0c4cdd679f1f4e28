"""How fast the command line answers ``--help`` (target: within a second), as a user runs it, in fresh processes.

Times, in a new interpreter each, ``python -c pass`` (the interpreter alone), ``import montecarlo``,
``python -m montecarlo --help`` and ``python -m montecarlo tail --help``: each once to warm the bytecode caches, then
``--repeats`` times; a cell is the median (and the best) wall seconds.  ``--tree`` times other checkouts beside this
one (each run in its folder, with ``PYTHONPATH`` to it), so the same script gives a before/after table::

    git archive <commit> | tar -x -C <folder>
    OPENBLAS_NUM_THREADS=1 python benchmarks/cli_help.py --repeats 5 --tree before=<folder>

The table is ``benchmarks/results/cli_help.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = {
    "python -c pass (the interpreter alone)": ["-c", "pass"],
    "python -c 'import montecarlo'": ["-c", "import montecarlo"],
    "python -m montecarlo --help": ["-m", "montecarlo", "--help"],
    "python -m montecarlo tail --help": ["-m", "montecarlo", "tail", "--help"],
}


def wall_seconds(tree: Path, args: list[str]) -> float:
    """Wall seconds of one ``python ARGS`` run in ``tree`` (refusing a run that fails)."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} in {tree} failed:\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell (default 5)")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH",
                        help="another checkout to time beside this one (repeatable)")
    args = parser.parse_args()
    trees = {name: Path(path).resolve() for name, path in (entry.split("=", 1) for entry in args.tree)}
    trees["this tree"] = ROOT
    print("| command | " + " | ".join(f"{name}: median s (best)" for name in trees) + " |")
    print("|---|" + "---:|" * len(trees))
    for label, command in COMMANDS.items():
        cells = []
        for tree in trees.values():
            wall_seconds(tree, command)  # warm: bytecode written, files in the page cache
            times = [wall_seconds(tree, command) for _ in range(args.repeats)]
            cells.append(f"{statistics.median(times):.2f} ({min(times):.2f})")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
