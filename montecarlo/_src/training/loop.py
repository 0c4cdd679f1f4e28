"""One training run of the paper's section 7 protocol: plain SGD on real data, gradient confusion tracked two ways.

This module trains one configuration (:func:`train_run`: the loop, its checkpoints and the divergence
rule); ``runs`` trains grids of them into a results store, serially or on Dask.

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
one.  ``runs.diverged_runs`` lists the diverged runs of a store.

Checkpoints hold only tensors and plain containers (the rows are lists of
dicts of numbers and strings), so they are read with
``torch.load(weights_only=True)``, which runs no code from the file, and
their content is checked before it is used; a file that fails either check is
refused with an error naming it.  Before that, each checkpoint is verified
against the checksum record written beside it (``<name>.sha256``, the
store's mechanism: ``store_format.write_verified``): SHA-256, length, the
code that wrote it and the run it belongs to.  A checkpoint that is damaged
(a flipped byte, truncated), has no record, or belongs to another run is
not used: a warning on stderr names it and the run restarts from epoch 0,
which ends with the numbers of an uninterrupted run.

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
import io
import numbers
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import validation
from ..engines.store_format import StoreCorrupt, StoreMismatch, config_hash, read_verified, record_path, write_verified
from ..gram.memory import refuse_if_too_large, training_bytes
from ..gram.module_gram import module_gram, peak_bytes as module_gram_peak_bytes, probe as probe_model
from ..provenance import code_fingerprint
from ..statistics.gram_statistics import gram_statistics
from .datasets import DATASETS, Dataset, load_dataset
from .models import MODELS, build_model, meta_model, wrn_blocks
from .settings import SETTING_DEFAULTS, TRACKS, TRAIN_DEFAULTS

#: Torch threads a run trains on (see "One thread" in the module docstring).
TORCH_THREADS = 1
PURPOSE = {"init": 0, "probe": 1, "order": 2, "pairs": 3}
LOSS = nn.CrossEntropyLoss(reduction="none")
#: A run is diverged when a minibatch loss exceeds this many times its epoch-0 training loss (or is non-finite).
DIVERGENCE_FACTOR = 10.0
CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "step", "rows")


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
    """The paper's protocol: cosines of ``pairs`` pairs of minibatch gradients (mean loss, train mode).

    One pair at a time, so that two gradients exist at once whatever ``pairs``
    (the minibatches drawn in the same order as all at once).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    cosines = np.empty(pairs)
    with _running_statistics_untouched(model):
        for k in range(pairs):
            gradients = []
            for _ in range(2):
                index = torch.from_numpy(rng.choice(len(x), size=min(batch, len(x)), replace=False))
                loss = LOSS(model(x[index]), y[index]).mean()
                gradients.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
            cosines[k] = float(torch.nn.functional.cosine_similarity(gradients[0][None], gradients[1][None], dim=-1,
                                                                     eps=1e-300)[0])
    return cosines


#: Examples per forward pass when a run evaluates the training and test sets.
EVALUATION_CHUNK = 512


def _evaluate(model, x, y, chunk: int = EVALUATION_CHUNK) -> tuple[float, float]:
    model.eval()
    losses, correct = [], 0
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            out = model(x[start:start + chunk])
            losses.append(LOSS(out, y[start:start + chunk]))
            correct += int((out.argmax(1) == y[start:start + chunk]).sum())
    return float(torch.cat(losses).mean()), correct / len(x)


def checkpoint_claims(run: dict, settings: dict) -> dict:
    """What a checkpoint's record says it is: the checkpoint of this run (a hash of ``run`` and ``settings``)."""
    return {"checkpoint of": config_hash({"run": run, "settings": settings})}


