"""theory.fit_constant checks its input: probabilities in [0, 1], grids of the right length and kind, known
constants and keys; each refusal names the argument (and the lengths where they disagree)."""

import re

import numpy as np
import pytest

import theory

RESULT = theory.theorem_4_1_sphere
GRID = dict(N=[8, 8], d=[16, 16], eta=[0.3, 0.6], width=[32.0, 64.0], beta=[2, 2], kappa=[1.0, 1.0])
OFF = {"c1": np.inf}


def fit(p_lower=(0.1, 0.05), constant="c2", fixed=OFF, result=RESULT, **changes):
    return theory.fit_constant(result, constant, list(p_lower), fixed=fixed, **(GRID | changes))


@pytest.mark.parametrize("p_lower, shown", [((1.5, 0.05), "at point 0 it is 1.5"), ((-0.1, 0.05), "at point 0 it is -0.1"),
                                            ((0.1, np.nan), "at point 1 it is nan"),
                                            ((np.inf, 2.0), "at point 0 it is inf (2 such points)")])
def test_probabilities_outside_0_1_or_nan_are_refused(p_lower, shown):
    # before: 1.5 and -0.1 were fitted and called "vacuous", NaN failed inside scipy's root finder
    with pytest.raises(ValueError, match=r"argument 'p_lower' must hold probabilities in \[0, 1\] \(not NaN\); "
                                         + re.escape(shown)):
        fit(p_lower)


def test_p_upper_is_checked_like_p_lower():
    with pytest.raises(ValueError, match=r"argument 'p_upper' must hold probabilities in \[0, 1\].*at point 1 it is 1.2"):
        theory.fit_constant(RESULT, "c2", [0.1, 0.05], fixed=OFF, p_upper=[0.2, 1.2], **GRID)
    with pytest.raises(ValueError, match=r"argument 'p_upper' must be >= 'p_lower'; at point 1 0.01 < 0.05"):
        theory.fit_constant(RESULT, "c2", [0.1, 0.05], fixed=OFF, p_upper=[0.2, 0.01], **GRID)
    with pytest.raises(ValueError, match=r"argument 'p_upper' must have the shape of 'p_lower': 2 values, one per "
                                         r"grid point; got 3"):
        theory.fit_constant(RESULT, "c2", [0.1, 0.05], fixed=OFF, p_upper=[0.2, 0.1, 0.1], **GRID)


def test_grid_lengths_that_disagree_name_the_keyword_and_both_lengths():
    # before: numpy's "operands could not be broadcast together with remapped shapes"
    with pytest.raises(ValueError, match=r"keyword argument 'N' holds 2 values, but 'p_lower' holds 3 \(one per grid "
                                         r"point\): give 3 values or one"):
        theory.fit_constant(RESULT, "c2", [0.1, 0.05, 0.01], fixed=OFF, **GRID)


@pytest.mark.parametrize("call, error, message", [
    (lambda: fit(constant="c9"), ValueError,
     r"argument 'constant' must name a free constant of theorem_4_1_sphere \(one of 'c1', 'c2'\), got 'c9'"),
    (lambda: fit(constant="c"), ValueError, r"argument 'constant' must name a free constant .* got 'c'"),
    (lambda: fit(constant=2), ValueError, r"argument 'constant' must name a free constant .* got 2"),
    (lambda: fit(fixed={"c1": np.inf, "zz": 1.0}), ValueError, r"argument 'fixed' has unknown key\(s\) 'zz'"),
    (lambda: fit(fixed={"c1": np.inf, "c2": 1.0}), ValueError, r"argument 'fixed' must not give 'c2', the constant "
                                                               r"being fitted"),
    (lambda: fit(fixed=[("c1", 1.0)]), TypeError, r"argument 'fixed' must be a dict of the other constants' values"),
    (lambda: fit(fixed={"c1": "big"}), TypeError, r"argument 'fixed' must give each symbol one real number; 'c1'"),
    (lambda: fit(fixed={}), ValueError, r"missing 'c1' \(in argument 'fixed'\)"),
    (lambda: fit(N=["a", "b"]), TypeError, r"keyword argument 'N' must hold real numbers"),
    (lambda: fit(N=[[8, 8]]), ValueError, r"keyword argument 'N' must be a number or a one-dimensional array"),
    (lambda: fit(width_x=[1, 2]), ValueError, r"keyword argument 'width_x' is not a symbol of theory"),
    (lambda: fit(c2=[1.0, 1.0]), ValueError, r"keyword argument 'c2' is given as a grid value and as argument "
                                             r"constant"),
    (lambda: fit(p_lower=()), ValueError, r"argument 'p_lower' must hold one probability per grid point, at least "
                                          r"one; got none"),
    (lambda: fit(p_lower=("x", 0.1)), TypeError, r"argument 'p_lower' must hold probabilities in \[0, 1\], one per "
                                                 r"grid point"),
    (lambda: theory.fit_constant(RESULT, "c2", [[0.1, 0.05]], fixed=OFF, **GRID), ValueError,
     r"argument 'p_lower' must be a number or a one-dimensional array"),
    (lambda: fit(result="theorem_4_1_sphere"), TypeError, r"argument 'result' must be a theory result"),
    (lambda: fit(result=theory.theorem_3_1), ValueError, r"argument 'result' = theorem_3_1 is a upper_bound; "
                                                         r"fit_constant needs a probability lower bound"),
])
def test_each_bad_argument_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_missing_grid_symbols_are_named():
    grid = {k: v for k, v in GRID.items() if k != "eta"}
    with pytest.raises(ValueError, match=r"fit_constant needs a value for every symbol of theorem_4_1_sphere's bound "
                                         r"besides 'c2'; missing 'eta' \(a grid keyword\)"):
        theory.fit_constant(RESULT, "c2", [0.1, 0.05], fixed=OFF, **grid)
