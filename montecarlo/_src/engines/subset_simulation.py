r"""Subset simulation (Au & Beck 2001) of a rare tail ``Pr[f(xi) > t]`` for ``xi ~ N(0, I_D)``, any ``f``.

Generic in ``f``: any vectorised function of standard normals
(``rare_tail_of``); ``trial_tail.py`` makes a trial of a random network such
a function.  A tail ``Pr[S(xi) > s]`` far below ``1 / trials`` is estimated
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
tests in ``tests/engines/test_rare_event.py`` bound.

Error (Au & Beck 2001, eqs. 27-29, 31): the coefficient of variation of one
repeat is ``delta^2 = sum_i (1 - p_i) / (p_i n) (1 + gamma_i)`` over the levels
and the final fraction, with ``gamma_i = 2 sum_{k >= 1} (N_k / n) rho_i(k)``:
``rho_i(k)`` the lag-``k`` autocorrelation of the indicator ``1{S > b_i}``
along the chains of level ``i - 1`` and ``N_k`` the number of lag-``k`` pairs
(``(1 - k / N_s) n`` for equal chain lengths ``N_s``; ``gamma = 0`` at level 0,
whose draws are independent).  It neglects the correlation between levels, so
it is Au-Beck's *approximate* CoV of one repeat, not an interval: on F16's
network at population 200 it understated the real spread of the repeats about
twofold (``benchmarks/results/subset_coverage.md``).

Categories of members and the flags of a frozen population: ``splitting_state.py``'s docstring.

Interval: the repeats' mean with its Student-t interval (``tail_result.py``'s docstring).

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
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
from tqdm.auto import tqdm

from .. import validation
from ..draw.random_source import check_seed
from .settings import DEFAULT_REPEATS, DIRECTIONS
from .splitting_state import (PopulationCollapsed, SplittingState, _append_counts, _category_codes,
                              collapse_message, population_flags)
from .tail_result import RareTail, summarise_states

INITIAL_SIGMA = 0.6  # pCN step sqrt(1 - rho^2) at level 1 (rho = 0.8)
MIN_ACCEPTANCE = 0.01  # a level whose chains accept fewer moves has stopped moving
SMALLEST_PROBABILITY = 1e-300  # below this the product of level probabilities leaves float64
LEVEL0_ROWS = 64  # level-0 draws per random stream
CHAIN_ROWS = 16  # chains per random stream at levels >= 1
PARALLEL_SIZE = 2**18  # normals per draw above which the drawing is split over threads
MIN_POPULATION = 10  # members per level
MIN_REPEATS = 2  # the interval comes from the repeats' spread: one repeat has none
MIN_GRID_POINTS = 2  # points of the tail curve: the level-0 median and the threshold at least


# ----------------------------------------------------------------------------------------------------------------
# The settings' rules: one per setting, applied by SubsetSimulation, rare_tail_of, rare_tail and TailSpec alike
# ----------------------------------------------------------------------------------------------------------------

def _real(name: str, value, accepted: str, inside) -> float:
    """``value`` as a float when it is a real number (not a bool, not a string) with ``inside(value)``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not np.isfinite(value) or not inside(value):
        raise ValueError(f"argument '{name}' must be {accepted}, got {value!r}")
    return float(value)


def check_threshold(value) -> float:
    """The target ``t``: a finite real number."""
    return _real("threshold", value, "a finite real number", lambda v: True)


def check_population(value) -> int:
    """``n``, members per level: an integer >= ``MIN_POPULATION``."""
    return validation.integer("population", value, minimum=MIN_POPULATION)


def check_level_probability(value) -> float:
    """``p0``, the fraction of each level kept as seeds: a number in (0, 0.5]."""
    return _real("level_probability", value, "a number in (0, 0.5]", lambda v: 0 < v <= 0.5)


def check_target_acceptance(value) -> float:
    """The pCN acceptance rate the step is adapted toward: a number in (0, 1)."""
    return _real("target_acceptance", value, "a number in (0, 1)", lambda v: 0 < v < 1)


def check_max_levels(value) -> int | None:
    """Most levels before giving up: ``None`` (enough to reach ``SMALLEST_PROBABILITY``) or an integer >= 1."""
    return None if value is None else validation.integer("max_levels", value, minimum=1)


def check_repeats(value) -> int:
    """Independent repeats behind the interval: an integer >= ``MIN_REPEATS``."""
    return validation.integer("repeats", value, minimum=MIN_REPEATS)


