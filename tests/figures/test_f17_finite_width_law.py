"""F17 (the finite-width law, predicted against measured): the report's words from synthetic data of known law."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from paper_figures.figures import f17_finite_width_law as f17

ARCH = "tanh, d = 16, kappa = 4, square loss"


def _data(C_true=120.0, D_true=2000.0, C_predicted=120.0, C_predicted_se=5.0, widths=(64, 128, 256, 512, 1024),
          rel_se=0.01, taus=(0.9,)):
    """Measured rows with l log(Pr_l / floor) = C_true - D_true / l exactly, and a prediction row."""
    rows = []
    for tau in taus:
        floor = 1e-7
        for width in widths:
            pair = floor * np.exp((C_true - D_true / width) / width)
            rows.append(dict(kind="measured", architecture=ARCH, depth=2, tau=tau, width=width, pair=pair,
                             pair_se=rel_se * pair, floor=floor, networks=1000))
        rows.append(dict(kind="predicted", architecture=ARCH, depth=2, tau=tau, C=C_predicted, C_se=C_predicted_se,
                         C_lower=C_predicted - 2 * C_predicted_se, C_upper=C_predicted + 2 * C_predicted_se,
                         floor=floor))
    rows.append(dict(kind="constant", architecture=ARCH, depth=2, t=0.9, s2=0.05, s2_se=0.001, mu=-0.1, mu_se=0.02,
                     fluctuation_widths="64 128 256"))
    return pd.DataFrame(rows)


def test_the_measured_constant_is_the_limit_of_l_log_ratio():
    m = f17.measured_constants(_data(C_true=150.0, D_true=3000.0, C_predicted=150.0))
    assert m["C"].iloc[0] == pytest.approx(150.0, rel=1e-6) and m["D"].iloc[0] == pytest.approx(3000.0, rel=1e-5)
    assert m["cut"].iloc[0] == 150.0  # only widths >= |C| (the law's hypothesis): 256, 512, 1024
    assert m["widths"].iloc[0] == 3


@pytest.mark.parametrize("C_predicted, words, absent", [
    (120.0, ["holds at all 1 (architecture, depth, tau)", "measured C known to"], ["fails"]),
    (200.0, ["holds at 0 of 1", "fails at", "predicted/measured 1.67"], ["holds at all"]),
])
def test_each_outcome_of_the_comparison_rule(C_predicted, words, absent):
    rows = f17.report(_data(C_true=120.0, C_predicted=C_predicted, C_predicted_se=2.0))
    verdict = rows[0]["verdict"]
    assert all(w in verdict for w in words), verdict
    assert not any(w in verdict for w in absent), verdict
    assert bool(rows[0].get("finding")) == ("holds at all" in verdict)


def test_no_comparison_from_fewer_than_three_widths_where_the_law_applies():
    # C = 300: only width 512 and 1024 satisfy width >= |C|
    rows = f17.report(_data(C_true=300.0, C_predicted=300.0))
    assert "no measured C at" in rows[0]["verdict"] and "2 grid values (3 needed)" in rows[0]["verdict"]
    assert not rows[0].get("finding")


def test_the_rescaled_eta_row_states_the_floor_and_the_law_only_from_its_numbers():
    rows = []
    for width in (64, 128, 256, 512):
        for eta, floor in ((0.6, 0.1), (0.7, 0.02)):
            p = floor * np.exp(40.0 / width)  # a known law: C = 40
            n = 10**6
            rows.append(dict(kind="eta", architecture=ARCH, depth=2, width=width, eta=eta, k=int(p * n), n=n, p=p,
                             lower=0.99 * p, upper=1.01 * p, floor=floor, floor_lower=0.99 * floor,
                             floor_upper=1.01 * floor, floor_n=10**7, theta1=0.027))
    data = pd.concat([_data(), pd.DataFrame(rows)])
    _, fits = f17.normalised_eta(data)
    np.testing.assert_allclose(fits["C"], 40.0, rtol=0.02)
    row = next(r for r in f17.report(data) if r["claim"].startswith("Theorem 4.1 for the raw eta*"))
    assert "positive tail (floor) at every eta" in row["verdict"] and "approached like exp(C/l)" in row["verdict"]
    # two widths: no C, and the verdict does not claim the approach
    two = pd.concat([_data(), pd.DataFrame([r for r in rows if r["width"] in (64, 128)])])
    row = next(r for r in f17.report(two) if r["claim"].startswith("Theorem 4.1 for the raw eta*"))
    assert "approached like" not in row["verdict"] and "no verdict: 2 grid values" in row["numbers"]