def save_checkpoint(state: dict, path, run: dict, settings: dict) -> None:
    """Write a checkpoint of ``run`` and its checksum record (``store_format.write_verified``), each atomically.

    Parameters
    ----------
    state : dict
        What :func:`train_run` saves (``CHECKPOINT_KEYS`` and ``code``).
    path : path-like
        The checkpoint file; the record goes beside it (``<stem>.sha256``).
    run, settings : dict
        The run it belongs to (:func:`checkpoint_claims`).
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    # in place: the record names the old checkpoint too, so a run killed between the two writes resumes from it
    write_verified(Path(path), buffer.getvalue(), claims=checkpoint_claims(run, settings), code=code_fingerprint(),
                   in_place=True)


def remove_checkpoint(path) -> None:
    """Remove a checkpoint and its checksum record (a run stored needs neither)."""
    Path(path).unlink(missing_ok=True)
    record_path(path).unlink(missing_ok=True)


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


def _load_checkpoint(path: Path, data: bytes, epochs: int) -> dict:
    """The checkpoint ``path`` (its verified bytes ``data``), read without running code from it and checked."""
    try:
        # weights_only=True: the unpickler admits tensors and plain containers only, so the file runs no code
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
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


def _resume(checkpoint: Path | None, epochs: int, model, optimizer, claims: dict) -> tuple[list, int, int]:
    """The rows, first epoch and step count a run starts from: its checkpoint's (loaded into ``model`` and
    ``optimizer``), or ``([], 1, 0)`` without one.  A checkpoint that does not verify against its record
    (damaged, no record, another run's) or of other code is not continued from: a warning names it."""
    if checkpoint is None:
        return [], 1, 0
    try:
        data, record = read_verified(checkpoint, claims=claims)
    except FileNotFoundError:
        return [], 1, 0
    except (StoreCorrupt, StoreMismatch) as error:
        print(f"warning: checkpoint {error}; it was not used: restarting the run from epoch 0", file=sys.stderr)
        return [], 1, 0
    if record["code"] != code_fingerprint():
        # a checkpoint of other code: continuing from it would mix that code's epochs with this code's
        print(f"checkpoint {checkpoint} was written by other code (fingerprint {record['code']!r}, this code "
              f"{code_fingerprint()!r}): restarting the run from epoch 0", file=sys.stderr)
        return [], 1, 0
    state = _load_checkpoint(checkpoint, data, epochs)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError) as error:
        raise _refuse(checkpoint, f"does not fit this run's model or optimizer ({str(error).splitlines()[0]})") \
            from None
    return state["rows"], state["epoch"] + 1, state["step"]


@dataclass(frozen=True)
class _Tensors:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


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


def _keys(name: str, mapping, expected: dict) -> None:
    """``mapping`` is a dict with exactly the keys of ``expected``; otherwise a refusal naming ``name`` and the keys."""
    if not isinstance(mapping, Mapping):
        raise TypeError(f"argument '{name}' must be a dict with the keys {', '.join(expected)}, got "
                        f"{type(mapping).__name__}")
    missing = [key for key in expected if key not in mapping]
    unknown = sorted(map(str, set(mapping) - set(expected)))
    if missing or unknown:
        raise ValueError(f"argument '{name}' must have the keys {', '.join(expected)}"
                         + (f"; missing {', '.join(map(repr, missing))}" if missing else "")
                         + (f"; unknown {', '.join(map(repr, unknown))}" if unknown else ""))


def check_run(run) -> dict:
    """A run's grid axes (``TRAIN_DEFAULTS``), validated: each refusal names the axis and what is accepted.

    Returns the axes with validated values (``run`` itself is not changed).
    """
    _keys("run", run, TRAIN_DEFAULTS)
    checked = dict(run)
    checked["model"] = validation.choice("model", run["model"], MODELS)
    if run["model"] == "cnn":
        wrn_blocks(run["depth"])
        checked["depth"] = run["depth"]
    else:
        checked["depth"] = validation.integer("depth", run["depth"], minimum=0)
    checked["width"] = validation.integer("width", run["width"], minimum=1)
    checked["base"] = validation.integer("base", run["base"], minimum=1)
    checked["seed"] = validation.integer("seed", run["seed"], minimum=0)
    checked["lr"] = validation.positive_real("lr", run["lr"])
    checked["skip"] = validation.flag("skip", run["skip"])
    checked["batchnorm"] = validation.flag("batchnorm", run["batchnorm"])
    return checked


