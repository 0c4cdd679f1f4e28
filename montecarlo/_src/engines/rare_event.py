r"""Rare-event tails of trial statistics: subset simulation in the space of the trial's standard normals.

Every random object of a trial (weights, Haar frames, sphere data, labels) is
built from standard normal draws (``random_source.py``), so one trial is a
deterministic function ``S(xi)`` of one standard Gaussian vector
``xi ~ N(0, I_D)``: :class:`ReplaySource` answers the drawing code's
``normal(shape)`` calls with consecutive slices of ``xi`` (``D`` is found by a
dry run).  A tail ``Pr[S(xi) > s]`` far below ``1 / trials`` is then estimated
by **subset simulation** (Au & Beck 2001, "Estimation of small failure
probabilities in high dimensions by subset simulation", Probab. Eng. Mech.
16, 263-277; the same estimator as the adaptive multilevel splitting of
Cérou & Guyader 2007 with a fixed fraction ``p0`` of survivors per level).

Algorithm (one *repeat*; :class:`SubsetSimulation`):

1. Level 0: ``n`` iid draws ``xi ~ N(0, I_D)`` and their statistic values.
2. At level ``k`` (population ``x_1 .. x_n`` distributed as ``N(0, I)``
   restricted to ``F_k = {S > b_k}``, ``b_0 = -inf``): if at least
   ``n_s = round(p0 n)`` values exceed the target ``t``, stop.  Otherwise the
   next level ``b_{k+1}`` is the ``(n_s + 1)``-th largest value -- the
   ``1 - p0`` sample quantile -- and the ``m = n_s`` members strictly above it
   are the seeds; ``p_{k+1} = m / n`` estimates ``Pr[F_{k+1} | F_k]``.  (With
   ties at the ``n_s``-th value, ``b_{k+1}`` is the largest value below it and
   all tied members are seeds, ``m > n_s``; ties that push ``m`` above ``n/2``
   mean a plateau of the statistic and are refused.)
3. Each seed grows a Markov chain of about ``n / m`` states (the lengths add
   up to ``n``) with the preconditioned Crank-Nicolson move
   ``xi' = rho xi + sqrt(1 - rho^2) zeta``, ``zeta ~ N(0, I)``, accepted iff
   ``S(xi') > b_{k+1}``.  The pCN proposal is reversible with respect to
   ``N(0, I)``, so this accept rule leaves ``N(0, I)`` restricted to
   ``F_{k+1}`` invariant (no density ratio is needed), in any dimension.  All
   chains move in lockstep: one call of the statistic per step for all of them.
4. The estimate is ``P = p_1 ... p_k * (fraction of level k above t)``.

Step size (``sigma = sqrt(1 - rho^2)``): adapted toward ``target_acceptance``
after every lockstep step by ``log sigma <- log sigma + (a_j - a*) / sqrt(j)``
(``a_j`` the acceptance rate of step ``j`` over all chains, ``j = 1, 2, ...``
restarting at each level; ``sigma <= 1``), the per-level Robbins-Monro rule
of Papaioannou, Betz, Zwirglmaier & Straub (2015, "MCMC algorithms for Subset
Simulation", Probab. Eng. Mech. 41, 89-103, section 5); a level starts from
the previous level's final ``sigma`` (0.6 at level 1).  It depends only on the
seed and the run's own draws.  Each individual move is exactly invariant;
the adaptation makes the chains only asymptotically so, a bias the coverage
tests in ``tests/test_rare_event.py`` bound.

Error (Au & Beck 2001, eqs. 27-29, 31): the coefficient of variation of one
repeat is ``delta^2 = sum_i (1 - p_i) / (p_i n) (1 + gamma_i)`` over the levels
and the final fraction, with ``gamma_i = 2 sum_{k >= 1} (N_k / n) rho_i(k)``:
``rho_i(k)`` the lag-``k`` autocorrelation of the indicator ``1{S > b_i}``
along the chains of level ``i - 1`` and ``N_k`` the number of lag-``k`` pairs
(``(1 - k / N_s) n`` for equal chain lengths ``N_s``; ``gamma = 0`` at level 0,
whose draws are independent).  It neglects the correlation between levels, so
it is Au-Beck's *approximate* CoV of one repeat, not an interval: on F16's
network at population 200 it understated the real spread of the repeats about
twofold (issue 23).

Interval: the repeats are independent and identically distributed, so the
reported estimate is their mean and its 95% interval is the Student-t
interval of that mean on the probability itself,
``mean +- t_{R-1, 0.975} sd / sqrt(R)`` (``sd`` the repeats' sample standard
deviation), clipped to ``[0, 1]`` (a lower end below 0 becomes 0); each point
of the tail curve gets the same.  It is exact for normal repeats and
asymptotically right as ``R`` grows; the estimator of one repeat is skewed to
the right (single repeats are typically low, their mean is not), so the
coverage with few repeats is below 95% -- hence ``repeats = 10`` by default.
(Means of logs of repeats, or an interval on the log scale, would target the
median of one repeat, which lies below the probability.)

Categories and frozen populations: a rare event made of disconnected parts
fools subset simulation.  For ``min_cosine`` of a network with label signs
the event splits by the label-sign branch of the pair attaining the minimum
(``y_i y_j = +1`` or ``-1``); the two branches reach a very negative cosine
by different routes, and a pCN chain in one branch almost never jumps to the
other.  Selection keeps only ``n_s`` seeds per level, so once the chains stop
crossing, the branches' shares of the population drift from level to level
like a small Wright-Fisher population and can freeze -- or a branch can die
out -- in the first levels.  A repeat whose population lost a branch then
estimates the tail of the other branch alone, every later level probability
looks healthy and the Au-Beck CoV does not see it (issue 23: single repeats
up to 155 times the truth).  So every member carries a *category*, a
non-negative integer code (``summary``: for the network statistics
``min_cosine``, ``min_cosine_layer<p>``, ``eta_star`` and
``eta_star_layer<p>``, code 0 when the attaining pair has ``y_i y_j >= 0``
and 1 when ``y_i y_j < 0``, with the pair itself, its index in
``np.triu_indices(N, 1)`` order, as a second, diagnostic *detail*; for a
user's ``f`` a ``summary`` callable, else none).  Per level the state counts
the categories of the population and of the seeds and the accepted moves
that changed a member's category (cross moves), and two rules flag a repeat
(``RareTail.warnings``):

* **collapse** (serious): a level whose population holds a single category
  while level 0 had at least two categories each holding a share
  ``>= MIN_BRANCH_SHARE`` (5%).  Under ``strict=True`` it raises
  :class:`PopulationCollapsed`.
* **no cross move** (a warning): a level whose seeds held at least two
  categories and whose chains accepted no move that changed a category: the
  shares at that level come from selection alone.  Deep in a rare event made
  of disconnected parts this is legitimate (a pCN step cannot jump the gap
  between the parts), so it is reported and never raised.

A summary should split the event into parts that each reach the target: a
category the levels leave behind by construction (``sign(xi_1)`` for the
half-space ``xi_1 > t``) collapses legitimately and is flagged all the same.
The flags are symptoms read off the population, not proofs: a collapse into
the branch that dominates at the target costs little, one into the other
branch a lot, and a population that never collapsed may still hold the
branches in the wrong proportion.

Randomness: level ``k`` of repeat ``r`` draws only from the children
``SeedSequence(seed, spawn_key=(r, k, i))`` of ``SeedSequence(seed,
spawn_key=(r, k))`` -- at level 0, child ``i`` draws members ``64 i .. 64 i +
63``; at level ``k >= 1``, child ``i`` draws the pCN moves of chains ``16 i ..
16 i + 15`` -- and from the state saved at the end of level ``k - 1``
(:class:`SplittingState`, savable with ``to_arrays`` as an ``.npz`` without
pickles), so a run resumed from any saved level gives bit-identical numbers.
Streams for fixed blocks of rows let large draws run in threads (the normals
are much of the cost of a network statistic's step) with numbers independent
of the thread count.
"""

from __future__ import annotations

import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from .. import validation
from ..draw.random_source import NormalSource, check_seed

DIRECTIONS = ("upper", "lower")
INITIAL_SIGMA = 0.6  # pCN step sqrt(1 - rho^2) at level 1 (rho = 0.8)
MIN_ACCEPTANCE = 0.01  # a level whose chains accept fewer moves has stopped moving
SMALLEST_PROBABILITY = 1e-300  # below this the product of level probabilities leaves float64
MEMORY_PER_CALL = 256 * 2**20  # bytes of drawn normals per network evaluation chunk
LEVEL0_ROWS = 64  # level-0 draws per random stream
CHAIN_ROWS = 16  # chains per random stream at levels >= 1
PARALLEL_SIZE = 2**18  # normals per draw above which the drawing is split over threads
#: A category holding at least this share of level 0 counts as present: a later level holding one category
#: only, while level 0 held two such, is a collapsed population (module docstring).
MIN_BRANCH_SHARE = 0.05
MAX_CATEGORIES = 2**16  # category codes must lie in 0 .. MAX_CATEGORIES - 1 (counts are stored per code)
DEFAULT_REPEATS = 10  # independent repeats behind the interval (module docstring, "Interval")
CONFIDENCE = 0.95


