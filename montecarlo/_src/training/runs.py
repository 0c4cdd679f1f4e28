"""Grids of training runs: their configuration, and training them into a results store, here or on Dask.

:class:`TrainingGrid` holds the grid axes (``TRAIN_DEFAULTS``) and the
settings the runs share (``SETTING_DEFAULTS``), validated;
:func:`run_training` trains every run of a grid not yet in the store, one
after another in this process or as Dask tasks (:func:`train_one`, one run
each), claiming each run in the store and resuming each from its checkpoint;
:func:`diverged_runs` lists the stored runs that diverged.  One run -- the
loop, its checkpoints and the divergence rule -- is ``loop.train_run``.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import validation
from ..engines.store import ResultsStore
from ..engines.store_format import config_hash
from ..engines.sweep import _dask_client, _drive, _report_recomputed, _run_on_dask, _run_serially, expand_grid, parse_grid
from ..provenance import provenance, versions
from .datasets import DATASETS, Dataset, load_dataset  # noqa: F401  (DATASETS: the command line's tests read it here)
# DIVERGENCE_FACTOR is the loop's rule, which diverged_runs reports; the command line reads it here beside them
from .loop import DIVERGENCE_FACTOR, check_run, check_settings, remove_checkpoint, train_run  # noqa: F401
from .settings import SETTING_DEFAULTS, TRACKS, TRAIN_DEFAULTS, TRAIN_SETTINGS  # noqa: F401  (TRACKS: likewise)



@dataclass(frozen=True)
class TrainingGrid:
    """A grid of training runs (axes of ``TRAIN_DEFAULTS``) sharing the settings of ``SETTING_DEFAULTS``."""

    grid: dict
    settings: dict

    @classmethod
    def from_mapping(cls, mapping: dict) -> "TrainingGrid":
        """Build and validate from ``{axis: value or list, setting: value}`` (a TOML file's table, say).

        Parameters
        ----------
        mapping : dict
            Grid axes (``TRAIN_DEFAULTS``; a value or a list of values) and
            settings (``SETTING_DEFAULTS``; one value each).

        Returns
        -------
        TrainingGrid

        Raises
        ------
        ValueError
            An unknown key, or a value of the wrong type or out of range; the
            message names the key and says what is accepted.  Type errors are
            reported as ValueError too, as for grid points, so that every bad
            configuration gets the same treatment by the command line.
        """
        try:
            return cls._from_mapping(mapping)
        except TypeError as error:
            raise ValueError(str(error)) from None

    @classmethod
    def _from_mapping(cls, mapping: dict) -> "TrainingGrid":
        if not isinstance(mapping, dict):
            raise TypeError(f"argument 'mapping' must be a mapping (a dict) of training keys to values, got "
                            f"{type(mapping).__name__}")
        grid = parse_grid(mapping, TRAIN_DEFAULTS, TRAIN_SETTINGS, what="training")
        settings = check_settings({key: mapping.get(key, default) for key, default in SETTING_DEFAULTS.items()})
        spec = cls(grid, settings)
        spec.runs()
        return spec

    def runs(self) -> dict[str, dict]:
        """``{key: run}`` for every point of the grid, validated."""

        return {config_hash({"run": run, "settings": self.settings})[:20]: run
                for run in expand_grid(self.grid, check_run, "training")}

    def to_dict(self) -> dict:
        """The configuration that identifies the grid (and its store)."""
        return {"kind": "training", "grid": {k: list(v) for k, v in self.grid.items()}, "settings": self.settings}

    def pool_dict(self) -> dict:
        """The configuration of a pool of runs (``run_training(..., pool=True)``): the settings, not the grid.

        Every grid with these settings trains into the same pool, each run
        under its key (a hash of the run and the settings), so runs that
        several grids share are trained once.
        """
        return {"kind": "training pool", "settings": self.settings}


#: The dataset this process loaded last, for :func:`train_one` (``{"key": (name, data_dir), "data": Dataset}``).
_LOADED: dict = {}


def _dataset(name: str, data_dir) -> Dataset:
    """The dataset of a run, loaded once per process (a Dask worker trains several runs on the same data)."""
    key = (name, None if data_dir is None else str(data_dir))
    if _LOADED.get("key") != key:
        _LOADED.clear()  # one dataset at a time: CIFAR-10 in float32 is 600 MB
        _LOADED.update(key=key, data=load_dataset(name, data_dir, seed=0))
    return _LOADED["data"]


def train_one(run: dict, settings: dict, checkpoint, *, threads: int | None = None, progress: bool = False,
              dataset: Dataset | None = None) -> tuple[pd.DataFrame, dict]:
    """Train one run of a grid, resuming from ``checkpoint``: its frame and the metadata stored with it.

    This is the task that :func:`run_training` runs in this process or submits
    to Dask; it saves the run's state to ``checkpoint`` after every epoch, so a
    retried task (its worker died) continues from the last finished epoch.

    Parameters
    ----------
    run : dict
        The grid axes (``TRAIN_DEFAULTS``).
    settings : dict
        The rest (``SETTING_DEFAULTS``).
    checkpoint : path-like
        The run's checkpoint file (read if present, written after every epoch).
    threads : int, optional
        Set torch's and numba's thread counts to this first; Dask workers use 1,
        so that each single-threaded worker process runs on one core.
    progress : bool
        Show the run's progress bar.
    dataset : Dataset, optional
        The data of ``settings["data"]`` already loaded; loaded here (once per
        process) when not given, from ``settings["data_dir"]``, which on a
        cluster must then be readable by every worker.

    Returns
    -------
    frame : DataFrame
        As :func:`train_run` returns it.
    metadata : dict
        ``config`` (axes and settings), ``seconds`` (this call's wall time),
        ``resumed_from_epoch`` (the epoch of the checkpoint it continued from;
        0: from the start), ``versions``, ``provenance`` (of the process that
        trained: code fingerprint, commit) and ``computed_by`` (its host and pid).

    Raises
    ------
    ValueError
        ``threads`` is not an integer >= 1, or the checkpoint is not one
        :func:`train_run` wrote (the message names it).
    """
    if threads is not None:
        threads = validation.integer("threads", threads, minimum=1)
        import numba

        torch.set_num_threads(threads)
        numba.set_num_threads(threads)
    start = time.perf_counter()
    data = _dataset(settings["data"], settings["data_dir"]) if dataset is None else dataset
    resumed = []
    frame = train_run(run, settings, Path(checkpoint), progress, dataset=data, on_start=resumed.append)
    metadata = {"config": {**run, **settings}, "seconds": time.perf_counter() - start, "resumed_from_epoch": resumed[0],
                "versions": versions(), "provenance": provenance(),
                "computed_by": {"host": socket.gethostname(), "pid": os.getpid()}}
    return frame, metadata


def run_training(spec: TrainingGrid, out, scheduler=None, progress: bool = True, pool: bool = False) -> ResultsStore:
    """Train every run of ``spec`` not yet finished in the store at ``out`` (checkpoints under ``out/checkpoints``).

    Each run is trained by :func:`train_one`, which saves its state to
    ``out/checkpoints/<key>.pt`` after every epoch; the finished run is
    written to the store by this process, and its checkpoint then removed.
    An interrupted call loses at most the epoch in flight of each run: the
    same call again resumes every unfinished run from its checkpoint, with
    the numbers of an uninterrupted run.

    Parameters
    ----------
    spec : TrainingGrid
        The runs and their settings.
    out : path-like
        The store's folder (created if new; a store of another configuration is refused).
    scheduler : None, "local", str or distributed.Client
        ``None`` trains the runs one after another in this process, each on
        one torch thread (``TORCH_THREADS``; to use more cores, train several
        runs at once on Dask).  ``"local"`` starts a local Dask
        cluster, one single-threaded worker process per core; an address such
        as ``"tcp://host:8786"`` connects to a running Dask scheduler; a
        ``distributed.Client`` is used as it is.  On Dask each run is one task
        (key ``gc-train-<key>``, retried twice), and a task whose worker dies
        is rerun by Dask and resumes from the run's checkpoint.  The workers
        write the checkpoints into ``out/checkpoints`` themselves, so on a
        cluster of several machines ``out`` must be on a file system that
        every worker and this process share (as must ``data_dir``, which the
        workers read; digits is bundled); without one, a rerun task starts
        its run from the beginning where the checkpoint is not visible, and
        ends with the same numbers, later.  Every run is a pure function of
        its configuration, trained on one torch thread wherever it runs, so
        the stored frames are those of the serial call (``tracking_seconds``,
        a wall time, aside).
    progress : bool
        Show progress bars (the per-run bars only when training here).
    pool : bool
        Train into a pool of runs: the store at ``out`` is that of the
        settings (``spec.pool_dict()``), not of the grid, and holds the runs of
        every grid with these settings trained there, each under its own key
        (``spec.runs()``: a hash of the run's axes and the settings), so
        grids that share runs (one figure's runs among another's) train them
        once, and two calls at once share the work through the claims.  A
        stored run is the same whichever grid trained it: it is a pure
        function of its configuration.  Read the grid's runs by the keys of
        ``spec.runs()``; the manifest's planned points are those of the grid
        that created the pool.

    Returns
    -------
    ResultsStore
        The store, one point per run (with ``pool=True``, possibly runs of
        other grids too).  Diverged runs are stored too (their last row has
        ``diverged = True``); :func:`diverged_runs` lists them.

    Raises
    ------
    FileNotFoundError, ValueError
        The dataset's files are missing or not valid, or ``scheduler`` is not
        one of the above.  Both are checked before the store is created, so a
        failed start leaves no folder behind and the corrected command can use
        the same ``out``.
    RuntimeError
        A Dask worker runs other code than this process (another code
        fingerprint); that run is not stored.

    Notes
    -----
    Each run is claimed in the store (``points/<key>.claim``) before it is
    trained, here for the serial call and at submission on Dask, so two
    calls on the same ``out`` train each run once between them: runs
    another live writer holds are left to it, and this call waits for them
    before returning the full store.  Should two tasks ever train the same run
    at once (a task Dask has given up on that still runs), they write the
    same checkpoints, each atomically.
    """
    if not isinstance(spec, TrainingGrid):
        raise TypeError(f"argument 'spec' must be a TrainingGrid (TrainingGrid.from_mapping({{...}})), got "
                        f"{type(spec).__name__}")
    runs = spec.runs()
    scheduler = validation.scheduler("scheduler", scheduler)
    progress = validation.flag("progress", progress)
    # everything that can fail on the user's input happens before the store's folder is created
    dataset = load_dataset(spec.settings["data"], spec.settings["data_dir"], seed=0)
    store = ResultsStore(out, spec.pool_dict() if validation.flag("pool", pool) else spec.to_dict(), points=runs,
                         versions=versions())
    checkpoints = Path(out) / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    pending = _report_recomputed(store, runs)
    for key in set(runs) - set(pending):  # stored, but this process stopped before it removed the checkpoint
        remove_checkpoint(checkpoints / f"{key}.pt")
    bar = tqdm(total=len(runs), initial=len(runs) - len(pending), desc="training runs", disable=not progress)
    try:
        if scheduler is None:
            def run_batch(keys):
                return _train_serially(store, runs, keys, spec.settings, checkpoints, dataset, progress, bar)

            _drive(store, pending, run_batch, bar, progress)
        else:
            with _dask_client(scheduler) as client:
                _drive(store, pending, lambda keys: _train_on_dask(client, store, runs, keys, spec.settings,
                                                                   checkpoints, bar), bar, progress)
    finally:
        store.release_all()
        bar.close()
    return store


def _store_run(store: ResultsStore, key: str, frame: pd.DataFrame, metadata: dict, checkpoints: Path) -> None:
    store.write_point(key, frame, metadata)
    remove_checkpoint(checkpoints / f"{key}.pt")


def _train_serially(store, runs, keys, settings, checkpoints, dataset, progress, bar) -> list:
    """Claim, train and store each run in turn (``sweep._run_serially``); return the keys other writers hold."""
    def work(key):
        frame, metadata = train_one(runs[key], settings, checkpoints / f"{key}.pt", progress=progress,
                                    dataset=dataset)
        _store_run(store, key, frame, metadata, checkpoints)

    return _run_serially(store, keys, work, bar)


def _train_on_dask(client, store, runs, keys, settings, checkpoints, bar) -> list:
    """Claim (here) and submit every free run, store each as it completes; return the keys other writers hold.

    ``sweep._run_on_dask`` with :func:`train_one` as the task and the checkpoint removed once the run is stored.
    """
    def submit(key):
        # the path as a string: the workers open it themselves, on the shared file system
        return client.submit(train_one, runs[key], settings, str(checkpoints / f"{key}.pt"), threads=1,
                             key=f"gc-train-{key}", pure=False, retries=2)

    return _run_on_dask(client, store, keys, submit, bar,
                        write=lambda key, frame, metadata: _store_run(store, key, frame, metadata, checkpoints))


def diverged_runs(store: ResultsStore) -> list[tuple[str, dict, int]]:
    """The stored runs that diverged (the loop's rule: a minibatch loss above ``DIVERGENCE_FACTOR`` x the first).

    Parameters
    ----------
    store : ResultsStore
        A store written by :func:`run_training`.

    Returns
    -------
    list of (key, config, epoch)
        Sorted by key: the run's key in the store, its configuration (grid
        axes and settings, as stored in the point's metadata) and the epoch at
        which it was stopped.
    """
    found = []
    for key in sorted(store.done()):
        frame, metadata = store.read_point(key)
        if "diverged" not in frame or frame.empty:
            continue
        flagged = frame["diverged"].fillna(False).astype(bool)
        if flagged.any():
            found.append((key, metadata.get("config", {}), int(frame["epoch"][flagged].iloc[0])))
    return found
