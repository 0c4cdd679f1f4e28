"""The paper's section 7 protocol: plain SGD on real data, with gradient confusion tracked two ways.

Training is plain SGD (no momentum, no weight decay) on the mean cross-entropy
of minibatches, with a constant learning rate and optional step decay (times
``lr_decay`` at each epoch in ``lr_milestones``, as the paper's 80/160 schedule).
At the tracked epochs (``track="log"`` or ``"linear"``, ``track_points`` of
them, always including 0 and the last) a run records:

* training loss and accuracy (full training set) and test accuracy, in eval mode;
* per-example confusion on a fixed probe set: the statistics of the exact
  per-example gradient Gram (``module_gram``; batch norm with the probe
  batch's statistics held fixed, as in training);
* a run that diverges stops there, with ``diverged = True`` in its last row
  (see "Divergence" below);
* the paper's minibatch-pair protocol: ``pairs`` pairs of minibatches of
  ``pair_batch`` examples drawn at random, one gradient of the mean loss per
  minibatch (train mode, running statistics left untouched), and the cosine of
  each pair: their minimum and all of them (for a density plot).

Divergence: before each SGD step the minibatch's mean training loss is
checked, and the run is stopped, without taking that step, when the loss is
non-finite or exceeds ``DIVERGENCE_FACTOR`` (10) times the initial training
loss, the full-training-set loss recorded at epoch 0.  The model as it stood
is then evaluated and recorded at that epoch with ``diverged = True`` (its
numbers may be huge or NaN: the flag, not the numbers, says what happened),
and nothing more is trained.  A step size too large for the model takes the
loss far above that threshold within a few steps (an MLP of one hidden
layer of 16 on digits at ``lr = 1000``: from 2.9 to 2.5e5 after one step,
finite, so a rule that caught only non-finite losses let such runs train on),
while a run that trains keeps its minibatch losses near or below the initial
one.  :func:`diverged_runs` lists
the diverged runs of a store.

Checkpoints hold only tensors and plain containers (the rows are lists of
dicts of numbers and strings), so they are read with
``torch.load(weights_only=True)``, which runs no code from the file, and
their content is checked before it is used; a file that fails either check is
refused with an error naming it.

Precision: float32 by default.  Convolutions in float64 run about 8 times
slower on the CPU (CNN-16-2 on digits: 2 epochs with tracking took 71 s in
float64 against 9 s in float32), and the tracked quantities are empirical
curves, not compared with a bound; a test holds float32 against float64 on a
short run.  ``dtype="float64"`` is available.

One thread: every run trains and tracks on ``TORCH_THREADS`` (1) torch
thread, whatever the caller's setting (restored afterwards).  Torch's
intra-op threads split the reductions of the convolutions, which changes the
float32 rounding, and SGD amplifies it: CNN-10-1 on digits ended 2 epochs
with minimum pair cosines 0.017 apart on 1 and on 2 threads.  Fixing the
count keeps a run a pure function of its configuration on a given machine,
whether it is trained here, on a Dask worker or in a figure's worker
process; grids use the cores by training several runs at once (Dask, or the
main job's worker processes), which is also faster than threads within a
run (two single-threaded runs at once take about 1.5 times less wall time
than the two one after another on two threads).

Every random choice comes from ``SeedSequence(seed, spawn_key=(purpose, ...))``
(initialisation, probe set, epoch order, minibatch pairs), so a run is a pure
function of its configuration, and a run resumed from a checkpoint continues
exactly as if it had not stopped.  The data split is fixed (seed 0) so that
runs differ only by their own randomness.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import validation
from .datasets import DATASETS, Dataset, load_dataset
from ..statistics.gram_statistics import gram_statistics
from .models import build_model, wrn_blocks
from ..gram.module_gram import module_gram
from ..provenance import code_fingerprint, provenance
from ..engines.sampling import versions
from ..engines.store import ResultsStore, config_hash
from ..engines.sweep import _dask_client, _drive, _report_recomputed, _run_on_dask, _run_serially, expand_grid, parse_grid

TRACKS = ("log", "linear")
#: Torch threads a run trains on (see "One thread" in the module docstring).
TORCH_THREADS = 1
PURPOSE = {"init": 0, "probe": 1, "order": 2, "pairs": 3}
LOSS = nn.CrossEntropyLoss(reduction="none")
#: A run is diverged when a minibatch loss exceeds this many times its epoch-0 training loss (or is non-finite).
DIVERGENCE_FACTOR = 10.0
CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "step", "rows")

#: Grid axes of a training sweep and their defaults (CLI flags and TOML keys).
TRAIN_DEFAULTS = {
    "model": "cnn", "depth": 16, "width": 2, "skip": False, "batchnorm": False, "base": 8, "lr": 0.05, "seed": 0,
}
TRAIN_SETTINGS = ("data", "data_dir", "epochs", "batch_size", "lr_milestones", "lr_decay", "track", "track_points",
                  "probe_size", "pairs", "pair_batch", "dtype")
SETTING_DEFAULTS = {"data": "digits", "data_dir": None, "epochs": 30, "batch_size": 128, "lr_milestones": (),
                    "lr_decay": 0.1, "track": "log", "track_points": 8, "probe_size": 64, "pairs": 100,
                    "pair_batch": 128, "dtype": "float32"}


def tracked_epochs(epochs: int, track: str, points: int) -> list[int]:
    """Epochs at which a run records: 0, the last, and ``points`` in all spread linearly or logarithmically."""
    if track == "linear":
        chosen = np.linspace(0, epochs, points)
    else:
        chosen = np.concatenate([[0], np.geomspace(1, epochs, max(points - 1, 1))])
    return sorted(set(int(round(e)) for e in chosen) | {0, epochs})


@contextlib.contextmanager
def _running_statistics_untouched(model: nn.Module):
    """Forward passes in train mode inside the block leave every batch norm's running statistics as they were."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
             for m in norms if m.running_mean is not None]
    try:
        yield
    finally:
        for m, mean, var, count in saved:
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(count)


