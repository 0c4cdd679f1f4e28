"""Sweeps: a grid of configurations x trials, run point by point into a results store, serially or on Dask.

Every point's trials are a pure function of the sweep seed and the point's
configuration (its seed is ``[seed, hash(point)]``, and within the point
trial ``t`` uses seed block ``t // 8``), so a sweep gives identical numbers
whatever runs it: in-process, on a local Dask cluster or on a remote one,
in any order, interrupted and resumed.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import validation
from .data import LABELS
from .elementwise import LOSSES
from .network import MLP
from .sampling import METHODS, sample_confusion, versions
from .store import ResultsStore, config_hash

#: The grid axes and their defaults (a sweep varies any of them).
GRID_DEFAULTS = {
    "width": 64, "depth": 2, "d": 32, "n_samples": 16, "activation": "relu", "init": "gaussian",
    "kappa": 1.0, "loss": "square", "labels": "linear", "output_activation": True, "bias": False,
    "gain": 1.0, "gamma": 1.0,
}
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
    """A point's name in the store: hash of its configuration and the sweep settings."""
    return config_hash({"point": point, "trials": spec.trials, "seed": spec.seed, "dtype": spec.dtype,
                        "method": spec.method})[:20]


def point_seed(point: dict, seed: int) -> tuple[int, int]:
    """SeedSequence entropy of a point: the sweep seed and 60 bits of the point's configuration hash."""
    return (seed, int(config_hash(point)[:15], 16))


def _network(point: dict) -> MLP:
    return MLP(input_dim=point["d"], **{k: point[k] for k in NET_KEYS})


def compute_point(point: dict, trials: int, seed: int, dtype: str, method: str = "auto", backend: str = "auto",
                  numba_threads: int | None = None) -> tuple[pd.DataFrame, dict]:
    """Sample one grid point: its per-trial frame and the metadata stored with it.

    ``numba_threads=1`` is what Dask workers use, so that each worker process
    runs on one core.
    """
    if numba_threads is not None:
        import numba

        numba.set_num_threads(numba_threads)
    sample = sample_confusion(_network(point), point["n_samples"], trials, labels=point["labels"],
                              loss=point["loss"], seed=point_seed(point, seed), backend=backend, dtype=dtype,
                              method=method)
    metadata = {"config": point, "config_hash": config_hash(point), "seed": list(sample.seed), **sample.meta}
    return sample.to_frame(), metadata


def _local_cluster():
    """A local Dask cluster: one single-threaded worker process per core."""
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster), cluster


def run_sweep(spec: SweepSpec, out, scheduler=None, backend: str = "auto", progress: bool = True) -> ResultsStore:
    """Run every point of ``spec`` not yet in the store at ``out``; return the store.

    ``scheduler``: ``None`` runs the points one after another in this process
    (numba parallelises each point's trials over the cores); ``"local"`` starts
    a local Dask cluster (one single-threaded worker per core); a string such
    as ``"tcp://host:8786"`` connects to a running Dask scheduler; a
    ``distributed.Client`` is used as it is.  Finished points are written as
    they complete; an interruption loses only the points in flight.
    """
    points = spec.points()
    store = ResultsStore(out, spec.to_dict(), points=points, versions=versions())
    pending = [key for key in points if key not in store.done()]
    bar = tqdm(total=len(points), initial=len(points) - len(pending), desc="sweep points", disable=not progress)
    args = dict(trials=spec.trials, seed=spec.seed, dtype=spec.dtype, method=spec.method, backend=backend)
    try:
        if scheduler is None:
            for key in pending:
                store.write_point(key, *compute_point(points[key], **args))
                bar.update()
        else:
            _run_on_dask(scheduler, store, points, pending, args, bar)
    finally:
        bar.close()
    return store


def _run_on_dask(scheduler, store, points, pending, args, bar) -> None:
    from dask.distributed import Client, as_completed

    cluster = None
    if isinstance(scheduler, Client):
        client = scheduler
    elif scheduler == "local":
        client, cluster = _local_cluster()
    else:
        client = Client(scheduler)
    futures = {}
    try:
        for key in pending:
            future = client.submit(compute_point, points[key], numba_threads=1, key=f"gc-point-{key}", pure=False,
                                   retries=2, **args)
            futures[future] = key
        for future in as_completed(futures):
            store.write_point(futures[future], *future.result())
            bar.update()
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        if client is not scheduler:
            client.close()
        if cluster is not None:
            cluster.close()


def tail_table(store: ResultsStore, etas=None, taus=(0.25, 0.5), confidence: float = 0.95) -> pd.DataFrame:
    """``Pr[eta* > eta]`` and ``Pr[min cosine < -tau]`` with Clopper-Pearson intervals, for every stored point.

    One row per (point, event, threshold), with the point's configuration as
    columns.  Default ``etas``: the pooled 50% and 90% quantiles of eta*.
    """
    from .tails import confusion_tail, cosine_tail

    stored = [(key, *store.read_point(key)) for key in sorted(store.done())]
    if not stored:
        return pd.DataFrame()
    if etas is None:
        pooled = np.concatenate([frame["eta_star"].to_numpy() for _, frame, _ in stored])
        etas = np.unique(np.quantile(pooled, [0.5, 0.9]).round(4))
    tables = []
    for key, frame, metadata in stored:
        for event, table in (("eta* > threshold", confusion_tail(frame["eta_star"], etas, confidence)),
                             ("min cos < -threshold", cosine_tail(frame["min_cosine"], taus, confidence))):
            table = table.rename(columns={"eta": "threshold", "tau": "threshold"})
            tables.append(table.assign(event=event, point=key, **metadata["config"]))
    return pd.concat(tables, ignore_index=True)
