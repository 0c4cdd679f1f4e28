"""F8-F10's MNIST-1D part at --full scale: train its runs in worker processes, report them, write a markdown table.

    python experiments/mnist1d_full.py --out results/mnist1d_full --md experiments/results/mnist1d_full.md

The runs are the figures' own (``_training.pieces`` of each figure's ``grid("full")`` with
``_training.SETTINGS["full"]["mnist1d"]``), trained into the figures' pool layout under ``--out`` (a run already
there is read back, not trained again), ``--jobs`` at a time, each on one thread; the rows are the figures' report
steps on the tabulated runs.  The markdown file records the command, the sizes, the wall time and the rows.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

import montecarlo as mc
from paper_figures._figure import Context
from paper_figures.figures import _training, f08_depth_training, f09_width_training, f10_batchnorm_skip

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_report import table  # noqa: E402

FIGURES = {"F8_depth_training": f08_depth_training, "F9_width_training": f09_width_training,
           "F10_batchnorm_skip": f10_batchnorm_skip}
SCALE, DATA = "full", "mnist1d"


def _single_threaded() -> None:
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    global _LIMIT
    _LIMIT = threadpool_limits(limits=1)


def _work(item):
    label, piece = item
    start, cpu = time.perf_counter(), time.process_time()
    piece()
    return label, time.perf_counter() - start, time.process_time() - cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/mnist1d_full"), help="folder of the runs' pools")
    parser.add_argument("--md", type=Path, default=Path("experiments/results/mnist1d_full.md"),
                        help="markdown file to write")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="runs trained at once")
    args = parser.parse_args(argv)
    settings = _training.SETTINGS[SCALE][DATA]
    context = Context(store=args.out, progress=False)
    pieces = {}
    for module in FIGURES.values():
        for label, cost, piece in _training.pieces(module.grid(SCALE), settings, context):
            pieces.setdefault(label, (cost, piece))
    work = [(label, piece) for label, (cost, piece) in sorted(pieces.items(), key=lambda kv: -kv[1][0])]
    start = time.perf_counter()
    cpu = 0.0
    with multiprocessing.get_context("fork").Pool(args.jobs, initializer=_single_threaded) as pool:
        for i, (label, seconds, used) in enumerate(pool.imap_unordered(_work, work), 1):
            cpu += used
            print(f"[{i}/{len(work)}] {label} done in {seconds:.1f} s ({used:.1f} s CPU)", flush=True)
    trained = time.perf_counter() - start
    rows = []
    for name, module in FIGURES.items():
        store, keys = _training.run(module.grid(SCALE), settings, context)
        data = _training.tabulate(store, keys)
        rows += [{**row, "claim": f"{name}: {row['claim']}"} for row in module.FIGURE.report(data)]
    total = time.perf_counter() - start
    grids = "; ".join(f"{name}: {', '.join(f'{k} {v}' for k, v in module.GRIDS[SCALE].items())}"
                      for name, module in FIGURES.items())
    header = (
        f"# F8-F10 on MNIST-1D at --full scale\n\n"
        f"Made by `python experiments/mnist1d_full.py --out {args.out} --md {args.md} --jobs {args.jobs}` "
        f"(code {mc.code_fingerprint()}, commit {mc.git_commit()}).  {len(work)} runs: {grids}; seeds "
        f"{_training.SEEDS[SCALE]} per configuration, step sizes {_training.LRS[SCALE]} (the lowest mean final "
        f"training loss kept per model), CNN base width {_training.BASE[SCALE]}; settings {settings}.  Trained in "
        f"{trained / 60:.1f} min of wall time on {args.jobs} single-threaded worker processes ({cpu / 60:.1f} CPU "
        f"minutes), {total / 60:.1f} min with the report.  Each verdict rests on a 95% t interval over seeds on the "
        f"difference of a per-seed statistic (the method is in each row's check).\n\n")
    args.md.parent.mkdir(parents=True, exist_ok=True)
    args.md.write_text(header + table(rows))
    print(f"wrote {args.md} ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