def _rng(seed: int, *key) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def minibatch_cosines(model, x, y, pairs: int, batch: int, rng) -> np.ndarray:
    """The paper's protocol: cosines of ``pairs`` pairs of minibatch gradients (mean loss, train mode)."""
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    gradients = []
    with _running_statistics_untouched(model):
        for _ in range(2 * pairs):
            index = torch.from_numpy(rng.choice(len(x), size=min(batch, len(x)), replace=False))
            loss = LOSS(model(x[index]), y[index]).mean()
            gradients.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
    g = torch.stack(gradients).reshape(pairs, 2, -1)
    cos = torch.nn.functional.cosine_similarity(g[:, 0], g[:, 1], dim=-1, eps=1e-300)
    return cos.detach().cpu().numpy()


def _evaluate(model, x, y, chunk: int = 512) -> tuple[float, float]:
    model.eval()
    losses, correct = [], 0
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            out = model(x[start:start + chunk])
            losses.append(LOSS(out, y[start:start + chunk]))
            correct += int((out.argmax(1) == y[start:start + chunk]).sum())
    return float(torch.cat(losses).mean()), correct / len(x)


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def is_diverging(loss: float, initial_loss: float) -> bool:
    """The divergence rule: ``loss`` is non-finite or above ``DIVERGENCE_FACTOR`` times ``initial_loss``.

    Parameters
    ----------
    loss : float
        A minibatch's mean training loss.
    initial_loss : float
        The run's full-training-set loss at epoch 0.

    Returns
    -------
    bool
    """
    return not np.isfinite(loss) or loss > DIVERGENCE_FACTOR * initial_loss


def _refuse(path: Path, why: str) -> ValueError:
    return ValueError(f"checkpoint {path} {why}; it was not used (delete it to restart this run from the beginning)")


