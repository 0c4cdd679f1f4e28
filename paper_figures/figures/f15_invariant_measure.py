"""F15 (Zhang, Li, Sra & Jadbabaie 2022): the weights under long constant-step SGD on digits.

Loss, gradient norm and the distance between the weight distributions of
neighbouring windows over long constant-step SGD on digits (20% of the
labels resampled, so that the model cannot interpolate), against how far the
weights themselves move (``montecarlo.constant_step_sgd``,
``montecarlo.window_distances``); neighbouring papers, digest section 4.
The paper's claim: the loss stabilises while the gradient norm stays away
from 0, and what converges is the distribution of the weights, not the
weights.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import montecarlo as mc

from .._figure import Figure
from .._style import save, subplots

SCALES = {"fast": dict(steps=4000, record_every=20, window=50),
          "quick": dict(steps=40000, record_every=50, window=100),
          "full": dict(steps=400000, record_every=200, window=250)}
SETTINGS = dict(hidden=8, lr=0.2, batch=8, label_noise=0.2, seed=15)


def compute(scale, context) -> pd.DataFrame:
    """One chain of constant-step SGD on digits with resampled labels: its trace (kind "trace") and the distances
    between neighbouring windows of recorded weights (kind "window")."""
    cfg = SCALES[scale]
    data = mc.load_dataset("digits")
    X = data.train_x.reshape(len(data.train_x), -1)
    y = data.train_y.copy()
    rng = np.random.default_rng(SETTINGS["seed"])
    noisy = rng.random(y.size) < SETTINGS["label_noise"]
    y[noisy] = rng.integers(0, data.num_classes, int(noisy.sum()))
    records, weights = mc.constant_step_sgd(X, y, hidden=SETTINGS["hidden"], lr=SETTINGS["lr"],
                                         batch=SETTINGS["batch"], steps=cfg["steps"],
                                         record_every=cfg["record_every"], seed=SETTINGS["seed"],
                                         progress=context.progress)
    windows = mc.window_distances(records["step"], weights, cfg["window"])
    return pd.concat([records.assign(kind="trace"), windows.assign(kind="window")], ignore_index=True)


def plot(data, stem) -> None:
    """Left: full-batch loss and gradient norm against the step; right: W1 between windows and the displacement."""
    fig, (curves, dist) = subplots(2)
    trace, windows = data[data["kind"] == "trace"], data[data["kind"] == "window"]
    curves.plot(trace["step"], trace["loss"], lw=0.8, label="full-batch loss")
    curves.plot(trace["step"], trace["grad_norm"], lw=0.8, label="full-batch gradient norm")
    curves.set_yscale("log")
    curves.set_xlabel("SGD step")
    curves.set_title(f"constant step {SETTINGS['lr']}, batch {SETTINGS['batch']}, digits "
                     f"({int(100 * SETTINGS['label_noise'])}% labels resampled)")
    curves.legend()
    dist.plot(windows["step"], windows["w1"], "o-", ms=3, label="W1 between the weight distributions of neighbouring windows")
    dist.plot(windows["step"], windows["displacement"], "s-", ms=3, label="|w(end of window) - w(end of previous)|")
    dist.set_yscale("log")
    dist.set_xlabel("SGD step")
    dist.set_ylabel("mean over coordinates")
    dist.set_title("the distribution settles; the weights keep moving")
    dist.legend(fontsize=7)
    save(fig, stem)


#: The rules of the report's words, stated in its rows: the loss "stabilises" when the mean loss of the last quarter
#: differs from the third's by less than LOSS_CHANGE (relative); the gradient norm "stays away from 0" when the
#: last quarter's median is above GRADIENT_FLOOR of its initial value; the distribution "converges" when W1 between
#: neighbouring windows falls by more than W1_DROP from the first window to the last, and the weights do not when
#: they move more than DISPLACEMENT x the last W1 over the last window.
LOSS_CHANGE = 0.05
GRADIENT_FLOOR = 0.05
W1_DROP = 2.0
DISPLACEMENT = 1.0


def report(data) -> list[dict]:
    """The loss settles while the gradient norm stays away from 0; the distribution converges, not the weights."""
    trace, windows = data[data["kind"] == "trace"], data[data["kind"] == "window"]
    q = len(trace) // 4
    third, last = trace.iloc[2 * q:3 * q], trace.iloc[3 * q:]
    loss_change = abs(last.loss.mean() - third.loss.mean()) / third.loss.mean()
    grad_ratio = last.grad_norm.median() / trace.grad_norm.iloc[0]
    w1_drop = windows.w1.iloc[0] / windows.w1.iloc[-1]
    moving = windows.displacement.iloc[-1] / windows.w1.iloc[-1]
    return [{
        "claim": "Zhang et al.: under constant-step SGD the loss stabilises while the gradient norm stays away from 0",
        "check": "relative change of the mean loss between the last two quarters; median gradient norm of the last "
                 f"quarter over its initial value; 'holds' when the change is < {LOSS_CHANGE:g} and the ratio > "
                 f"{GRADIENT_FLOOR:g}",
        "numbers": f"loss change {loss_change:.3f} (third quarter {third.loss.mean():.3f}, last {last.loss.mean():.3f});"
                   f" gradient norm last-quarter median / initial {grad_ratio:.3f}",
        "verdict": "holds" if loss_change < LOSS_CHANGE and grad_ratio > GRADIENT_FLOOR else "not observed",
    }, {
        "claim": "Zhang et al.: the distribution of the weights converges, not the weights",
        "check": "W1 between neighbouring windows' weight distributions, first vs last window; weight displacement "
                 f"over the last window relative to that W1; 'holds' when W1 falls more than {W1_DROP:g}x and the "
                 f"displacement is more than {DISPLACEMENT:g} x the last W1",
        "numbers": f"W1 {windows.w1.iloc[0]:.3g} -> {windows.w1.iloc[-1]:.3g} (x{w1_drop:.2g} smaller); displacement "
                   f"{windows.displacement.iloc[-1]:.3g} = {moving:.2f} x the last W1",
        "verdict": ("holds" if w1_drop > W1_DROP and moving > DISPLACEMENT else
                    "not established (the run may be too short)"),
    }]


FIGURE = Figure("F15_invariant_measure", "Long constant-step SGD: loss, gradient norm, weight distributions", compute,
                plot, report, SCALES)