def _threads() -> int:
    """Threads for drawing: numba's thread count (``NUMBA_NUM_THREADS``), as ``sample_confusion`` draws."""
    import numba

    return numba.get_num_threads()


@contextmanager
def _pool(size: int):
    """A thread pool for draws of ``size`` normals at a time; ``None`` (draw here) for small ones or one thread."""
    threads = _threads()
    if size < PARALLEL_SIZE or threads <= 1:
        yield None
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        yield pool


class ChainsStoppedMoving(RuntimeError):
    """The Markov chains of a level could not move: the estimate would be meaningless."""


class PopulationCollapsed(RuntimeError):
    """Under ``strict=True``: a level's population fell into one category while level 0 held several.

    The message names the repeat, the level and the categories' shares at level 0 and there (module
    docstring, "Categories and frozen populations").
    """


# ----------------------------------------------------------------------------------------------------------------
# Per-level state
# ----------------------------------------------------------------------------------------------------------------

_STATE_ARRAYS = ("xi", "values", "chain", "step", "levels", "conditional", "gammas", "acceptance", "sigmas",
                 "history", "category", "detail", "category_counts", "seed_counts", "cross_moves", "detail_counts")


@dataclass(frozen=True, eq=False)
class SplittingState:
    """One repeat's population at the end of a level, and what the previous levels found.

    ``values`` are in the sampler's *internal* orientation (``S`` for
    ``direction="upper"``, ``-S`` for "lower"; a NaN statistic is ``-inf``),
    so every level is an upper level set.

    Attributes
    ----------
    repeat : int
        Index of the independent repeat (its seeds are ``spawn_key=(repeat, level)``).
    xi : (n, D) float64
        The population: standard-normal vectors distributed as ``N(0, I)``
        restricted to the current level set.
    values : (n,) float64
        Internal statistic value of each member.
    chain, step : (n,) int64
        Chain index and position in its chain of each member (level 0: one
        chain per member); used by the Au-Beck correlation factor.
    levels : (k,) float64
        Internal thresholds ``b_1 < ... < b_k`` so far.
    conditional : (k,) float64
        ``p_i = m_i / n``, the conditional probability estimates.
    gammas : (k,) float64
        Au-Beck correlation factors ``gamma_i`` of the ``p_i``.
    acceptance : (k,) float64
        Fraction of accepted pCN moves at each level.
    sigmas : (k,) float64
        pCN step ``sqrt(1 - rho^2)`` at the end of each level (the next
        level starts from the last one).
    history : (k + 1, n) float64
        Sorted internal values of every level's population (the tail curve).
    category, detail : (n,) int64, or (0,) when not tracked
        Category code of each member (module docstring, "Categories and
        frozen populations") and its diagnostic detail code (for a network
        statistic: the attaining pair).
    category_counts : (k + 1, B) int64
        Row ``i``: how many members of level ``i``'s population hold each
        category code ``0 .. B - 1`` (``B = 0`` when not tracked).
    seed_counts : (k, B') int64
        Row ``i - 1``: the same for the seeds that start level ``i``.
    cross_moves : (k,) int64
        Accepted pCN moves at each level that changed a member's category
        (0 when not tracked).
    detail_counts : (k + 1, P) int64
        As ``category_counts`` for the detail codes.
    evaluations : int
        Statistic evaluations so far.
    final_fraction, final_gamma : float
        Fraction of the last population beyond the target and its
        correlation factor; NaN until the target is reached.
    settings : (6,) float64
        ``(internal target, p0, target acceptance, n, D, sign)`` of the sampler
        that made the state, checked on resume.
    seed : (s,) int64
        The seed entropy.
    """

    repeat: int
    xi: np.ndarray
    values: np.ndarray
    chain: np.ndarray
    step: np.ndarray
    levels: np.ndarray
    conditional: np.ndarray
    gammas: np.ndarray
    acceptance: np.ndarray
    sigmas: np.ndarray
    history: np.ndarray
    category: np.ndarray
    detail: np.ndarray
    category_counts: np.ndarray
    seed_counts: np.ndarray
    cross_moves: np.ndarray
    detail_counts: np.ndarray
    evaluations: int
    final_fraction: float
    final_gamma: float
    settings: np.ndarray
    seed: np.ndarray

    @property
    def level(self) -> int:
        """Number of levels passed so far (0: the plain Monte Carlo population)."""
        return len(self.levels)

    @property
    def done(self) -> bool:
        """Whether the target has been reached (``estimate`` is then final)."""
        return bool(np.isfinite(self.final_fraction))

    @property
    def summaries(self) -> int:
        """Codes tracked per member: 0 (none), 1 (a category) or 2 (a category and a detail)."""
        return int(self.category.size > 0) + int(self.detail.size > 0)

    @property
    def codes(self) -> np.ndarray:
        """``(n, summaries)`` int64: each member's category (column 0) and detail (column 1) codes."""
        return np.stack([self.category, self.detail][:self.summaries], axis=1) if self.summaries \
            else np.zeros((self.values.shape[0], 0), np.int64)

    @property
    def estimate(self) -> float:
        """``p_1 ... p_k * final_fraction`` (NaN before the target is reached)."""
        return float(np.prod(self.conditional) * self.final_fraction)

    @property
    def coefficient_of_variation(self) -> float:
        """Au & Beck's approximate ``delta`` (module docstring) of this repeat's estimate (NaN before the end)."""
        n = self.values.shape[0]
        p = np.append(self.conditional, self.final_fraction)
        g = np.append(self.gammas, self.final_gamma)
        return float(np.sqrt(np.sum((1 - p) / (p * n) * (1 + g))))

    def to_arrays(self) -> dict:
        """Plain numpy arrays (for ``np.savez``; loadable with ``allow_pickle=False``)."""
        out = {name: np.asarray(getattr(self, name)) for name in _STATE_ARRAYS}
        out.update(repeat=np.asarray(self.repeat, dtype=np.int64),
                   evaluations=np.asarray(self.evaluations, dtype=np.int64),
                   final=np.asarray([self.final_fraction, self.final_gamma], dtype=np.float64),
                   settings=np.asarray(self.settings, dtype=np.float64), seed=np.asarray(self.seed, dtype=np.int64))
        return out

    @classmethod
    def from_arrays(cls, arrays) -> "SplittingState":
        """Inverse of :meth:`to_arrays` (``arrays`` may be an open ``np.load`` of the ``.npz``).

        Checks every array's shape against the others and the counts against
        the population, so a damaged state is refused (``ValueError``) rather
        than resumed.
        """
        missing = [k for k in (*_STATE_ARRAYS, "repeat", "evaluations", "final", "settings", "seed")
                   if k not in arrays]
        if missing:
            raise ValueError(f"argument 'arrays' must hold a saved SplittingState; missing {', '.join(missing)}")
        final = np.asarray(arrays["final"], dtype=np.float64)
        parts = {name: np.array(arrays[name]) for name in _STATE_ARRAYS}
        for name in ("chain", "step", "category", "detail", "category_counts", "seed_counts", "cross_moves",
                     "detail_counts"):
            if not np.issubdtype(parts[name].dtype, np.integer):
                raise ValueError(f"array {name!r} must hold integers, got dtype {parts[name].dtype}")
            parts[name] = parts[name].astype(np.int64)
        _check_state_arrays(parts, final, np.asarray(arrays["settings"]), np.asarray(arrays["seed"]))
        return cls(repeat=int(arrays["repeat"]), evaluations=int(arrays["evaluations"]),
                   final_fraction=float(final[0]), final_gamma=float(final[1]),
                   settings=np.array(arrays["settings"], dtype=np.float64),
                   seed=np.array(arrays["seed"], dtype=np.int64), **parts)


