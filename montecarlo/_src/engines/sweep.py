"""Sweeps: a grid of configurations x trials, run point by point into a results store, serially or on Dask.

Every point's trials are a pure function of the sweep seed and the point's
configuration (its seed is ``[seed, hash(point)]``, and within the point
trial ``t`` uses seed block ``t // 8``), so a sweep gives identical numbers
whatever runs it: in-process, on a local Dask cluster or on a remote one,
in any order, interrupted and resumed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import validation
from ..draw.data import LABELS
from ..draw.elementwise import LOSSES, activation_record
from ..gram import backend_names
from ..draw.network import MLP
from ..trials.mlp import as_trial
from ..provenance import provenance, versions
from .sampling import METHODS, refuse_confusion_too_large, sample_confusion
from .store import ResultsStore
from .settings import GRID_DEFAULTS
from .store_format import config_hash


def current_fingerprint() -> str:
    """The code fingerprint of this process (looked up at call time, so that tests can substitute it)."""
    from .. import provenance as _provenance

    return _provenance.code_fingerprint()

SETTINGS = ("trials", "seed", "dtype", "method")
NET_KEYS = ("width", "depth", "activation", "init", "kappa", "output_activation", "bias", "gain", "gamma")


def parse_grid(mapping: dict, defaults: dict, settings, what: str = "sweep") -> dict:
    """The grid axes of ``mapping`` as tuples (defaults for missing axes); unknown keys are refused."""
    unknown = sorted(set(mapping) - set(defaults) - set(settings))
    if unknown:
        raise ValueError(
            f"unknown {what} key(s) {', '.join(map(repr, unknown))}; grid axes are "
            f"{', '.join(defaults)} and settings are {', '.join(settings)}"
        )
    grid = {}
    for axis, default in defaults.items():
        values = mapping.get(axis, default)
        values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
        if not values:
            raise ValueError(f"{what} axis '{axis}' has no values")
        grid[axis] = values
    return grid


def expand_grid(grid: dict, check, what: str = "sweep") -> list[dict]:
    """Every point of the cartesian product of ``grid``; ``check(point)`` raises on an impossible one."""
    points = []
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values))
        try:
            check(point)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{what} point {point} is impossible: {error}") from None
        points.append(point)
    return points


@dataclass(frozen=True)
class SweepSpec:
    """A grid over ``GRID_DEFAULTS``' axes, ``trials`` per point, one ``seed``.

    ``grid`` maps an axis to a tuple of values (axes not given keep their
    default).  Build one with :meth:`from_mapping` (for example from a TOML
    file), which refuses unknown keys and impossible values before anything
    is computed.
    """

    grid: dict
    trials: int
    seed: int = 0
    dtype: str = "float64"
    method: str = "auto"
    _points: list = field(default=None, repr=False, compare=False)

    @classmethod
    def from_mapping(cls, mapping: dict) -> "SweepSpec":
        """Build and validate a spec from ``{axis: value or list, trials: ..., seed: ..., dtype: ...}``."""
        if not isinstance(mapping, Mapping):
            raise TypeError(f"argument 'mapping' must be a mapping (a dict) of sweep keys -- grid axes "
                            f"{', '.join(GRID_DEFAULTS)} and settings {', '.join(SETTINGS)} -- to values, got "
                            f"{type(mapping).__name__}")
        grid = parse_grid(mapping, GRID_DEFAULTS, SETTINGS)
        if "trials" not in mapping:
            raise ValueError("a sweep needs 'trials' (trials per grid point)")
        spec = cls(
            grid=grid,
            trials=validation.integer("trials", mapping["trials"], minimum=1),
            seed=validation.integer("seed", mapping.get("seed", 0), minimum=0),
            dtype=validation.dtype("dtype", mapping.get("dtype", "float64")).name,
            method=validation.choice("method", mapping.get("method", "auto"), METHODS),
        )
        spec.points()  # validate every point now, before any computing
        return spec

    def to_dict(self) -> dict:
        """The configuration that identifies the sweep (and its store)."""
        return {"grid": {k: list(v) for k, v in self.grid.items()}, "trials": self.trials, "seed": self.seed,
                "dtype": self.dtype, "method": self.method}

    def points(self) -> dict[str, dict]:
        """``{key: point configuration}`` for the cartesian product of the grid, validated."""
        if self._points is not None:
            return self._points

        def check(point):
            _network(point)
            validation.integer("n_samples", point["n_samples"], minimum=2)
            validation.choice("loss", point["loss"], LOSSES)
            validation.choice("labels", point["labels"], LABELS)

        out = {point_key(point, self): point for point in expand_grid(self.grid, check)}
        object.__setattr__(self, "_points", out)
        return out


def point_key(point: dict, spec: SweepSpec) -> str:
    """A point's name in the store: hash of its configuration and the sweep settings.

    With an activation added by ``register_activation`` the configuration
    includes its functions' digest (``activation_source``), so that another
    function under the same name is another point; a built-in activation adds
    nothing, and its keys stay those of stores made before.
    """
    return config_hash({"point": point_record(point), "trials": spec.trials, "seed": spec.seed,
                        "dtype": spec.dtype, "method": spec.method})[:20]


def point_record(point: dict) -> dict:
    """A point's configuration as stored: the point, and a registered activation's digest (``activation_record``)."""
    return {**point, **activation_record(point["activation"])}


#: Copies of a point's statistics held at most: joined from the batches (2), then as the frame and the table written.
POINT_COPIES = 3


def refuse_sweep_too_large(spec: SweepSpec, backend: str = "auto", spell=None) -> None:
    """Refuse, before anything is computed or created, a sweep one of whose points cannot fit in memory.

    Each point is one ``sample_confusion`` run of ``spec.trials`` trials
    (``sampling.refuse_confusion_too_large``: one batch, and the statistics
    kept for every trial, ``POINT_COPIES`` times); the message names the point
    and the settings to lower (``trials`` for a count whose results alone
    cannot fit, else ``width``, ``depth`` or ``n_samples``: a sweep chooses its
    batch size itself), each as ``spell(key)`` gives it (default ``'key'``;
    the command line passes its flags, ``--n-samples``).  On Dask each point
    runs on a worker: this machine's memory stands for the workers'.
    """
    spell = spell or (lambda key: f"'{key}'")
    varying = [axis for axis, values in spec.grid.items() if len(values) > 1]
    for point in spec.points().values():
        trial = as_trial(_network(point), point["n_samples"], labels=point["labels"], loss=point["loss"],
                         method=spec.method, backend=backend, dtype=spec.dtype)
        where = ", ".join(f"{axis}={point[axis]!r}" for axis in varying)
        size = (f"an MLP of {spell('width')} {point['width']}, {spell('depth')} {point['depth']} and {spell('d')} "
                f"{point['d']} on {spell('n_samples')} = {point['n_samples']} examples")
        refuse_confusion_too_large(trial, spec.trials, copies=POINT_COPIES,
                                   where=f"sweep point ({where}): " if where else "sweep: ",
                                   trials_name=spell("trials"), size=size, batch_size_name=None,
                                   smaller=f"use a smaller {spell('width')} or {spell('depth')}, or fewer "
                                           f"examples ({spell('n_samples')})")


def point_seed(point: dict, seed: int) -> tuple[int, int]:
    """SeedSequence entropy of a point: the sweep seed and 60 bits of the point's configuration hash."""
    return (seed, int(config_hash(point)[:15], 16))


