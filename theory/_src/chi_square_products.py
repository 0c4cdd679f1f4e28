"""Exact laws of products of independent chi-square factors: forward norms of random linear networks.

For a width-``n`` linear network with iid ``N(0, 1/n)`` weights and a fixed
input, ``|h_L|^2 / |h_0|^2 = prod_{l=1}^{L} X_l / n`` with ``X_l ~ chi^2_n``
independent: each layer's Gaussian matrix maps the current vector to a
vector whose squared norm, divided by the old one, is ``chi^2_n / n`` whatever
that vector was (rotation invariance), independently of the past.
Orvieto et al. (AISTATS 2022; digest section 4b) use this to show that the
*typical* norm vanishes with depth unless the width grows like the depth,
although the *mean* is 1 at every depth.  Exact facts (textbook:
``E log(chi^2_n / 2) = psi(n/2)``, ``Var log chi^2_n = psi'(n/2)``,
``E (chi^2_n)^2 = n (n + 2)``), with ``beta = L`` factors and ``width = n``:

* ``E[R] = 1``; ``Var R = (1 + 2/n)^L - 1`` (about ``2 L / n``);
* ``E log R = L (psi(n/2) - log(n/2))`` (about ``-L/n``);
  ``Var log R = L psi'(n/2)`` (about ``2 L / n``);
* the median is ``exp(E log R)`` up to the skewness of ``log R`` (exact as
  ``L -> inf`` after centring; the central limit theorem for ``log R``), the
  digest's "median about ``exp(L (psi(n/2) - ln(n/2)))``".

In this package's networks (Strategy 4.1, kappa = 1, linear activation) the
hidden layers ``W_1 .. W_{beta-1}`` are ``width x width`` with variance
``1/width``, so ``|z_{beta-1}|^2 / |z_0|^2`` follows this law with
``L = beta - 1`` factors.
"""

from __future__ import annotations

import sympy as sp

from . import symbols as S
from .result import Hypothesis, Result, Source

P = S.plain
L, n = S.beta, S.width

_SOURCE = Source(
    paper="textbook (chi-square moments); Orvieto et al., AISTATS 2022", version="-", section="digest section 4b",
    numbering="product of chi^2_n / n factors", provenance="textbook",
    other_versions="Orvieto et al.'s own median expressions were not recovered",
)
_HYP = (Hypothesis(P.beta >= 1, "beta >= 1 factors (layers)"), Hypothesis(P.width >= 1, "width n >= 1"))

chi_square_product_mean = Result(
    key="chi_square_product_mean", name="Mean of |h_L|^2/|h_0|^2 (linear Gaussian net)", source=_SOURCE,
    kind="exact", lhs=r"\mathbb{E}\,\|h_L\|^2/\|h_0\|^2 =", statement=sp.Integer(1), hypotheses=_HYP,
    meaning="the mean is preserved at every depth (He/Glorot reasoning)",
)
chi_square_product_variance = Result(
    key="chi_square_product_variance", name="Variance of |h_L|^2/|h_0|^2 (linear Gaussian net)", source=_SOURCE,
    kind="exact", lhs=r"\operatorname{Var}\,\|h_L\|^2/\|h_0\|^2 =", statement=(1 + 2 / n) ** L - 1, hypotheses=_HYP,
    meaning="grows like 2 beta / n, then exponentially once beta ~ n",
)
chi_square_product_log_mean = Result(
    key="chi_square_product_log_mean", name="Mean of log |h_L|^2/|h_0|^2 (linear Gaussian net)", source=_SOURCE,
    kind="exact", lhs=r"\mathbb{E}\log\|h_L\|^2/\|h_0\|^2 =", statement=L * (sp.digamma(n / 2) - sp.log(n / 2)),
    hypotheses=_HYP, meaning="about -beta/n: the typical norm decays with depth unless n grows like beta",
)
chi_square_product_log_variance = Result(
    key="chi_square_product_log_variance", name="Variance of log |h_L|^2/|h_0|^2 (linear Gaussian net)",
    source=_SOURCE, kind="exact", lhs=r"\operatorname{Var}\log\|h_L\|^2/\|h_0\|^2 =",
    statement=L * sp.polygamma(1, n / 2), hypotheses=_HYP, meaning="about 2 beta / n",
)
chi_square_product_median = Result(
    key="chi_square_product_median", name="Median of |h_L|^2/|h_0|^2 (linear Gaussian net, CLT for the log)",
    source=_SOURCE, kind="derived", lhs=r"\operatorname{med}\,\|h_L\|^2/\|h_0\|^2 \approx",
    statement=sp.exp(L * (sp.digamma(n / 2) - sp.log(n / 2))), hypotheses=_HYP,
    meaning="exp of the mean log: the typical value, far below the mean 1 when beta >~ n",
)
CHI_SQUARE_PRODUCT = (chi_square_product_mean, chi_square_product_variance, chi_square_product_log_mean,
                      chi_square_product_log_variance, chi_square_product_median)