def check_settings(settings) -> dict:
    """A run's settings (``SETTING_DEFAULTS``, every key), validated: each refusal names the setting and what is
    accepted.  Returns the settings with validated values (``settings`` itself is not changed)."""
    _keys("settings", settings, SETTING_DEFAULTS)
    checked = dict(settings)
    checked["data"] = validation.choice("data", settings["data"], DATASETS)
    checked["epochs"] = validation.integer("epochs", settings["epochs"], minimum=1)
    checked["batch_size"] = validation.integer("batch_size", settings["batch_size"], minimum=1)
    checked["track"] = validation.choice("track", settings["track"], TRACKS)
    checked["track_points"] = validation.integer("track_points", settings["track_points"], minimum=2)
    checked["probe_size"] = validation.integer("probe_size", settings["probe_size"], minimum=2)
    checked["pairs"] = validation.integer("pairs", settings["pairs"], minimum=1)
    checked["pair_batch"] = validation.integer("pair_batch", settings["pair_batch"], minimum=1)
    checked["lr_decay"] = validation.positive_real("lr_decay", settings["lr_decay"])
    milestones = settings["lr_milestones"]
    # a single number (TOML "lr_milestones = 80") is refused rather than guessed at: a list is always written
    if not isinstance(milestones, (list, tuple)) or any(isinstance(m, bool) or not isinstance(m, numbers.Integral)
                                                        for m in milestones):
        raise ValueError(f"argument 'lr_milestones' must be a list of integers >= 1 (epochs after which the step "
                         f"size is multiplied by lr_decay, e.g. [80, 160]), got {milestones!r}")
    checked["lr_milestones"] = tuple(validation.integer("lr_milestones", m, minimum=1) for m in milestones)
    checked["dtype"] = validation.dtype("dtype", settings["dtype"]).name
    if settings["data_dir"] is not None:
        if not isinstance(settings["data_dir"], (str, os.PathLike)):
            raise ValueError(f"argument 'data_dir' must be a folder path (a string), got {settings['data_dir']!r}")
        checked["data_dir"] = str(settings["data_dir"])
    return checked


def refuse_run_too_large(run: dict, settings: dict, data: Dataset) -> None:
    """Refuse, before the model is built, a run whose estimated peak memory exceeds the memory available.

    The model is built on torch's meta device (``models.meta_model``: its
    shapes, no memory) and probed there: ``gram.memory.training_bytes``
    (the data in the working precision, parameters and gradients, the
    two minibatch gradients of a pair for the cosines, the activations of
    the largest minibatch or evaluation chunk) and the probe set's
    ``module_gram`` (``module_gram.peak_bytes``), added (what one phase
    frees another does not always find again).  The message names the
    arguments to lower.
    """
    dtype = getattr(torch, validation.dtype("dtype", settings["dtype"]).name)
    model = meta_model(run["model"], run["depth"], run["width"], data.shape, data.num_classes, skip=run["skip"],
                       batchnorm=run["batchnorm"], base=run["base"], dtype=dtype)
    itemsize = torch.empty((), dtype=dtype).element_size()
    n_train = len(data.train_x)
    probe = min(settings["probe_size"], n_train)
    meta = dict(device="meta", dtype=dtype)
    gram, _ = module_gram_peak_bytes(model, LOSS, torch.empty((probe, *data.shape), **meta),
                                     torch.zeros(probe, dtype=torch.long, device="meta"))
    probed = probe_model(model, LOSS, torch.empty((4, *data.shape), **meta),
                         torch.zeros(4, dtype=torch.long, device="meta"))
    batch = min(n_train, max(settings["batch_size"], settings["pair_batch"], EVALUATION_CHUNK))
    features = int(np.prod(data.shape))
    data_numbers = (n_train + len(data.test_x)) * features
    training = training_bytes(data=data_numbers, parameters=probed.parameters, activations=probed.saved_per_example,
                              batch=batch, probe=probe * features, itemsize=itemsize)
    estimate = training + gram
    parameters = probed.parameters
    what = (f"a training run of {run['model']} (depth {run['depth']}, width {run['width']}, base {run['base']}: "
            f"{parameters} parameters) on {settings['data']} ({n_train} training examples), 'batch_size' = "
            f"{settings['batch_size']}, 'pair_batch' = {settings['pair_batch']} and 'probe_size' = "
            f"{settings['probe_size']}")
    refuse_if_too_large(estimate, what, "use a smaller model ('width', 'depth', 'base'), or lower 'probe_size', "
                                        "'batch_size' or 'pair_batch'")


