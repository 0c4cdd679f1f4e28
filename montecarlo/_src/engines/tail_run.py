"""Rare-tail runs in a results store: every finished level saved, resumable, repeats on Dask.

A :class:`TailSpec` is one configuration of :func:`rare_tail` (network, data,
statistic, threshold, splitting settings).  :func:`run_tail` runs its
independent repeats into a :class:`ResultsStore`:

    points/repeat-<r>.parquet   the repeat's SplittingState after its last finished level (overwritten level
                                by level; arrays stored as raw little-endian bytes with dtype and shape, never
                                pickled, and validated on read)
    points/repeat-<r>.claim     present while a writer computes the repeat (the store's claims): another writer
                                on the same folder leaves the repeat to it and waits for it
    points/result.parquet       the tail curve with intervals once every repeat has reached the threshold; its
                                metadata holds the estimate, intervals, CoV, levels, evaluations, seed, timing,
                                and per repeat the categories' shares per level, the cross moves and the flags
                                (``splitting_state``'s module docstring)

The store's guarantees apply (atomic, checksummed points written by this
code only).  A killed run resumes each repeat from its last saved level, and
because level ``k`` of repeat ``r`` draws from ``SeedSequence(seed,
spawn_key=(r, k))`` it ends with the numbers of an uninterrupted run.  On a
Dask scheduler each repeat is its own task that saves its levels into the
store (a cluster needs a file system shared with the client); the result
equals the serial one.
"""

from __future__ import annotations

import importlib
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import validation
from ..provenance import versions
from .sampling import METHODS
from .splitting_state import MIN_BRANCH_SHARE, SplittingState
from .settings import DIRECTIONS, GRID_DEFAULTS, TAIL_SETTINGS  # noqa: F401 (DIRECTIONS: the table, read here too)
from .subset_simulation import SETTING_CHECKS
from .tail_result import RareTail, summarise_states
from ..trials.base import Trial
from .trial_tail import trial_sampler
from .store import ResultsStore, StoreCorrupt
from .sweep import POLL_S, _network

_ARRAY_DTYPES = {"float64": np.float64, "int64": np.int64}


