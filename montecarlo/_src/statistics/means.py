r"""The mean of independent values and its standard error: the one ``mean +- s.e.`` of the toolkit.

For ``n`` independent draws ``v_1, ..., v_n`` of a quantity with finite variance, the sample mean
``m = (1/n) sum v_i`` estimates its expectation with the standard error

    ``se = s / sqrt(n)``,   ``s^2 = (1 / (n - 1)) sum (v_i - m)^2``

(``s`` the sample standard deviation with Bessel's correction; textbook).  A 95% interval is then
``m +- 1.96 se`` for large ``n`` (the central limit theorem), ``m +- t_{n-1} se`` for small ``n``.
"""

from __future__ import annotations

import numpy as np


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
