r"""The state of one subset-simulation repeat after a level, and the categories its members carry.

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
looks healthy and the Au-Beck CoV does not see it (single repeats up to 155
times the truth on F16's network).  So every member carries a *category*, a
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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A category holding at least this share of level 0 counts as present: a later level holding one category
#: only, while level 0 held two such, is a collapsed population (module docstring).
MIN_BRANCH_SHARE = 0.05
MAX_CATEGORIES = 2**16  # category codes must lie in 0 .. MAX_CATEGORIES - 1 (counts are stored per code)


class PopulationCollapsed(RuntimeError):
    """Under ``strict=True``: a level's population fell into one category while level 0 held several.

    The message names the repeat, the level and the categories' shares at level 0 and there (module
    docstring, "Categories and frozen populations").
    """



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
        """Au & Beck's approximate ``delta`` (``subset_simulation``'s docstring, "Error") of this repeat's estimate (NaN before the end)."""
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