@dataclass(frozen=True)
class TailSpec:
    """One rare-tail configuration: the network and data axes of a sweep point (or a ``trial`` reference,
    ``"package.module:name"``) plus ``TAIL_SETTINGS``."""

    point: dict
    settings: dict

    def __post_init__(self):
        if not isinstance(self.point, dict) or not isinstance(self.settings, dict):
            raise TypeError("TailSpec(point, settings) takes two dicts; build one with TailSpec.from_mapping({...})")
        check_settings(self.settings)  # a TailSpec built directly meets the same rules as one from a mapping

    @classmethod
    def from_mapping(cls, mapping: dict) -> "TailSpec":
        """Build and validate from ``{axis: value, setting: value}`` (a TOML file or flags); refuses unknown keys.

        ``trial = "package.module:name"`` names any Trial (``trials.base.load_trial``) in place of the
        network axes, which are then refused, as are ``method`` and ``dtype`` (the trial carries them).
        The splitting settings meet the rules ``rare_tail`` applies (:func:`check_settings`): ``population``
        an integer >= 10, ``repeats`` and ``grid_points`` integers >= 2, ``max_levels`` None or an integer >= 1,
        ``level_probability`` in (0, 0.5], ``target_acceptance`` in (0, 1), a finite ``threshold``.
        """
        if not isinstance(mapping, dict):
            raise TypeError(f"argument 'mapping' must be a dict of tail keys, got {type(mapping).__name__}")
        unknown = sorted(set(map(str, mapping)) - set(GRID_DEFAULTS) - set(TAIL_SETTINGS) - {"trial"})
        if unknown:
            raise ValueError(f"unknown tail key(s) {', '.join(map(repr, unknown))}; network axes are "
                             f"{', '.join(GRID_DEFAULTS)} (or 'trial'), and settings are {', '.join(TAIL_SETTINGS)}")
        if mapping.get("trial") is not None:
            given = [key for key in (*GRID_DEFAULTS, "method", "dtype") if mapping.get(key) is not None]
            if given:
                raise ValueError(f"'trial' carries the network, its data and how it is computed: leave out "
                                 f"{', '.join(map(repr, given))}")
            point = {"trial": mapping["trial"]}
            load_trial(point["trial"])  # refuses a bad reference now
        else:
            point = {}
            for axis, default in GRID_DEFAULTS.items():
                value = mapping.get(axis, default)
                if isinstance(value, (list, tuple)):
                    if len(value) != 1:
                        raise ValueError(f"argument '{axis}': a tail run takes one value, got {list(value)}; "
                                         f"run one tail per configuration")
                    value = value[0]
                point[axis] = value
        settings = {key: mapping.get(key, default) for key, default in TAIL_SETTINGS.items()}
        if settings["threshold"] is None:
            raise ValueError("a tail run needs 'threshold' (the level whose tail probability is wanted)")
        settings["method"] = validation.choice("method", settings["method"], METHODS)
        settings["dtype"] = validation.dtype("dtype", settings["dtype"]).name
        if not isinstance(settings["statistic"], str):
            raise ValueError(f"argument 'statistic' must be a statistic's name, got {settings['statistic']!r}")
        if not isinstance(settings["strict"], bool):
            raise ValueError(f"argument 'strict' must be true or false, got {settings['strict']!r}")
        settings.update(check_settings(settings))
        spec = cls(point, settings)
        spec.sampler(None)  # validate everything (network, statistic, splitting settings) before computing
        return spec

    def to_dict(self) -> dict:
        """The configuration that identifies the run (and its store).

        ``strict`` is left out: it decides only whether a collapsed population stops the run, not a number, so
        a store made without it can be reread with it.
        """
        point = self.point
        if "trial" in point:  # the store is identified by what the trial is, not only by where it was found
            point = {**point, "config": load_trial(point["trial"]).config()}
        return {"kind": "tail", "point": point,
                "settings": {key: value for key, value in self.settings.items() if key != "strict"}}

    def sampler(self, backend: str | None = "auto"):
        """``(SubsetSimulation, config)`` of this configuration (see ``trial_tail.trial_sampler``).

        ``backend`` None: the cheapest way to build it (numpy for the paper's network), to validate a spec.
        """
        s = self.settings
        splitting = dict(statistic=s["statistic"], threshold=s["threshold"], direction=s["direction"], seed=s["seed"],
                         population=s["population"], level_probability=s["level_probability"],
                         target_acceptance=s["target_acceptance"], max_levels=s["max_levels"],
                         strict=s.get("strict", False))
        if "trial" in self.point:
            if backend not in (None, "auto"):
                raise ValueError(f"argument 'backend' = {backend!r}: a tail run of a 'trial' computes as its trial "
                                 f"says; leave 'backend' at 'auto'")
            return trial_sampler(load_trial(self.point["trial"]), **splitting)
        return trial_sampler(_network(self.point), self.point["n_samples"], labels=self.point["labels"],
                             loss=self.point["loss"], method=s["method"], backend=backend or "numpy", dtype=s["dtype"],
                             **splitting)


def check_settings(settings: dict) -> dict:
    """The numeric settings of ``settings`` (and ``direction``) normalised by the engine's own rules
    (``subset_simulation.SETTING_CHECKS``: one rule per setting for ``rare_tail`` and a tail run alike).

    Raises ``ValueError`` naming the setting and what it accepts (a value of the wrong type included, as a
    configuration file gives it).
    """
    checked = {}
    for key, check in SETTING_CHECKS.items():
        if key not in settings:
            continue
        try:
            value = check(settings[key])
        except TypeError as error:
            raise ValueError(str(error)) from None
        checked[key] = list(value) if isinstance(value, tuple) else value  # a seed sequence, as JSON keeps it
    return checked


def state_frame(state: SplittingState) -> pd.DataFrame:
    """A SplittingState as a table of raw arrays: ``name, dtype, shape, data`` (bytes; nothing pickled)."""
    rows = []
    for name, array in state.to_arrays().items():
        kind = "int64" if np.issubdtype(array.dtype, np.integer) else "float64"
        array = np.array(array, dtype=f"<{kind[0]}8", order="C")  # keeps 0-d arrays 0-d
        rows.append({"name": name, "dtype": kind, "shape": ",".join(map(str, array.shape)), "data": array.tobytes()})
    return pd.DataFrame(rows)


