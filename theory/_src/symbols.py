"""The named symbols of the paper (Sankararaman et al., ICML 2020), shared by every result.

Problem and SGD (section 3): ``N`` examples, smoothness ``L``, PL constant
``mu``, step size ``alpha``, confusion bound ``eta``, horizon ``T``, initial gap
``Delta0 = F(w_0) - F*``.  Architecture (sections 4-6): depth ``beta``, width
``width`` (the paper's l), input dimension ``d``, Strategy 4.1's ``kappa``,
the gradient-scale constant ``zeta0``, ball radius ``r``, output scale
``gamma``.  ``c``, ``c1``, ``c2`` are the paper's unspecified absolute
constants, free positive symbols.

``DOMAINS`` declares, once per symbol, the values at which the results may be
evaluated (``Result`` checks every given value against it before evaluating,
and refuses anything outside with a ``ValueError`` naming the symbol).
Integrality is the one condition that is *flagged* rather than refused: the
formulas are analytic in ``N``, ``T``, ``beta``, ``width`` and ``d``, and their
real relaxation is what a root finder (``width_needed``) or a contour uses, so
a non-integer value evaluates and ``Result(...)`` lists it among the failing
hypotheses.
"""

import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

N = sp.Symbol("N", positive=True, integer=True)
L = sp.Symbol("L", positive=True)
mu = sp.Symbol("mu", positive=True)
alpha = sp.Symbol("alpha", positive=True)
eta = sp.Symbol("eta", nonnegative=True)
T = sp.Symbol("T", nonnegative=True, integer=True)
Delta0 = sp.Symbol("Delta0", nonnegative=True)
beta = sp.Symbol("beta", positive=True, integer=True)
width = sp.Symbol("width", positive=True, integer=True)
d = sp.Symbol("d", positive=True, integer=True)
kappa = sp.Symbol("kappa", positive=True)
zeta0 = sp.Symbol("zeta0", positive=True)
r = sp.Symbol("r", positive=True)
gamma = sp.Symbol("gamma", positive=True)

# The paper's unspecified absolute constants.
c = sp.Symbol("c", positive=True)
c1 = sp.Symbol("c1", positive=True)
c2 = sp.Symbol("c2", positive=True)
CONSTANTS = (c, c1, c2)

# Further quantities that hypotheses and derived results refer to.
epsilon = sp.Symbol("epsilon", positive=True)  # accuracy / threshold
delta = sp.Symbol("delta", positive=True)  # failure probability
inner_min = sp.Symbol("inner_min", real=True)  # min_{i != j} <grad f_i, grad f_j>
weight_norm = sp.Symbol("weight_norm", nonnegative=True)  # max_p ||W_p|| (operator norm)
data_norm = sp.Symbol("data_norm", nonnegative=True)  # max_i ||x_i||
s = sp.Symbol("s", positive=True)  # rescaling of every f_i in the scale test

LATEX_NAMES = {
    width: r"\ell",
    Delta0: r"\Delta_0",
    zeta0: r"\zeta_0",
    c1: r"c_1",
    c2: r"c_2",
    inner_min: r"\min_{i \neq j} \langle \nabla f_i, \nabla f_j \rangle",
    weight_norm: r"\max_p \|W_p\|",
    data_norm: r"\max_i \|x_i\|",
}

ALL = {sym.name: sym for sym in (
    N, L, mu, alpha, eta, T, Delta0, beta, width, d, kappa, zeta0, r, gamma, c, c1, c2,
    epsilon, delta, inner_min, weight_norm, data_norm, s,
)}

# For the reconstructed identity of Theorem 6.1 and the sphere law.
residual_i = sp.Symbol("residual_i", real=True)  # r_i = g(x_i) - C(x_i)
residual_j = sp.Symbol("residual_j", real=True)
x_inner = sp.Symbol("x_inner", real=True)  # <x_i, x_j>
tau = sp.Symbol("tau", real=True)  # a threshold for <x_i, x_j>
residual_max = sp.Symbol("residual_max", nonnegative=True)  # max_i |r_i|, for Theorem 6.1's hypothesis
ALL.update({x.name: x for x in (residual_i, residual_j, x_inner, tau, residual_max)})

# For the finite-width law of the confusion tail (theory/_src/finite_width.py).
excess = sp.Symbol("excess", real=True)  # C(tau): log(Pr_l / floor) = C / width to first order
floor_probability = sp.Symbol("floor_probability", positive=True)  # the infinite-width floor of Pr[min cos < -tau]
ALL.update({x.name: x for x in (excess, floor_probability)})
LATEX_NAMES.update({residual_i: "r_i", residual_j: "r_j", x_inner: r"\langle x_i, x_j \rangle", tau: r"\tau",
                    residual_max: r"\max_i |r_i|"})
