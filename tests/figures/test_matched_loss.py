"""Confusion at matched training loss (F8-F10): first tracked epoch at or below a loss level; bootstrap of the min."""

import numpy as np
import pandas as pd
import pytest

import paper_figures
from paper_figures import _runner
from paper_figures.figures import _depth_width, _training, f08_depth_training, f09_width_training, f10_batchnorm_skip

EPOCHS = [0, 1, 2, 4, 8]


def _run_rows(run, losses, cosines, depth=10, width=1, skip=False, batchnorm=False, lr=0.1, seed=0,
              diverged=None):
    """A run in the layout of ``_training.tabulate``: curve rows and pair-cosine rows per tracked epoch."""
    config = dict(depth=depth, width=width, skip=skip, batchnorm=batchnorm, lr=lr, seed=seed, base=8)
    diverged = diverged or [False] * len(losses)
    curve = pd.DataFrame({"epoch": EPOCHS[:len(losses)], "train_loss": losses, "diverged": diverged,
                          "test_accuracy": 0.5, "probe_min_cosine": 0.0,
                          "minibatch_min_cosine": [min(c) for c in cosines],
                          "minibatch_mean_cosine": [np.mean(c) for c in cosines]}).assign(kind="curve", run=run,
                                                                                            **config)
    pairs = [pd.DataFrame({"kind": "pair_cosine", "run": run, "epoch": e, "pair": np.arange(len(c)),
                           "cosine": c, **config}) for e, c in zip(EPOCHS, cosines)]
    last = pd.DataFrame({"kind": "cosine", "run": run, "cosine": cosines[-1], **config})
    return [curve, *pairs, last]


def _cosines(centre, epochs=len(EPOCHS), n=30, seed=0):
    rng = np.random.default_rng(seed)
    return [list(centre + 0.01 * rng.standard_normal(n) + 0.001 * e) for e in range(epochs)]


@pytest.fixture
def synthetic():
    """Depth 10 reaches 0.5 at epoch 2 (loss exactly 0.5) and 0.1 at epoch 8; depth 16 reaches 0.5 at epoch 4 only."""
    shallow = _cosines(0.2, seed=1)
    deep = _cosines(-0.3, seed=2)
    frames = [*_run_rows("a", [2.3, 1.0, 0.5, 0.3, 0.05], shallow, depth=10),
              *_run_rows("b", [2.3, 2.0, 0.7, 0.45, 0.2], deep, depth=16)]
    return pd.concat(frames, ignore_index=True), shallow, deep


def test_first_tracked_epoch_at_or_below_the_level_and_its_cosines(synthetic):
    data, shallow, deep = synthetic
    m = _training.matched_loss(data, levels=(0.5, 0.1)).set_index(["depth", "level"])
    a, b = m.loc[(10, 0.5)], m.loc[(16, 0.5)]
    assert a["status"] == "reached" and a["matched_epoch"] == 2 and a["matched_epochs"] == "2"
    assert a["matched_train_loss"] == 0.5  # at, not only below, the level counts
    assert a["matched_min_cosine"] == min(shallow[2])
    assert a["matched_mean_cosine"] == pytest.approx(np.mean(shallow[2]))
    assert a["matched_mean_cosine_se"] == pytest.approx(np.std(shallow[2], ddof=1) / np.sqrt(30))
    assert a["matched_min_cosine_lo"] == min(shallow[2]) <= a["matched_min_cosine_hi"]
    assert b["matched_epoch"] == 4 and b["matched_min_cosine"] == min(deep[3])
    assert m.loc[(10, 0.1), "matched_epoch"] == 8 and m.loc[(10, 0.1), "matched_min_cosine"] == min(shallow[4])
    missed = m.loc[(16, 0.1)]
    assert missed["status"] == "not reached" and missed["reached"] == 0
    assert missed["lowest_tracked_loss"] == 0.2
    for column in ("matched_epoch", "matched_min_cosine", "matched_min_cosine_lo", "matched_mean_cosine"):
        assert np.isnan(missed[column]), column
    assert "not reached (lowest tracked loss 0.2)" == _training.describe_matched(missed)


