r"""Long constant-step SGD: does the loss settle while the weights keep moving? (Zhang, Li, Sra, Jadbabaie, ICML 2022.)

Their claim (digest section 4d): under constant-step SGD the loss becomes
stationary and the gradient norm plateaus away from zero; what converges is
the *distribution* of the weights (an approximate invariant measure), not
the weights.  :func:`constant_step_sgd` runs one chain of plain SGD with a
constant step on a classification data set (a one-hidden-layer tanh MLP,
float64) and records, every ``record_every`` steps, the full-batch loss, the
full-batch gradient norm and the flattened weights.  :func:`window_distances`
cuts the recorded weights into consecutive windows and returns, per pair of
neighbouring windows,

* ``w1``: the mean over coordinates of the 1-D Wasserstein-1 distance between
  the two windows' empirical distributions of that coordinate (equal sample
  sizes: the mean absolute difference of the sorted samples) -- how much the
  distribution of the weights still changes;
* ``displacement``: the mean over coordinates of ``|w(end of B) - w(end of A)|``
  -- how far the weights themselves move in the same time.

Convergence of the weights would drive both to 0; an invariant measure drives
``w1`` down while ``displacement`` stays at the measure's spread.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import validation


def constant_step_sgd(X, y, *, hidden: int, lr: float, batch: int, steps: int, record_every: int, seed,
                      progress: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """One chain of constant-step SGD on the mean cross-entropy of ``(X, y)``; returns ``(records, weights)``.

    ``X`` is ``N x D`` (flattened images), ``y`` integer labels.  Model:
    ``softmax(W_2 tanh(W_1 x + b_1) + b_2)`` with PyTorch's default
    initialisation drawn from ``seed``; minibatches of ``batch`` drawn with
    replacement from ``seed``.  ``records`` has ``step``, ``loss`` and
    ``grad_norm`` (full batch) at steps ``0, record_every, ...``; ``weights`` is
    ``records x P``.  A pure function of its arguments.
    """
    from tqdm.auto import tqdm

    X = torch.as_tensor(validation.finite_array("X", X, ndim=(2,)))
    y = torch.as_tensor(np.asarray(y), dtype=torch.long)
    if y.shape != (X.shape[0],):
        raise ValueError(f"argument 'y' must hold one label per row of X ({X.shape[0]}), got shape {tuple(y.shape)}")
    hidden = validation.integer("hidden", hidden, minimum=1)
    batch = validation.integer("batch", batch, minimum=1)
    steps = validation.integer("steps", steps, minimum=1)
    record_every = validation.integer("record_every", record_every, minimum=1)
    lr = validation.positive_real("lr", lr)
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
    with torch.random.fork_rng():
        torch.manual_seed(int(np.random.SeedSequence(seed, spawn_key=(1,)).generate_state(1)[0]))
        model = torch.nn.Sequential(torch.nn.Linear(X.shape[1], hidden), torch.nn.Tanh(),
                                    torch.nn.Linear(hidden, int(y.max()) + 1)).double()
    parameters = list(model.parameters())
    records, weights = [], []

    def record(step):
        loss = torch.nn.functional.cross_entropy(model(X), y)
        grads = torch.autograd.grad(loss, parameters)
        records.append({"step": step, "loss": float(loss.detach()),
                        "grad_norm": float(torch.sqrt(sum((g**2).sum() for g in grads)))})
        weights.append(torch.cat([p.detach().reshape(-1) for p in parameters]).numpy().copy())

    record(0)
    for step in tqdm(range(1, steps + 1), disable=not progress, desc="constant-step SGD"):
        index = torch.randint(0, X.shape[0], (batch,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(X[index]), y[index])
        grads = torch.autograd.grad(loss, parameters)
        with torch.no_grad():
            for p, g in zip(parameters, grads):
                p -= lr * g
        if step % record_every == 0:
            record(step)
    return pd.DataFrame(records), np.array(weights)


def window_distances(steps, weights, window: int) -> pd.DataFrame:
    """Per pair of neighbouring windows of ``window`` records: ``w1`` and ``displacement`` (module docstring)."""
    weights = validation.finite_array("weights", weights, ndim=(2,))
    window = validation.integer("window", window, minimum=2)
    steps = np.asarray(steps)
    rows = []
    for start in range(window, weights.shape[0] - window + 1, window):
        a, b = np.sort(weights[start - window:start], axis=0), np.sort(weights[start:start + window], axis=0)
        rows.append({"step": int(steps[start + window - 1]), "w1": float(np.abs(a - b).mean()),
                     "displacement": float(np.abs(weights[start + window - 1] - weights[start - 1]).mean())})
    return pd.DataFrame(rows)
