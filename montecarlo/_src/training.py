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
* a run whose loss becomes non-finite (a step size too large for the model)
  stops there, with ``diverged = True`` in its last row;
* the paper's minibatch-pair protocol: ``pairs`` pairs of minibatches of
  ``pair_batch`` examples drawn at random, one gradient of the mean loss per
  minibatch (train mode, running statistics left untouched), and the cosine of
  each pair: their minimum and all of them (for a density plot).

Precision: float32 by default.  Convolutions in float64 run about 8 times
slower on the CPU (CNN-16-2 on digits: 2 epochs with tracking took 71 s in
float64 against 9 s in float32), and the tracked quantities are empirical
curves, not compared with a bound; a test holds float32 against float64 on a
short run.  ``dtype="float64"`` is available.

Every random choice comes from ``SeedSequence(seed, spawn_key=(purpose, ...))``
(initialisation, probe set, epoch order, minibatch pairs), so a run is a pure
function of its configuration, and a run resumed from a checkpoint continues
exactly as if it had not stopped.  The data split is fixed (seed 0) so that
runs differ only by their own randomness.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from . import validation
from .datasets import DATASETS, load_dataset
from .gram_statistics import gram_statistics
from .models import build_model, wrn_blocks
from .module_gram import module_gram
from .sampling import versions
from .store import ResultsStore, config_hash
from .sweep import expand_grid, parse_grid

TRACKS = ("log", "linear")
PURPOSE = {"init": 0, "probe": 1, "order": 2, "pairs": 3}
LOSS = nn.CrossEntropyLoss(reduction="none")

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


@dataclass(frozen=True)
class _Tensors:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def train_run(run: dict, settings: dict, checkpoint: Path | None = None, progress: bool = True,
              stop_after: int | None = None) -> pd.DataFrame:
    """Train one configuration and return its tracked rows (one per tracked epoch).

    ``run`` has the grid axes (``TRAIN_DEFAULTS``), ``settings`` the rest.
    With ``checkpoint`` the state is saved after every epoch and a run
    finds its checkpoint and continues from it.  ``stop_after`` (for tests)
    returns after that many epochs, as an interruption would.
    """
    dtype = getattr(torch, validation.dtype("dtype", settings["dtype"]).name)
    data = load_dataset(settings["data"], settings["data_dir"], seed=0)
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
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
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
        record(0)
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
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if not torch.isfinite(loss):
                diverged = True
                break
        if diverged:  # a step size too large for this model: record where it stopped and end the run
            record(epoch)
            break
        if epoch in tracked:
            record(epoch)
            bar.set_postfix(loss=f"{rows[-1]['train_loss']:.3g}", cos=f"{rows[-1]['minibatch_min_cosine']:.3f}")
        if checkpoint is not None:
            _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                          "step": step, "rows": rows}, checkpoint)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class TrainingGrid:
    """A grid of training runs (axes of ``TRAIN_DEFAULTS``) sharing the settings of ``SETTING_DEFAULTS``."""

    grid: dict
    settings: dict

    @classmethod
    def from_mapping(cls, mapping: dict) -> "TrainingGrid":
        """Build and validate from ``{axis: value or list, setting: value}``; refuses unknown keys and bad values."""
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
        settings["lr_milestones"] = tuple(validation.integer("lr_milestones", m, minimum=1)
                                          for m in settings["lr_milestones"])
        settings["dtype"] = validation.dtype("dtype", settings["dtype"]).name
        if settings["data_dir"] is not None:
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
        return {"kind": "training", "grid": {k: list(v) for k, v in self.grid.items()}, "settings": self.settings}


def run_training(spec: TrainingGrid, out, progress: bool = True) -> ResultsStore:
    """Train every run of ``spec`` not yet finished in the store at ``out`` (checkpoints under ``out/checkpoints``)."""
    runs = spec.runs()
    store = ResultsStore(out, spec.to_dict(), points=runs, versions=versions())
    checkpoints = Path(out) / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    pending = [key for key in runs if key not in store.done()]
    bar = tqdm(total=len(runs), initial=len(runs) - len(pending), desc="training runs", disable=not progress)
    for key in pending:
        start = time.perf_counter()
        frame = train_run(runs[key], spec.settings, checkpoints / f"{key}.pt", progress)
        store.write_point(key, frame, {"config": {**runs[key], **spec.settings}, "seconds": time.perf_counter() - start,
                                       "versions": versions()})
        (checkpoints / f"{key}.pt").unlink(missing_ok=True)
        bar.update()
    bar.close()
    return store
