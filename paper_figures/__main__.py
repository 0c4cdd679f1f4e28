"""Command line of the main job: ``python -m paper_figures [NAMES...] [--quick | --full] [--out DIR]``."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from ._registry import FIGURES
from ._runner import run


#: A Dask scheduler's address: ``[protocol://]host:port`` (the host may be an IPv6 address in brackets).
SCHEDULER_ADDRESS = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})$")


def check_scheduler(parser: argparse.ArgumentParser, scheduler: str | None) -> None:
    """Refuse (exit 2, naming --scheduler) anything but 'local' or a scheduler address such as tcp://host:8786."""
    if scheduler is None or scheduler == "local":
        return
    match = SCHEDULER_ADDRESS.match(scheduler)
    if match is None or not 0 < int(match.group(1)) < 65536:
        parser.error(f"--scheduler must be 'local' (a Dask cluster on this machine) or a Dask scheduler address "
                     f"tcp://host:port (port 1..65535), got {scheduler!r}")


def check_output_folder(parser: argparse.ArgumentParser, out: Path) -> None:
    """Refuse (exit 2, naming --out) a file, or a folder that cannot be created or written; else create it.

    Writing is tried (a temporary file, removed at once) rather than judged from permissions, which say
    nothing for a read-only file system or for root.
    """
    accepted = "give a folder the results can be written to (it is created if missing)"
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out}: exists and is not a folder; {accepted}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        where = f" ({error.filename})" if error.filename and str(error.filename) != str(out) else ""
        parser.error(f"--out {out}: cannot write there: {error.strerror or error}{where}; {accepted}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m paper_figures",
        description="Regenerate the paper's figures and write the verdict report (report.md, report.html).",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"figures to make (default: all of {', '.join(FIGURES)})")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--quick", dest="scale", action="store_const", const="quick",
                       help="small grids, minutes on 2 cores (default)")
    scale.add_argument("--full", dest="scale", action="store_const", const="full", help="paper scale")
    scale.add_argument("--fast", dest="scale", action="store_const", const="fast", help="seconds (smoke test)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder (default: ./results)")
    parser.add_argument("--recompute", action="store_true", help="ignore stored figure data and compute again")
    parser.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786) or 'local' for the Monte Carlo "
                        "sweeps; by default they run in this process")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="figures made at once, each in a single-threaded worker process (default: the number "
                             "of cores; 1 with --scheduler; 1 makes them one after another in this process, each "
                             "using every core); the data are the same whatever N is")
    parser.add_argument("--update-docs", action="store_true",
                        help="after a --quick run of every figure, write its quotes into docs/quotes.json and the "
                             "numbers the README, the guide and the findings page quote (their <!--q KEY--> markers)")
    args = parser.parse_args(argv)
    check_scheduler(parser, args.scheduler)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    jobs = args.jobs if args.jobs is not None else 1 if args.scheduler else cores
    if jobs < 1:
        parser.error(f"--jobs must be >= 1, got {jobs}")
    if jobs > 1 and args.scheduler:
        parser.error("--jobs must be 1 with --scheduler (the sweeps then run on Dask)")
    unknown = [name for name in args.names if name not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    check_output_folder(parser, args.out)  # last: it creates the folder, once everything else is accepted
    start = time.perf_counter()
    report = run(args.names or list(FIGURES), args.scale or "quick", args.out, recompute=args.recompute,
                 scheduler=args.scheduler, jobs=jobs)
    print(f"\ndone in {time.perf_counter() - start:.0f} s")
    print(f"figures (PNG, PDF, CSV): {args.out.resolve() / 'figures'}")
    print(f"report: {report.resolve()} (and report.html)")
    if args.update_docs:
        from ._runner import update_documents

        try:
            changed = update_documents(args.out, args.names or list(FIGURES), args.scale or "quick")
        except ValueError as error:
            parser.error(str(error))
        print(f"quoted numbers updated: docs/quotes.json{''.join(', ' + name for name in changed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
