"""Run figures: compute (or reuse stored data), plot, and write the report."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from ._registry import FIGURES  # noqa: E402

DATA_VERSION = 1  # bump when a figure's stored data format changes


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def figure_data(name: str, scale: str, folder: Path, recompute: bool = False) -> pd.DataFrame:
    """The figure's data: read from ``folder`` if stored for this scale, else computed and stored."""
    csv, meta = folder / f"{name}.csv", folder / f"{name}.json"
    wanted = {"figure": name, "scale": scale, "data_version": DATA_VERSION}
    if not recompute and csv.exists() and meta.exists() and json.loads(meta.read_text()) == wanted:
        print(f"[{name}] reusing stored data {csv}", flush=True)
        return pd.read_csv(csv)
    print(f"[{name}] computing ({scale})", flush=True)
    data = FIGURES[name].compute(scale)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = csv.with_name(csv.name + ".tmp")
    data.to_csv(tmp, index=False)
    os.replace(tmp, csv)
    _atomic_write_text(meta, json.dumps(wanted, indent=1))
    return data


def run(names: list[str], scale: str, out: Path, recompute: bool = False) -> Path:
    """Make every figure in ``names`` under ``out/figures/<name>/`` and write ``out/report.md``/``.html``."""
    rows = []
    for name in names:
        folder = out / "figures" / name
        data = figure_data(name, scale, folder, recompute)
        FIGURES[name].plot(data, folder / name)
        for row in FIGURES[name].report(data):
            rows.append({"figure": name, **row, "link": f"figures/{name}/{name}.png"})
    return write_report(rows, scale, out)


def write_report(rows: list[dict], scale: str, out: Path) -> Path:
    """One row per claim checked: the check, the numbers, the verdict and a link to the figure."""
    header = "| claim | check | numbers | verdict | figure |\n|---|---|---|---|---|\n"
    lines = [
        f"| {r['claim']} | {r['check']} | {r['numbers']} | **{r['verdict']}** | [{r['figure']}]({r['link']}) |"
        for r in rows
    ]
    md = f"# Gradient confusion: verdict report ({scale} run)\n\n" + header + "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(out / "report.md", md)
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r[k]))}</td>" for k in ("claim", "check", "numbers", "verdict"))
        + f"<td><a href=\"{html.escape(r['link'])}\">{html.escape(r['figure'])}</a></td></tr>\n"
        for r in rows
    )
    page = (
        "<!doctype html><meta charset=utf-8><title>Gradient confusion: verdict report</title>"
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto}td,th{border:1px solid #ccc;padding:4px}"
        "table{border-collapse:collapse}</style>"
        f"<h1>Gradient confusion: verdict report ({scale} run)</h1><table>"
        "<tr><th>claim</th><th>check</th><th>numbers</th><th>verdict</th><th>figure</th></tr>\n"
        f"{cells}</table>"
    )
    _atomic_write_text(out / "report.html", page)
    return out / "report.md"
