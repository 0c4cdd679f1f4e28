"""Monte Carlo of gradient confusion on random networks (Sankararaman et al., ICML 2020).

Public surface
--------------
Network and data
    MLP, Parameters, sample_sphere, LinearTeacher, TanhTeacher, RandomSigns, make_labels
Exact per-example gradient Gram
    gradient_gram
Statistics of a Gram (exact functions of G)
    gram_statistics, eta_star, cosine_matrix, min_cosine, cosine_quantiles,
    fraction_negative, m_coherence, gradient_diversity, fisher_spectrum,
    squared_gradient_norms

Everything under ``montecarlo._src`` is private machinery.
"""

from ._src.data import LABELS, LinearTeacher, RandomSigns, TanhTeacher, make_labels, sample_sphere
from ._src.elementwise import ACTIVATIONS, LOSSES
from ._src.gram import BACKENDS, gradient_gram
from ._src.gram_statistics import (
    cosine_matrix,
    cosine_quantiles,
    eta_star,
    fisher_spectrum,
    fraction_negative,
    gradient_diversity,
    gram_statistics,
    m_coherence,
    min_cosine,
    squared_gradient_norms,
)
from ._src.network import INITS, MLP, Parameters

__all__ = [
    "ACTIVATIONS",
    "BACKENDS",
    "INITS",
    "LABELS",
    "LOSSES",
    "MLP",
    "LinearTeacher",
    "Parameters",
    "RandomSigns",
    "TanhTeacher",
    "cosine_matrix",
    "cosine_quantiles",
    "eta_star",
    "fisher_spectrum",
    "fraction_negative",
    "gradient_diversity",
    "gradient_gram",
    "gram_statistics",
    "m_coherence",
    "make_labels",
    "min_cosine",
    "sample_sphere",
    "squared_gradient_norms",
]
