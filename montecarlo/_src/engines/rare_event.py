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
whose draws are independent).  It neglects the correlation between levels.

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


# ----------------------------------------------------------------------------------------------------------------
# Per-level state
# ----------------------------------------------------------------------------------------------------------------

_STATE_ARRAYS = ("xi", "values", "chain", "step", "levels", "conditional", "gammas", "acceptance", "sigmas",
                 "history")


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
    def estimate(self) -> float:
        """``p_1 ... p_k * final_fraction`` (NaN before the target is reached)."""
        return float(np.prod(self.conditional) * self.final_fraction)

    @property
    def coefficient_of_variation(self) -> float:
        """Au & Beck's ``delta`` (module docstring) of this repeat's estimate (NaN before the end)."""
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
        """Inverse of :meth:`to_arrays` (``arrays`` may be an open ``np.load`` of the ``.npz``)."""
        missing = [k for k in (*_STATE_ARRAYS, "repeat", "evaluations", "final", "settings", "seed")
                   if k not in arrays]
        if missing:
            raise ValueError(f"argument 'arrays' must hold a saved SplittingState; missing {', '.join(missing)}")
        final = np.asarray(arrays["final"], dtype=np.float64)
        parts = {name: np.array(arrays[name]) for name in _STATE_ARRAYS}
        return cls(repeat=int(arrays["repeat"]), evaluations=int(arrays["evaluations"]),
                   final_fraction=float(final[0]), final_gamma=float(final[1]),
                   settings=np.array(arrays["settings"], dtype=np.float64),
                   seed=np.array(arrays["seed"], dtype=np.int64), **parts)


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
        to ``(C,)`` values.  NaN values count as never beyond any level.
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
    """

    def __init__(self, function, dimension, *, threshold, direction="upper", seed, population=1000,
                 level_probability=0.1, target_acceptance=0.3, max_levels=None):
        if not callable(function):
            raise TypeError(f"argument 'function' must be a callable f(xi) -> values, got {function!r}")
        self.function = function
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

    def _evaluate(self, xi: np.ndarray) -> np.ndarray:
        """Internal values ``sign * f(xi)``; NaN (an undefined statistic) becomes ``-inf``."""
        values = np.asarray(self.function(xi), dtype=np.float64)
        if values.shape != (xi.shape[0],):
            raise ValueError(f"argument 'function' must map an array of shape (C, D) = {xi.shape} to C values, "
                             f"got shape {values.shape}")
        values = self.sign * values
        return np.where(np.isnan(values), -np.inf, values)

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
        values = self._evaluate(xi)
        beyond = float(np.mean(values > self.target))
        if beyond > 0.5:
            raise ValueError(
                f"argument 'threshold' = {self.threshold!r} is not a rare event: {beyond:.0%} of {n} plain draws "
                f"are already beyond it (direction={self.direction!r}); use plain Monte Carlo (sample_confusion)")
        empty = np.zeros(0)
        return SplittingState(
            repeat=repeat, xi=xi, values=values, chain=np.arange(n, dtype=np.int64), step=np.zeros(n, np.int64),
            levels=empty, conditional=empty, gammas=empty, acceptance=empty, sigmas=empty,
            history=np.sort(values)[None, :], evaluations=n, final_fraction=math.nan, final_gamma=math.nan,
            settings=self.settings.copy(), seed=self.seed_array.copy())

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
        current_xi, current_v = state.xi[seeds], values[seeds].copy()
        new_xi = np.empty_like(state.xi)
        new_v, chain, step = np.empty(n), np.empty(n, np.int64), np.empty(n, np.int64)
        new_xi[:m], new_v[:m], chain[:m], step[:m] = current_xi, current_v, np.arange(m), 0
        buffer = np.empty((m, self.dimension))
        filled, accepted, proposed = m, 0, 0
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
                proposal_v = self._evaluate(proposal)
                accept = proposal_v > b
                current_xi[:alive][accept] = proposal[accept]
                current_v[:alive][accept] = proposal_v[accept]
                block = slice(filled, filled + alive)
                new_xi[block], new_v[block], chain[block], step[block] = current_xi[:alive], current_v[:alive], \
                    np.arange(alive), j
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
        return replace(
            state, xi=new_xi, values=new_v, chain=chain, step=step, levels=np.append(state.levels, b),
            conditional=np.append(state.conditional, p), gammas=np.append(state.gammas, gamma),
            acceptance=np.append(state.acceptance, acceptance), sigmas=np.append(state.sigmas, sigma),
            history=np.vstack([state.history, np.sort(new_v)[None, :]]),
            evaluations=state.evaluations + (n - m))

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

def _repeat_interval(estimates: np.ndarray, confidence: float = 0.95):
    r"""Interval for the mean of independent repeats: ``mean * exp(+- t_{R-1} c / sqrt(R))``, ``c = sd / mean``.

    A Student-t interval for the mean computed on the log scale (the delta
    method for ``log mean``), which keeps it positive and right-skewed like
    the estimator itself.  NaN when the mean is 0.
    """
    estimates = np.asarray(estimates, dtype=np.float64)
    R = estimates.shape[0]
    mean = estimates.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = estimates.std(axis=0, ddof=1) / mean
        half = stats.t.ppf(0.5 + confidence / 2, R - 1) * c / math.sqrt(R)
        return mean * np.exp(-half), mean * np.exp(half)


@dataclass(frozen=True)
class RareTail:
    """A rare-event tail probability from independent subset-simulation repeats.

    Attributes
    ----------
    estimate : float
        Mean of the repeats' estimates of ``Pr[S > threshold]`` ("upper") or
        ``Pr[S < threshold]`` ("lower").
    interval : (float, float)
        95% interval from the repeats: ``estimate * exp(+- t_{R-1, 0.975} c / sqrt(R))``
        with ``c`` the repeats' sample coefficient of variation (a Student-t
        interval on the log scale).
    coefficient_of_variation : float
        Au & Beck's ``delta`` of ``estimate``: ``sqrt(sum_r delta_r^2 P_r^2) / (R P)``
        with ``delta_r`` each repeat's ``sum_i (1 - p_i)/(p_i n)(1 + gamma_i)``.
    cov_interval : (float, float)
        ``estimate * exp(+- 1.96 delta)``: the log-normal 95% interval of that CoV.
    empirical_cov : float
        ``sd(P_r) / (sqrt(R) P)``, the CoV of ``estimate`` seen across the repeats.
    estimates, repeat_cov : (R,) arrays
        Each repeat's estimate and Au-Beck ``delta_r``.
    levels, conditional, acceptance, rhos : tuples of R arrays
        Each repeat's thresholds ``b_k`` (in the statistic's own units), level
        probabilities ``p_k``, pCN acceptance rates and final ``rho`` per level.
    tail : pandas.DataFrame
        ``s, probability, lower, upper`` (the repeats' mean of the tail curve
        and its interval as above), ``Pr[S > s]`` or ``Pr[S < s]`` on a grid
        from the level-0 median to the threshold.
    evaluations : int
        Statistic evaluations over all repeats.
    seed, seconds, config, versions
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

    def to_frame(self) -> pd.DataFrame:
        """The tail curve (``s, probability, lower, upper``); the scalar results in ``.attrs``."""
        frame = self.tail.copy()
        frame.attrs.update(estimate=self.estimate, interval=self.interval,
                           coefficient_of_variation=self.coefficient_of_variation, cov_interval=self.cov_interval,
                           evaluations=self.evaluations, seed=self.seed, seconds=self.seconds, config=self.config,
                           versions=self.versions)
        return frame


