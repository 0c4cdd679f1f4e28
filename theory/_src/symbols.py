"""The named symbols of the paper (Sankararaman et al., ICML 2020), shared by every result.

Problem and SGD (section 3): ``N`` examples, smoothness ``L``, PL constant
``mu``, step size ``alpha``, confusion bound ``eta``, horizon ``T``, initial gap
``Delta0 = F(w_0) - F*``.  Architecture (sections 4-6): depth ``beta``, width
``width`` (the paper's l), input dimension ``d``, Strategy 4.1's ``kappa``,
the gradient-scale constant ``zeta0``, ball radius ``r``, output scale
``gamma``.  ``c``, ``c1``, ``c2`` are the paper's unspecified absolute
constants, free positive symbols.
"""

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
ALL.update({x.name: x for x in (residual_i, residual_j, x_inner, tau)})
LATEX_NAMES.update({residual_i: "r_i", residual_j: "r_j", x_inner: r"\langle x_i, x_j \rangle", tau: r"\tau"})

# Assumption-free twins, for hypotheses: ``plain.alpha > 0`` stays a relation to check.
plain = type("PlainSymbols", (), {name: sp.Symbol(name, real=True) for name in ALL})