def test_diverged_rows_do_not_count_and_every_seed_must_reach(synthetic):
    data, shallow, _ = synthetic
    extra = pd.concat([*_run_rows("c", [2.3, 1.0, 0.05], shallow[:3], depth=22, diverged=[False, False, True]),
                       *_run_rows("d", [2.3, 0.4, 0.05], shallow[:3], depth=28, seed=0),
                       *_run_rows("e", [2.3, 0.9, 0.8], shallow[:3], depth=28, seed=1)], ignore_index=True)
    m = _training.matched_loss(pd.concat([data, extra], ignore_index=True), levels=(0.5, 0.1))
    m = m.set_index(["depth", "level"])
    assert m.loc[(22, 0.1), "status"] == "not reached"  # the loss of a diverged row is not a fit
    assert m.loc[(28, 0.5), "status"] == "not reached by every seed (1 of 2)"
    assert np.isnan(m.loc[(28, 0.5), "matched_min_cosine"])
    # two seeds that both reach: the mean over seeds of each run's minimum at its own epoch
    both = pd.concat([*_run_rows("f", [2.3, 0.4, 0.3], shallow[:3], depth=34, seed=0),
                      *_run_rows("g", [2.3, 0.9, 0.3], shallow[1:4], depth=34, seed=1)], ignore_index=True)
    row = _training.matched_loss(both, levels=(0.5,)).iloc[0]
    assert row["matched_epochs"] == "1/2" and row["matched_epoch"] == 1.5
    assert row["matched_min_cosine"] == pytest.approx((min(shallow[1]) + min(shallow[3])) / 2)  # g's epoch 2


def test_bootstrap_of_the_minimum_against_its_closed_form():
    """Resampling n values with replacement: P(min* > x_(k)) = (1 - k/n)^n on the order statistics x_(k)."""
    n, draws = 20, 4000
    x = np.sort(np.random.default_rng(3).uniform(-1, 1, n))
    d = _training.bootstrap_min([np.random.default_rng(4).permutation(x)], draws=draws, seed=5)
    assert set(np.unique(d)) <= set(x)
    for k in range(1, 7):
        p = (1 - k / n) ** n
        assert abs(np.mean(d > x[k - 1]) - p) < 4 * np.sqrt(p * (1 - p) / draws), k
    # 95% percentile interval: lower end x_(1) (P(min* = x_(1)) = 0.64); upper end x_(4): P(min* > x_(3)) = 0.039
    # is above 2.5% and P(min* > x_(4)) = 0.012 below it
    assert _training.min_interval([x], draws=draws) == (x[0], x[3])
    # stratified over two runs: the mean of the two resampled minima has the mean of the closed-form laws
    y = np.sort(np.random.default_rng(6).uniform(-1, 1, n))
    k = np.arange(1, n + 1)
    law = ((n - k + 1) / n) ** n - ((n - k) / n) ** n  # P(min* = x_(k))
    expected = (law @ x + law @ y) / 2
    d2 = _training.bootstrap_min([x, y], draws=draws, seed=7)
    spread = np.sqrt((law @ x**2 - (law @ x) ** 2 + law @ y**2 - (law @ y) ** 2) / 4 / draws)
    assert abs(d2.mean() - expected) < 4 * spread


def test_mean_and_standard_error_closed_form():
    rng = np.random.default_rng(8)
    a, b = rng.normal(0.1, 0.2, 50), rng.normal(-0.2, 0.3, 40)
    mean, se = _training.mean_and_se([a])
    assert mean == pytest.approx(a.mean()) and se == pytest.approx(a.std(ddof=1) / np.sqrt(50))
    mean, se = _training.mean_and_se([a, b])
    assert mean == pytest.approx((a.mean() + b.mean()) / 2)
    assert se == pytest.approx(np.sqrt(a.var(ddof=1) / 50 + b.var(ddof=1) / 40) / 2)