def check_grid_points(value) -> int:
    """Points of the tail curve: an integer >= ``MIN_GRID_POINTS``."""
    return validation.integer("grid_points", value, minimum=MIN_GRID_POINTS)


def check_direction(value) -> str:
    """``"upper"`` (``Pr[f > t]``) or ``"lower"`` (``Pr[f < t]``)."""
    return validation.choice("direction", value, DIRECTIONS)


#: The rule of each splitting setting (``check(value)`` returns it normalised, or raises naming the setting and
#: what is accepted).  ``TailSpec`` applies these to a configuration file's values, the engine to its arguments.
SETTING_CHECKS = {"threshold": check_threshold, "direction": check_direction, "seed": check_seed,
                  "population": check_population, "level_probability": check_level_probability,
                  "target_acceptance": check_target_acceptance, "max_levels": check_max_levels,
                  "repeats": check_repeats, "grid_points": check_grid_points}


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
        self.threshold = check_threshold(threshold)
        self.direction = check_direction(direction)
        self.sign = 1.0 if self.direction == "upper" else -1.0
        self.target = self.sign * self.threshold
        self.seed = check_seed(seed)
        self.population = check_population(population)
        self.level_probability = check_level_probability(level_probability)
        self.target_acceptance = check_target_acceptance(target_acceptance)
        self.n_seeds = max(1, int(round(self.level_probability * self.population)))
        if self.n_seeds >= self.population:
            raise ValueError(f"arguments 'population' and 'level_probability' keep {self.n_seeds} seeds of "
                             f"{self.population}: raise 'population'")
        # p0^levels must stay above 1e-300 (float64), so the levels are bounded accordingly.
        most = math.floor(math.log(SMALLEST_PROBABILITY) / math.log(self.n_seeds / self.population))
        self.max_levels = most if max_levels is None else check_max_levels(max_levels)
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
        n = self.population
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


def _run_repeats(sampler, repeats, resume, on_level, progress):
    """Every repeat of ``sampler`` (resuming the states of ``resume``); the arguments checked before any computing."""
    repeats = check_repeats(repeats)
    if on_level is not None and not callable(on_level):
        raise TypeError(f"argument 'on_level' must be None or a callable on_level(state) called after every level, "
                        f"got {on_level!r}")
    validation.flag("progress", progress)
    if resume is None:
        resume = ()
    elif isinstance(resume, SplittingState) or not isinstance(resume, Iterable):
        raise TypeError(f"argument 'resume' must be None or an iterable of SplittingState (one per repeat to "
                        f"resume), got {type(resume).__name__}")
    given = {}
    for i, state in enumerate(resume):
        if not isinstance(state, SplittingState):
            raise TypeError(f"argument 'resume' must hold SplittingState objects (saved by on_level, or "
                            f"SplittingState.from_arrays), got {type(state).__name__} at position {i}")
        try:
            sampler.check_state(state)
        except ValueError as error:
            raise ValueError(f"argument 'resume', position {i}: {error}") from None
        if not 0 <= state.repeat < repeats:
            raise ValueError(f"argument 'resume' holds a state of repeat {state.repeat}, outside 0..{repeats - 1}")
        if state.repeat in given:
            raise ValueError(f"argument 'resume' holds two states of repeat {state.repeat}: give one per repeat")
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
        from their spread (default 10: ``tail_result``'s docstring, "Interval").
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
    grid_points : int >= 2
        Points of the tail curve.
    progress : bool
        Show a progress bar over repeats.
    config : dict, optional
        Extra entries for ``RareTail.config``.

    Returns
    -------
    RareTail
        The repeats' mean with its 95% Student-t interval clipped to
        ``[0, 1]``, and the tail curve with its bounds, also in ``[0, 1]``
        (``tail_result``'s docstring, "Interval").

    Raises
    ------
    PopulationCollapsed
        Under ``strict=True``, naming the repeat, the level and the shares.
    """
    sampler = SubsetSimulation(function, dimension, threshold=threshold, direction=direction, seed=seed,
                               population=population, level_probability=level_probability,
                               target_acceptance=target_acceptance, max_levels=max_levels, summary=summary,
                               strict=strict)
    grid_points = check_grid_points(grid_points)
    if config is not None and not isinstance(config, Mapping):
        raise TypeError(f"argument 'config' must be None or a dict of extra entries for RareTail.config, got "
                        f"{type(config).__name__}")
    start = time.perf_counter()
    states = _run_repeats(sampler, repeats, resume, on_level, progress)
    return summarise_states(sampler, states, time.perf_counter() - start, dict(config or {}), grid_points)


