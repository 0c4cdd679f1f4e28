r"""The mean of independent values and its standard error: the one ``mean +- s.e.`` of the toolkit.

For ``n`` independent draws ``v_1, ..., v_n`` of a quantity with finite variance, the sample mean
``m = (1/n) sum v_i`` estimates its expectation with the standard error

    ``se = s / sqrt(n)``,   ``s^2 = (1 / (n - 1)) sum (v_i - m)^2``

(``s`` the sample standard deviation with Bessel's correction; textbook).  A 95% interval is then
``m +- 1.96 se`` for large ``n`` (the central limit theorem), ``m +- t_{n-1} se`` for small ``n``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def mean_se(values, axis: int | None = None):
    """The mean of independent ``values`` and its standard error ``s / sqrt(n)`` (module docstring).

    Parameters
    ----------
    values : array_like of numbers
        Independent draws (trials, runs, networks).  NaN is not left out: filter undefined values first.
    axis : int or None
        The axis along which the draws lie (``None``: all entries are draws).

    Returns
    -------
    (mean, se) : floats, or arrays over the other axes
        ``se`` is NaN where fewer than 2 draws are given (no sample standard deviation).
    """
    values = np.asarray(values, dtype=float)
    n = values.size if axis is None else values.shape[axis]
    if n == 0:
        raise ValueError("argument 'values' must hold at least one draw")
    mean = values.mean(axis=axis)
    if n < 2:
        return mean, np.full_like(mean, np.nan)[()]
    return mean, values.std(axis=axis, ddof=1) / np.sqrt(n)


def mean_interval(values, axis: int | None = None, confidence: float = 0.95):
    """The mean of independent ``values``, its standard error and the half-width of its Student-t interval:
    ``mean +- t_{n-1, 1-(1-c)/2} se`` (module docstring; exact for normal draws, the small-``n`` form of
    ``mean +- 1.96 se``).

    Parameters
    ----------
    values, axis
        As :func:`mean_se`.
    confidence : float
        The interval's coverage ``c``, strictly between 0 and 1 (default 0.95).

    Returns
    -------
    (mean, se, half) : floats, or arrays over the other axes
        The interval is ``[mean - half, mean + half]``; ``se`` and ``half`` are NaN where fewer than 2 draws are
        given.
    """
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"argument 'confidence' must be a number strictly between 0 and 1 (0.95 for a 95% "
                         f"interval), got {confidence!r:.60}")
    mean, se = mean_se(values, axis=axis)
    n = np.size(values) if axis is None else np.shape(values)[axis]
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * se if n > 1 else np.full_like(se, np.nan)[()]
    return mean, se, half