def _check_state_arrays(parts: dict, final: np.ndarray, settings: np.ndarray, seed: np.ndarray) -> None:
    """ValueError naming the first array of a saved state whose shape or counts disagree with the others."""
    xi = parts["xi"]
    if xi.ndim != 2 or xi.shape[0] < 1:
        raise ValueError(f"array 'xi' must have shape (n, D), got {xi.shape}")
    n = xi.shape[0]
    k = parts["levels"].shape[0] if parts["levels"].ndim == 1 else -1
    expected = {"values": (n,), "chain": (n,), "step": (n,), "levels": (k,), "conditional": (k,),
                "gammas": (k,), "acceptance": (k,), "sigmas": (k,), "history": (k + 1, n), "cross_moves": (k,)}
    for name in ("category", "detail"):
        expected[name] = (n,) if parts[name].size else (0,)
    for name, rows in (("category_counts", k + 1), ("seed_counts", k), ("detail_counts", k + 1)):
        width = parts[name].shape[1] if parts[name].ndim == 2 else -1
        expected[name] = (rows, width)
    expected.update(final=(2,), settings=(6,))
    shapes = {**{name: parts[name].shape for name in parts}, "final": final.shape, "settings": settings.shape}
    for name, shape in expected.items():
        if k < 0 or shapes[name] != shape:
            raise ValueError(f"array {name!r} has shape {shapes[name]}, not {shape} (population {n}, "
                             f"{max(k, 0)} levels)")
    if seed.ndim != 1 or seed.size < 1:
        raise ValueError(f"array 'seed' must be a non-empty vector, got shape {seed.shape}")
    if parts["detail"].size and not parts["category"].size:
        raise ValueError("array 'detail' is tracked without array 'category'")
    for name, counts_name, rows in (("category", "category_counts", n), ("detail", "detail_counts", n)):
        codes, counts = parts[name], parts[counts_name]
        if codes.size == 0:
            if counts.shape[1] or (name == "category" and parts["seed_counts"].shape[1]):
                raise ValueError(f"array {counts_name!r} counts codes that array {name!r} does not track")
            continue
        if codes.min() < 0 or codes.max() >= counts.shape[1] or counts.shape[1] > MAX_CATEGORIES:
            raise ValueError(f"array {name!r} holds codes outside 0 .. {counts.shape[1] - 1}")
        if counts.min(initial=0) < 0 or not np.all(counts.sum(axis=1) == rows):
            raise ValueError(f"array {counts_name!r}: every row must count the {rows} members of its level")
        if not np.array_equal(np.bincount(codes, minlength=counts.shape[1]), counts[-1]):
            raise ValueError(f"array {counts_name!r}: its last row does not count array {name!r}")
    if parts["seed_counts"].min(initial=0) < 0 or parts["cross_moves"].min(initial=0) < 0:
        raise ValueError("arrays 'seed_counts' and 'cross_moves' must be non-negative counts")
    if parts["category"].size and not np.array_equal(parts["seed_counts"].sum(axis=1),
                                                     np.round(parts["conditional"] * n).astype(np.int64)):
        raise ValueError("array 'seed_counts': every row must count the m_i = p_i n seeds of its level")


def correlation_factor(indicator: np.ndarray, chain: np.ndarray, step: np.ndarray) -> float:
    r"""Au & Beck's ``gamma = 2 sum_{k >= 1} (N_k / n) R(k) / R(0)`` of an indicator along chains (eq. 29).

    ``R(k)`` is the lag-``k`` autocovariance of the indicator estimated from the
    ``N_k`` pairs ``(j, l), (j, l + k)`` of the same chain, ``R(0) = p (1 - p)``.
    Chains of unequal length are allowed (``N_k / n`` replaces ``1 - k / N_s``).
    """
    n = indicator.shape[0]
    p = indicator.mean()
    r0 = p * (1 - p)
    length = int(step.max()) + 1
    if r0 <= 0 or length == 1:
        return 0.0
    grid = np.zeros((int(chain.max()) + 1, length))
    valid = np.zeros(grid.shape, dtype=bool)
    grid[chain, step] = indicator
    valid[chain, step] = True
    gamma = 0.0
    for k in range(1, length):
        both = valid[:, :-k] & valid[:, k:]
        pairs = int(both.sum())
        if pairs == 0:
            break
        r_k = float((grid[:, :-k] * grid[:, k:])[both].sum()) / pairs - p * p
        gamma += 2 * (pairs / n) * r_k / r0
    return gamma


def _category_codes(codes, C: int) -> np.ndarray:
    """``(C,)`` int64 category codes from a summary's output; ValueError naming 'summary' otherwise."""
    codes = np.asarray(codes)
    if codes.shape != (C,):
        raise ValueError(f"argument 'summary' (or the category codes of 'function') must give C = {C} codes, got "
                         f"shape {codes.shape}")
    if codes.dtype == bool:
        codes = codes.astype(np.int64)
    if not np.issubdtype(codes.dtype, np.integer):
        if not np.issubdtype(codes.dtype, np.floating) or not np.all(np.isfinite(codes)) \
                or not np.all(codes == np.round(codes)):
            raise ValueError(f"argument 'summary' must give integer category codes, got {codes.dtype} values "
                             f"{codes[:5]!r}")
    codes = codes.astype(np.int64)
    if C and (codes.min() < 0 or codes.max() >= MAX_CATEGORIES):
        raise ValueError(f"argument 'summary' must give category codes in 0 .. {MAX_CATEGORIES - 1}, got "
                         f"{codes.min()} .. {codes.max()}")
    return codes


def _append_counts(table: np.ndarray, codes) -> np.ndarray:
    """``table`` (rows of counts per code) with a row counting ``codes`` appended; widened as codes appear.

    ``codes=None`` (nothing tracked) appends a row of width 0.
    """
    if codes is None:
        return np.zeros((table.shape[0] + 1, 0), np.int64)
    counts = np.bincount(codes, minlength=table.shape[1]).astype(np.int64)
    if counts.size > table.shape[1]:
        table = np.pad(table, ((0, 0), (0, counts.size - table.shape[1])))
    return np.vstack([table, counts[None, :]]).astype(np.int64)