def _load_checkpoint(path: Path, epochs: int) -> dict:
    """A checkpoint written by :func:`train_run`, read without running code from it and checked."""
    try:
        # weights_only=True: the unpickler admits tensors and plain containers only, so the file runs no code
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:
        text = str(error)
        # torch's message for a refused global is long and advises weights_only=False: keep only the refusal itself
        refused = next((line.strip() for line in text.splitlines() if "GLOBAL" in line), text.splitlines()[0] if
                       text else type(error).__name__)
        raise _refuse(path, f"cannot be read as tensors and plain containers, which is all train_run writes "
                            f"({refused})") from None
    if not isinstance(state, dict):
        raise _refuse(path, f"holds a {type(state).__name__}, not the dict train_run writes")
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        raise _refuse(path, f"lacks the key(s) {', '.join(missing)} (a checkpoint has {', '.join(CHECKPOINT_KEYS)})")
    epoch, step, rows = state["epoch"], state["step"], state["rows"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 1 <= epoch <= epochs:
        raise _refuse(path, f"has epoch {epoch!r}; a checkpoint of a {epochs}-epoch run has an integer 1..{epochs}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise _refuse(path, f"has step {step!r}; it must be an integer >= 0")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise _refuse(path, "has no rows, or rows that are not a list of dicts")
    row_epochs = [r.get("epoch") for r in rows]
    if row_epochs[0] != 0 or not all(isinstance(e, int) and 0 <= e <= epoch for e in row_epochs) \
            or not isinstance(rows[0].get("train_loss"), float):
        raise _refuse(path, f"has rows for epochs {row_epochs}; they must start with epoch 0 (with its train_loss) "
                            f"and not pass the checkpoint's epoch {epoch}")
    if not isinstance(state["model"], dict) or not isinstance(state["optimizer"], dict):
        raise _refuse(path, "has a model or optimizer state that is not a state dict")
    return state


@dataclass(frozen=True)
class _Tensors:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def train_run(run: dict, settings: dict, checkpoint: Path | None = None, progress: bool = True,
              stop_after: int | None = None, *, dataset: Dataset | None = None) -> pd.DataFrame:
    """Train one configuration and return its tracked rows (one per tracked epoch).

    Parameters
    ----------
    run : dict
        The grid axes (``TRAIN_DEFAULTS``).
    settings : dict
        The rest (``SETTING_DEFAULTS``).
    checkpoint : Path, optional
        The state is saved there after every epoch, and a run that finds its
        checkpoint continues from it.  It is read with
        ``torch.load(weights_only=True)`` and checked.
    progress : bool
        Show a progress bar.
    stop_after : int, optional
        Return after that many epochs, as an interruption would (for tests).
    dataset : Dataset, optional
        The data of ``settings["data"]`` already loaded (split seed 0), so
        that a grid loads it once; loaded here when not given.

    Returns
    -------
    DataFrame
        One row per tracked epoch.  A diverged run (a minibatch loss
        non-finite or above ``DIVERGENCE_FACTOR`` = 10 times the epoch-0
        full-training-set loss, checked before each step) stops at the epoch
        where it diverged, and its last row, recorded there, has
        ``diverged = True``.

    Raises
    ------
    ValueError
        The checkpoint is not one train_run wrote (the message names it).
    """
    return _train(run, settings, checkpoint, progress, stop_after, dataset)[0]


#: Epoch-0 rows of the runs this process trained last (:func:`_initial_key` -> row), at most ``INITIAL_ROWS_KEPT``.
_INITIAL_ROWS: dict = {}
INITIAL_ROWS_KEPT = 16
#: The settings an epoch-0 row depends on (the data, the probe, the pairs, the precision).
INITIAL_SETTINGS = ("data", "data_dir", "probe_size", "pairs", "pair_batch", "dtype")


def _initial_key(run: dict, settings: dict) -> str:
    """What a run's epoch-0 row depends on: the model, the seed and ``INITIAL_SETTINGS``, not the step size.

    The row is recorded before the first step, from the initialisation
    (seeded by the run's seed), the probe set and the epoch-0 minibatch
    pairs (seeded likewise), and recording it changes nothing in the model
    (running statistics and training flag are restored, gradients are
    cleared before every step), on one torch thread: so runs that differ
    only in ``lr`` (or the epochs and schedule) have the same epoch-0 row,
    bitwise, but for its ``lr`` column, and a grid's step sizes reuse it
    instead of recording it again (a record costs about 3.5 epochs of
    training at the quick settings).
    """
    return config_hash({"run": {k: v for k, v in run.items() if k != "lr"},
                        "settings": {k: settings[k] for k in INITIAL_SETTINGS}})


@contextlib.contextmanager
def _torch_threads(count: int):
    """Torch on ``count`` intra-op threads inside the block, the caller's count restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(run: dict, settings: dict, checkpoint, progress: bool, stop_after, dataset) -> tuple[pd.DataFrame, int]:
    """:func:`train_run`, also returning the epoch of the checkpoint it resumed from (0: it started afresh)."""
    with _torch_threads(TORCH_THREADS):
        return _train_here(run, settings, checkpoint, progress, stop_after, dataset)


def _train_here(run: dict, settings: dict, checkpoint, progress: bool, stop_after, dataset) -> tuple[pd.DataFrame, int]:
    dtype = getattr(torch, validation.dtype("dtype", settings["dtype"]).name)
    data = load_dataset(settings["data"], settings["data_dir"], seed=0) if dataset is None else dataset
    tensors = _Tensors(torch.from_numpy(data.train_x).to(dtype), torch.from_numpy(data.train_y),
                       torch.from_numpy(data.test_x).to(dtype), torch.from_numpy(data.test_y))
    seed = run["seed"]
    model = build_model(run["model"], run["depth"], run["width"], data.shape, data.num_classes, skip=run["skip"],
                        batchnorm=run["batchnorm"], base=run["base"],
                        seed=int(np.random.SeedSequence(seed, spawn_key=(PURPOSE["init"],)).generate_state(1)[0]),
                        dtype=dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=run["lr"], momentum=0.0, weight_decay=0.0)
    probe = torch.from_numpy(_rng(seed, PURPOSE["probe"]).choice(len(tensors.train_x),
                                                                 size=min(settings["probe_size"], len(tensors.train_x)),
                                                                 replace=False))
    epochs = settings["epochs"]
    tracked = tracked_epochs(epochs, settings["track"], settings["track_points"])
    rows, first_epoch, step = [], 1, 0
    checkpoint = None if checkpoint is None else Path(checkpoint)
    state = _load_checkpoint(checkpoint, epochs) if checkpoint is not None and checkpoint.exists() else None
    if state is not None and state.get("code") != code_fingerprint():
        # a checkpoint of other code: continuing from it would mix that code's epochs with this code's
        print(f"checkpoint {checkpoint} was written by other code (fingerprint {state.get('code')!r}, this code "
              f"{code_fingerprint()!r}): restarting the run from epoch 0", file=sys.stderr)
        state = None
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError, TypeError) as error:
            raise _refuse(checkpoint, f"does not fit this run's model or optimizer ({str(error).splitlines()[0]})") \
                from None
        rows, first_epoch, step = state["rows"], state["epoch"] + 1, state["step"]

    def record(epoch):
        start = time.perf_counter()
        train_loss, train_accuracy = _evaluate(model, tensors.train_x, tensors.train_y)
        _, test_accuracy = _evaluate(model, tensors.test_x, tensors.test_y)
        model.train()
        gram = module_gram(model, LOSS, tensors.train_x[probe], tensors.train_y[probe], batchnorm="batch")
        probe_stats = {f"probe_{k}": float(v) for k, v in gram_statistics(gram.G).items()}
        cosines = minibatch_cosines(model, tensors.train_x, tensors.train_y, settings["pairs"],
                                    settings["pair_batch"], _rng(seed, PURPOSE["pairs"], epoch))
        rows.append({"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"], "diverged": diverged,
                     "train_loss": train_loss, "train_accuracy": train_accuracy, "test_accuracy": test_accuracy,
                     **probe_stats, "minibatch_min_cosine": float(cosines.min()),
                     "minibatch_mean_cosine": float(cosines.mean()), "minibatch_cosines": cosines.tolist(),
                     "tracking_seconds": time.perf_counter() - start})

    diverged = bool(rows and rows[-1].get("diverged", False))
    if first_epoch == 1 and not rows:
        initial = _initial_key(run, settings)
        if initial in _INITIAL_ROWS:  # a run of the same model and seed (another step size) recorded it
            start = time.perf_counter()
            rows.append({**_INITIAL_ROWS[initial], "lr": optimizer.param_groups[0]["lr"],
                         "minibatch_cosines": list(_INITIAL_ROWS[initial]["minibatch_cosines"])})
            rows[0]["tracking_seconds"] = time.perf_counter() - start
        else:
            record(0)
            _INITIAL_ROWS[initial] = dict(rows[0])
            while len(_INITIAL_ROWS) > INITIAL_ROWS_KEPT:
                _INITIAL_ROWS.pop(next(iter(_INITIAL_ROWS)))
        if not np.isfinite(rows[0]["train_loss"]):  # no reference for the rule: the model is broken from the start
            diverged = rows[0]["diverged"] = True
    initial_loss = rows[0]["train_loss"]
    last = epochs if stop_after is None else min(epochs, first_epoch - 1 + stop_after)
    if diverged:
        last = first_epoch - 1
    bar = tqdm(range(first_epoch, last + 1), desc=f"{run['model']}-{run['depth']}-{run['width']}", leave=False,
               disable=not progress)
    for epoch in bar:
        lr = run["lr"] * settings["lr_decay"] ** sum(epoch > m for m in settings["lr_milestones"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        order = torch.from_numpy(_rng(seed, PURPOSE["order"], epoch).permutation(len(tensors.train_x)))
        for start in range(0, len(order), settings["batch_size"]):
            index = order[start:start + settings["batch_size"]]
            loss = LOSS(model(tensors.train_x[index]), tensors.train_y[index]).mean()
            # checked before the step, so the model recorded is the one whose loss broke the rule
            if is_diverging(float(loss.detach()), initial_loss):
                diverged = True
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        if diverged:  # a step size too large for this model: record where it stopped and end the run
            record(epoch)
            break
        if epoch in tracked:
            record(epoch)
            bar.set_postfix(loss=f"{rows[-1]['train_loss']:.3g}", cos=f"{rows[-1]['minibatch_min_cosine']:.3f}")
        if checkpoint is not None:
            _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                          "step": step, "rows": rows, "code": code_fingerprint()}, checkpoint)
    return pd.DataFrame(rows), first_epoch - 1


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
            raise TypeError(f"a training configuration must be a mapping of keys to values, got {type(mapping).__name__}")
        grid = parse_grid(mapping, TRAIN_DEFAULTS, TRAIN_SETTINGS, what="training")
        settings = {key: mapping.get(key, default) for key, default in SETTING_DEFAULTS.items()}
        settings["data"] = validation.choice("data", settings["data"], DATASETS)
        settings["epochs"] = validation.integer("epochs", settings["epochs"], minimum=1)
        settings["batch_size"] = validation.integer("batch_size", settings["batch_size"], minimum=1)
        settings["track"] = validation.choice("track", settings["track"], TRACKS)
        settings["track_points"] = validation.integer("track_points", settings["track_points"], minimum=2)
        settings["probe_size"] = validation.integer("probe_size", settings["probe_size"], minimum=2)
        settings["pairs"] = validation.integer("pairs", settings["pairs"], minimum=1)
        settings["pair_batch"] = validation.integer("pair_batch", settings["pair_batch"], minimum=1)
        settings["lr_decay"] = validation.positive_real("lr_decay", settings["lr_decay"])
        milestones = settings["lr_milestones"]
        # a single number (TOML "lr_milestones = 80") is refused rather than guessed at: a list is always written
        if not isinstance(milestones, (list, tuple)) or any(isinstance(m, bool) or not isinstance(m, numbers.Integral)
                                                            for m in milestones):
            raise ValueError(f"argument 'lr_milestones' must be a list of integers >= 1 (epochs after which the step "
                             f"size is multiplied by lr_decay, e.g. [80, 160]), got {milestones!r}")
        settings["lr_milestones"] = tuple(validation.integer("lr_milestones", m, minimum=1) for m in milestones)
        settings["dtype"] = validation.dtype("dtype", settings["dtype"]).name
        if settings["data_dir"] is not None:
            if not isinstance(settings["data_dir"], (str, os.PathLike)):
                raise ValueError(f"argument 'data_dir' must be a folder path (a string), got {settings['data_dir']!r}")
            settings["data_dir"] = str(settings["data_dir"])
        spec = cls(grid, settings)
        spec.runs()
        return spec

    def runs(self) -> dict[str, dict]:
        """``{key: run}`` for every point of the grid, validated."""

        def check(run):
            validation.choice("model", run["model"], ("cnn", "mlp"))
            if run["model"] == "cnn":
                wrn_blocks(run["depth"])
            else:
                validation.integer("depth", run["depth"], minimum=0)
            validation.integer("width", run["width"], minimum=1)
            validation.integer("base", run["base"], minimum=1)
            validation.integer("seed", run["seed"], minimum=0)
            validation.positive_real("lr", run["lr"])
            validation.flag("skip", run["skip"])
            validation.flag("batchnorm", run["batchnorm"])

        return {config_hash({"run": run, "settings": self.settings})[:20]: run for run in expand_grid(self.grid, check,
                                                                                                       "training")}

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
    frame, resumed = _train(run, settings, Path(checkpoint), progress, None, data)
    metadata = {"config": {**run, **settings}, "seconds": time.perf_counter() - start, "resumed_from_epoch": resumed,
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
    runs = spec.runs()
    scheduler = validation.scheduler("scheduler", scheduler)
    # everything that can fail on the user's input happens before the store's folder is created
    dataset = load_dataset(spec.settings["data"], spec.settings["data_dir"], seed=0)
    store = ResultsStore(out, spec.pool_dict() if validation.flag("pool", pool) else spec.to_dict(), points=runs,
                         versions=versions())
    checkpoints = Path(out) / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    pending = _report_recomputed(store, runs)
    for key in set(runs) - set(pending):  # stored, but this process stopped before it removed the checkpoint
        (checkpoints / f"{key}.pt").unlink(missing_ok=True)
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
    (checkpoints / f"{key}.pt").unlink(missing_ok=True)


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
    """The stored runs that diverged (see the module docstring's rule), for a caller to report them.

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