def summarise_states(sampler: SubsetSimulation, states, seconds: float, config: dict, grid_points: int) -> RareTail:
    """The :class:`RareTail` of finished repeats ``states`` of ``sampler`` (``config``: extra entries)."""
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
                "repeats": R, "dimension": sampler.dimension, **config},
        versions=versions())


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
                 level_probability=0.1, target_acceptance=0.3, repeats=4, max_levels=None, resume=None,
                 on_level=None, grid_points=200, progress=False, config=None) -> RareTail:
    """Subset simulation of ``Pr[f(xi) > threshold]`` (or ``<``) for ``xi ~ N(0, I_D)`` (module docstring).

    Parameters
    ----------
    function : callable ``(C, D) -> (C,)``
        The statistic, vectorised over chains (called once per MCMC step for
        all chains).
    dimension : int
        ``D``.
    threshold, direction, seed, population, level_probability, target_acceptance, max_levels
        As in :class:`SubsetSimulation`.
    repeats : int >= 2
        Independent repeats (``spawn_key=(repeat, level)``); the interval comes
        from their spread.
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
    """
    sampler = SubsetSimulation(function, dimension, threshold=threshold, direction=direction, seed=seed,
                               population=population, level_probability=level_probability,
                               target_acceptance=target_acceptance, max_levels=max_levels)
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
    """

    def __init__(self, plan, statistic, quantiles=None):
        self.plan = plan
        self.name, self.reduce, self.needs_gram = _statistic_function(statistic, plan.net)
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
        values = np.asarray(self.reduce(blocks.sum(axis=-3), blocks), dtype=np.float64)
        if values.shape != (xi.shape[0],):
            raise ValueError(f"argument 'statistic' must map the Grams (C x N x N, C = {xi.shape[0]}) to C values, "
                             f"got shape {values.shape}")
        return values

    def __call__(self, xi):
        xi = np.asarray(xi, dtype=np.float64)
        if xi.ndim != 2 or xi.shape[1] != self.dimension:
            raise ValueError(f"argument 'xi' must have shape (C, {self.dimension}), got {xi.shape}")
        parts = [self._values(xi[i:i + self.chunk]) for i in range(0, xi.shape[0], self.chunk)]
        return np.concatenate(parts)


def rare_tail(net, n_samples, *, statistic, threshold, direction="upper", labels, loss, seed, method="auto",
              backend="auto", population=1000, level_probability=0.1, target_acceptance=0.3, repeats=4,
              max_levels=None, dtype="float64", device=None, resume=None, on_level=None, grid_points=200,
              progress=False) -> RareTail:
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
    population, level_probability, target_acceptance, repeats, max_levels, resume, on_level, grid_points
        As in :func:`rare_tail_of`.
    progress : show a progress bar over repeats.

    Returns
    -------
    RareTail
        ``config`` records the network, ``n_samples``, labels, loss, statistic,
        sampling method, backend and ``D``.

    Raises
    ------
    ValueError
        Bad input (naming the argument), a threshold most plain draws already
        pass, or a probability below ``1e-300``.
    ChainsStoppedMoving
        When the chains of some level cannot move (a plateau of the
        statistic, or acceptance below 1% after adaptation).
    """
    sampler, config = network_sampler(net, n_samples, statistic=statistic, threshold=threshold,
                                      direction=direction, labels=labels, loss=loss, seed=seed, method=method,
                                      backend=backend, population=population, level_probability=level_probability,
                                      target_acceptance=target_acceptance, max_levels=max_levels, dtype=dtype,
                                      device=device)
    grid_points = validation.integer("grid_points", grid_points, minimum=2)
    start = time.perf_counter()
    states = _run_repeats(sampler, repeats, resume, on_level, progress)
    return summarise_states(sampler, states, time.perf_counter() - start, config, grid_points)


def network_sampler(net, n_samples, *, statistic, threshold, direction="upper", labels, loss, seed, method="auto",
                    backend="auto", population=1000, level_probability=0.1, target_acceptance=0.3,
                    max_levels=None, dtype="float64", device=None):
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
                               target_acceptance=target_acceptance, max_levels=max_levels)
    return sampler, config