def state_from_frame(frame: pd.DataFrame, where: str) -> SplittingState:
    """Inverse of :func:`state_frame`, validating every field (``where`` names the file in errors)."""
    arrays = {}
    try:
        for name, kind, shape, data in zip(frame["name"], frame["dtype"], frame["shape"], frame["data"]):
            if kind not in _ARRAY_DTYPES:
                raise ValueError(f"array {name!r} has dtype {kind!r}")
            dims = tuple(int(n) for n in shape.split(",") if n != "")
            if any(n < 0 for n in dims) or 8 * math.prod(dims) != len(data):
                raise ValueError(f"array {name!r} of shape {dims} does not match its {len(data)} bytes")
            arrays[name] = np.frombuffer(data, dtype=f"<{kind[0]}8").reshape(dims).astype(_ARRAY_DTYPES[kind])
        return SplittingState.from_arrays(arrays)
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise StoreCorrupt(f"{where}: not a saved subset-simulation state ({error})") from None


def _saver(store: ResultsStore, key: str, spec_dict: dict):
    def save(state: SplittingState) -> None:
        store.write_point(key, state_frame(state), {"config": spec_dict, "repeat": state.repeat,
                                                   "level": state.level, "done": state.done,
                                                   "evaluations": state.evaluations})
    return save


def _saved_state(store: ResultsStore, key: str):
    if not store.is_done(key):
        return None
    frame, _ = store.read_point(key)
    return state_from_frame(frame, str(store.points_dir / f"{key}.parquet"))


def _claimed_repeat(store: ResultsStore, sampler, spec_dict: dict, repeat: int):
    """Repeat ``repeat`` run (or resumed, or read when finished) under its claim; ``None`` if a live writer holds it.

    The claim ``points/repeat-<r>.claim`` is held while the repeat computes and saves its levels (the store's
    claims, ``store_claims``), so that another writer on the same folder leaves the repeat to this one and waits
    for it; a claim of a dead writer is taken over and the repeat resumes from its last saved level.
    """
    key = f"repeat-{repeat}"
    with store.claim(key) as mine:
        if not mine:
            return None
        return sampler.run(repeat, _saved_state(store, key), on_level=_saver(store, key, spec_dict))


def run_repeat(spec_dict: dict, repeat: int, out, backend: str = "auto", numba_threads: int | None = None,
               strict: bool = False):
    """Run (or resume) one repeat of a tail run into the store at ``out``, saving every level; return its state.

    This is the Dask task of :func:`run_tail` (``numba_threads=1`` on workers; ``strict`` as in the spec, which
    ``to_dict`` leaves out).  The repeat is claimed first (:func:`run_tail`'s docstring): ``None`` when another
    live writer holds it.
    """
    if numba_threads is not None:
        import numba

        numba.set_num_threads(numba_threads)
    spec = TailSpec(spec_dict["point"], {**spec_dict["settings"], "strict": strict})
    store = ResultsStore(out, spec.to_dict())
    sampler, _ = spec.sampler(backend)
    return _claimed_repeat(store, sampler, spec.to_dict(), repeat)


def run_tail(spec: TailSpec, out, scheduler=None, backend: str = "auto", progress: bool = True) -> RareTail:
    """Run every repeat of ``spec`` into the store at ``out`` (resuming saved levels); store and return the result.

    ``scheduler`` as in :func:`run_sweep`: ``None`` (in this process), ``"local"``, an address, or a Client.
    With the setting ``strict`` a level whose population collapsed into one category raises
    ``PopulationCollapsed`` (the levels before it stay saved); otherwise it is in ``RareTail.warnings``.

    Each repeat is claimed before it is computed, as a sweep's points are (``ResultsStore.claim``): a repeat
    another live writer holds is left to it, and this call waits until that writer has finished it (or died:
    then its claim is taken over and the repeat resumes from its last saved level).  Two identical tail runs
    started together on one folder compute each repeat once between them and both return the complete result.
    """
    if not isinstance(spec, TailSpec):
        raise TypeError(f"argument 'spec' must be a TailSpec (TailSpec.from_mapping({{...}})), got "
                        f"{type(spec).__name__}")
    out = validation.output_folder("out", out)
    scheduler = validation.scheduler("scheduler", scheduler)
    progress = validation.flag("progress", progress)
    sampler, config = spec.sampler(backend)  # refuses a bad backend before the store exists
    repeats = spec.settings["repeats"]
    keys = [f"repeat-{r}" for r in range(repeats)]
    store = ResultsStore(out, spec.to_dict(), points={**{k: {"repeat": r} for r, k in enumerate(keys)},
                                                      "result": {}}, versions=versions())
    start = time.perf_counter()
    with tqdm(total=repeats, desc="tail repeats", disable=not progress, leave=False) as bar:
        if scheduler is None:
            def attempt(todo):
                found = {}
                for r in todo:
                    found[r] = _claimed_repeat(store, sampler, spec.to_dict(), r)
                    bar.update(found[r] is not None)
                return found

            states = _all_repeats(store, repeats, attempt, bar)
        else:
            states = _repeats_on_dask(scheduler, spec, store, out, backend, bar)
    result = summarise_states(sampler, states, time.perf_counter() - start, config, spec.settings["grid_points"])
    store.write_point("result", result.tail, {"config": spec.to_dict(), **_summary(result)})
    return result


