"""A bound with a free constant, fitted to a figure's tail table, and its collapse panel (F4, F6, F7).

``Bound`` holds one translation from a table's columns to the paper's
symbols (``depth -> beta``, ``n_samples -> N``, ``gain -> weight_norm``, ...)
and fits the constant with ``theory.fit_constant``, always with the
Clopper-Pearson ``upper`` limits as ``p_upper`` so that the verdict class
(``ConstantFit.verdict``) includes the check of direction.

The translation is montecarlo's (``montecarlo.THEORY_SYMBOLS``, the table
``montecarlo.fit_bound_constant`` reads too).  Why not
``montecarlo.fit_bound_constant`` itself: it hands the fit only the symbols
that the bound's expression contains, so the hypotheses the figures check
point by point (``gamma = 1/sqrt(2 beta)`` in Theorem 6.1, ``||W_p|| <= gain``
in Theorem 5.1 and Corollary 5.1) would go unchecked.  The figures also fix
which columns the fit sees and in what order (the order in which
``ConstantFit.describe`` names a point), so that their reports stay as they
were.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import montecarlo as mc
import theory

from .._style import colours


class Bound:
    """``result``'s failure bound with free ``constant``, read from ``columns`` of a table (in that order).

    ``fixed`` sets the other constants (``np.inf`` switches a term off).
    """

    def __init__(self, result, constant: str, columns, fixed: dict | None = None):
        self.result, self.constant, self.columns, self.fixed = result, constant, tuple(columns), dict(fixed or {})

    def symbols(self, table: pd.DataFrame) -> dict:
        """``{symbol: column values}`` of ``table``."""
        return {mc.THEORY_SYMBOLS[column]: table[column] for column in self.columns}

    def fit(self, table: pd.DataFrame) -> theory.ConstantFit:
        """The largest admissible constant on ``table`` (its ``lower``/``upper`` limits) and its verdict."""
        return theory.fit_constant(self.result, self.constant, table["lower"], fixed=self.fixed,
                                   p_upper=table["upper"], **self.symbols(table))

    def rate(self, table: pd.DataFrame):
        """The exponent at constant 1: the bound's main term is ``N^2 exp(-constant X)``, the collapse variable ``X``."""
        return self.result.evaluate_rate(**{self.constant: 1.0}, **self.symbols(table))

    def at(self, table: pd.DataFrame, fit: theory.ConstantFit):
        """The failure bound at the fitted constant at every row of ``table``."""
        return self.result.failure_bound(**self.fixed, **{self.constant: fit.upper}, **self.symbols(table))

    def record(self, table: pd.DataFrame, fit: theory.ConstantFit, suffix: str = "", per_point: bool = False):
        """Write ``<constant>_fit``, ``_verdict`` and ``_describe`` (and ``_point``) + ``suffix`` columns into ``table``."""
        if per_point:
            table[f"{self.constant}_point{suffix}"] = fit.per_point
        table[f"{self.constant}_fit{suffix}"] = fit.upper
        table[f"{self.constant}_verdict{suffix}"] = fit.verdict
        table[f"{self.constant}_describe{suffix}"] = fit.describe()


def collapse_panel(ax, data: pd.DataFrame, constant: str, *, xlabel: str, title: str) -> None:
    """``log(N^2 / Pr[eta* > eta])`` against ``X`` per depth, with the bound's line ``constant * X``.

    The bound holds at a point exactly when the point lies on or above the
    line.  Error bars from the Clopper-Pearson interval of ``Pr`` (the upper
    one capped at 50: an interval reaching 0 has none); points with no
    exceedance (``k = 0``) have no finite ordinate and are left out.  ``data``
    has the columns of ``Bound.record`` and ``X`` (``Bound.rate``).
    """
    value = data[f"{constant}_fit"].iloc[0]
    symbol = constant[0] + (f"_{constant[1:]}" if len(constant) > 1 else "")
    depths = sorted(data["depth"].unique())
    for depth, c in zip(depths, colours(len(depths))):
        g = data[(data["depth"] == depth) & (data["k"] > 0)]
        scale = g["n_samples"] ** 2
        y = np.log(scale / g["p"])
        below = y - np.log(scale / g["upper"])
        above = (np.log(scale / g["lower"].clip(lower=1e-300)) - y).clip(upper=50)
        ax.errorbar(g["X"], y, yerr=np.vstack([below, above]), fmt="o", ms=3, color=c, label=rf"$\beta$ = {depth}")
    x = np.geomspace(data["X"].min(), data["X"].max(), 100)
    ax.plot(x, value * x, "k--", label=rf"bound: ${symbol} X$, ${symbol}$ = {value:.2g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"$\log(N^2 / \Pr[\eta^\star > \eta])$ (all $\eta$)")
    ax.set_title(title)
    ax.legend(fontsize=6)
