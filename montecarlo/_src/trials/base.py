"""The Trial seam: how one trial of a random network is drawn from standard normals, and the Gram it yields.

A trial is a random network (its parameters from their initialisation law),
``N`` points uniform on a sphere and their labels.  Every engine reads a
trial through four calls of a :class:`Trial`:

* ``draw(source, count)`` draws ``count`` trials at once from a
  ``NormalSource`` (leading axis ``count``), in a fixed order: parameters,
  then data, then labels.  Every random object is built from the source's
  standard normals, so replaying the normals replays the trial
  (``draw.random_source.ReplaySource``: how ``rare_tail`` moves a trial);
* ``blocks(draw)`` -> the per-layer Gram blocks ``(count, L, N, N)``
  (``G`` is their sum over ``L``);
* ``config()``, what is sampled (stored with every result), and ``meta()``,
  how (backend, sampling modes);
* ``normals_per_trial()``, the ``D`` standard normals one trial uses.

Batching, seeding and memory checks stay in the engines; a trial says what
one batch of trials costs (``peak_bytes``) and how many fit
(``default_batch_size``).
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass

import numpy as np

from ..draw.random_source import CountingSource

MEMORY_PER_BATCH = 256 * 2**20  # bytes of a compute batch's arrays, by default


@dataclass(frozen=True)
class TrialDraw:
    """``count`` drawn trials: the network's random part (the trial's own type), inputs ``X`` and labels ``y``.

    ``X`` is ``(count, N, d)`` (or ``(N, d)`` when the data are fixed for
    every trial), ``y`` ``(count, N)`` (or ``(N,)``); numpy arrays or torch
    tensors as the source draws them.
    """

    network: object
    X: object
    y: object


def concat_draws(parts):
    """Join drawn trials along their leading (trial) axis: arrays and tensors are concatenated, nested lists,
    tuples, dicts and dataclasses joined field by field, and anything else (a mode, a scale, None) taken from
    the first part.  One part comes back as it is, and so does an object that every part shares (the fixed
    data of a trial with ``data=(X, y)``, which has no trial axis)."""
    first = parts[0]
    if len(parts) == 1 or all(part is first for part in parts):
        return first  # one part, or an object every part shares (fixed data): taken once
    if isinstance(first, np.ndarray):
        return np.concatenate(parts, 0)
    if type(first).__module__.startswith("torch") and hasattr(first, "shape"):
        import torch

        return torch.cat(list(parts), 0)
    if isinstance(first, (list, tuple)):
        return type(first)(concat_draws([p[i] for p in parts]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: concat_draws([p[k] for p in parts]) for k in first}
    if dataclasses.is_dataclass(first) and not isinstance(first, type):
        return dataclasses.replace(first, **{f.name: concat_draws([getattr(p, f.name) for p in parts])
                                             for f in dataclasses.fields(first)})
    return first


class Trial(abc.ABC):
    """One kind of random trial: how it is drawn from standard normals and which Gram blocks it yields.

    Subclasses set ``n_samples`` (``N``), ``random_source`` ("numpy" or
    "torch": the sources it draws from) and ``device``, and implement
    :meth:`draw`, :meth:`blocks`, :meth:`block_names`, :meth:`config` and
    :meth:`peak_bytes`.  A trial is a pure function of the normals it is
    given: the same normals give the same trial (to rounding on another
    backend).
    """

    n_samples: int
    random_source: str = "numpy"
    device = None

    @abc.abstractmethod
    def draw(self, source, count: int) -> TrialDraw:
        """Draw ``count`` trials from ``source`` (a ``NormalSource``): parameters, then data, then labels."""

    @abc.abstractmethod
    def blocks(self, draw: TrialDraw) -> np.ndarray:
        """The per-layer Gram blocks ``(count, L, N, N)`` (numpy) of drawn trials."""

    @abc.abstractmethod
    def block_names(self) -> tuple:
        """One name per block ``L`` (``"W_0"`` .. for the paper's network, module names for a torch module)."""

    @abc.abstractmethod
    def config(self) -> dict:
        """What is sampled, as plain values (stored with every result and compared on reuse)."""

    @abc.abstractmethod
    def peak_bytes(self, batch_trials: int) -> int:
        """Estimated peak bytes of drawing and computing ``batch_trials`` trials at once (to refuse what cannot fit)."""

    def size_description(self) -> str:
        """What makes a trial large, in words naming the arguments to lower (for a refusal on memory)."""
        return f"argument 'net' ({self!r})"

    def meta(self) -> dict:
        """How the trials are computed (backend, sampling modes, ...): stored beside the results."""
        return {}

    def merge_batches(self) -> bool:
        """Whether the seed blocks of one compute batch are joined and computed in one call."""
        return True

    def default_batch_size(self) -> int:
        """Trials per compute batch: as many as keep their own arrays under ``MEMORY_PER_BATCH``, from 1 to 4096.

        A trial's share is the growth of :meth:`peak_bytes` from one trial to two, so that a fixed cost of a batch
        (working memory that does not grow with it) does not shrink the batch; a batch computed in one call
        (``merge_batches``) spreads that call's cost over many trials.
        """
        per_trial = max(1, self.peak_bytes(2) - self.peak_bytes(1))
        return max(1, min(4096, MEMORY_PER_BATCH // per_trial))

    def draw_statistics(self) -> dict:
        """Statistics read from a draw rather than its Gram: name -> ``function(draw) -> (count,)`` values."""
        return {}

    def normals_per_trial(self) -> int:
        """``D``, the standard normals one trial draws (a dry run, counted once and cached)."""
        cached = getattr(self, "_normals_per_trial", None)
        if cached is None:
            probe = CountingSource(1)
            self.draw(probe, 1)
            cached = probe.count
            object.__setattr__(self, "_normals_per_trial", cached)
        return cached

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({items})"