def _network(point: dict) -> MLP:
    return MLP(input_dim=point["d"], **{k: point[k] for k in NET_KEYS})


def compute_point(point: dict, trials: int, seed: int, dtype: str, method: str = "auto", backend: str = "auto",
                  numba_threads: int | None = None) -> tuple[pd.DataFrame, dict]:
    """Sample one grid point: its per-trial frame and the metadata stored with it.

    ``numba_threads=1`` is what Dask workers use, so that each worker process
    runs on one core.  The metadata carries the provenance of the process that
    computed the point (``provenance.provenance()``: code fingerprint, commit,
    versions) and its host and pid, since on Dask that is a worker, not the
    process that stores it.
    """
    if numba_threads is not None:
        import numba

        numba.set_num_threads(numba_threads)
    sample = sample_confusion(_network(point), point["n_samples"], trials, labels=point["labels"],
                              loss=point["loss"], seed=point_seed(point, seed), backend=backend, dtype=dtype,
                              method=method)
    metadata = {"config": point_record(point), "config_hash": config_hash(point), "seed": list(sample.seed), **sample.meta,
                "provenance": provenance(), "computed_by": {"host": socket.gethostname(), "pid": os.getpid()}}
    return sample.to_frame(), metadata


def _local_cluster():
    """A local Dask cluster: one single-threaded worker process per core."""
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster), cluster


