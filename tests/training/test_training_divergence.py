"""The divergence rule: a minibatch loss non-finite or above DIVERGENCE_FACTOR (10) x the epoch-0 loss stops a run."""

import numpy as np
import torch

import montecarlo as mc
from montecarlo.testing import DIVERGENCE_FACTOR, SETTING_DEFAULTS, TRAIN_DEFAULTS, diverged_runs, is_diverging, loop

# batch_size 100 (and the last minibatch of an epoch, N_TRAIN % 100) differs from pair_batch and probe_size, so
# that GrowingLoss below can tell SGD's minibatches from the tracking's passes
N_TRAIN = len(mc.load_dataset("digits").train_x)
STEPS_PER_EPOCH = -(-N_TRAIN // 100)
SETTINGS = dict(SETTING_DEFAULTS, data="digits", epochs=2, track="linear", track_points=3, pairs=2, pair_batch=16,
                probe_size=8, batch_size=100)
RUN = dict(TRAIN_DEFAULTS, model="mlp", depth=1, width=16, lr=0.1)
BASE = loop.LOSS
assert N_TRAIN % 100 not in (0, 16, 8, 1)


def test_the_rule_and_its_threshold():
    assert DIVERGENCE_FACTOR == 10
    assert not is_diverging(29.99, 3.0) and not is_diverging(30.0, 3.0) and is_diverging(30.0001, 3.0)
    assert is_diverging(float("nan"), 3.0) and is_diverging(float("inf"), 3.0)
    assert not is_diverging(0.0, 3.0)


def test_a_huge_step_size_is_flagged_before_the_end():
    frame = loop.train_run(dict(RUN, lr=1000.0), SETTINGS, progress=False)
    assert list(frame["epoch"]) == [0, 1] and list(frame["diverged"]) == [False, True]  # stopped in epoch 1 of 2
    initial, last = frame["train_loss"].iloc[0], frame["train_loss"].iloc[-1]
    assert 1.5 < initial < 4  # about log(10) for an untrained 10-class model
    # the full training set's loss, evaluated apart from the rule, confirms it: far above 10x, yet finite, so a
    # rule that only caught non-finite losses would have let this run train on
    assert np.isfinite(last) and last > 100 * initial
    assert frame["step"].iloc[-1] < STEPS_PER_EPOCH


def test_a_normal_step_size_is_not_flagged():
    frame = loop.train_run(RUN, SETTINGS, progress=False)
    assert list(frame["epoch"]) == [0, 1, 2] and not frame["diverged"].any()
    assert frame["train_loss"].iloc[-1] < 0.8 * frame["train_loss"].iloc[0]


class GrowingLoss:
    """The cross-entropy, multiplied on SGD's minibatches by a factor growing from 1 to ``growth`` over ``ramp`` calls.

    Evaluation (no gradient) is left alone, so the run's epoch-0 loss is the true one; ``means`` logs the mean
    minibatch loss that the rule sees at each training call.
    """

    def __init__(self, growth, ramp=10, sizes=(100, N_TRAIN % 100)):
        self.growth, self.ramp, self.sizes, self.means = growth, ramp, sizes, []

    def __call__(self, outputs, targets):
        losses = BASE(outputs, targets)
        if torch.is_grad_enabled() and len(targets) in self.sizes:
            losses = losses * (1 + (self.growth - 1) * min(1.0, len(self.means) / self.ramp))
            self.means.append(float(losses.detach().mean()))
        return losses


def test_a_loss_growing_5x_is_not_flagged_and_one_growing_20x_is_stopped_where_it_passes_10x(monkeypatch):
    settings = dict(SETTINGS, epochs=1, track_points=2)
    run = dict(RUN, lr=1e-6)  # so small that the loss only changes through the factor
    mild = GrowingLoss(5)
    monkeypatch.setattr(loop, "LOSS", mild)
    frame = loop.train_run(run, settings, progress=False)
    initial = frame["train_loss"].iloc[0]
    assert len(mild.means) == STEPS_PER_EPOCH and 4 * initial < max(mild.means) < DIVERGENCE_FACTOR * initial
    assert not frame["diverged"].any() and list(frame["epoch"]) == [0, 1]

    steep = GrowingLoss(20)
    monkeypatch.setattr(loop, "LOSS", steep)
    frame = loop.train_run(run, settings, progress=False)
    assert frame["train_loss"].iloc[0] == initial
    crossing = next(k for k, m in enumerate(steep.means) if m > DIVERGENCE_FACTOR * initial)
    assert 3 <= crossing <= 7  # the factor passes 10 at call 10 * 9 / 19 = 4.7, give or take minibatch noise
    assert len(steep.means) == crossing + 1  # nothing was trained after the loss that broke the rule
    assert frame["step"].iloc[-1] == crossing  # and that minibatch's step was not taken
    assert list(frame["diverged"]) == [False, True] and list(frame["epoch"]) == [0, 1]


def test_diverged_runs_are_stored_flagged_and_listed(tmp_path):
    spec = mc.TrainingGrid.from_mapping(dict(RUN, lr=[0.1, 1000.0], **{k: SETTINGS[k] for k in (
        "epochs", "track", "track_points", "pairs", "pair_batch", "probe_size", "batch_size")}))
    store = mc.run_training(spec, tmp_path / "store", progress=False)
    found = diverged_runs(store)
    assert len(found) == 1
    key, config, epoch = found[0]
    assert config["lr"] == 1000.0 and config["epochs"] == 2 and epoch == 1
    frame, _ = store.read_point(key)
    assert list(frame["diverged"]) == [False, True]  # the stored rows keep the flag
    (other,) = set(store.done()) - {key}
    frame, metadata = store.read_point(other)
    assert metadata["config"]["lr"] == 0.1 and not frame["diverged"].any() and list(frame["epoch"]) == [0, 1, 2]
