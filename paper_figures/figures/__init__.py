"""One module per figure; each defines ``FIGURE`` (a :class:`paper_figures.Figure`), listed in paper order."""

from . import (
    f01_linear_regression,
    f02_sgd_theorems,
    f03_sphere,
    f04_gaussian_init,
    f05_normalised_confusion,
    f06_orthogonal_linear,
    f07_small_weights,
    f08_depth_training,
    f09_width_training,
    f10_batchnorm_skip,
    f11_infinite_width,
    f12_fisher_jacobian,
    f13_vanishing_curvature,
    f14_depth_fluctuations,
    f15_invariant_measure,
    f16_rare_tails,
)

#: The figure modules in paper order; each defines ``FIGURE``.
MODULES = (
    f01_linear_regression,
    f02_sgd_theorems,
    f03_sphere,
    f04_gaussian_init,
    f05_normalised_confusion,
    f06_orthogonal_linear,
    f07_small_weights,
    f08_depth_training,
    f09_width_training,
    f10_batchnorm_skip,
    f11_infinite_width,
    f12_fisher_jacobian,
    f13_vanishing_curvature,
    f14_depth_fluctuations,
    f15_invariant_measure,
    f16_rare_tails,
)

#: Every figure, in paper order (``MODULES``' ``FIGURE``).
ALL = [module.FIGURE for module in MODULES]
