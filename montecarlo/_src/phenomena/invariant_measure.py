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

The chain runs on one torch thread whatever the caller's setting (restored
afterwards): the full-batch products split their sums over the threads, so
on two threads the recorded gradient norms differed in the last bits, and
the chain is meant to be a pure function of its arguments.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import torch

from .. import validation
from ..draw.random_source import check_seed


@contextlib.contextmanager
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def constant_step_sgd(X, y, *, hidden: int, lr: float, batch: int, steps: int, record_every: int, seed,
                      progress: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """One chain of constant-step SGD on the mean cross-entropy of ``(X, y)``; returns ``(records, weights)``.

    ``X`` is ``N x D`` (flattened images), ``y`` integer labels.  Model:
    ``softmax(W_2 tanh(W_1 x + b_1) + b_2)`` with PyTorch's default
    initialisation drawn from ``seed``; minibatches of ``batch`` drawn with
    replacement from ``seed``.  ``records`` has ``step``, ``loss`` and
    ``grad_norm`` (full batch) at steps ``0, record_every, ...``; ``weights`` is
    ``records x P``.  A pure function of its arguments (run on one torch
    thread, so the caller's thread count does not enter).

    Parameters
    ----------
    X : array, ``N x D``
        Finite inputs.
    y : array of ``N`` integer labels in ``0 .. C-1``
        The number of classes is ``max(y) + 1``.
    hidden, batch, steps, record_every : int >= 1
    lr : float > 0
    seed : int >= 0 (or a sequence of them)
        One chain (trial 0): its minibatch indices come from
        ``SeedSequence(seed)`` and its initialisation from
        ``SeedSequence(seed, spawn_key=(1,))``, one index draw per step, so
        the chain of ``steps`` steps is a prefix of any longer chain with the
        same seed.  ``None`` (fresh OS entropy) and negative seeds are refused.
    progress : bool

    Returns
    -------
    (pandas.DataFrame, numpy.ndarray)
        The records and the recorded weights.
    """
    X = torch.as_tensor(validation.finite_array("X", X, ndim=(2,)))
    labels = np.asarray(y)
    if labels.shape != (X.shape[0],):
        raise ValueError(f"argument 'y' must hold one label per row of X ({X.shape[0]}), got shape {labels.shape}")
    # Float labels would be truncated silently by the cast to long, negative ones fail inside torch.
    if labels.dtype.kind not in "iu" or labels.min() < 0:
        raise ValueError(f"argument 'y' must hold non-negative integer class labels, got dtype {labels.dtype} "
                         f"with minimum {labels.min()!r}")
    y = torch.as_tensor(labels, dtype=torch.long)
    seed = check_seed(seed)
    hidden = validation.integer("hidden", hidden, minimum=1)
    batch = validation.integer("batch", batch, minimum=1)
    steps = validation.integer("steps", steps, minimum=1)
    record_every = validation.integer("record_every", record_every, minimum=1)
    lr = validation.positive_real("lr", lr)
    with _one_torch_thread():
        return _chain(X, y, hidden, lr, batch, steps, record_every, seed, progress)


def _chain(X, y, hidden, lr, batch, steps, record_every, seed, progress) -> tuple[pd.DataFrame, np.ndarray]:
    from tqdm.auto import tqdm

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
    """Per pair of neighbouring windows of ``window`` records: ``w1`` and ``displacement`` (module docstring).

    Parameters
    ----------
    steps : array of ``R`` step numbers, one per row of ``weights``
    weights : array, ``R x P``
        Finite recorded weights.
    window : int >= 2
        Records per window.

    Returns
    -------
    pandas.DataFrame
        ``step`` (last step of the later window), ``w1`` and ``displacement``.
    """
    weights = validation.finite_array("weights", weights, ndim=(2,))
    window = validation.integer("window", window, minimum=2)
    steps = np.asarray(steps)
    if steps.shape != (weights.shape[0],):
        raise ValueError(f"argument 'steps' must hold one step per row of 'weights' ({weights.shape[0]}), got "
                         f"shape {steps.shape}")
    rows = []
    for start in range(window, weights.shape[0] - window + 1, window):
        a, b = np.sort(weights[start - window:start], axis=0), np.sort(weights[start:start + window], axis=0)
        rows.append({"step": int(steps[start + window - 1]), "w1": float(np.abs(a - b).mean()),
                     "displacement": float(np.abs(weights[start + window - 1] - weights[start - 1]).mean())})
    return pd.DataFrame(rows)
