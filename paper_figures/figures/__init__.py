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

ALL = [
    f01_linear_regression.FIGURE,
    f02_sgd_theorems.FIGURE,
    f03_sphere.FIGURE,
    f04_gaussian_init.FIGURE,
    f05_normalised_confusion.FIGURE,
    f06_orthogonal_linear.FIGURE,
    f07_small_weights.FIGURE,
    f08_depth_training.FIGURE,
    f09_width_training.FIGURE,
    f10_batchnorm_skip.FIGURE,
    f11_infinite_width.FIGURE,
    f12_fisher_jacobian.FIGURE,
    f13_vanishing_curvature.FIGURE,
    f14_depth_fluctuations.FIGURE,
    f15_invariant_measure.FIGURE,
    f16_rare_tails.FIGURE,
]