@contextlib.contextmanager
def _torch_threads(count: int):
    """Torch on ``count`` intra-op threads inside the block, the caller's count restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_run(run: dict, settings: dict, checkpoint: Path | None = None, progress: bool = True,
              stop_after: int | None = None, *, dataset: Dataset | None = None, on_start=None) -> pd.DataFrame:
    """Train one configuration and return its tracked rows (one per tracked epoch).

    Parameters
    ----------
    run : dict
        The grid axes (``TRAIN_DEFAULTS``).
    settings : dict
        The rest (``SETTING_DEFAULTS``).
    checkpoint : Path, optional
        The state is saved there after every epoch (with its checksum
        record beside it), and a run that finds its checkpoint continues
        from it.  It is verified against its record (a damaged one, or
        another run's, is named on stderr and the run starts afresh), then
        read with ``torch.load(weights_only=True)`` and checked.
    progress : bool
        Show a progress bar.
    stop_after : int, optional
        Return after that many epochs, as an interruption would (for tests).
    dataset : Dataset, optional
        The data of ``settings["data"]`` already loaded (split seed 0), so
        that a grid loads it once; loaded here when not given.
    on_start : callable, optional
        Called once, before the first step, with the epoch the run starts
        after: that of the checkpoint it continues from, or 0 when it starts
        afresh (the grid stores it as ``resumed_from_epoch``).

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
    TypeError, ValueError
        A run axis or a setting that is missing, unknown or not accepted
        (:func:`check_run`, :func:`check_settings`; the message names it and
        says what is accepted), a ``batch_size`` above the training set's
        size, or a run whose estimated peak memory exceeds the memory
        available (:func:`refuse_run_too_large`), all before the model is
        built.  The checkpoint is not one train_run wrote (the message names it).

    Notes
    -----
    Trained on ``TORCH_THREADS`` torch threads whatever the caller's setting,
    which is restored afterwards (module docstring, "One thread").
    """
    check_run(run)
    check_settings(settings)
    progress = validation.flag("progress", progress)
    if stop_after is not None:
        stop_after = validation.integer("stop_after", stop_after, minimum=1)
    with _torch_threads(TORCH_THREADS):
        dtype = getattr(torch, validation.dtype("dtype", settings["dtype"]).name)
        data = load_dataset(settings["data"], settings["data_dir"], seed=0) if dataset is None else dataset
        if not isinstance(data, Dataset):
            raise TypeError(f"argument 'dataset' must be a Dataset (training.datasets.load_dataset) or None, got "
                            f"{type(data).__name__}")
        if settings["batch_size"] > len(data.train_x):
            raise ValueError(f"argument 'batch_size' = {settings['batch_size']} must be at most the "
                             f"{len(data.train_x)} training examples of {settings['data']!r} (an integer >= 1)")
        refuse_run_too_large(run, settings, data)
        tensors = _Tensors(torch.from_numpy(data.train_x).to(dtype), torch.from_numpy(data.train_y),
                           torch.from_numpy(data.test_x).to(dtype), torch.from_numpy(data.test_y))
        seed = run["seed"]
        model = build_model(run["model"], run["depth"], run["width"], data.shape, data.num_classes, skip=run["skip"],
                            batchnorm=run["batchnorm"], base=run["base"],
                            seed=int(np.random.SeedSequence(seed, spawn_key=(PURPOSE["init"],)).generate_state(1)[0]),
                            dtype=dtype)
        optimizer = torch.optim.SGD(model.parameters(), lr=run["lr"], momentum=0.0, weight_decay=0.0)
        probe_size = min(settings["probe_size"], len(tensors.train_x))
        probe = torch.from_numpy(_rng(seed, PURPOSE["probe"]).choice(len(tensors.train_x), size=probe_size,
                                                                     replace=False))
        epochs = settings["epochs"]
        tracked = tracked_epochs(epochs, settings["track"], settings["track_points"])
        checkpoint = None if checkpoint is None else Path(checkpoint)
        rows, first_epoch, step = _resume(checkpoint, epochs, model, optimizer, checkpoint_claims(run, settings))
        if on_start is not None:
            on_start(first_epoch - 1)

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
                save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                                 "step": step, "rows": rows, "code": code_fingerprint()}, checkpoint, run, settings)
        return pd.DataFrame(rows)