#: Seconds between looks at points other writers are computing (``run_sweep`` waits for them).
POLL_S = 0.5


def run_sweep(spec: SweepSpec, out, scheduler=None, backend: str = "auto", progress: bool = True) -> ResultsStore:
    """Run every point of ``spec`` not yet in the store at ``out``; return the store.

    ``scheduler``: ``None`` runs the points one after another in this process
    (numba parallelises each point's trials over the cores); ``"local"`` starts
    a local Dask cluster (one single-threaded worker per core); a string such
    as ``"tcp://host:8786"`` connects to a running Dask scheduler; a
    ``distributed.Client`` is used as it is.  Finished points are written as
    they complete; an interruption loses only the points in flight.

    A point counts as finished only if it verifies and the current code made
    it (``ResultsStore.done``): stale points (other code) and corrupt ones
    are recomputed, overwriting them, and reported on stderr by key.  Each
    point is claimed before it is computed (serially: just before; on Dask:
    at submission); points another live writer has claimed are left to it,
    and at the end this call waits for them, so two identical sweeps started
    together compute each point once between them and both return the full
    store.  A Dask worker running other code (another code fingerprint) is an
    error: its numbers would be stored as stale and recomputed forever.
    """
    if not isinstance(spec, SweepSpec):
        raise TypeError(f"argument 'spec' must be a SweepSpec (SweepSpec.from_mapping({{...}})), got "
                        f"{type(spec).__name__}")
    # everything that can be refused is refused before the store folder exists, so a corrected call can use it
    out = validation.output_folder("out", out)
    scheduler = validation.scheduler("scheduler", scheduler)
    validation.choice("backend", backend, backend_names())  # the table now: a backend registered later counts
    progress = validation.flag("progress", progress)
    refuse_sweep_too_large(spec, backend)
    points = spec.points()
    store = ResultsStore(out, spec.to_dict(), points=points, versions=versions())
    pending = _report_recomputed(store, points)
    bar = tqdm(total=len(points), initial=len(points) - len(pending), desc="sweep points", disable=not progress)
    args = dict(trials=spec.trials, seed=spec.seed, dtype=spec.dtype, method=spec.method, backend=backend)
    try:
        if scheduler is None:
            run_batch = lambda keys: _run_serially(  # noqa: E731
                store, keys, lambda key: store.write_point(key, *compute_point(points[key], **args)), bar)
            _drive(store, pending, run_batch, bar, progress)
        else:
            with _dask_client(scheduler) as client:
                submit = lambda key: client.submit(compute_point, points[key], numba_threads=1,  # noqa: E731
                                                   key=f"gc-point-{key}", pure=False, retries=2, **args)
                _drive(store, pending, lambda keys: _run_on_dask(client, store, keys, submit, bar), bar, progress)
    finally:
        store.release_all()
        bar.close()
    return store


def _report_recomputed(store: ResultsStore, points: dict) -> list:
    """The keys of ``points`` to compute; says on stderr which stored ones are recomputed and why, by key."""
    status = {key: value for key, value in store.status().items() if key in points}
    stale = {key: info for key, (state, info) in status.items() if state == "stale"}
    corrupt = {key: info for key, (state, info) in status.items() if state == "corrupt"}
    if stale:
        made_by = sorted({f"code {v['code']} (commit {v['commit'] or 'unknown'})" for v in stale.values()})
        print(f"sweep {store.root}: recomputing {len(stale)} point(s) made by other code than the current "
              f"{current_fingerprint()}: {'; '.join(made_by)}: {', '.join(sorted(stale))}", file=sys.stderr)
    for key, reason in sorted(corrupt.items()):
        print(f"sweep {store.root}: recomputing corrupt point {key}: {reason}", file=sys.stderr)
    return [key for key in points if status.get(key, ("missing",))[0] != "done"]