def _all_repeats(store: ResultsStore, repeats: int, attempt, bar) -> list:
    """The finished states of repeats ``0 .. repeats - 1``: ``attempt(todo)`` returns ``{r: state or None}`` (None:
    another live writer holds ``r``); the held ones are tried again once their claims are gone."""
    states, todo, last_message = {}, list(range(repeats)), 0.0
    while todo:
        found = attempt(todo)
        states.update({r: state for r, state in found.items() if state is not None})
        todo = [r for r in todo if states.get(r) is None]
        # wait while every held repeat is still claimed by a live writer (it releases when the repeat is done)
        while todo and all(f"repeat-{r}" in store.in_flight() for r in todo):
            if not bar.disable and time.monotonic() - last_message > 30:
                who = sorted({f"pid {h['pid']} on {h['host']}" for k, h in store.in_flight().items()
                              if k in {f"repeat-{r}" for r in todo}})
                bar.write(f"waiting for {len(todo)} repeat(s) other writers are computing ({', '.join(who)})")
                last_message = time.monotonic()
            time.sleep(POLL_S)
    return [states[r] for r in range(repeats)]


def _summary(result: RareTail) -> dict:
    return {"estimate": result.estimate, "interval": list(result.interval),
            "coefficient_of_variation": result.coefficient_of_variation, "cov_interval": list(result.cov_interval),
            "empirical_cov": result.empirical_cov, "estimates": result.estimates.tolist(),
            "evaluations": result.evaluations, "levels": [list(map(float, lv)) for lv in result.levels],
            "acceptance": [list(map(float, a)) for a in result.acceptance], "seed": result.seed,
            "seconds": result.seconds, "rare_tail_config": result.config,
            "branch_shares": None if result.branch_shares is None
            else [shares.tolist() for shares in result.branch_shares],
            "cross_moves": None if result.cross_moves is None else [moves.tolist() for moves in result.cross_moves],
            "collapsed_levels": [levels.tolist() for levels in result.collapsed_levels],
            "uncrossed_levels": [levels.tolist() for levels in result.uncrossed_levels],
            "warnings": list(result.warnings)}


def _repeats_on_dask(scheduler, spec: TailSpec, store: ResultsStore, out, backend: str, bar) -> list:
    """Every repeat as a Dask task (``run_repeat``: it claims its repeat on the worker); held ones are waited for."""
    from .sweep import _dask_client

    with _dask_client(scheduler) as client:
        def attempt(todo):
            futures = [client.submit(run_repeat, spec.to_dict(), r, os.fspath(out), backend, numba_threads=1,
                                     strict=spec.settings["strict"], key=f"gc-tail-{r}-{id(spec)}-{time.time_ns()}",
                                     pure=False, retries=2)
                       for r in todo]
            found = dict(zip(todo, client.gather(futures)))
            bar.update(sum(state is not None for state in found.values()))
            return found

        return _all_repeats(store, spec.settings["repeats"], attempt, bar)


def stored_tail(store: ResultsStore) -> tuple[pd.DataFrame, dict] | None:
    """The stored tail curve and its summary, or ``None`` while the run is unfinished."""
    if not store.is_done("result"):
        return None
    return store.read_point("result")