def test_comparison_and_verdicts(synthetic):
    data, _, _ = synthetic
    row = _depth_width.matched_row(data, "depth")
    # loss 0.5: depth 16 (min cos about -0.33) against depth 10 (about 0.17): lower, intervals disjoint
    assert row["verdict"].startswith("reproduced at matched loss in one seed (no seed-level interval) "
                                     "(1 of 2 loss levels testable): ")
    assert "loss <= 0.5, depth 10 -> 16: as the paper" in row["verdict"]
    assert "loss <= 0.1: not testable (only depth 10 reached it)" in row["verdict"]
    assert "depth=16: not reached (lowest tracked loss 0.2)" in row["numbers"]
    assert "epoch 2 (loss 0.5)" in row["numbers"] and "epoch 4 (loss 0.45)" in row["numbers"]
    # the width claim expects the opposite direction: the same numbers (as widths) contradict it
    as_width = data.assign(width=data["depth"].map({10: 1, 16: 2}), depth=16)
    contradicted = _depth_width.matched_row(as_width, "width")
    assert contradicted["verdict"].startswith("contradicted at matched loss")
    # overlapping intervals are not resolved
    close = pd.concat([*_run_rows("a", [2.3, 0.4], _cosines(0.0, 2, seed=1)[:2], depth=10),
                       *_run_rows("b", [2.3, 0.4], _cosines(0.0, 2, seed=1)[:2], depth=16)], ignore_index=True)
    assert _depth_width.matched_row(close, "depth")["verdict"].startswith("not resolved at matched loss")
    assert _training.overall_matched([None, None], "why").startswith("not testable at matched loss: why")
    assert _training.overall_matched(["as the paper", "as the paper"], "why") == "reproduced at matched loss"
    assert _training.overall_matched(["as the paper", "not resolved"], "why").startswith("partly reproduced")


def test_f10_compares_both_with_plain_at_matched_loss():
    plain = _cosines(-0.4, 3, seed=1)
    both = _cosines(0.3, 3, seed=2)
    frames = [*_run_rows("p", [2.3, 0.4, 0.3], plain, depth=10),
              *_run_rows("s", [2.3, 2.2, 2.1], plain, depth=10, skip=True),
              *_run_rows("n", [2.3, 0.9, 0.3], plain, depth=10, batchnorm=True),
              *_run_rows("b", [2.3, 0.2, 0.05], both, depth=10, skip=True, batchnorm=True)]
    row = f10_batchnorm_skip.matched_row(pd.concat(frames, ignore_index=True))
    assert "loss <= 0.5, depth 10, plain -> both: as the paper" in row["verdict"]
    assert "loss <= 0.1: not testable (plain never reached it)" in row["verdict"]
    assert "skip depth 10: not reached (lowest tracked loss 2.1)" in row["numbers"]


@pytest.fixture(scope="module")
def f8_fast(tmp_path_factory):
    """F8 and F9 at --fast: F9's width-1 run is F8's depth-10 run (the pool trains it once)."""
    out = tmp_path_factory.mktemp("f8")
    _runner.run(["F8_depth_training", "F9_width_training"], "fast", out, progress=False)
    return out