def _drive(store: ResultsStore, pending: list, run_batch, bar, progress: bool) -> None:
    """Compute ``pending`` with ``run_batch`` (which returns the keys other writers hold) until all are done."""
    todo = list(pending)
    last_message = 0.0
    while todo:
        waiting = run_batch(todo)
        # a point another writer held may be done now, or free again (that writer failed): look again
        todo = [key for key in waiting if not store.is_done(key)]
        if todo and set(todo) == set(waiting):
            if progress and time.monotonic() - last_message > 30:
                who = sorted({f"pid {h['pid']} on {h['host']}" for k, h in store.in_flight().items() if k in todo})
                bar.write(f"waiting for {len(todo)} point(s) other writers are computing ({', '.join(who)})")
                last_message = time.monotonic()
            time.sleep(POLL_S)
        bar.n = bar.total - len(todo)  # points the other writers finished count as done here too
        bar.refresh()


def _check_code(key: str, metadata: dict) -> None:
    code = metadata.get("provenance", {}).get("code")
    if code != current_fingerprint():
        where = metadata.get("computed_by", {})
        raise RuntimeError(
            f"point {key} was computed by code {code} (on {where.get('host')}, pid {where.get('pid')}), not the "
            f"current {current_fingerprint()}: install the same code on every Dask worker; not stored")


def _run_serially(store: ResultsStore, keys: list, work, bar) -> list:
    """Claim each key in turn and run ``work(key)`` (compute and store it); return the keys another live writer holds.

    Shared by the sweeps and the training grids.
    """
    held = []
    for key in keys:
        with store.claim(key) as mine:
            if not mine:
                held.append(key)
                continue
            if not store.is_done(key):  # else another writer finished it between our look and our claim
                work(key)
        bar.update()
    return held


@contextlib.contextmanager
def _dask_client(scheduler):
    from dask.distributed import Client

    cluster = None
    if isinstance(scheduler, Client):
        client = scheduler
    elif scheduler == "local":
        client, cluster = _local_cluster()
    else:
        client = Client(scheduler)
    try:
        yield client
    finally:
        if client is not scheduler:
            client.close()
        if cluster is not None:
            cluster.close()


def _run_on_dask(client, store: ResultsStore, keys: list, submit, bar, write=None) -> list:
    """Claim (in this process) and submit every free point, write each as it completes; return the held keys.

    ``submit(key)`` returns the point's Dask future (its task returns ``(frame, metadata)``);
    ``write(key, frame, metadata)`` stores it (default ``store.write_point``).  Shared by the
    sweeps and the training grids.
    """
    from dask.distributed import as_completed

    write = write or store.write_point
    held, futures = [], {}
    try:
        for key in keys:
            if not store.try_claim(key):
                held.append(key)
                continue
            if store.is_done(key):
                store.release(key)
                bar.update()
                continue
            futures[submit(key)] = key
        for future in as_completed(futures):
            key = futures[future]
            frame, metadata = future.result()
            _check_code(key, metadata)
            write(key, frame, metadata)
            store.release(key)
            bar.update()
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        for key in futures.values():
            store.release(key)
    return held


