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
* the cumulants of ``log R`` are ``kappa_1 = E log R`` and
  ``kappa_k = L psi^{(k-1)}(n/2)`` for ``k >= 2`` (``log(chi^2_n / n)`` is
  ``log(2/n)`` plus the log of a ``Gamma(n/2)`` variable, whose cumulants are
  the polygamma functions);
* the median is *approximately* ``exp(E log R)``, the digest's "median about
  ``exp(L (psi(n/2) - ln(n/2)))``".  This is not exact even as ``L -> inf``:
  the median of ``log R`` is ``E log R - kappa_3 / (6 kappa_2) + O(1/L)``
  (Cornish-Fisher at the centre), and ``kappa_3 / kappa_2 = psi''(n/2) / psi'(n/2)``
  does not depend on ``L``, so ``median / exp(E log R)`` tends to
  ``exp(-psi''(n/2) / (6 psi'(n/2)))``, about ``exp(1/(3n))`` for large ``n``
  and 1.11 at ``n = 4``.  ``chi_square_product_median_skew_corrected`` is
  the corrected form ``exp(E log R - kappa_3 / (6 kappa_2))``, whose error is
  ``O(1/L)`` in the log.

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
    key="chi_square_product_median",
    name="Median of |h_L|^2/|h_0|^2 (linear Gaussian net), approximated by exp(E log R)",
    source=_SOURCE, kind="derived", lhs=r"\operatorname{med}\,\|h_L\|^2/\|h_0\|^2 \approx",
    statement=sp.exp(L * (sp.digamma(n / 2) - sp.log(n / 2))), hypotheses=_HYP,
    meaning="exp of the mean log: the typical value, far below the mean 1 when beta >~ n; an approximation "
            "that stays a factor exp(-psi''(n/2)/(6 psi'(n/2))) ~ exp(1/(3n)) below the median as beta -> inf "
            "(see chi_square_product_median_skew_corrected)",
)
#: Cornish-Fisher at the centre: median(log R) = kappa_1 - kappa_3 / (6 kappa_2) + O(1/L), with
#: kappa_2 = L psi'(n/2) and kappa_3 = L psi''(n/2) (psi'' < 0: log R is skewed left, so the median is above the mean).
chi_square_product_median_skew_corrected = Result(
    key="chi_square_product_median_skew_corrected",
    name="Median of |h_L|^2/|h_0|^2 (linear Gaussian net), skew-corrected",
    source=Source(paper="textbook (Cornish-Fisher expansion of the median; cumulants of log chi-square)",
                  version="-", section="digest section 4b", numbering="product of chi^2_n / n factors",
                  provenance="textbook"),
    kind="derived", lhs=r"\operatorname{med}\,\|h_L\|^2/\|h_0\|^2 \approx",
    statement=sp.exp(L * (sp.digamma(n / 2) - sp.log(n / 2)) - sp.polygamma(2, n / 2) / (6 * sp.polygamma(1, n / 2))),
    hypotheses=_HYP,
    meaning="exp(E log R - kappa_3 / (6 kappa_2)): the median to O(1/beta) in the log, where exp(E log R) is off by "
            "a factor that does not vanish with depth (1.11 at n = 4)",
)
CHI_SQUARE_PRODUCT = (chi_square_product_mean, chi_square_product_variance, chi_square_product_log_mean,
                      chi_square_product_log_variance, chi_square_product_median,
                      chi_square_product_median_skew_corrected)