LATEX_NAMES.update({excess: r"C(\tau)", floor_probability: r"\Pr_\infty"})

# Assumption-free twins, for hypotheses: ``plain.alpha > 0`` stays a relation to check.
plain = type("PlainSymbols", (), {name: sp.Symbol(name, real=True) for name in ALL})


@dataclass(frozen=True)
class Domain:
    """The values a symbol may take in a numeric evaluation: an interval, optionally ``+inf``, and integrality.

    ``low``/``high`` bound the interval (``low_open``/``high_open`` exclude the
    end); ``infinite`` admits ``+inf`` (a constant set to ``inf`` switches its
    term off, as ``fit_constant`` does); ``integer`` marks a count, checked
    as a hypothesis (flagged), not refused.  NaN is never admitted.
    """

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    infinite: bool = False
    meaning: str = ""

    def describe(self) -> str:
        """The accepted values in words, e.g. ``a real number >= 1 (an integer in the paper: examples)``."""
        parts = []
        if self.low > -math.inf:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high < math.inf:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        text = "a finite real number" + (" " + " and ".join(parts) if parts else "")
        if self.infinite:
            text += " (or +inf)"
        notes = ([self.meaning] if self.meaning else []) + (["an integer in the paper"] if self.integer else [])
        return text + (f" ({'; '.join(notes)})" if notes else "")

    def outside(self, value: np.ndarray) -> np.ndarray:
        """Boolean mask of the entries of ``value`` (float array) that the domain refuses."""
        with np.errstate(invalid="ignore"):
            bad = np.isnan(value) | (value == -np.inf)
            bad |= (value == np.inf) if not self.infinite else False
            finite = np.isfinite(value)
            if self.low > -math.inf:
                bad |= finite & ((value <= self.low) if self.low_open else (value < self.low))
            if self.high < math.inf:
                bad |= finite & ((value >= self.high) if self.high_open else (value > self.high))
        return bad

    def non_integer(self, value: np.ndarray) -> np.ndarray:
        """Boolean mask of the finite entries that are not integers (only for an ``integer`` domain)."""
        if not self.integer:
            return np.zeros(np.shape(value), dtype=bool)
        return np.isfinite(value) & (value != np.floor(value))


_REAL = Domain()
_CONSTANT = Domain(0.0, low_open=True, infinite=True, meaning="an absolute constant; +inf switches its term off")

#: Where each symbol may be evaluated (results may narrow a symbol further through ``Result.domains``).
DOMAINS = {
    N: Domain(1.0, integer=True, meaning="the number of examples"),
    L: Domain(0.0, low_open=True, meaning="a smoothness constant"),
    mu: Domain(0.0, low_open=True, meaning="a PL constant"),
    alpha: Domain(0.0, low_open=True, meaning="a step size"),
    eta: Domain(0.0, meaning="a confusion bound"),
    T: Domain(0.0, integer=True, meaning="a number of iterations"),
    Delta0: Domain(0.0, meaning="an initial optimality gap"),
    beta: Domain(0.0, integer=True, meaning="the depth; 0 is the generalised linear model"),
    width: Domain(1.0, integer=True, meaning="the number of units per hidden layer"),
    d: Domain(1.0, integer=True, meaning="the input dimension"),
    kappa: Domain(0.0, low_open=True, meaning="Strategy 4.1's variance divisor"),
    zeta0: Domain(0.0, low_open=True, meaning="a gradient-scale constant"),
    r: Domain(0.0, meaning="a ball radius"),
    gamma: Domain(0.0, low_open=True, meaning="the output scale"),
    c: _CONSTANT, c1: _CONSTANT, c2: _CONSTANT,
    epsilon: Domain(0.0, low_open=True, meaning="an accuracy or threshold"),
    delta: Domain(0.0, 1.0, low_open=True, meaning="a failure probability"),
    inner_min: _REAL,
    weight_norm: Domain(0.0, meaning="an operator norm"),
    data_norm: Domain(0.0, meaning="a norm"),
    s: Domain(0.0, low_open=True, meaning="a rescaling"),
    residual_i: _REAL, residual_j: _REAL, x_inner: _REAL, tau: _REAL,
    residual_max: Domain(0.0, meaning="a largest residual |g(x_i) - C(x_i)|"),
    excess: Domain(meaning="the constant of the finite-width law, log(Pr_l / floor) = C / width"),
    floor_probability: Domain(0.0, 1.0, low_open=True, meaning="an infinite-width floor probability"),
}
assert set(DOMAINS) == set(ALL.values()), "every named symbol declares its domain"
