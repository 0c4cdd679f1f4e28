"""The report rows of F8-F10 (comparisons over seeds, at the end of training, at matched loss) for any training store.

A store written by ``python -m montecarlo train`` (CIFAR-10 on a cluster, say; docs/training_at_scale.md) is read
back, tabulated as the training figures tabulate their pools, and reported by the figures' own report steps::

    python experiments/training_report.py --store results/train/cifar10_depth --claim depth --out cifar10_depth.md

``--claim depth`` (F8: Figure 2), ``width`` (F9: Figure 3) or ``variants`` (F10: Figure 4; the store must hold the
four skip / batch-norm variants).  The store is one grid, as each ``experiments/cifar10_*.toml`` makes: the axes
other than the compared one fixed (refused otherwise).  Every finished run is read, also one made by other code
than this checkout's (a grid trained over weeks may span commits; a note on stderr says how many).  The markdown file holds one table row per claim: check, numbers, verdict.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import montecarlo as mc
from paper_figures.figures import _depth_width, _training, f10_batchnorm_skip

CLAIMS = {"depth": _depth_width.report_for("depth"), "width": _depth_width.report_for("width"),
          "variants": f10_batchnorm_skip.report}


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> str:
    """Rows ``{"claim", "check", "numbers", "verdict"}`` as a markdown table."""
    lines = ["| claim | check | numbers | verdict |", "|---|---|---|---|"]
    lines += [f"| {_cell(r['claim'])} | {_cell(r['check'])} | {_cell(r['numbers'])} | **{_cell(r['verdict'])}** |"
              for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True, help="a training store (python -m montecarlo train --out)")
    parser.add_argument("--claim", choices=sorted(CLAIMS), required=True, help="which figure's claims to check")
    parser.add_argument("--out", type=Path, help="markdown file to write (default: print)")
    args = parser.parse_args(argv)
    store = mc.ResultsStore.open_existing(args.store)
    stale = store.stale()  # finished by other code than this checkout's (the report reads them; a rerun would not)
    keys = store.done() | set(stale)
    if not keys:
        parser.error(f"--store {args.store}: no finished run in it yet")
    if stale:
        commits = sorted({str(info.get("commit")) for info in stale.values()})
        print(f"note: {len(stale)} of {len(keys)} runs were made by other code than this checkout's (commits "
              f"{', '.join(commits)}); they are reported as stored", file=sys.stderr)
    data = _training.tabulate(store, keys)
    fixed = {"depth": ("width", "skip", "batchnorm"), "width": ("depth", "skip", "batchnorm"),
             "variants": ("width",)}[args.claim]
    varying = [axis for axis in fixed if data[axis].nunique() > 1]
    if varying:  # the figures' reports compare along one axis with the others fixed, as one grid of the paper has them
        parser.error(f"--store {args.store}: --claim {args.claim} needs the runs of one grid, with "
                     f"{', '.join(fixed)} fixed; {', '.join(varying)} vary in it")
    text = table(CLAIMS[args.claim](data))
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