def format_tail(frame: pd.DataFrame, summary: dict, rows: int = 12) -> str:
    """The estimate with its interval, the categories per repeat and their flags, then the tail curve.

    The interval is the t-interval of the mean over the repeats; Au-Beck's approximate CoV is shown as
    what it is.  When categories were tracked, one line per repeat gives the shares at level 0 and at the
    last level and the cross moves; then every warning (``RareTail.warnings``), or a line saying there
    are none.  The tail curve follows at ``rows`` thresholds spread over its decades.
    """
    settings = summary["config"]["settings"]
    sign = ">" if settings["direction"] == "upper" else "<"
    repeats = len(summary["estimates"])
    lines = [f"Pr[{settings['statistic']} {sign} {settings['threshold']:g}] = {summary['estimate']:.4g}  "
             f"95% CI [{summary['interval'][0]:.4g}, {summary['interval'][1]:.4g}] (t-interval of the mean of "
             f"{repeats} repeats)  Au-Beck approximate CoV {summary['coefficient_of_variation']:.3f} (ignores the "
             f"correlation between levels; not the interval)  ({summary['evaluations']} evaluations, "
             f"{summary['seconds']:.1f} s)"]
    lines += _category_lines(summary)
    lines.append("")
    shown = frame.iloc[np.unique(np.linspace(0, len(frame) - 1, rows).round().astype(int))]
    table = pd.DataFrame({"s": shown["s"].map(lambda v: f"{v:.4g}"),
                          f"Pr[S {sign} s]": shown["probability"].map(lambda v: f"{v:.3e}"),
                          "95% CI": [f"[{lo:.3e}, {hi:.3e}]" for lo, hi in zip(shown["lower"], shown["upper"])]})
    return "\n".join(lines) + table.to_string(index=False)


def _category_lines(summary: dict) -> list[str]:
    """Per repeat: category shares at level 0 -> last level and cross moves; then the warnings."""
    shares, moves = summary.get("branch_shares"), summary.get("cross_moves")
    if shares is None:
        return ["categories: not tracked (no summary for this statistic)"]

    def row(values):
        return "/".join(f"{v:.2f}" for v in values)

    names = (summary.get("rare_tail_config") or {}).get("category_names")
    codes = " / ".join(names) if names else "codes 0 / 1 / ..."
    lines = [f"category shares ({codes}) at level 0 -> the last level, and accepted moves that changed category; "
             f"flagged: a level holding one category while level 0 held >= 2 with shares >= {MIN_BRANCH_SHARE:.0%}"]
    for r, (table, crossed) in enumerate(zip(shares, moves)):
        lines.append(f"  repeat {r}: {row(table[0])} -> {row(table[-1])} after {len(table) - 1} levels, "
                     f"{sum(crossed)} cross move{'' if sum(crossed) == 1 else 's'}")
    warnings = summary.get("warnings") or []
    lines += [f"warning: {w}" for w in warnings] or ["no collapsed population, no level without cross moves"]
    return lines


def load_trial(reference: str) -> Trial:
    """The Trial named by ``"package.module:name"``: the module is imported (its code runs, as with
    ``python -m``) and ``name`` is a Trial or a callable of no arguments returning one.

    For the command line (``python -m montecarlo tail --trial ...``) and its Dask workers, which rebuild the
    trial from the same reference (the module must be importable there too).
    """
    if not isinstance(reference, str) or reference.count(":") != 1 or not all(reference.split(":")):
        raise ValueError(f"argument 'trial' must read 'package.module:name' (a Trial, or a function returning one), "
                         f"got {reference!r}")
    module_name, attribute = reference.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"argument 'trial' = {reference!r}: cannot import {module_name!r} ({error})") from None
    if not hasattr(module, attribute):
        raise ValueError(f"argument 'trial' = {reference!r}: module {module_name!r} has no {attribute!r}")
    trial = getattr(module, attribute)
    if not isinstance(trial, Trial) and callable(trial):
        trial = trial()
    if not isinstance(trial, Trial):
        raise ValueError(f"argument 'trial' = {reference!r} must name a montecarlo.Trial or a function returning "
                         f"one, got {type(trial).__name__}")
    return trial