def tail_table(store: ResultsStore, etas=None, taus=(0.25, 0.5), confidence: float = 0.95, *,
               conditional_cosine: bool = False) -> pd.DataFrame:
    """``Pr[eta* > eta]`` and ``Pr[min cosine < -tau]`` with Clopper-Pearson intervals, for every stored point.

    One row per (point, event, threshold), with the point's configuration as
    columns.  Default ``etas``: the pooled 50% and 90% quantiles of eta*.
    Only the points of ``store.done()`` enter (verified, made by the current
    code), so the table never mixes numbers of old and new code.

    What each row is conditional on is in its columns: ``trials`` (the
    point's trials), ``undefined`` (trials whose statistic is undefined:
    never for eta*; for the minimum cosine, trials with at most one non-zero
    gradient), ``undefined_pairs`` and ``pairs`` (pairs with an undefined
    cosine, left out of the minimum, of all pairs; NaN on eta* rows, where
    every pair counts: a zero gradient has inner product 0) and
    ``conditional``.  ``conditional_cosine`` chooses the cosine tail
    (``cosine_tail``): ``False`` (default) counts a trial with an undefined
    minimum cosine as not confused, as Definition 2.1's inner products say;
    ``True`` leaves it out (``n = trials - undefined``).
    """
    from ..statistics.tails import confusion_tail, cosine_tail, undefined_cosines

    conditional_cosine = validation.flag("conditional_cosine", conditional_cosine)
    stored = [(key, *store.read_point(key)) for key in sorted(store.done())]
    if not stored:
        return pd.DataFrame()
    if etas is None:
        pooled = np.concatenate([frame["eta_star"].to_numpy() for _, frame, _ in stored])
        etas = np.unique(np.quantile(pooled, [0.5, 0.9]).round(4)) + 0.0  # + 0.0: never a threshold of -0
    tables = []
    for key, frame, metadata in stored:
        config = metadata["config"]
        undefined = undefined_cosines(frame, config["n_samples"], confidence)
        eta_rows = confusion_tail(frame["eta_star"], etas, confidence).assign(
            conditional=False, undefined_pairs=np.nan, pairs=np.nan)
        cos_rows = cosine_tail(frame["min_cosine"], taus, confidence, conditional=conditional_cosine).assign(
            undefined_pairs=undefined.undefined_pairs, pairs=undefined.pairs)
        for event, table in (("eta* > threshold", eta_rows), ("min cos < -threshold", cos_rows)):
            table = table.rename(columns={"eta": "threshold", "tau": "threshold"})
            tables.append(table.assign(event=event, point=key, trials=len(frame), **config))
    return pd.concat(tables, ignore_index=True)


def undefined_cosine_note(table: pd.DataFrame) -> str | None:
    """One line saying how often a tail table's minimum cosines are undefined, or ``None`` when too rarely to say.

    Pooled over the table's points: the trials with an undefined minimum
    cosine and the pairs with an undefined cosine, with the largest share
    at one point, and which tail the ``min cos`` rows show.  ``None`` when
    both pooled shares are below ``NOTICEABLE_UNDEFINED`` (1%) at every point.
    """
    from ..statistics.tails import NOTICEABLE_UNDEFINED

    if table.empty:
        return None
    rows = table[table["event"] == "min cos < -threshold"].drop_duplicates("point")
    share = rows["undefined"] / rows["trials"]
    pair_share = rows["undefined_pairs"] / rows["pairs"]
    if max(share.max(), pair_share.max()) < NOTICEABLE_UNDEFINED:
        return None
    conditional = bool(rows["conditional"].iloc[0])
    rule = ("leave out the trials without a defined cosine (--conditional-cosine: conditional on one); without the "
            "flag such a trial counts as not confused" if conditional else
            "count a trial without a defined cosine as not confused (a zero gradient has inner product 0 with every "
            "gradient, Definition 2.1); --conditional-cosine leaves such trials out")
    undefined, trials = int(rows["undefined"].sum()), int(rows["trials"].sum())
    pairs_undefined, pairs = int(rows["undefined_pairs"].sum()), int(rows["pairs"].sum())
    return (f"warning: the minimum cosine is undefined in {undefined}/{trials} trials ({undefined / trials:.1%}, "
            f"up to {share.max():.1%} at one point) and {pairs_undefined}/{pairs} pairs "
            f"({pairs_undefined / pairs:.1%}) "
            f"have an undefined cosine: some per-example gradients are exactly zero (with relu at the output, "
            f"whenever an example's output pre-activation is negative).  The min cos rows take each minimum over the "
            f"defined pairs and {rule}")