def population_flags(state: SplittingState, min_share: float = MIN_BRANCH_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """The flagged levels of a repeat: ``(collapsed, uncrossed)`` int64 arrays of level indices ``1 .. k``.

    ``collapsed``: levels whose population holds one category while level 0
    held at least two with shares ``>= min_share``.  ``uncrossed``: levels
    whose seeds held at least two categories and whose chains accepted no
    category-changing move.  Both empty when no categories are tracked
    (module docstring, "Categories and frozen populations").
    """
    counts, seeds = state.category_counts, state.seed_counts
    if not state.summaries or counts.shape[1] == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty
    shares0 = counts[0] / counts[0].sum()
    present = np.count_nonzero(shares0 >= min_share) >= 2
    held = np.count_nonzero(counts[1:], axis=1)
    collapsed = np.flatnonzero(held == 1) + 1 if present else np.zeros(0, np.int64)
    uncrossed = np.flatnonzero((np.count_nonzero(seeds, axis=1) >= 2) & (state.cross_moves == 0)) + 1
    return collapsed.astype(np.int64), uncrossed.astype(np.int64)


def _shares_text(counts: np.ndarray, names=None) -> str:
    """``"0: 0.48, 1: 0.52"``: the non-zero shares of a row of counts (categories named by ``names`` if given)."""
    total = counts.sum()
    label = (lambda c: names[c] if names is not None and c < len(names) else f"code {c}")
    return ", ".join(f"{label(c)}: {counts[c] / total:.3f}" for c in np.flatnonzero(counts))


def _ranges(levels) -> str:
    """``[1, 2, 3, 5]`` -> ``"levels 1-3, 5"``; ``[4]`` -> ``"level 4"``."""
    levels, parts, start = list(levels), [], None
    for i, level in enumerate(levels):
        if start is None:
            start = level
        if i + 1 == len(levels) or levels[i + 1] != level + 1:
            parts.append(f"{start}" if start == level else f"{start}-{level}")
            start = None
    return ("level " if len(levels) == 1 else "levels ") + ", ".join(parts)


def collapse_message(state: SplittingState, level: int, names=None) -> str:
    """The text of a collapse of repeat ``state.repeat`` at ``level``: shares at level 0 and there."""
    collapsed = population_flags(state)[0]
    later = collapsed[collapsed >= level]
    return (f"repeat {state.repeat}: the population collapsed into one category at level {level} (shares at "
            f"level 0: {_shares_text(state.category_counts[0], names)}; at level {level}: "
            f"{_shares_text(state.category_counts[level], names)}; collapsed at {_ranges(later)} of "
            f"{state.level}): the chains can no longer reach the other categories, so this repeat estimates the "
            f"tail of one part of the event only")


def flag_messages(state: SplittingState, names=None) -> list[str]:
    """Human-readable warnings of one repeat (collapse first, then levels without cross moves)."""
    collapsed, uncrossed = population_flags(state)
    out = []
    if collapsed.size:
        out.append(collapse_message(state, int(collapsed[0]), names))
    if uncrossed.size:
        first = int(uncrossed[0])
        out.append(f"repeat {state.repeat}: no accepted move changed category at {_ranges(uncrossed)} of "
                   f"{state.level} although their seeds held at least two categories (seeds of level {first}: "
                   f"{_shares_text(state.seed_counts[first - 1], names)}): the shares there come from selection "
                   f"alone (legitimate deep in a rare event made of disconnected parts)")
    return out


# ----------------------------------------------------------------------------------------------------------------
# The sampler
# ----------------------------------------------------------------------------------------------------------------

class SubsetSimulation:
    """Subset simulation (Au & Beck 2001) of ``Pr[f(xi) > threshold]`` (or ``<``) for ``xi ~ N(0, I_D)``.

    See the module docstring for the algorithm.  ``start(repeat)`` draws
    level 0, ``advance(state)`` does one level (or, once the target is within
    reach, records the final fraction and marks the state done), and
    ``run(repeat)`` loops.

    Parameters
    ----------
    function : callable
        Vectorised statistic: an ``(C, D)`` float64 array of standard normals
        to ``(C,)`` values.  NaN values count as never beyond any level.  It
        may also return a tuple ``(values, category)`` or ``(values,
        category, detail)`` of ``(C,)`` non-negative integer codes (a
        categorical summary of each member, computed in the same pass: the
        network statistics do so), which the levels then track (module
        docstring, "Categories and frozen populations").
    dimension : int >= 1
        ``D``.
    threshold : float
        The target ``t``.
    direction : "upper" (``Pr[f > t]``) or "lower" (``Pr[f < t]``)
    seed : int >= 0 or a sequence of them
    population : int >= 10
        ``n``, members per level.
    level_probability : float in (0, 0.5]
        ``p0``, the fraction of each population kept as seeds.
    target_acceptance : float in (0, 1)
        Acceptance rate the pCN step is adapted toward.
    max_levels : int, optional
        Most levels before giving up; by default enough to reach ``1e-300``.
    summary : callable, optional
        ``summary(xi) -> (C,)`` non-negative integer category codes of the
        members ``xi`` (``(C, D)``), called beside ``function`` on the same
        draws: the same as a ``function`` returning ``(values,
        summary(xi))`` (refused when ``function`` returns codes itself).
        Codes change nothing in the algorithm or its numbers.
    strict : bool
        Raise :class:`PopulationCollapsed` at a level whose population
        collapsed into one category (otherwise it is only reported).
    """

    def __init__(self, function, dimension, *, threshold, direction="upper", seed, population=1000,
                 level_probability=0.1, target_acceptance=0.3, max_levels=None, summary=None, strict=False):
        if not callable(function):
            raise TypeError(f"argument 'function' must be a callable f(xi) -> values, got {function!r}")
        if summary is not None and not callable(summary):
            raise TypeError(f"argument 'summary' must be a callable summary(xi) -> category codes, got {summary!r}")
        if not isinstance(strict, (bool, np.bool_)):
            raise TypeError(f"argument 'strict' must be True or False, got {strict!r}")
        self.function, self.summary, self.strict = function, summary, bool(strict)
        self.dimension = validation.integer("dimension", dimension, minimum=1)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)) \
                or not np.isfinite(threshold):
            raise ValueError(f"argument 'threshold' must be a finite real number, got {threshold!r}")
        self.direction = validation.choice("direction", direction, DIRECTIONS)
        self.sign = 1.0 if self.direction == "upper" else -1.0
        self.threshold = float(threshold)
        self.target = self.sign * self.threshold
        self.seed = check_seed(seed)
        self.population = validation.integer("population", population, minimum=10)
        p0 = level_probability
        if isinstance(p0, bool) or not isinstance(p0, (int, float, np.floating)) or not 0 < p0 <= 0.5:
            raise ValueError(f"argument 'level_probability' must be a number in (0, 0.5], got {p0!r}")
        self.level_probability = float(p0)
        a = target_acceptance
        if isinstance(a, bool) or not isinstance(a, (int, float, np.floating)) or not 0 < a < 1:
            raise ValueError(f"argument 'target_acceptance' must be a number in (0, 1), got {a!r}")
        self.target_acceptance = float(a)
        self.n_seeds = max(1, int(round(self.level_probability * self.population)))
        if self.n_seeds >= self.population:
            raise ValueError(f"arguments 'population' and 'level_probability' keep {self.n_seeds} seeds of "
                             f"{self.population}: raise 'population'")
        # p0^levels must stay above 1e-300 (float64), so the levels are bounded accordingly.
        most = math.floor(math.log(SMALLEST_PROBABILITY) / math.log(self.n_seeds / self.population))
        self.max_levels = most if max_levels is None else validation.integer("max_levels", max_levels, minimum=1)
        self.settings = np.array([self.target, self.level_probability, self.target_acceptance, self.population,
                                  self.dimension, self.sign], dtype=np.float64)
        entropy = self.seed if isinstance(self.seed, tuple) else (self.seed,)
        self.seed_array = np.array(entropy, dtype=np.int64)

    # -- helpers --------------------------------------------------------------------------------------------------

    def _streams(self, repeat: int, level: int, count: int) -> list:
        """``count`` generators ``SeedSequence(seed, spawn_key=(repeat, level, i))``, ``i = 0 .. count - 1``."""
        root = np.random.SeedSequence(self.seed, spawn_key=(repeat, level))
        return [np.random.default_rng(child) for child in root.spawn(count)]

    @staticmethod
    def _parallel(pool, count: int, work, size: int) -> None:
        """``work(range)`` over ``range(count)`` split into contiguous parts, on ``pool`` when ``size`` is large.

        The parts write disjoint rows and each row draws from its own stream,
        so the numbers do not depend on the number of threads.
        """
        workers = min(count, _threads()) if pool is not None and size >= PARALLEL_SIZE else 1
        if workers <= 1:
            work(range(count))
            return
        bounds = np.linspace(0, count, workers + 1).astype(int)
        list(pool.map(work, [range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]))

    def _level0_normals(self, repeat: int) -> np.ndarray:
        """The ``(n, D)`` level-0 draws: rows ``[64 b, 64 b + 64)`` from stream ``b`` of ``spawn_key=(repeat, 0)``."""
        n, D = self.population, self.dimension
        xi = np.empty((n, D))
        blocks = math.ceil(n / LEVEL0_ROWS)
        streams = self._streams(repeat, 0, blocks)

        def work(part):
            for b in part:
                streams[b].standard_normal(out=xi[b * LEVEL0_ROWS:(b + 1) * LEVEL0_ROWS])

        with _pool(n * D) as pool:
            self._parallel(pool, blocks, work, n * D)
        return xi

    def _evaluate(self, xi: np.ndarray, summaries: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Internal values ``sign * f(xi)`` (NaN, an undefined statistic, becomes ``-inf``) and ``(C, s)`` codes.

        ``summaries``: the number of codes the state being advanced tracks (a
        function that changed its mind is refused).
        """
        out = self.function(xi)
        codes = []
        if isinstance(out, tuple):
            if len(out) not in (2, 3):
                raise ValueError(f"argument 'function' must return values, (values, category) or (values, "
                                 f"category, detail), got a tuple of {len(out)}")
            if self.summary is not None:
                raise ValueError("argument 'summary' was given but argument 'function' returns category codes "
                                 "itself: give the categories once")
            out, codes = out[0], list(out[1:])
        elif self.summary is not None:
            codes = [self.summary(xi)]
        values = np.asarray(out, dtype=np.float64)
        C = xi.shape[0]
        if values.shape != (C,):
            raise ValueError(f"argument 'function' must map an array of shape (C, D) = {xi.shape} to C values, "
                             f"got shape {values.shape}")
        codes = np.stack([_category_codes(c, C) for c in codes], axis=1) if codes else np.zeros((C, 0), np.int64)
        if summaries is not None and codes.shape[1] != summaries:
            raise ValueError(f"the statistic returned {codes.shape[1]} category code(s) per member but the state "
                             f"being advanced tracks {summaries} (was it saved by a run with another 'summary'?)")
        values = self.sign * values
        return np.where(np.isnan(values), -np.inf, values), codes

    def check_state(self, state: SplittingState) -> SplittingState:
        """Refuse a state made by a sampler with other settings (target, p0, acceptance, n, D, direction, seed)."""
        if not isinstance(state, SplittingState):
            raise TypeError(f"argument 'state' must be a SplittingState, got {type(state).__name__}")
        if not np.array_equal(state.settings, self.settings) or not np.array_equal(state.seed, self.seed_array):
            raise ValueError("argument 'state' was saved by a run with other settings (threshold, direction, "
                             "level_probability, target_acceptance, population, dimension or seed) and cannot "
                             "resume this one")
        return state

    # -- the algorithm --------------------------------------------------------------------------------------------

    def start(self, repeat: int) -> SplittingState:
        """Level 0 of repeat ``repeat``: ``n`` iid draws from the children of ``SeedSequence(seed, spawn_key=(repeat,
        0))``."""
        repeat = validation.integer("repeat", repeat, minimum=0)
        n, D = self.population, self.dimension
        xi = self._level0_normals(repeat)
        values, codes = self._evaluate(xi)
        beyond = float(np.mean(values > self.target))
        if beyond > 0.5:
            raise ValueError(
                f"argument 'threshold' = {self.threshold!r} is not a rare event: {beyond:.0%} of {n} plain draws "
                f"are already beyond it (direction={self.direction!r}); use plain Monte Carlo (sample_confusion)")
        empty = np.zeros(0)
        category, detail = (codes[:, i] if codes.shape[1] > i else np.zeros(0, np.int64) for i in (0, 1))
        return SplittingState(
            repeat=repeat, xi=xi, values=values, chain=np.arange(n, dtype=np.int64), step=np.zeros(n, np.int64),
            levels=empty, conditional=empty, gammas=empty, acceptance=empty, sigmas=empty,
            history=np.sort(values)[None, :], category=category, detail=detail,
            category_counts=_append_counts(np.zeros((0, 0), np.int64), category if category.size else None),
            seed_counts=np.zeros((0, 0), np.int64), cross_moves=np.zeros(0, np.int64),
            detail_counts=_append_counts(np.zeros((0, 0), np.int64), detail if detail.size else None),
            evaluations=n, final_fraction=math.nan, final_gamma=math.nan, settings=self.settings.copy(),
            seed=self.seed_array.copy())

    def advance(self, state: SplittingState) -> SplittingState:
        """One level: threshold, seeds and chains; or, if the target is within reach, the final fraction."""
        self.check_state(state)
        if state.done:
            return state
        n, values = self.population, state.values
        beyond = values > self.target
        if beyond.sum() >= self.n_seeds:
            return replace(state, final_fraction=float(beyond.mean()),
                           final_gamma=correlation_factor(beyond.astype(float), state.chain, state.step))
        level = state.level + 1
        if level > self.max_levels:
            reached = float(np.prod(state.conditional))
            raise ValueError(
                f"argument 'threshold' = {self.threshold!r} was not reached after max_levels = {self.max_levels} "
                f"levels (probability below {reached:.3g}); the smallest probability this can estimate is "
                f"about {SMALLEST_PROBABILITY:g} (raise 'max_levels' if it was set low)")
        # The next level is the largest value below the n_s-th largest: the (n_s + 1)-th largest when there are
        # no ties.  Ties come from rejected moves (copies of one point, a null set for a continuous law): they
        # all join the seeds and p = m / n counts them.  Ties from a plateau of the statistic (positive mass at
        # one value) would keep the chains on the plateau forever: refused when they make p > 1/2.
        top = np.sort(values)[::-1][self.n_seeds - 1]
        below = values[values < top]
        m = int(np.count_nonzero(values >= top))
        if below.size == 0 or not np.isfinite(top) or m > n / 2:
            raise ChainsStoppedMoving(
                f"level {level}: {m} of {n} members share the statistic's value {self.sign * top!r} at the "
                f"{1 - self.level_probability:g} quantile (ties): the statistic is flat (a plateau) or undefined "
                f"(NaN) there, the chains cannot move past it and the estimate would be meaningless")
        b = float(below.max())
        seeds = np.flatnonzero(values > b)
        p = m / n
        gamma = correlation_factor((values > b).astype(float), state.chain, state.step)
        lengths = n // m + (np.arange(m) < n % m)  # non-increasing: the chains alive at a step are a prefix
        # chains 16 i .. 16 i + 15 move with stream (repeat, level, i)
        streams = self._streams(state.repeat, level, math.ceil(m / CHAIN_ROWS))
        sigma = state.sigmas[-1] if state.level else INITIAL_SIGMA
        summaries = state.summaries
        current_xi, current_v, current_c = state.xi[seeds], values[seeds].copy(), state.codes[seeds]
        seed_categories = current_c[:, 0].copy() if summaries else None
        new_xi = np.empty_like(state.xi)
        new_v, chain, step = np.empty(n), np.empty(n, np.int64), np.empty(n, np.int64)
        new_c = np.empty((n, summaries), np.int64)
        new_xi[:m], new_v[:m], new_c[:m], chain[:m], step[:m] = current_xi, current_v, current_c, np.arange(m), 0
        buffer = np.empty((m, self.dimension))
        filled, accepted, proposed, crossed = m, 0, 0, 0
        with _pool(m * self.dimension) as pool:
            for j in range(1, int(lengths[0])):
                alive = int(np.count_nonzero(lengths > j))
                rho = math.sqrt(1.0 - sigma * sigma)
                proposal = buffer[:alive]

                def work(part, rho=rho, sigma=sigma, proposal=proposal, alive=alive):
                    # xi' = rho xi + sigma zeta, block by block in place
                    for i in part:
                        rows = slice(i * CHAIN_ROWS, min((i + 1) * CHAIN_ROWS, alive))
                        block = proposal[rows]
                        streams[i].standard_normal(out=block)
                        block *= sigma
                        block += rho * current_xi[rows]

                self._parallel(pool, math.ceil(alive / CHAIN_ROWS), work, alive * self.dimension)
                proposal_v, proposal_c = self._evaluate(proposal, summaries)
                accept = proposal_v > b
                if summaries:
                    crossed += int(np.count_nonzero(accept & (proposal_c[:, 0] != current_c[:alive, 0])))
                current_xi[:alive][accept] = proposal[accept]
                current_v[:alive][accept] = proposal_v[accept]
                current_c[:alive][accept] = proposal_c[accept]
                block = slice(filled, filled + alive)
                new_xi[block], new_v[block], new_c[block], chain[block], step[block] = \
                    current_xi[:alive], current_v[:alive], current_c[:alive], np.arange(alive), j
                filled += alive
                rate = float(accept.mean())
                accepted, proposed = accepted + int(accept.sum()), proposed + alive
                # Robbins-Monro on log sigma with a gain 1/sqrt(j) (Papaioannou et al. 2015): moves the step toward
                # the target acceptance quickly at the start of a level and settles it after.
                sigma = min(1.0, sigma * math.exp((rate - self.target_acceptance) / math.sqrt(j)))
        acceptance = accepted / proposed if proposed else 1.0
        if proposed and acceptance < MIN_ACCEPTANCE:
            raise ChainsStoppedMoving(
                f"level {level}: the chains accepted {acceptance:.2%} of {proposed} moves (below "
                f"{MIN_ACCEPTANCE:.0%}) even after adapting the step to sigma = {sigma:.3g}: the level set "
                f"{{S {'>' if self.sign > 0 else '<'} {self.sign * b!r}}} is too thin or too flat for the chains "
                f"to move, and the estimate would be meaningless")
        category = new_c[:, 0] if summaries else state.category
        detail = new_c[:, 1] if summaries > 1 else state.detail
        new = replace(
            state, xi=new_xi, values=new_v, chain=chain, step=step, levels=np.append(state.levels, b),
            conditional=np.append(state.conditional, p), gammas=np.append(state.gammas, gamma),
            acceptance=np.append(state.acceptance, acceptance), sigmas=np.append(state.sigmas, sigma),
            history=np.vstack([state.history, np.sort(new_v)[None, :]]), category=category, detail=detail,
            category_counts=_append_counts(state.category_counts, category if summaries else None),
            seed_counts=_append_counts(state.seed_counts, seed_categories),
            cross_moves=np.append(state.cross_moves, np.int64(crossed)),
            detail_counts=_append_counts(state.detail_counts, detail if summaries > 1 else None),
            evaluations=state.evaluations + (n - m))
        if self.strict and level in population_flags(new)[0]:
            raise PopulationCollapsed(collapse_message(new, level, getattr(self.function, "category_names", None)))
        return new

    def run(self, repeat: int = 0, state: SplittingState | None = None, on_level=None) -> SplittingState:
        """Run repeat ``repeat`` to the target (from ``state`` when resuming); ``on_level(state)`` after each level."""
        state = self.start(repeat) if state is None else self.check_state(state)
        if on_level is not None and state.level == 0 and not state.done:
            on_level(state)
        while not state.done:
            state = self.advance(state)
            if on_level is not None:
                on_level(state)
        return state

    def tail(self, state: SplittingState, grid: np.ndarray) -> np.ndarray:
        """``Pr[S > s]`` (internal orientation) of one finished repeat at each ``s`` of ``grid``.

        For ``s`` between ``b_k`` and ``b_{k+1}`` it is ``p_1 ... p_k`` times the
        fraction of level ``k``'s population above ``s`` (the conditional
        empirical tail), so one run gives the tail over all its decades; at
        ``s = target`` it is the estimate.
        """
        levels = np.concatenate([[-np.inf], state.levels])
        scale = np.concatenate([[1.0], np.cumprod(state.conditional)])
        k = np.searchsorted(levels, grid, side="right") - 1  # last level b_k <= s
        out = np.empty(grid.shape)
        for i, s in np.ndenumerate(grid):
            row = state.history[k[i]]
            out[i] = scale[k[i]] * (row.size - np.searchsorted(row, s, side="right")) / row.size
        return out


# ----------------------------------------------------------------------------------------------------------------
# Result
# ----------------------------------------------------------------------------------------------------------------

def _repeat_interval(estimates: np.ndarray, confidence: float = CONFIDENCE):
    r"""Interval for the mean of independent repeats (axis 0): ``mean +- t_{R-1} sd / sqrt(R)``, clipped to [0, 1].

    The Student-t interval of the mean on the probability itself (module
    docstring, "Interval"); the repeats are probabilities, so an end below 0
    becomes 0 and one above 1 becomes 1.
    """
    estimates = np.asarray(estimates, dtype=np.float64)
    R = estimates.shape[0]
    mean = estimates.mean(axis=0)
    half = stats.t.ppf(0.5 + confidence / 2, R - 1) * estimates.std(axis=0, ddof=1) / math.sqrt(R)
    return np.clip(mean - half, 0.0, 1.0), np.clip(mean + half, 0.0, 1.0)


@dataclass(frozen=True)
class RareTail:
    """A rare-event tail probability from independent subset-simulation repeats.

    Attributes
    ----------
    estimate : float
        Mean of the repeats' estimates of ``Pr[S > threshold]`` ("upper") or
        ``Pr[S < threshold]`` ("lower").
    interval : (float, float)
        95% interval from the repeats: the Student-t interval of the mean,
        ``estimate +- t_{R-1, 0.975} sd / sqrt(R)`` (``sd`` the repeats'
        sample standard deviation), clipped to ``[0, 1]`` (module docstring,
        "Interval").  This is the interval to report.
    coefficient_of_variation : float
        Au & Beck's approximate CoV of ``estimate`` from each repeat's own
        chains: ``sqrt(sum_r delta_r^2 P_r^2) / (R P)`` with ``delta_r``
        each repeat's ``sum_i (1 - p_i)/(p_i n)(1 + gamma_i)``.  It ignores
        the correlation between levels and understated the real spread about
        twofold at population 200 (issue 23): a diagnostic, not the interval.
    cov_interval : (float, float)
        ``estimate * exp(+- 1.96 delta)``: the log-normal band of that
        approximate CoV (not a confidence interval; see ``interval``).
    empirical_cov : float
        ``sd(P_r) / (sqrt(R) P)``, the CoV of ``estimate`` seen across the repeats.
    estimates, repeat_cov : (R,) arrays
        Each repeat's estimate and Au-Beck approximate ``delta_r``.
    levels, conditional, acceptance, rhos : tuples of R arrays
        Each repeat's thresholds ``b_k`` (in the statistic's own units), level
        probabilities ``p_k``, pCN acceptance rates and final ``rho`` per level.
    tail : pandas.DataFrame
        ``s, probability, lower, upper`` (the repeats' mean of the tail curve
        and its interval as ``interval``, in ``[0, 1]``), ``Pr[S > s]`` or
        ``Pr[S < s]`` on a grid from the level-0 median to the threshold.
    evaluations : int
        Statistic evaluations over all repeats.
    seed, seconds, config, versions
    branch_shares : tuple of R (levels_r + 1, B) arrays, or None
        Per repeat, row ``k``: the share of each category code ``0 .. B - 1``
        in level ``k``'s population (row 0: the plain Monte Carlo level),
        padded to a common ``B``; ``None`` when no categories were tracked
        (module docstring, "Categories and frozen populations").  For a
        network statistic code 0 is ``y_i y_j >= 0`` and code 1
        ``y_i y_j < 0`` of the pair attaining the statistic.
    cross_moves : tuple of R (levels_r,) int arrays, or None
        Accepted pCN moves of each level that changed a member's category.
    detail_shares : tuple of R (levels_r + 1, P) arrays, or None
        As ``branch_shares`` for the diagnostic detail code (for a network
        statistic: the attaining pair, in ``np.triu_indices(N, 1)`` order).
    collapsed_levels, uncrossed_levels : tuples of R int arrays
        Per repeat, the levels whose population collapsed into one category
        (while level 0 held at least two with shares ``>= MIN_BRANCH_SHARE``),
        and the levels whose chains made no cross move although their seeds
        held at least two categories.
    warnings : tuple of str
        Those flags in words, naming the repeat, the levels and the shares.
    """

    estimate: float
    interval: tuple
    coefficient_of_variation: float
    cov_interval: tuple
    empirical_cov: float
    estimates: np.ndarray
    repeat_cov: np.ndarray
    levels: tuple
    conditional: tuple
    acceptance: tuple
    rhos: tuple
    tail: pd.DataFrame
    evaluations: int
    seed: object
    seconds: float
    config: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    branch_shares: tuple | None = None
    cross_moves: tuple | None = None
    detail_shares: tuple | None = None
    collapsed_levels: tuple = ()
    uncrossed_levels: tuple = ()
    warnings: tuple = ()

    @property
    def collapsed_repeats(self) -> list[int]:
        """The repeats with at least one collapsed level."""
        return [r for r, levels in enumerate(self.collapsed_levels) if len(levels)]

    def to_frame(self) -> pd.DataFrame:
        """The tail curve (``s, probability, lower, upper``); the scalar results in ``.attrs``."""
        frame = self.tail.copy()
        frame.attrs.update(estimate=self.estimate, interval=self.interval,
                           coefficient_of_variation=self.coefficient_of_variation, cov_interval=self.cov_interval,
                           evaluations=self.evaluations, seed=self.seed, seconds=self.seconds, config=self.config,
                           versions=self.versions, warnings=list(self.warnings))
        return frame


def _shares(tables) -> tuple | None:
    """Rows of counts per repeat -> rows of shares, padded to the widest repeat; None when nothing was tracked."""
    width = max(t.shape[1] for t in tables)
    if width == 0:
        return None
    return tuple(np.pad(t, ((0, 0), (0, width - t.shape[1]))) / t.sum(axis=1, keepdims=True) for t in tables)


def summarise_states(sampler: SubsetSimulation, states, seconds: float, config: dict, grid_points: int) -> RareTail:
    """The :class:`RareTail` of finished repeats ``states`` of ``sampler`` (``config``: extra entries).

    Raises :class:`PopulationCollapsed` when ``sampler.strict`` and a repeat collapsed (a state resumed from a
    store may have been made without ``strict``).
    """
    from .sampling import versions

    P = np.array([s.estimate for s in states])
    delta = np.array([s.coefficient_of_variation for s in states])
    R, mean = len(states), float(P.mean())
    cov = float(np.sqrt(np.sum((delta * P) ** 2)) / (R * mean))
    lower, upper = _repeat_interval(P)
    sign = sampler.sign
    start = min(float(np.median(s.history[0])) for s in states)
    grid = np.linspace(min(start, sampler.target), sampler.target, grid_points)
    curves = np.array([sampler.tail(s, grid) for s in states])
    c_lower, c_upper = _repeat_interval(curves)
    tail = pd.DataFrame({"s": sign * grid, "probability": curves.mean(axis=0), "lower": c_lower, "upper": c_upper})
    names = getattr(sampler.function, "category_names", None)
    flags = [population_flags(s) for s in states]
    if sampler.strict:
        for s, (collapsed, _) in zip(states, flags):
            if collapsed.size:
                raise PopulationCollapsed(collapse_message(s, int(collapsed[0]), names))
    tracked = any(s.summaries for s in states)
    return RareTail(
        estimate=mean, interval=(float(lower), float(upper)), coefficient_of_variation=cov,
        cov_interval=(mean * math.exp(-1.96 * cov), mean * math.exp(1.96 * cov)),
        empirical_cov=float(P.std(ddof=1) / (math.sqrt(R) * mean)), estimates=P, repeat_cov=delta,
        levels=tuple(sign * s.levels for s in states), conditional=tuple(s.conditional for s in states),
        acceptance=tuple(s.acceptance for s in states),
        rhos=tuple(np.sqrt(1 - s.sigmas**2) for s in states), tail=tail,
        evaluations=int(sum(s.evaluations for s in states)), seed=sampler.seed, seconds=seconds,
        config={"threshold": sampler.threshold, "direction": sampler.direction, "population": sampler.population,
                "level_probability": sampler.level_probability, "target_acceptance": sampler.target_acceptance,
                "repeats": R, "dimension": sampler.dimension, "strict": sampler.strict,
                "min_branch_share": MIN_BRANCH_SHARE,
                "category_names": list(names) if names is not None and tracked else None, **config},
        versions=versions(),
        branch_shares=_shares([s.category_counts for s in states]),
        cross_moves=tuple(s.cross_moves.copy() for s in states) if tracked else None,
        detail_shares=_shares([s.detail_counts for s in states]),
        collapsed_levels=tuple(f[0] for f in flags), uncrossed_levels=tuple(f[1] for f in flags),
        warnings=tuple(m for s in states for m in flag_messages(s, names)))


def _run_repeats(sampler, repeats, resume, on_level, progress):
    repeats = validation.integer("repeats", repeats, minimum=2)
    given = {}
    for state in (resume or ()):
        sampler.check_state(state)
        if not 0 <= state.repeat < repeats:
            raise ValueError(f"argument 'resume' holds a state of repeat {state.repeat}, outside 0..{repeats - 1}")
        given[state.repeat] = state
    states = []
    for r in tqdm(range(repeats), desc="subset simulation repeats", disable=not progress, leave=False):
        states.append(sampler.run(r, given.get(r), on_level))
    return states


def rare_tail_of(function, dimension, *, threshold, direction="upper", seed, population=1000,
                 level_probability=0.1, target_acceptance=0.3, repeats=DEFAULT_REPEATS, max_levels=None,
                 resume=None, on_level=None, grid_points=200, progress=False, config=None, summary=None,
                 strict=False) -> RareTail:
    """Subset simulation of ``Pr[f(xi) > threshold]`` (or ``<``) for ``xi ~ N(0, I_D)`` (module docstring).

    Parameters
    ----------
    function : callable ``(C, D) -> (C,)``
        The statistic, vectorised over chains (called once per MCMC step for
        all chains); it may also return ``(values, category[, detail])``
        (:class:`SubsetSimulation`).
    dimension : int
        ``D``.
    threshold, direction, seed, population, level_probability, target_acceptance, max_levels
        As in :class:`SubsetSimulation`.
    repeats : int >= 2
        Independent repeats (``spawn_key=(repeat, level)``); the interval comes
        from their spread (default 10: module docstring, "Interval").
    summary : callable ``(C, D) -> (C,)``, optional
        Non-negative integer category codes of the members (say which part of
        a rare event made of disconnected parts a member lies in); without
        one (and without codes from ``function``) no categories are tracked
        and nothing is flagged.
    strict : bool
        Raise :class:`PopulationCollapsed` when a level's population collapsed
        into one category; otherwise the collapse is in ``RareTail.warnings``.
    resume : iterable of SplittingState, optional
        States saved after some level (``SplittingState.from_arrays``);
        their repeats continue from there and end bit-identical to an
        uninterrupted run.
    on_level : callable, optional
        ``on_level(state)`` after level 0 and after every level of every repeat
        (to save the state).
    grid_points : int
        Points of the tail curve.
    config : dict, optional
        Extra entries for ``RareTail.config``.

    Returns
    -------
    RareTail

    Raises
    ------
    PopulationCollapsed
        Under ``strict=True``, naming the repeat, the level and the shares.
    """
    sampler = SubsetSimulation(function, dimension, threshold=threshold, direction=direction, seed=seed,
                               population=population, level_probability=level_probability,
                               target_acceptance=target_acceptance, max_levels=max_levels, summary=summary,
                               strict=strict)
    grid_points = validation.integer("grid_points", grid_points, minimum=2)
    start = time.perf_counter()
    states = _run_repeats(sampler, repeats, resume, on_level, progress)
    return summarise_states(sampler, states, time.perf_counter() - start, dict(config or {}), grid_points)


# ----------------------------------------------------------------------------------------------------------------
# Networks: a trial as a function of its standard normals
# ----------------------------------------------------------------------------------------------------------------

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


class _CountingSource(NormalSource):
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


_LAYER = re.compile(r"^(eta_star|min_cosine)_layer(\d+)$")
_QUANTILE = re.compile(r"^cosine_q(.+)$")
_PLAIN = ("eta_star", "min_cosine", "fraction_negative", "m_coherence", "gradient_diversity",
          "fraction_zero_gradient", "grad_norm_sq_mean", "grad_norm_sq_min", "grad_norm_sq_max",
          "fisher_lambda_max")


def accepted_statistics(depth: int) -> str:
    """A readable list of the accepted statistic names (for error messages)."""
    return (", ".join(repr(s) for s in _PLAIN) + f", 'cosine_q<q>' (q in [0, 1]), 'eta_star_layer<p>' and "
            f"'min_cosine_layer<p>' (p in 0..{depth}), 'norm_ratio', or a callable of the Gram G (C x N x N) "
            f"returning C values")


def _statistic_function(statistic, net):
    """``(name, reduce(G, blocks) -> (C,), needs_gram)`` for a statistic spec; ValueError naming 'statistic'."""
    from ..statistics import gram_statistics as gs

    if callable(statistic):
        return getattr(statistic, "__name__", repr(statistic)), (lambda G, blocks: statistic(G)), True
    if not isinstance(statistic, str):
        raise ValueError(f"argument 'statistic' must be one of {accepted_statistics(net.depth)}; got {statistic!r}")
    if statistic == "eta_star":
        return statistic, (lambda G, blocks: gs.eta_star(G)), True
    if statistic == "min_cosine":
        return statistic, (lambda G, blocks: gs.min_cosine(G)), True
    if statistic in _PLAIN:
        return statistic, (lambda G, blocks: gs.gram_statistics(G, None, ())[statistic]), True
    if statistic == "norm_ratio":
        if net.depth < 2:
            raise ValueError(f"argument 'statistic' = 'norm_ratio' (|z_(beta-1)|^2 / |z_0|^2) needs depth >= 2, "
                             f"got depth {net.depth}")
        return statistic, None, False
    match = _LAYER.match(statistic)
    if match and int(match.group(2)) <= net.depth:
        p, kind = int(match.group(2)), match.group(1)
        reduce = gs.eta_star if kind == "eta_star" else gs.min_cosine
        return statistic, (lambda G, blocks: reduce(blocks[:, p])), True
    match = _QUANTILE.match(statistic)
    if match:
        try:
            q = float(match.group(1))
        except ValueError:
            q = math.nan
        if 0 <= q <= 1:
            return statistic, (lambda G, blocks: gs.cosine_quantiles(G, (q,))[..., 0]), True
    raise ValueError(f"argument 'statistic' must be one of {accepted_statistics(net.depth)}; got {statistic!r}")


def _attaining_pair(statistic, net):
    """``locate(G, blocks) -> (C,)`` index (``np.triu_indices(N, 1)`` order) of the pair attaining the statistic.

    For ``min_cosine`` and ``min_cosine_layer<p>`` the pair with the smallest
    cosine, for ``eta_star`` and ``eta_star_layer<p>`` the pair with the
    smallest ``G_ij`` (``eta* = max(0, -min G_ij)``); ``None`` for the other
    statistics, which no single pair attains.  A NaN cosine never attains.
    """
    from ..statistics import gram_statistics as gs

    def smallest(M):
        i, j = np.triu_indices(M.shape[-1], k=1)
        pairs = M[..., i, j]
        return np.argmin(np.where(np.isnan(pairs), np.inf, pairs), axis=-1)

    if not isinstance(statistic, str):
        return None
    if statistic == "min_cosine":
        return lambda G, blocks: smallest(gs.cosine_matrix(G))
    if statistic == "eta_star":
        return lambda G, blocks: smallest(G)
    match = _LAYER.match(statistic)
    if match and int(match.group(2)) <= net.depth:
        p = int(match.group(2))
        if match.group(1) == "min_cosine":
            return lambda G, blocks: smallest(gs.cosine_matrix(blocks[:, p]))
        return lambda G, blocks: smallest(blocks[:, p])
    return None


def _norm_ratio(net, layers, biases, X):
    """``|z_(beta-1)|^2 / |z_0|^2`` of the first example: first and last hidden pre-activations (``spectra``).

    Pre-activations include the bias.  For a linear network with Strategy 4.1
    weights (``kappa = 1``) this is a product of ``beta - 1`` independent
    ``chi^2_width / width`` factors (``theory.chi_square_products``).
    """
    from ..draw.elementwise import activation_with_derivative
    from ..gram.lazy import pre_activation

    h = X
    for p in range(net.depth):
        z, _ = pre_activation(np, layers[p], h)
        if biases is not None:
            z = z + biases[p][..., None, :]
        if p == 0:
            first = (z[:, 0] ** 2).sum(-1)
        h, _ = activation_with_derivative(net.activation, z, np)
    last = (z[:, 0] ** 2).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return last / first


class NetworkStatistic:
    """A trial's statistic as a function of its ``D`` standard normals: ``f(xi) -> (C,)`` (callable).

    Draws exactly what one trial of ``sample_confusion`` draws, in the same
    order -- layers (and biases), sphere data, labels -- from a
    :class:`ReplaySource`, then computes the per-layer Gram on ``backend``
    and reduces it to the statistic.  The law of ``f(xi)`` for
    ``xi ~ N(0, I_D)`` is the law of the statistic in ``sample_confusion``
    (the numbers differ: ``sample_confusion`` draws block by block).

    For a statistic attained by one pair (``min_cosine``, ``eta_star`` and
    their ``_layer<p>`` forms; ``categorised`` is then true) a call returns
    ``(values, category, pair)``: ``category`` 0 when the attaining pair's
    labels have ``y_i y_j >= 0`` and 1 when ``y_i y_j < 0`` (the label-sign
    branch, ``category_names``), ``pair`` its index in
    ``np.triu_indices(N, 1)`` order -- computed from the same Gram in the
    same pass (module docstring, "Categories and frozen populations").
    """

    category_names = ("y_i y_j = +1", "y_i y_j = -1")

    def __init__(self, plan, statistic, quantiles=None):
        self.plan = plan
        self.name, self.reduce, self.needs_gram = _statistic_function(statistic, plan.net)
        self.locate = _attaining_pair(statistic, plan.net)
        self.categorised = self.locate is not None
        probe = _CountingSource(1)
        self._draw(probe)
        self.dimension = probe.count
        # chains per call: keep each call's drawn normals under MEMORY_PER_CALL
        self.chunk = max(1, MEMORY_PER_CALL // (8 * self.dimension))

    def _draw(self, source):
        from ..draw.data import sample_sphere
        from ..gram.lazy import draw_layers

        plan = self.plan
        C = source.xi.shape[0] if isinstance(source, ReplaySource) else source.chains
        layers, biases = draw_layers(plan.net, plan.n_samples, source, (C,), plan.modes)
        X = sample_sphere(plan.n_samples, plan.net.input_dim, source, batch=C)
        return layers, biases, X, plan.labels(X, source)

    def _values(self, xi):
        from .sampling import _layer_blocks

        plan = self.plan
        source = ReplaySource(xi)
        layers, biases, X, y = self._draw(source)
        source.finish()
        if not self.needs_gram:
            return _norm_ratio(plan.net, layers, biases, X)
        blocks = _layer_blocks(plan.backend, plan.net, layers, biases, X, np.asarray(y, dtype=np.float64),
                               plan.loss, plan.dtype, plan.device)
        blocks = np.asarray(blocks, dtype=np.float64)
        G = blocks.sum(axis=-3)
        values = np.asarray(self.reduce(G, blocks), dtype=np.float64)
        if values.shape != (xi.shape[0],):
            raise ValueError(f"argument 'statistic' must map the Grams (C x N x N, C = {xi.shape[0]}) to C values, "
                             f"got shape {values.shape}")
        if not self.categorised:
            return values
        pair = self.locate(G, blocks).astype(np.int64)
        i, j = np.triu_indices(plan.n_samples, k=1)
        y = np.asarray(y, dtype=np.float64).reshape(xi.shape[0], plan.n_samples)
        rows = np.arange(xi.shape[0])
        category = (y[rows, i[pair]] * y[rows, j[pair]] < 0).astype(np.int64)
        return values, category, pair

    def __call__(self, xi):
        """``(C,)`` values of the rows of ``xi`` (``(C, D)``); ``(values, category, pair)`` when ``categorised``."""
        xi = np.asarray(xi, dtype=np.float64)
        if xi.ndim != 2 or xi.shape[1] != self.dimension:
            raise ValueError(f"argument 'xi' must have shape (C, {self.dimension}), got {xi.shape}")
        parts = [self._values(xi[i:i + self.chunk]) for i in range(0, xi.shape[0], self.chunk)]
        if not self.categorised:
            return np.concatenate(parts)
        return tuple(np.concatenate(column) for column in zip(*parts))


def rare_tail(net, n_samples, *, statistic, threshold, direction="upper", labels, loss, seed, method="auto",
              backend="auto", population=1000, level_probability=0.1, target_acceptance=0.3,
              repeats=DEFAULT_REPEATS, max_levels=None, dtype="float64", device=None, resume=None, on_level=None,
              grid_points=200, progress=False, strict=False) -> RareTail:
    r"""Rare tail ``Pr[S > threshold]`` (or ``<``) of a trial statistic of ``sample_confusion``, by subset simulation.

    A trial (network from ``net``'s initialisation, ``n_samples`` points
    uniform on the sphere, their labels) is a deterministic function of its
    ``D`` standard normals (:class:`NetworkStatistic`); the tail is estimated
    by subset simulation with pCN moves in that space (module docstring;
    Au & Beck 2001), with ``repeats`` independent repeats.

    Parameters
    ----------
    net : MLP
    n_samples : int >= 2
    statistic : str or callable
        A ``gram_statistics`` key -- ``"eta_star"``, ``"min_cosine"`` (for
        ``min cosine < -tau`` use ``direction="lower"``), ``"cosine_q<q>"``,
        ``"eta_star_layer<p>"``, ``"min_cosine_layer<p>"``, ... --,
        ``"norm_ratio"`` (``|z_(beta-1)|^2 / |z_0|^2`` of the first example,
        first and last hidden pre-activations, from the drawn layers without
        the Gram), or a callable ``G (C x N x N) -> (C,)``.
    threshold : float
    direction : "upper" (``Pr[S > threshold]``) or "lower" (``Pr[S < threshold]``)
    labels, loss, method, backend, dtype, device
        As in ``sample_confusion`` (numpy random source).
    seed : int >= 0 or a sequence of them
        Level ``k`` of repeat ``r`` draws from ``SeedSequence(seed, spawn_key=(r, k))``.
    population, level_probability, target_acceptance, repeats, max_levels, resume, on_level, grid_points, strict
        As in :func:`rare_tail_of` (``repeats`` 10 by default).
    progress : show a progress bar over repeats.

    Returns
    -------
    RareTail
        ``config`` records the network, ``n_samples``, labels, loss, statistic,
        sampling method, backend and ``D``.  For ``min_cosine``, ``eta_star``
        and their ``_layer<p>`` forms the categories are the label-sign
        branches of the attaining pair (``branch_shares``, ``cross_moves``,
        ``warnings``; :class:`NetworkStatistic`).

    Raises
    ------
    ValueError
        Bad input (naming the argument), a threshold most plain draws already
        pass, or a probability below ``1e-300``.
    ChainsStoppedMoving
        When the chains of some level cannot move (a plateau of the
        statistic, or acceptance below 1% after adaptation).
    PopulationCollapsed
        Under ``strict=True``, when a level's population fell into one
        label-sign branch (naming the repeat, the level and the shares).
    """
    sampler, config = network_sampler(net, n_samples, statistic=statistic, threshold=threshold,
                                      direction=direction, labels=labels, loss=loss, seed=seed, method=method,
                                      backend=backend, population=population, level_probability=level_probability,
                                      target_acceptance=target_acceptance, max_levels=max_levels, dtype=dtype,
                                      device=device, strict=strict)
    grid_points = validation.integer("grid_points", grid_points, minimum=2)
    start = time.perf_counter()
    states = _run_repeats(sampler, repeats, resume, on_level, progress)
    return summarise_states(sampler, states, time.perf_counter() - start, config, grid_points)


def network_sampler(net, n_samples, *, statistic, threshold, direction="upper", labels, loss, seed, method="auto",
                    backend="auto", population=1000, level_probability=0.1, target_acceptance=0.3,
                    max_levels=None, dtype="float64", device=None, strict=False):
    """The :class:`SubsetSimulation` of a network statistic, and the config :func:`rare_tail` records.

    Arguments as in :func:`rare_tail`; used by it and by the resumable, distributed runs of ``tail_run``.
    """
    from ..gram.lazy import describe_modes
    from .sampling import _plan

    plan = _plan(net, n_samples, 1, labels, loss, seed, backend, dtype, method, None, "numpy", device)
    function = NetworkStatistic(plan, statistic)
    config = {**plan.config(), "statistic": function.name, "method": describe_modes(plan.modes),
              "backend": plan.backend}
    sampler = SubsetSimulation(function, function.dimension, threshold=threshold, direction=direction, seed=seed,
                               population=population, level_probability=level_probability,
                               target_acceptance=target_acceptance, max_levels=max_levels, strict=strict)
    return sampler, config
