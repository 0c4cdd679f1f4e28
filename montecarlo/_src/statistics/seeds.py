r"""Two configurations compared over seeds: a t interval on the difference of a per-seed statistic, and its verdict.

A training run is one draw of a random experiment (its seed fixes the
initialisation, the order of the examples and the minibatch pairs), so the
unit of evidence about a configuration is the seed: a statistic computed
from each run (the mean cosine of its minibatch pairs, their 5% quantile, the
epochs it took to reach a loss, its log final loss) is one independent
value per seed, and two configurations are compared by the difference of
those values.  :func:`compare_seeds` gives that difference ``b - a`` with a
t interval (Student's t, textbook):

* **paired** (``paired=True``): when the runs of ``a`` and ``b`` with the
  same seed are matched (the same initial weights, say), the differences
  ``d_s = b_s - a_s`` over the ``n`` seeds both have are the draws:
  ``mean(d) +- t_{n-1, 1-(1-c)/2} s_d / sqrt(n)`` (the paired t interval);
* **two-sample** (``paired=False``): otherwise the two sets of seeds are
  independent samples, and the interval is Welch's:
  ``mean(b) - mean(a) +- t_{nu, 1-(1-c)/2} sqrt(s_a^2/n_a + s_b^2/n_b)``
  with the Welch--Satterthwaite degrees of freedom
  ``nu = (s_a^2/n_a + s_b^2/n_b)^2 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1))``.

Both are exact for normal per-seed values (the paired one), or very nearly
so (Welch's), and approximate otherwise; with 5 to 10 seeds they assume
the per-seed statistic is roughly normal, which averages over many pairs
of minibatches are and a single minimum is not (hence the 5% quantile, not
the minimum, as the low-cosine statistic).  A verdict needs the interval
to exclude 0: "reproduced" when it lies on the expected side, "contradicted"
when on the other, "not resolved" when it contains 0.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .. import validation

#: The directions a comparison may expect of ``b - a``.
EXPECTED = ("higher", "lower")


@dataclass(frozen=True)
class SeedComparison:
    """The difference ``b - a`` of a per-seed statistic between two configurations, with its t interval.

    ``difference`` is the mean of the paired differences (paired) or the
    difference of the means (two-sample); ``lo`` and ``hi`` bound its
    ``confidence`` interval; ``se`` is its standard error and ``df`` the
    degrees of freedom of the t quantile; ``n_a`` and ``n_b`` count the
    seeds used (equal, the pairs, when paired); ``mean_a`` and ``mean_b``
    are the means of those seeds' values.  ``direction`` is "higher" or
    "lower" when the interval excludes 0 (``b`` above or below ``a``), else
    "not resolved"; ``verdict`` is "reproduced" / "contradicted" / "not
    resolved" against ``expect`` (``None`` when nothing was expected).
    """

    difference: float
    lo: float
    hi: float
    se: float
    df: float
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    paired: bool
    confidence: float
    method: str
    direction: str
    expect: str | None
    verdict: str | None

    def describe(self, digits: int = 3) -> str:
        """``"+0.120 [0.051, 0.189] (Welch t over 5 and 5 seeds)"``: the difference, its interval and the method."""
        seeds = (f"{self.n_a} seeds paired" if self.paired else f"{self.n_a} and {self.n_b} seeds")
        return (f"{self.difference:+.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}] "
                f"({self.method} over {seeds}, {round(100 * self.confidence):g}%)")


def _values(name: str, values) -> tuple[list, np.ndarray]:
    """``(seeds, values)`` of a mapping ``{seed: value}`` or a sequence (seeds 0, 1, ...), each a finite number."""
    if isinstance(values, Mapping):
        seeds, raw = list(values.keys()), list(values.values())
    elif isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"argument '{name}' must be a sequence of per-seed values or a mapping {{seed: value}}, got "
                        f"{type(values).__name__}")
    else:
        if np.ndim(values) != 1:
            raise ValueError(f"argument '{name}' must be one-dimensional (one value per seed), got shape "
                             f"{np.shape(values)}")
        raw = list(values)
        seeds = list(range(len(raw)))
    if any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in raw):
        bad = next(v for v in raw if isinstance(v, bool) or not isinstance(v, numbers.Real))
        raise TypeError(f"argument '{name}' must hold real numbers (one per seed), got {bad!r:.60}")
    array = np.asarray(raw, dtype=float)
    if not np.isfinite(array).all():
        raise ValueError(f"argument '{name}' must hold finite values (leave out the seeds whose statistic is "
                         f"undefined before comparing), got {array.tolist()!r:.120}")
    return seeds, array


def compare_seeds(a, b, *, paired: bool, expect: str | None = None, confidence: float = 0.95) -> SeedComparison:
    """Compare a per-seed statistic between configurations ``a`` and ``b``: ``b - a`` with a t interval (module
    docstring: paired t interval, or Welch's two-sample interval).

    Parameters
    ----------
    a, b : mapping ``{seed: value}`` or sequence of real numbers
        One finite value per seed (the statistic of that seed's run).  A
        sequence's values are seeds 0, 1, ... in order.
    paired : bool
        ``True`` when the runs of ``a`` and ``b`` with the same seed are
        matched (the same initial weights): the differences over the seeds
        both have are compared (paired t).  ``False``: the seeds are two
        independent samples (Welch's t).
    expect : "higher", "lower" or None
        The direction the claim expects of ``b`` against ``a``; it gives
        the verdict.
    confidence : float
        The interval's coverage, strictly between 0 and 1 (default 0.95).

    Returns
    -------
    SeedComparison
        The difference, its interval, the method and the verdict:
        "reproduced" when the interval excludes 0 on the expected side,
        "contradicted" when it excludes 0 on the other, else "not resolved".

    Raises
    ------
    TypeError, ValueError
        Naming the argument: values that are not finite real numbers, fewer
        than 2 seeds on a side (2 seeds paired in common), ``paired`` not a
        bool, ``expect`` not one of the above, ``confidence`` outside (0, 1).
    """
    paired = validation.flag("paired", paired)
    if expect is not None:
        validation.choice("expect", expect, EXPECTED)
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise ValueError(f"argument 'confidence' must be a number strictly between 0 and 1 (0.95 for a 95% "
                         f"interval), got {confidence!r:.60}")
    seeds_a, values_a = _values("a", a)
    seeds_b, values_b = _values("b", b)
    quantile = 1 - (1 - float(confidence)) / 2
    if paired:
        common = [s for s in seeds_a if s in set(seeds_b)]
        if len(common) < 2:
            raise ValueError(f"arguments 'a' and 'b' must share at least 2 seeds for a paired comparison, got "
                             f"{len(common)} in common (seeds of a: {seeds_a!r:.80}; of b: {seeds_b!r:.80})")
        index_a = {s: i for i, s in enumerate(seeds_a)}
        index_b = {s: i for i, s in enumerate(seeds_b)}
        va = values_a[[index_a[s] for s in common]]
        vb = values_b[[index_b[s] for s in common]]
        d = vb - va
        n = len(d)
        difference, se, df = float(d.mean()), float(d.std(ddof=1) / math.sqrt(n)), float(n - 1)
        n_a = n_b = n
        method = "paired t"
    else:
        for name, v in (("a", values_a), ("b", values_b)):
            if len(v) < 2:
                raise ValueError(f"argument '{name}' must hold at least 2 seeds' values for a two-sample "
                                 f"comparison (a sample variance), got {len(v)}")
        va, vb = values_a, values_b
        n_a, n_b = len(va), len(vb)
        qa, qb = va.var(ddof=1) / n_a, vb.var(ddof=1) / n_b
        difference, se = float(vb.mean() - va.mean()), float(math.sqrt(qa + qb))
        # Welch-Satterthwaite; both variances 0: no spread, the degrees of freedom of the pooled case
        df = float((qa + qb) ** 2 / (qa**2 / (n_a - 1) + qb**2 / (n_b - 1))) if qa + qb > 0 else float(n_a + n_b - 2)
        method = "Welch t"
    half = float(stats.t.ppf(quantile, df)) * se
    lo, hi = difference - half, difference + half
    direction = "higher" if lo > 0 else "lower" if hi < 0 else "not resolved"
    verdict = None
    if expect is not None:
        verdict = ("not resolved" if direction == "not resolved" else
                   "reproduced" if direction == expect else "contradicted")
    return SeedComparison(difference=difference, lo=lo, hi=hi, se=se, df=df, n_a=int(n_a), n_b=int(n_b),
                          mean_a=float(va.mean()), mean_b=float(vb.mean()), paired=paired,
                          confidence=float(confidence), method=method, direction=direction, expect=expect,
                          verdict=verdict)
