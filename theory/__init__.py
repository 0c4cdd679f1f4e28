"""Every result of Sankararaman et al. (ICML 2020) as a symbolic, checkable object.

Each result is a :class:`Result`: its source (paper version, section,
numbering, how reliably the text is known), hypotheses (sympy relations with a
line of text each), its statement as a sympy expression over named symbols
with the unspecified absolute constants ``c, c1, c2`` free, ``latex()``,
``evaluate(**values)`` (vectorised), ``check_hypotheses(**values)`` and, in
one call, ``result(**values)`` -> value, failing and unchecked hypotheses::

    import theory
    theory.theorem_4_1_sphere(width=512, beta=8, d=64, N=32, eta=0.5, kappa=4, c1=1, c2=1)

Values outside a symbol's domain (``symbols.DOMAINS``, declared once per
symbol: a width >= 1, a depth >= 0, probabilities in (0, 1], finite numbers)
are refused with a ``ValueError`` naming the symbol; non-integer counts are
evaluated (the real relaxation) but reported among the failing hypotheses.

``theory`` never imports ``montecarlo``.

Results
-------
Definitions: definition_2_1, eta_star
SGD (section 3): contraction_factor, theorem_3_1, theorem_3_2_printed, theorem_3_2_rederived,
    noise_floor, noise_floor_small_step, iterations_to_floor, step_size_condition
Architecture (sections 4-6): theorem_4_1_bounded, theorem_4_1_sphere (ICML), theorem_4_2_bounded_iclr,
    theorem_4_2_sphere_iclr (ICLR), theorem_5_1, corollary_5_1, theorem_6_1, theorem_6_1_identity,
    width_sufficient, iso_confusion_exponent
Sphere data: sphere_inner_product_cdf, sphere_inner_product_variance, sphere_inner_product_tail,
    sphere_inner_product_measure (numeric: the exact probability of an interval of <x_i, x_j>),
    sphere_inner_product_threshold (numeric: the t with Pr[<x_i, x_j> > t] = p),
    sphere_subgaussian_tail, sphere_union_bound, sphere_union_bound_exact_pairs
Numerical helpers: optimal_step_size, width_needed, scale_test, fit_constant (ConstantFit, its verdict in
    VERDICTS: "hypotheses-fail", "contradicted", "vacuous", "non-vacuous"), implied_exponent
Equality hypotheses (|x_i| = 1, ||W_p|| = 1, gamma = 1/sqrt(2 beta)) hold to the relative tolerance EQ_RTOL.
Forward norms of linear Gaussian nets (products of chi^2_n/n factors; Orvieto et al. 2022):
    chi_square_product_mean, _variance, _log_mean, _log_variance, _median (exp E log R, an approximation),
    _median_skew_corrected (CHI_SQUARE_PRODUCT)
Infinite width (NNGP and tangent kernels of eq. 4 under Strategy 4.1): infinite_width_kernels, Kernels,
    sphere_kernels, SphereKernels, ntk_relative_variance, activation_moments,
    infinite_width_cosine_floor (the exact limit of Pr[min cosine < -tau] for random-sign labels, CosineFloor);
Activations: register_activation (add one at run time: numpy s, s' and an optional closed form of its Gaussian
    moments, else quadrature; montecarlo.register_activation registers both sides at once), activation_names
    (the built-ins and the registered ones);
Finite width: finite_width_cosine_law (log(Pr_l / floor) = C / width, our derivation), finite_width_excess
    (C(tau) from the fluctuation constants, ExcessConstant), beta_density (the density of <x_i, x_j>);
    the law's random output factors are sampled in montecarlo (sample_infinite_width)
"""

from ._src import symbols
from ._src.architecture import (
    corollary_5_1,
    iso_confusion_exponent,
    theorem_4_1_bounded,
    theorem_4_1_sphere,
    theorem_4_2_bounded_iclr,
    theorem_4_2_sphere_iclr,
    theorem_5_1,
    theorem_6_1,
    theorem_6_1_identity,
    width_needed,
    width_sufficient,
)
from ._src.definitions import definition_2_1, eta_star
from ._src.fitting import VERDICTS, ConstantFit, Contradiction, fit_constant, implied_exponent
from ._src.activations import activation_names, register_activation
from ._src.infinite_width import (
    CosineFloor,
    Kernels,
    SphereKernels,
    activation_moments,
    infinite_width_cosine_floor,
    ntk_relative_variance,
    sphere_kernels,
)
from ._src.infinite_width import kernels as infinite_width_kernels
from ._src.finite_width import ExcessConstant, beta_density, finite_width_cosine_law, finite_width_excess
from ._src.result import EQ_RTOL, Hypothesis, Prediction, Result, Source
from ._src.sgd import (
    THEOREM_3_2_COUNTEREXAMPLE,
    contraction_factor,
    iterations_to_floor,
    noise_floor,
    noise_floor_small_step,
    optimal_step_size,
    scale_test,
    step_size_condition,
    theorem_3_1,
    theorem_3_2_printed,
    theorem_3_2_rederived,
)
from ._src.chi_square_products import (
    CHI_SQUARE_PRODUCT,
    chi_square_product_log_mean,
    chi_square_product_log_variance,
    chi_square_product_mean,
    chi_square_product_median,
    chi_square_product_median_skew_corrected,
    chi_square_product_variance,
)
from ._src.sphere import (
    sphere_inner_product_cdf,
    sphere_inner_product_measure,
    sphere_inner_product_tail,
    sphere_inner_product_threshold,
    sphere_inner_product_variance,
    sphere_subgaussian_tail,
    sphere_union_bound,
    sphere_union_bound_exact_pairs,
)

#: Every result, by key, in the paper's order.
RESULTS = {
    result.key: result
    for result in (
        definition_2_1, eta_star,
        contraction_factor, theorem_3_1, theorem_3_2_printed, theorem_3_2_rederived,
        noise_floor, noise_floor_small_step, iterations_to_floor, step_size_condition,
        theorem_4_1_bounded, theorem_4_1_sphere, theorem_4_2_bounded_iclr, theorem_4_2_sphere_iclr,
        theorem_5_1, corollary_5_1, theorem_6_1, theorem_6_1_identity,
        width_sufficient, iso_confusion_exponent,
        sphere_inner_product_cdf, sphere_inner_product_variance, sphere_inner_product_tail,
        sphere_subgaussian_tail, sphere_union_bound, sphere_union_bound_exact_pairs,
        *CHI_SQUARE_PRODUCT, finite_width_cosine_law,
    )
}

__all__ = [
    "RESULTS", "VERDICTS", "ConstantFit", "Contradiction", "EQ_RTOL", "Hypothesis", "Prediction", "Result", "Source", "THEOREM_3_2_COUNTEREXAMPLE",
    "fit_constant", "implied_exponent", "optimal_step_size", "scale_test", "symbols", "width_needed",
    "Kernels", "activation_moments", "infinite_width_kernels", "ntk_relative_variance",
    "SphereKernels", "sphere_kernels", "CHI_SQUARE_PRODUCT", "CosineFloor",
    "infinite_width_cosine_floor", "sphere_inner_product_measure", "sphere_inner_product_threshold",
    "register_activation", "activation_names",
    "ExcessConstant", "beta_density",
    "finite_width_excess",
    *RESULTS,
]