def test_f8_and_f9_share_their_common_run_through_the_pool(f8_fast):
    """The pool of the fast settings holds 3 runs, not 4: F9 read F8's depth-10 width-1 run from the pool, its rows
    are F8's, and that stored run is the one train_run gives for its configuration, trained here again."""
    import montecarlo as mc

    grids = {"F8_depth_training": f08_depth_training.grid("fast"), "F9_width_training": f09_width_training.grid("fast")}
    settings = _training.SETTINGS["fast"]
    specs = {name: mc.TrainingGrid.from_mapping({**grid, **settings}) for name, grid in grids.items()}
    runs = {name: spec.runs() for name, spec in specs.items()}
    shared = set(runs["F8_depth_training"]) & set(runs["F9_width_training"])
    assert len(shared) == 1
    (key,) = shared
    assert runs["F9_width_training"][key]["width"] == 1 and runs["F8_depth_training"][key]["depth"] == 10
    pools = list((f8_fast / "store" / "shared").iterdir())
    assert len(pools) == 1
    store = mc.ResultsStore.open_existing(pools[0])
    assert store.done() == set(runs["F8_depth_training"]) | set(runs["F9_width_training"])  # 3 runs
    assert not (f8_fast / "store" / "F9_width_training-fast").exists()  # no store of its own
    data = {name: pd.read_csv(f8_fast / "figures" / name / f"{name}.csv") for name in grids}
    assert set(data["F9_width_training"]["run"].dropna()) == set(runs["F9_width_training"])  # its runs only
    columns = ["epoch", "train_loss", "minibatch_min_cosine", "probe_min_cosine"]
    rows = [d[(d["kind"] == "curve") & (d["run"] == key)][columns].reset_index(drop=True) for d in data.values()]
    pd.testing.assert_frame_equal(*rows, check_exact=True)
    stored, _ = store.read_point(key)
    again = mc.train_run(runs["F8_depth_training"][key], specs["F8_depth_training"].settings, progress=False)
    lists = "minibatch_cosines"  # a list per row (Parquet gives arrays back)
    pd.testing.assert_frame_equal(stored.drop(columns=["tracking_seconds", lists]),
                                  again.drop(columns=["tracking_seconds", lists]), check_exact=True)
    assert [list(c) for c in stored[lists]] == [list(c) for c in again[lists]]


def test_f8_fast_data_hold_the_matched_loss_columns_and_the_report_a_verdict_row(f8_fast):
    name = "F8_depth_training"
    data = pd.read_csv(f8_fast / "figures" / name / f"{name}.csv")
    matched = data[data["kind"] == "matched_loss"]
    depths = sorted(data.loc[data["kind"] == "curve", "depth"].unique())
    assert len(matched) == len(depths) * len(_training.LEVELS)
    for column in ("level", "status", "matched_epoch", "matched_train_loss", "matched_min_cosine",
                   "matched_min_cosine_lo", "matched_min_cosine_hi", "matched_mean_cosine",
                   "matched_mean_cosine_se", "lowest_tracked_loss"):
        assert column in matched, column
    # reached rows carry numbers, the others NaN and say so
    for _, r in matched.iterrows():
        assert r["status"] == "reached" or (r["status"].startswith("not reached")
                                            and np.isnan(r["matched_min_cosine"]))
    # every tracked epoch's pairs are in the data, consistent with the curve's minimum
    curves, pairs = data[data["kind"] == "curve"], data[data["kind"] == "pair_cosine"]
    per_epoch = pairs.groupby(["run", "epoch"])["cosine"].min()
    assert len(per_epoch) == len(curves)
    for _, c in curves.iterrows():
        assert per_epoch[(c["run"], c["epoch"])] == pytest.approx(c["minibatch_min_cosine"])
    # the stored table is the one the report derives from the data
    again = _training.matched_loss(_training.best_runs(data))
    pd.testing.assert_series_equal(again["matched_min_cosine"].reset_index(drop=True),
                                   matched["matched_min_cosine"].reset_index(drop=True), check_names=False)
    rows = paper_figures.FIGURES[name].report(data)
    assert len(rows) == 2 and "matched training loss" in rows[1]["claim"]
    assert "at matched loss" in rows[1]["verdict"].split(":")[0]
    for level in _training.LEVELS:
        assert f"loss <= {level:g}" in rows[1]["numbers"]
    report = (f8_fast / "report.md").read_text()
    assert report.count("| [F8_depth_training]") == 2 and "at matched training loss" in report


def test_figures_draw_the_matched_loss_markers(synthetic, tmp_path):
    data, shallow, deep = synthetic
    f08_depth_training.FIGURE.plot(data, tmp_path / "f8")
    variants = pd.concat([*_run_rows("p", [2.3, 0.4, 0.3], shallow[:3], depth=10),
                          *_run_rows("b", [2.3, 0.2, 0.05], deep[:3], depth=10, skip=True, batchnorm=True)],
                         ignore_index=True)
    f10_batchnorm_skip.FIGURE.plot(variants, tmp_path / "f10")
    for stem in ("f8", "f10"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 0
