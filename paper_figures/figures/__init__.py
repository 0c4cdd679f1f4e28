"""One module per figure; each defines ``FIGURE`` (a :class:`paper_figures.Figure`), listed in paper order."""

from . import (
    f01_linear_regression,
    f02_sgd_theorems,
    f03_sphere,
    f04_gaussian_init,
    f05_normalised_confusion,
    f06_orthogonal_linear,
    f07_small_weights,
    f08_f09_depth_width,
    f10_batchnorm_skip,
    f11_infinite_width,
    f12_f15_trainability,
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
    f08_f09_depth_width.FIGURE_DEPTH,
    f08_f09_depth_width.FIGURE_WIDTH,
    f10_batchnorm_skip.FIGURE,
    f11_infinite_width.FIGURE,
    f12_f15_trainability.FIGURE_12,
    f12_f15_trainability.FIGURE_13,
    f12_f15_trainability.FIGURE_14,
    f12_f15_trainability.FIGURE_15,
    f16_rare_tails.FIGURE,
]
