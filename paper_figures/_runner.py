"""Run figures: compute (or reuse stored data), plot, and write the verdict report."""

from __future__ import annotations

import hashlib
import html
import json
import os
import time
from pathlib import Path

import pandas as pd

from . import _style  # noqa: F401  (selects the Agg backend before any figure imports pyplot)
from ._registry import FIGURES, Context

DATA_VERSION = 2  # bump when a figure's stored data format changes
FIGURE_SOURCES = Path(__file__).resolve().parent / "figures"


def figure_fingerprint() -> str:
    """Hash of the figure modules' source: stored figure data from other code are recomputed, not reused."""
    digest = hashlib.sha256()
    for path in sorted(FIGURE_SOURCES.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def figure_data(name: str, scale: str, out: Path, recompute: bool = False, scheduler=None,
                progress: bool = True) -> pd.DataFrame:
    """The figure's data: read back if stored for this scale and this code, else computed and stored.

    Computing goes through the figure's results stores, which resume: only
    what was never computed is computed.
    """
    folder = out / "figures" / name
    csv, meta = folder / f"{name}.csv", folder / f"{name}.json"
    wanted = {"figure": name, "scale": scale, "data_version": DATA_VERSION, "code": figure_fingerprint()}
    if not recompute and csv.exists() and meta.exists() and json.loads(meta.read_text()) == wanted:
        print(f"[{name}] reusing stored data {csv}", flush=True)
        return pd.read_csv(csv)
    print(f"[{name}] computing ({scale})", flush=True)
    context = Context(store=out / "store" / f"{name}-{scale}", scheduler=scheduler, progress=progress)
    data = FIGURES[name].compute(scale, context)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = csv.with_name(f".{csv.name}.tmp")
    data.to_csv(tmp, index=False)
    os.replace(tmp, csv)
    _atomic_write_text(meta, json.dumps(wanted, indent=1))
    return data


def run(names: list[str], scale: str, out: Path, recompute: bool = False, scheduler=None,
        progress: bool = True) -> Path:
    """Make every figure in ``names`` under ``out/figures/<name>/`` and write ``out/report.md`` and ``.html``."""
    rows, timings = [], {}
    for name in names:
        start = time.perf_counter()
        folder = out / "figures" / name
        data = figure_data(name, scale, out, recompute, scheduler, progress)
        FIGURES[name].plot(data, folder / name)
        for row in FIGURES[name].report(data):
            rows.append({"figure": name, **row, "link": f"figures/{name}/{name}.png"})
        timings[name] = time.perf_counter() - start
        print(f"[{name}] done in {timings[name]:.1f} s", flush=True)
    return write_report(rows, scale, out, timings)


def write_report(rows: list[dict], scale: str, out: Path, timings: dict | None = None) -> Path:
    """One row per claim checked: the check, the numbers, the verdict and a link to the figure."""
    columns = ("claim", "check", "numbers", "verdict")
    extra = sorted({k for r in rows for k in r} - set(columns) - {"figure", "link"})
    header = "| " + " | ".join(columns + tuple(extra)) + " | figure |\n|" + "---|" * (len(columns) + len(extra) + 1) + "\n"
    escape = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = []
    for r in rows:
        cells = [escape(r.get(c, "")) for c in columns[:3]] + [f"**{escape(r['verdict'])}**"]
        cells += [escape(r.get(c, "")) for c in extra]
        lines.append("| " + " | ".join(cells) + f" | [{r['figure']}]({r['link']}) |")
    stamp = time.strftime("%Y-%m-%d %H:%M")
    intro = (f"# Gradient confusion: verdict report ({scale} run, {stamp})\n\n"
             "Sankararaman, De, Xu, Huang, Goldstein, ICML 2020.  One row per result or claim: the check that was "
             "run, its numbers (Monte Carlo probabilities with 95% Clopper-Pearson intervals, means with standard "
             "errors), and the verdict.  Bounds with unspecified absolute constants are reported with the largest "
             "constant for which they dominate every grid point.\n\n")
    md = intro + header + "\n".join(lines) + "\n"
    if timings:
        md += "\nSeconds per figure: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(out / "report.md", md)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns + tuple(extra))
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in columns + tuple(extra))
        + f"<td><a href=\"{html.escape(r['link'])}\"><img src=\"{html.escape(r['link'])}\" width=240><br>"
        f"{html.escape(r['figure'])}</a></td></tr>\n"
        for r in rows
    )
    page = (
        "<!doctype html><meta charset=utf-8><title>Gradient confusion: verdict report</title>"
        "<style>body{font-family:sans-serif;max-width:90em;margin:auto}td,th{border:1px solid #ccc;padding:4px;"
        "vertical-align:top}table{border-collapse:collapse}</style>"
        f"<h1>Gradient confusion: verdict report ({scale} run, {stamp})</h1>"
        f"<p>{html.escape(intro.splitlines()[2])}</p><table><tr>{head}<th>figure</th></tr>\n{body}</table>"
    )
    _atomic_write_text(out / "report.html", page)
    return out / "report.md"
