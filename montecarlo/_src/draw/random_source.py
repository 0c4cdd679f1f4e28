"""Where random numbers come from: one seeding scheme and one primitive, standard normals.

Every random object of the package (weights, Haar matrices, sphere data,
teacher directions, random signs) is built from standard normal draws, so the
same code runs on a numpy ``Generator`` (the default, on the CPU) or on a torch
``Generator`` on any device (for sampling directly on a GPU).  The two streams
differ, so torch-drawn results agree with numpy-drawn ones in distribution,
not number by number.

Seeding (:func:`block_seed`): trials are grouped in fixed blocks of
``SEED_BLOCK``; block ``k`` of a computation seeded with ``seed`` draws from
``SeedSequence(seed, spawn_key=(k,))``.  A trial's random numbers therefore
depend only on ``(seed, trial index)``, never on batch sizes, thread counts,
workers or the order in which blocks run.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

SEED_BLOCK = 8


def check_seed(seed):
    """A seed is a non-negative integer or a sequence of them (SeedSequence entropy)."""
    values = seed if isinstance(seed, (tuple, list)) else (seed,)
    if not values or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0 for v in values):
        raise ValueError(f"argument 'seed' must be a non-negative integer (or a sequence of them), got {seed!r}")
    return tuple(int(v) for v in values) if isinstance(seed, (tuple, list)) else int(seed)


def block_seed(seed, block: int) -> np.random.SeedSequence:
    """The seed sequence of trial block ``block`` (trials ``block * SEED_BLOCK ...``)."""
    return np.random.SeedSequence(seed, spawn_key=(block,))


class NormalSource:
    """Standard normal draws (float64) in an array namespace: numpy, or torch on a device."""

    def __init__(self, xp, normal, device=None):
        self.xp = xp
        self._normal = normal
        self.device = device

    @classmethod
    def numpy(cls, rng) -> "NormalSource":
        rng = np.random.default_rng(rng)
        return cls(np, rng.standard_normal)

    @classmethod
    def torch(cls, seed_sequence: np.random.SeedSequence, device="cpu") -> "NormalSource":
        import torch

        generator = torch.Generator(device=device)
        generator.manual_seed(int(seed_sequence.generate_state(1, np.uint64)[0] >> np.uint64(1)))
        return cls(torch, lambda shape: torch.randn(shape, generator=generator, device=device,
                                                    dtype=torch.float64), device)

    def normal(self, shape) -> object:
        return self._normal(tuple(shape))

    def scaled_normal(self, shape, scale: float) -> object:
        """``scale`` times standard normals of ``shape``: the same numbers as ``scale * normal(shape)``.

        The generator's fresh array is scaled in place (one pass over memory
        fewer, for the lazy sampler's wide draws); subclasses whose ``normal``
        may return a view (a replayed vector) keep this out-of-place form.
        """
        if type(self) is NormalSource:
            out = self._normal(tuple(shape))
            out *= scale
            return out
        return scale * self.normal(shape)

    def zeros(self, shape) -> object:
        if self.xp is np:
            return np.zeros(tuple(shape))
        return self.xp.zeros(tuple(shape), dtype=self.xp.float64, device=self.device)

    def asarray(self, value) -> object:
        if self.xp is np:
            return np.asarray(value, dtype=np.float64)
        return self.xp.as_tensor(np.asarray(value, dtype=np.float64), device=self.device)


def as_source(rng) -> NormalSource:
    """Accept a NormalSource, a numpy Generator, a SeedSequence or an integer seed."""
    return rng if isinstance(rng, NormalSource) else NormalSource.numpy(rng)


def unit_rows(x, xp):
    """Rows scaled to unit Euclidean norm."""
    return x / xp.sqrt((x * x).sum(-1))[..., None]


def check_rng(rng, name: str = "rng"):
    """Validate a source of randomness given to a public function, refusing ``None``.

    Accepted: a numpy ``Generator``, a ``SeedSequence``, a :class:`NormalSource`,
    or a seed as :func:`check_seed` accepts it.  ``None`` would draw fresh OS
    entropy, so the result would not be a function of the arguments; a
    negative integer would fail inside numpy with a message that does not
    name the argument.
    """
    if isinstance(rng, (np.random.Generator, np.random.SeedSequence, NormalSource)):
        return rng
    try:
        return check_seed(rng)
    except ValueError:
        raise ValueError(
            f"argument '{name}' must be a non-negative integer seed (or a sequence of them), a "
            f"numpy.random.SeedSequence or a numpy.random.Generator, got {rng!r}"
        ) from None


class ReplaySource(NormalSource):
    """A numpy ``NormalSource`` that answers ``normal(shape)`` with consecutive slices of given normals.

    ``xi`` has shape ``(C, D)``, one row per chain; a call ``normal((C,) + rest)``
    returns ``xi[:, off:off + prod(rest)].reshape(shape)`` and moves ``off``
    on.  Every call must carry the chain axis first (a drawing routine that
    does not would mix chains) and the calls must use up exactly ``D``
    numbers (:meth:`finish`).
    """

    def __init__(self, xi: np.ndarray, name: str = "statistic"):
        super().__init__(np, self._next)
        self.xi, self.offset, self.name = xi, 0, name

    def _next(self, shape):
        C = self.xi.shape[0]
        if not shape or shape[0] != C:
            raise ValueError(f"a drawing routine asked for normals of shape {shape}, without the chain axis ({C},) "
                             f"first: its draws cannot be replayed chain by chain (check argument 'labels' if it "
                             f"is a callable: it must draw with X's leading axes)")
        size = math.prod(shape[1:])
        if self.offset + size > self.xi.shape[1]:
            raise ValueError(f"the trial draws more normals than the {self.xi.shape[1]} counted by the dry run")
        out = self.xi[:, self.offset:self.offset + size].reshape(shape)
        self.offset += size
        return out

    def finish(self):
        if self.offset != self.xi.shape[1]:
            raise ValueError(f"the trial drew {self.offset} normals, not the {self.xi.shape[1]} of the dry run")


class CountingSource(NormalSource):
    """Real standard normals (a fixed generator) that count how many are drawn per chain."""

    def __init__(self, chains: int):
        rng = np.random.default_rng(0)
        super().__init__(np, self._next)
        self.rng, self.count, self.chains = rng, 0, chains

    def _next(self, shape):
        if not shape or shape[0] != self.chains:
            raise ValueError(f"a drawing routine asked for normals of shape {shape}, without the chain axis "
                             f"({self.chains},) first: its draws cannot be replayed chain by chain (check argument "
                             f"'labels' if it is a callable: it must draw with X's leading axes)")
        self.count += math.prod(shape[1:])
        return self.rng.standard_normal(tuple(shape))
