r"""The result of independent subset-simulation repeats: :class:`RareTail`, its interval and per-repeat curves.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import validation
from ..provenance import versions
from ..statistics.means import mean_interval, mean_se
from .splitting_state import (MIN_BRANCH_SHARE, PopulationCollapsed, collapse_message, flag_messages,
                              population_flags)

CONFIDENCE = 0.95


def _repeat_interval(estimates: np.ndarray, confidence: float = CONFIDENCE):
    r"""Interval for the mean of independent repeats (axis 0): ``mean +- t_{R-1} sd / sqrt(R)``, clipped to [0, 1].

    The Student-t interval of the mean on the probability itself (module
    docstring, "Interval"); the repeats are probabilities, so an end below 0
    becomes 0 and one above 1 becomes 1.
    """
    mean, _, half = mean_interval(np.asarray(estimates, dtype=np.float64), axis=0, confidence=confidence)
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
        twofold at population 200 (``benchmarks/results/subset_coverage.md``): a diagnostic, not the interval.
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
        ``Pr[S < s]`` on a grid from the level-0 median to the threshold,
        about even in ``log Pr`` (:func:`tail_grid`).
    repeat_tails : (R, grid_points) array
        Each repeat's own tail curve on the grid of ``tail["s"]`` (``tail``'s
        ``probability`` is their mean).
    evaluations : int
        Statistic evaluations over all repeats.
    seed, seconds, config, versions
    branch_shares : tuple of R (levels_r + 1, B) arrays, or None
        Per repeat, row ``k``: the share of each category code ``0 .. B - 1``
        in level ``k``'s population (row 0: the plain Monte Carlo level),
        padded to a common ``B``; ``None`` when no categories were tracked
        (``splitting_state``'s docstring).  For a
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
    repeat_tails: np.ndarray
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

    def threshold_at(self, probability: float) -> float:
        """The threshold ``s`` whose tail probability is ``probability``, read off the tail curve.

        The inverse of the repeats' mean curve ``Pr[S > s]`` (or ``<``),
        interpolated linearly in ``log Pr`` between grid points: the level
        ``s`` with ``Pr = probability``, e.g. ``threshold_at(1e-10)``.  Refused
        (``ValueError`` naming 'probability') outside the probabilities the
        curve reaches, from about the level-0 median down to the estimate at
        the run's threshold: run with a more extreme threshold to go deeper.
        """
        p = validation.positive_real("probability", probability)
        curve = self.tail["probability"].to_numpy()
        s = self.tail["s"].to_numpy()
        keep = curve > 0
        if not (0 < p < 1) or not keep.any() or not curve[keep].min() <= p <= curve[keep].max():
            reached = (f"[{curve[keep].min():.3g}, {curve[keep].max():.3g}]" if keep.any() else "none")
            raise ValueError(f"argument 'probability' = {probability!r} lies outside the probabilities this tail "
                             f"curve reaches, {reached}: run rare_tail with a more extreme threshold to go deeper")
        # the curve is non-increasing along the grid (away from the median toward the threshold)
        order = np.argsort(-np.log(curve[keep]), kind="stable")
        return float(np.interp(-np.log(p), -np.log(curve[keep])[order], s[keep][order]))

    def summary(self) -> pd.DataFrame:
        """A small table, one row per repeat: its estimate, levels, evaluations, Au-Beck approximate CoV and
        whether its population collapsed; then the mean over repeats with the reported 95% interval."""
        rows = [{"repeat": r, "estimate": float(p), "levels": len(self.levels[r]), "acceptance_mean":
                 float(np.mean(self.acceptance[r])) if len(self.acceptance[r]) else np.nan,
                 "au_beck_cov": float(c), "collapsed": bool(len(self.collapsed_levels[r]))
                 if self.collapsed_levels else False}
                for r, (p, c) in enumerate(zip(self.estimates, self.repeat_cov))]
        rows.append({"repeat": "mean", "estimate": self.estimate, "lower": self.interval[0],
                     "upper": self.interval[1], "levels": np.nan, "au_beck_cov": self.coefficient_of_variation,
                     "collapsed": bool(self.collapsed_repeats)})
        return pd.DataFrame(rows).set_index("repeat")

    def __repr__(self) -> str:
        statistic = self.config.get("statistic", "S")
        sign = ">" if self.config.get("direction", "upper") == "upper" else "<"
        threshold = self.config.get("threshold", float("nan"))
        flags = f", {len(self.warnings)} warnings (.warnings)" if self.warnings else ""
        return (f"RareTail(Pr[{statistic} {sign} {threshold:g}] = {self.estimate:.4g}, 95% CI "
                f"[{self.interval[0]:.3g}, {self.interval[1]:.3g}], {len(self.estimates)} repeats, "
                f"{self.evaluations} evaluations, {self.seconds:.1f} s{flags}; .summary(), .tail, .threshold_at(p))")

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


def tail_grid(states, target: float, points: int) -> np.ndarray:
    """``points`` thresholds (internal orientation) from the level-0 median to ``target``, as dense in each level as
    in any other: spread evenly over the sorted level thresholds ``b_k`` of all repeats (interpolated between them).

    Each level holds a fraction ``p0`` of the one before, so this is about even in ``log Pr``: the deepest decades
    get as many points as the first (an even grid in ``s`` left the last decade a point or two, and
    :meth:`RareTail.threshold_at` coarse there).
    """
    start = min(min(float(np.median(s.history[0])) for s in states), target)
    knots = np.sort(np.concatenate([[start, target], *[s.levels for s in states]]))
    knots = knots[(knots >= start) & (knots <= target)]
    return np.interp(np.linspace(0, knots.size - 1, points), np.arange(knots.size), knots)


def summarise_states(sampler, states, seconds: float, config: dict, grid_points: int) -> RareTail:
    """The :class:`RareTail` of finished repeats ``states`` of ``sampler`` (a ``SubsetSimulation``; ``config``:
    extra entries).

    Raises :class:`PopulationCollapsed` when ``sampler.strict`` and a repeat collapsed (a state resumed from a
    store may have been made without ``strict``).
    """
    P = np.array([s.estimate for s in states])
    delta = np.array([s.coefficient_of_variation for s in states])
    R, mean = len(states), float(P.mean())
    cov = float(np.sqrt(np.sum((delta * P) ** 2)) / (R * mean))
    lower, upper = _repeat_interval(P)
    sign = sampler.sign
    grid = tail_grid(states, sampler.target, grid_points)
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
        empirical_cov=float(mean_se(P)[1] / mean), estimates=P, repeat_cov=delta,
        levels=tuple(sign * s.levels for s in states), conditional=tuple(s.conditional for s in states),
        acceptance=tuple(s.acceptance for s in states),
        rhos=tuple(np.sqrt(1 - s.sigmas**2) for s in states), tail=tail, repeat_tails=curves,
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


