"""Run figures: compute (or reuse stored data), plot, and write the verdict report."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path

import pandas as pd

import montecarlo as mc

from . import _quotes
from . import _style  # noqa: F401  (selects the Agg backend before any figure imports pyplot)
from ._figure import Context
from ._registry import FIGURES
from ._report import MAX_FINDINGS, findings, write_report  # noqa: F401  (the report's writer, here as before)

DATA_VERSION = 2  # bump when a figure's stored data format changes
PACKAGE = Path(__file__).resolve().parent
FIGURE_SOURCES = PACKAGE / "figures"
#: Modules that only format the report from the figures' rows: outside the data's fingerprint (editing them
#: recomputes nothing; every word and number of the report comes from the figure modules, which are inside it).
REPORT_ONLY = ("_report.py", "_quotes.py")
#: The repository the package sits in, whose documents quote the figures' numbers (absent when installed).
REPOSITORY = PACKAGE.parent


def figure_fingerprint() -> str:
    """Fingerprint of all the code behind the figure data: stored data of other code are recomputed, not reused.

    Returns
    -------
    str
        16 hex digits of a SHA-256 over the code fingerprint of ``montecarlo``
        and ``theory`` (``montecarlo.code_fingerprint``, looked up at each
        call) and the source of ``paper_figures/*.py`` and
        ``paper_figures/figures/*.py`` (``montecarlo.source_digest``), less
        ``REPORT_ONLY`` (the report's formatting, which reads the rows the
        figures give and stores nothing).  A hash, not a version to bump: an
        edit anywhere in the numbers' code cannot be forgotten.
    """
    own = [path for path in PACKAGE.glob("*.py") if path.name not in REPORT_ONLY]
    figures = mc.source_digest([*own, *FIGURE_SOURCES.glob("*.py")], PACKAGE)
    return hashlib.sha256(f"{mc.code_fingerprint()}:{figures}".encode()).hexdigest()[:16]


def _claims(name: str, scale: str) -> dict:
    """What a figure's stored data claim to be (in their record): the figure, the scale, the data format."""
    return {"figure": name, "scale": scale, "data_version": DATA_VERSION}


def _paths(name: str, out: Path) -> tuple[Path, Path]:
    """The figure's data ``<name>.csv`` and their record ``<name>.json``, in ``out/figures/<name>/``."""
    folder = out / "figures" / name
    return folder / f"{name}.csv", folder / f"{name}.json"


def _stored_data(name: str, scale: str, out: Path) -> tuple[bytes | None, str | None]:
    """The stored CSV's bytes if they verify (``montecarlo.read_verified``: checksum, length and claims in
    ``<name>.json``) and this code made them (``figure_fingerprint``); else ``None`` and why not (``None`` when
    nothing is stored)."""
    csv, meta = _paths(name, out)
    try:
        data, record = mc.read_verified(csv, claims=_claims(name, scale), record=meta)
    except FileNotFoundError:
        return None, None
    except (mc.StoreCorrupt, mc.StoreMismatch) as error:
        return None, f"stored data not reused: {error}"
    if record["code"] != figure_fingerprint():
        return None, (f"stored data were made by other code ({record['code']}, commit "
                      f"{record.get('commit') or 'unknown'})")
    return data, None


def is_stored(name: str, scale: str, out: Path) -> bool:
    """Whether :func:`figure_data` would read the figure's data back rather than compute them."""
    return _stored_data(name, scale, out)[0] is not None


def write_figure_data(name: str, scale: str, out: Path, data: pd.DataFrame) -> None:
    """Store a figure's data: ``<name>.csv``, then its record ``<name>.json`` (``montecarlo.write_verified``)."""
    csv, meta = _paths(name, out)
    csv.parent.mkdir(parents=True, exist_ok=True)
    mc.write_verified(csv, data.to_csv(index=False).encode(), claims=_claims(name, scale),
                      code=figure_fingerprint(), commit=mc.git_commit(), record=meta)


def figure_context(name: str, scale: str, out: Path, scheduler=None, progress: bool = True) -> Context:
    """The figure's stores: ``out/store/<name>-<scale>``, and ``out/store/shared`` for what figures share."""
    return Context(store=out / "store" / f"{name}-{scale}", scheduler=scheduler, progress=progress,
                   shared_store=out / "store" / "shared")


def figure_data(name: str, scale: str, out: Path, recompute: bool = False, scheduler=None,
                progress: bool = True) -> pd.DataFrame:
    """The figure's data: read back if stored for this scale and this code, else computed and stored.

    Computing goes through the figure's results stores, which resume: only
    what was never computed, what is corrupt and what other code computed is
    computed.  The stored data (``<name>.csv``) are reused only if their
    record (``<name>.json``, written after them) holds their SHA-256 and
    length and names this figure, scale, data version and code
    (``figure_fingerprint``); the record also keeps the git commit, for
    people.  Data edited, truncated or replaced, a missing or unreadable
    record, or one of another figure, scale or code mean recomputing, and
    which file and why is printed.
    """
    csv, _ = _paths(name, out)
    stored, why = (None, None) if recompute else _stored_data(name, scale, out)
    if stored is not None:
        print(f"[{name}] reusing stored data {csv}", flush=True)
        return pd.read_csv(io.BytesIO(stored))
    if why is not None:
        print(f"[{name}] {why}: recomputing", flush=True)
    print(f"[{name}] computing ({scale})", flush=True)
    data = FIGURES[name].compute(scale, figure_context(name, scale, out, scheduler, progress))
    write_figure_data(name, scale, out, data)
    return data


#: The order in which ``jobs > 1`` hands work to the workers.  F4 first: the first Monte Carlo figure compiles
#: numba's kernels (about 40 s in a fresh clone), and it should do so once, while the other worker trains, not in
#: both workers at the same time.  Then the figures' independent pieces (``Figure.prepare``: the training runs of
#: F8-F10 and the tail runs of F16 and F17, longest first), then the figures, the longest first, so that the last
#: to finish is a short one.  In the comments: seconds each figure took in a worker at --quick in the main job from
#: a fresh clone on a quiet 2-core machine, once its pieces were stored (the pieces took 176 s for the 80 training
#: runs, 117 s for the conditional runs F16 and F17 share, 28 s for F16's others and 10 s for F17's fluctuation
#: runs; the whole job 248 s of wall time, and 99 s more to create the environment).  Figures not listed go last.
ORDER = (
    "F4_gaussian_init",  # 42, with the numba compilation
    "F13_vanishing_curvature",  # 21
    "F5_normalised_confusion",  # 18
    "F17_finite_width_law",  # 15
    "F14_depth_fluctuations",  # 11
    "F15_invariant_measure",  # 9
    "F16_rare_tails",  # 8
    "F11_infinite_width",  # 6
    "F6_orthogonal_linear",  # 6
    "F7_small_weights",  # 5
    "F2_sgd_theorems",  # 4
    "F12_fisher_jacobian",  # 3
    "F10_batchnorm_skip",  # 2
    "F8_depth_training",  # 2
    "F9_width_training",  # 2
    "F1_linear_regression",  # 2
    "F3_sphere",  # 1
)
FIRST = ("F4_gaussian_init",)  # before the prepared pieces


def make_figure(name: str, scale: str, out: Path, recompute: bool = False, scheduler=None,
                progress: bool = True) -> tuple[pd.DataFrame, float]:
    """Compute (or read back) one figure's data and draw it; return the data and the seconds it took."""
    start = time.perf_counter()
    data = figure_data(name, scale, out, recompute, scheduler, progress)
    FIGURES[name].plot(data, out / "figures" / name / name)
    return data, time.perf_counter() - start


def _single_threaded() -> None:
    """Initialiser of a worker process: torch, numba and BLAS on one thread each (the workers share the cores)."""
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    global _BLAS_LIMIT
    _BLAS_LIMIT = threadpool_limits(limits=1)  # kept for the life of the worker


def _work(item) -> tuple:
    """One piece of work in a worker: ``("figure", name, args)`` or ``("piece", label, callable)``."""
    kind, label, what = item
    start, cpu = time.perf_counter(), time.process_time()
    data = make_figure(label, *what)[0] if kind == "figure" else what()
    return kind, label, data, time.perf_counter() - start, time.process_time() - cpu


def _plan(names: list[str], scale: str, out: Path, recompute: bool) -> list[tuple]:
    """The work of ``names`` for the workers, in ``ORDER``, each figure's prepared pieces before the figures."""
    rank = {name: i for i, name in enumerate(ORDER)}
    figures = sorted(names, key=lambda n: rank.get(n, len(ORDER)))
    pieces = {}
    for name in figures:
        if FIGURES[name].prepare is not None and (recompute or not is_stored(name, scale, out)):
            for label, cost, piece in FIGURES[name].prepare(scale, figure_context(name, scale, out, progress=False)):
                pieces.setdefault(label, (cost, piece))  # a piece two figures share is done once
    prepared = [("piece", label, piece) for label, (cost, piece) in sorted(pieces.items(), key=lambda kv: -kv[1][0])]
    work = [("figure", name, (scale, out, recompute, None, False)) for name in figures]
    first = [w for w in work if w[1] in FIRST]
    return first + prepared + [w for w in work if w[1] not in FIRST]


def run(names: list[str], scale: str, out: Path, recompute: bool = False, scheduler=None,
        progress: bool = True, jobs: int = 1) -> Path:
    """Make every figure in ``names`` under ``out/figures/<name>/`` and write ``out/report.md`` and ``.html``.

    ``jobs`` figures are made at once: with 1, one after another in this
    process; with more, in that many worker processes forked from this one,
    each on one thread (torch, numba, BLAS): first the independent pieces
    of the figures to compute (``Figure.prepare``, the training runs), then
    the figures (``ORDER``).  Every figure's data are a pure function of its
    scale, whatever process or thread count computes them (up to BLAS's
    rounding: numpy's products on one thread rather than several), and
    figures that share results (the training runs of F8-F10, see
    ``Context.shared``) share them through the stores, so the data, figures
    and report are those of ``jobs=1``.  The report lists the figures in the order of
    ``names``; its seconds per figure are each figure's own (compute, plot,
    report), not the wall time of the whole job.  Workers are forked, so use
    ``jobs > 1`` from a process that has not yet run numba's or torch's
    threads (the command line does that); a Dask ``scheduler`` needs
    ``jobs = 1`` (a worker process cannot start a local cluster).
    """
    jobs = int(jobs)
    if jobs < 1:
        raise ValueError(f"argument 'jobs' must be an integer >= 1, got {jobs}")
    if jobs > 1 and scheduler is not None:
        raise ValueError("argument 'jobs' must be 1 with a Dask scheduler (the sweeps then run on Dask)")
    made = {}
    if jobs > 1 and len(names) > 1:
        import multiprocessing

        work = _plan(names, scale, out, recompute)
        with multiprocessing.get_context("fork").Pool(min(jobs, len(work)), initializer=_single_threaded) as pool:
            for kind, label, data, seconds, cpu in pool.imap_unordered(_work, work):
                # CPU seconds beside the wall time: on a machine shared with other work they differ
                print(f"[{label}] {'made' if kind == 'figure' else 'done'} in {seconds:.1f} s (worker, {cpu:.1f} s "
                      f"CPU)", flush=True)
                if kind == "figure":
                    made[label] = data, seconds
    rows, timings = [], {}
    for name in names:
        data, seconds = made.get(name) or make_figure(name, scale, out, recompute, scheduler, progress)
        start = time.perf_counter()
        for row in FIGURES[name].report(data):
            rows.append({"figure": name, **row, "link": f"figures/{name}/{name}.png"})
        timings[name] = seconds + time.perf_counter() - start
        print(f"[{name}] done in {timings[name]:.1f} s", flush=True)
    fresh = _quotes.collect(rows)
    _quotes.write_quotes(out / "quotes.json", fresh, scale, list(names), figure_fingerprint(), mc.git_commit())
    rows = [{k: v for k, v in row.items() if k != "quotes"} for row in rows]
    if scale == _quotes.SCALE:
        checked = _quotes.documents_row(REPOSITORY, fresh, list(names))
        if checked is not None:
            rows.append(checked)
    return write_report(rows, scale, out, timings)


def update_documents(out: Path, names: list[str], scale: str) -> list[str]:
    """Copy ``out/quotes.json`` to the documents' snapshot and rewrite their marked quotes (``--update-docs``).

    Refused unless the run was at the documents' scale (quick), made every figure and by this code: the
    documents then quote one complete run of the code that is checked in beside them.
    """
    if scale != _quotes.SCALE:
        raise ValueError(f"--update-docs needs a --{_quotes.SCALE} run (the documents quote that scale), got --{scale}")
    missing = [name for name in FIGURES if name not in names]
    if missing:
        raise ValueError(f"--update-docs needs every figure in the run; missing {', '.join(missing)}")
    record = _quotes.read_quotes(out / "quotes.json")
    if record["code"] != figure_fingerprint():
        raise ValueError(f"{out / 'quotes.json'} was made by other code ({record['code']}): run the figures again")
    texts = {key: entry["text"] for key, entry in record["quotes"].items()}
    texts.update(_quotes.code_quotes())
    changed = _quotes.update_documents(REPOSITORY, texts)
    mc.atomic_write(REPOSITORY / _quotes.SNAPSHOT, (out / "quotes.json").read_text())
    return changed
