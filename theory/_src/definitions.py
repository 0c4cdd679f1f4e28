"""Definition 2.1: the gradient confusion bound, and its smallest valid value."""

from __future__ import annotations

import sympy as sp

from . import symbols as S
from .result import PAPER, Hypothesis, Result, Source

_DEF = Source(
    paper=PAPER, version="ICML 2020 (arXiv v5)", section="section 2", numbering="Definition 2.1, eq. (3)",
    provenance="ICLR-verbatim; same in ICML per both notes",
    other_versions="ICML section 8 reportedly also allows averaged and cosine-normalised variants (unverified)",
)

definition_2_1 = Result(
    key="definition_2_1", name="Definition 2.1 (gradient confusion)", source=_DEF, kind="definition",
    lhs=r"\{f_i\} \text{ has confusion bound } \eta \iff",
    statement=sp.Ge(S.inner_min, -S.eta),
    hypotheses=(Hypothesis(S.plain.eta >= 0, "eta >= 0"),
                Hypothesis(None, "a fixed w; the SGD theorems need it at every point of the path")),
    meaning="<grad f_i(w), grad f_j(w)> >= -eta for all i != j; raw, unnormalised inner products",
)

eta_star = Result(
    key="eta_star", name="Smallest confusion bound eta*", source=_DEF, kind="derived",
    lhs=r"\eta^\star =",
    statement=sp.Max(0, -S.inner_min),
    meaning="max(0, -min_{i != j} <grad f_i, grad f_j>): (3) holds exactly for eta >= eta*",
)
