"""Matched training loss (F8-F10): levels chosen from the runs, each seed read where it first reaches a level
(interpolated between tracked epochs), and comparisons over seeds, on synthetic runs with known answers."""

import numpy as np
import pandas as pd
import pytest
import torch

import montecarlo as mc
import paper_figures
from paper_figures import _runner
from paper_figures.figures import _depth_width, _training, f08_depth_training, f09_width_training, f10_batchnorm_skip

PAIRS = np.linspace(-0.5, 0.5, 21)  # a run's pair cosines at an epoch are these, shifted: their 5% quantile is known
Q05 = float(np.quantile(PAIRS, 0.05))


def run_rows(run, losses, shifts, depth=10, width=1, skip=False, batchnorm=False, seed=0, data="digits",
             diverged=None, epochs=None):
    """One run in the layout of ``_training.tabulate``: a curve row and 21 pair cosines (``PAIRS + shift``) per
    tracked epoch."""
    epochs = list(range(len(losses))) if epochs is None else epochs
    config = dict(data=data, depth=depth, width=width, skip=skip, batchnorm=batchnorm, lr=0.05, seed=seed, base=4)
    curve = pd.DataFrame({"epoch": epochs, "train_loss": losses, "diverged": diverged or [False] * len(losses),
                          "test_accuracy": 0.5, "probe_min_cosine": 0.0, "batch_size": 32, "pair_batch": 64,
                          "minibatch_min_cosine": [PAIRS.min() + s for s in shifts],
                          "minibatch_mean_cosine": [s for s in shifts]}).assign(kind="curve", run=run, **config)
    pairs = [pd.DataFrame({"kind": "pair_cosine", "run": run, "epoch": e, "pair": np.arange(len(PAIRS)),
                           "cosine": PAIRS + s, **config}) for e, s in zip(epochs, shifts)]
    return pd.concat([curve, *pairs], ignore_index=True)


def test_a_seed_is_read_where_its_loss_first_reaches_the_level_interpolated():
    data = run_rows("a", [2.3, 1.0, 0.4, 0.1], [0.0, 0.2, 0.6, 0.7], epochs=[0, 2, 4, 6])
    epochs = _training.epoch_table(data)
    assert epochs["quantile_cosine"].tolist() == pytest.approx([Q05, Q05 + 0.2, Q05 + 0.6, Q05 + 0.7])
    # 0.7 lies half-way from 1.0 (epoch 2) to 0.4 (epoch 4): epoch 3, cosine statistics half-way too
    hit = _training.crossing(epochs, 0.7)
    assert hit["epoch"] == pytest.approx(3.0) and hit["fraction"] == pytest.approx(0.5)
    assert hit["mean_cosine"] == pytest.approx(0.4) and hit["quantile_cosine"] == pytest.approx(Q05 + 0.4)
    # a quarter of the way from 0.4 (epoch 4) to 0.1 (epoch 6): 0.325
    hit = _training.crossing(epochs, 0.325)
    assert hit["epoch"] == pytest.approx(4.5) and hit["mean_cosine"] == pytest.approx(0.625)
    # exactly at a tracked loss: that epoch; above the first loss: the first epoch; below every loss: never
    at = _training.crossing(epochs, 1.0)
    assert at["epoch"] == 2 and at["mean_cosine"] == epochs["mean_cosine"].iloc[1]
    assert _training.crossing(epochs, 3.0)["epoch"] == 0
    assert _training.crossing(epochs, 0.05) is None
    # the first crossing, not a later one: the loss comes back up and crosses again
    bumpy = _training.epoch_table(run_rows("b", [2.3, 0.5, 1.5, 0.2], [0.0, 0.1, 0.2, 0.3]))
    assert _training.crossing(bumpy, 0.6)["epoch"] == pytest.approx(1 - 0.1 / 1.8)


def test_diverged_rows_never_reach_a_level():
    data = run_rows("a", [2.3, 1.0, 0.05], [0.0, 0.1, 0.9], diverged=[False, False, True])
    epochs = _training.epoch_table(data)
    assert _training.crossing(epochs, 0.5) is None  # the loss of a diverged row is not a fit
    assert _training.crossing(epochs, 1.5)["epoch"] == pytest.approx(1.3 / 1.3 * (2.3 - 1.5) / 1.3)
    values = _training.run_values(epochs)
    assert values["diverged"].item() and np.isnan(values["quantile_cosine"].item())
    assert values["lowest_loss"].item() == 1.0  # what it trained to before


def _seeds(depth, lowest, shift=0.0, noise=None, data="digits"):
    """Five seeds of one depth: loss 2.3 at epoch 0 falling linearly to each seed's ``lowest`` at epoch 4; pair
    cosines ``PAIRS + shift + noise[seed]`` at every epoch."""
    noise = np.zeros(len(lowest)) if noise is None else noise
    return [run_rows(f"{data}-{depth}-{s}", list(np.linspace(2.3, low, 5)), [shift + noise[s]] * 5, depth=depth,
                     seed=s, data=data) for s, low in enumerate(lowest)]


def test_levels_are_chosen_so_that_every_trained_configuration_reaches_them_in_most_seeds():
    # depth 10 reaches 0.20 in 4 of 5 seeds, depth 16 0.3512 in 4 of 5; depth 22 never gets below 0.75 x 2.3
    data = pd.concat([*_seeds(10, [0.10, 0.12, 0.15, 0.20, 0.90]), *_seeds(16, [0.30, 0.31, 0.33, 0.3512, 2.2]),
                      *_seeds(22, [2.2, 2.25, 2.3, 2.3, 2.3])], ignore_index=True)
    epochs = _training.epoch_table(data)
    values = _training.run_values(epochs)
    levels, table = _training.choose_levels(values)
    table = table.set_index("depth")
    assert table.loc[10, "reach"] == 0.20 and table.loc[16, "reach"] == 0.3512 and table.loc[22, "reach"] == 2.3
    assert table["trained"].tolist() == [True, True, False]
    # the late level: 0.3512 rounded up to 0.36 (still reached where 0.3512 was); the early one: sqrt(0.36 x 2.3)
    assert levels == [0.91, 0.36]
    for level in levels:
        reached = _training.matched_values(epochs, level).groupby("depth")["reached"].sum()
        assert reached[10] >= 4 and reached[16] >= 4
    assert _training.matched_values(epochs, 0.36).groupby("depth")["reached"].sum()[22] == 0
    # one configuration that trained is not a comparison: no level
    alone = values[values["depth"] != 16]
    assert _training.choose_levels(alone)[0] == []


def test_a_known_effect_at_matched_loss_is_reproduced_and_its_interval_covers_it():
    """Depth 16's cosines are 0.3 lower than depth 10's at every epoch (the same seed noise): the difference of the
    5% quantiles at the level is -0.3 exactly; the interval holds it and excludes 0; the width claim (the other
    direction) is contradicted by the same numbers."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.05, 5)
    data = pd.concat([*_seeds(10, [0.1] * 5, 0.0, noise), *_seeds(16, [0.2] * 5, -0.3, noise)], ignore_index=True)
    epochs = _training.epoch_table(data)
    levels, _ = _training.choose_levels(_training.run_values(epochs))
    assert levels == [0.68, 0.2]
    matched = _training.matched_values(epochs, 0.2)
    c = _training.at_level(matched[matched["depth"] == 10], matched[matched["depth"] == 16], "higher", "lower")
    q = c["quantile"]
    assert not c["paired"] and q.method == "Welch t"
    assert q.difference == pytest.approx(-0.3) and q.lo < -0.3 < q.hi < 0 and q.verdict == "reproduced"
    # depth 10 reaches 0.2 at epoch 4 x 2.1 / 2.2, depth 16 at epoch 4: more epochs for the deeper net
    assert c["epochs"].difference == pytest.approx(4 - 4 * 2.1 / 2.2) and c["epochs"].verdict == "reproduced"
    row = _depth_width.matched_row(epochs, _training.run_values(epochs), "depth", "sizes")
    assert row["verdict"].startswith("reproduced at matched loss: loss 0.68, depth 10 -> 16: reproduced; loss 0.2, "
                                     "depth 10 -> 16: reproduced")
    assert "levels 0.68, 0.2" in row["numbers"] and "-0.300 [" in row["numbers"]
    as_width = epochs.assign(width=epochs["depth"].map({10: 1, 16: 2}), depth=10)
    assert _depth_width.matched_row(as_width, _training.run_values(as_width), "width",
                                    "sizes")["verdict"].startswith("contradicted at matched loss")


def test_no_effect_is_not_resolved_and_too_few_seeds_not_testable():
    rng = np.random.default_rng(1)
    data = pd.concat([*_seeds(10, [0.1] * 5, 0.0, rng.normal(0, 0.1, 5)),
                      *_seeds(16, [0.2] * 5, 0.0, rng.normal(0, 0.1, 5))], ignore_index=True)
    epochs = _training.epoch_table(data)
    values = _training.run_values(epochs)
    row = _depth_width.matched_row(epochs, values, "depth", "sizes")
    assert row["verdict"].startswith("not resolved at matched loss")
    # depth 16 reaches its level in 2 of 5 seeds only: below 3, that level is not testable
    few = pd.concat([*_seeds(10, [0.1] * 5), *_seeds(16, [0.2, 0.2, 2.2, 2.2, 2.2], -0.3)], ignore_index=True)
    epochs = _training.epoch_table(few)
    values = _training.run_values(epochs)
    assert _training.choose_levels(values)[0] == []  # depth 16 did not train in most seeds
    assert _depth_width.matched_row(epochs, values, "depth", "sizes")["verdict"] == (
        "not testable at matched loss: fewer than two depths trained")
    level = _training.matched_values(epochs, 0.2)
    c = _training.at_level(level[level["depth"] == 10], level[level["depth"] == 16], "higher", "lower")
    assert c["quantile"] is None and _training.describe(c["quantile"]) == "not testable (fewer than 3 seeds)"


def test_seeds_are_paired_only_where_the_initial_weights_correspond():
    """The pairing rule against the models themselves: the same seed gives the same convolution weights with and
    without batch norm (paired), other weights once skip connections add their shortcut convolutions."""
    def weights(**kwargs):
        model = mc.build_model("cnn", 10, 2, (1, 8, 8), 10, base=4, seed=3, **kwargs)
        return [m.weight.detach() for m in model.modules()
                if isinstance(m, torch.nn.Linear) or isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]

    plain, bn, skip = weights(), weights(batchnorm=True), weights(skip=True)
    assert all(torch.equal(a, b) for a, b in zip(plain, bn)) and len(plain) == len(bn)
    assert not all(torch.equal(a, b) for a, b in zip(plain, skip))
    config = dict(data="digits", depth=10, width=2, skip=False, batchnorm=False, base=4)
    assert _training.initial_weights_correspond(config, {**config, "batchnorm": True})
    assert not _training.initial_weights_correspond(config, {**config, "skip": True, "batchnorm": True})
    assert not _training.initial_weights_correspond(config, {**config, "depth": 16})
    assert not _training.initial_weights_correspond(config, {**config, "data": "mnist1d"})


def test_f10_compares_both_with_plain_and_pairs_batch_norm():
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 0.02, 5)
    frames = []
    for name, (skip, bn) in f10_batchnorm_skip.VARIANTS.items():
        shift = {"plain": -0.2, "skip": 0.0, "batch norm": 0.1, "both": 0.2}[name]
        for s in range(5):
            frames.append(run_rows(f"{name}-{s}", list(np.linspace(2.3, 0.1 + 0.01 * s, 5)), [shift + noise[s]] * 5,
                                   depth=16, width=2, skip=skip, batchnorm=bn, seed=s))
    data = pd.concat(frames, ignore_index=True)
    end, matched = f10_batchnorm_skip.report(data)
    assert matched["verdict"].startswith("reproduced at matched loss: loss")
    assert "plain -> both (two-sample): 5% quantile +0.400 [" in matched["numbers"]
    assert "plain -> batch norm (paired by seed): 5% quantile +0.300 [0.300, 0.300] (paired t" in matched["numbers"]
    # at the end of training both is 0.4 higher in the quantile but its loss is no lower: confusion only
    assert end["verdict"].startswith("partly reproduced: depth 16, plain -> batch norm + skip, trainability not "
                                     "resolved, confusion reproduced")


@pytest.fixture(scope="module")
def f8_fast(tmp_path_factory):
    """F8 and F9 at --fast: F9's width-1 runs are F8's depth-10 runs (the pools train them once)."""
    out = tmp_path_factory.mktemp("f8")
    _runner.run(["F8_depth_training", "F9_width_training"], "fast", out, progress=False)
    return out


def test_f8_and_f9_share_their_common_runs_through_the_pools(f8_fast):
    """One pool per dataset; F9 read F8's depth-10 width-1 runs (every seed) from it, its rows are F8's, and a stored
    run is the one train_run gives for its configuration, trained here again."""
    grids = {"F8_depth_training": f08_depth_training.grid("fast"), "F9_width_training": f09_width_training.grid("fast")}
    pools = sorted((f8_fast / "store" / "shared").iterdir())
    assert len(pools) == len(_training.DATASETS)
    data = {name: pd.read_csv(f8_fast / "figures" / name / f"{name}.csv") for name in grids}
    for dataset in _training.DATASETS:
        settings = _training.SETTINGS["fast"][dataset]
        specs = {name: mc.TrainingGrid.from_mapping({**grid, **settings}) for name, grid in grids.items()}
        runs = {name: spec.runs() for name, spec in specs.items()}
        shared = set(runs["F8_depth_training"]) & set(runs["F9_width_training"])
        assert len(shared) == _training.SEEDS["fast"]
        assert all(runs["F9_width_training"][k]["width"] == 1 and runs["F8_depth_training"][k]["depth"] == 10
                   for k in shared)
        store = next(mc.ResultsStore.open_existing(p) for p in pools
                     if set(runs["F8_depth_training"]) <= mc.ResultsStore.open_existing(p).done())
        assert store.done() == set(runs["F8_depth_training"]) | set(runs["F9_width_training"])
        columns = ["epoch", "train_loss", "minibatch_min_cosine", "probe_min_cosine"]
        for key in shared:
            rows = [d[(d["kind"] == "curve") & (d["run"] == key)][columns].reset_index(drop=True)
                    for d in data.values()]
            pd.testing.assert_frame_equal(*rows, check_exact=True)
    key = sorted(shared)[0]  # an MNIST-1D run, trained here again
    stored, _ = store.read_point(key)
    again = mc.train_run(runs["F8_depth_training"][key], specs["F8_depth_training"].settings, progress=False)
    lists = "minibatch_cosines"  # a list per row (Parquet gives arrays back)
    pd.testing.assert_frame_equal(stored.drop(columns=["tracking_seconds", lists]),
                                  again.drop(columns=["tracking_seconds", lists]), check_exact=True)
    assert [list(c) for c in stored[lists]] == [list(c) for c in again[lists]]
    assert not (f8_fast / "store" / "F9_width_training-fast").exists()  # no store of its own


def test_f8_fast_report_rows_per_dataset_from_seeds(f8_fast):
    name = "F8_depth_training"
    data = pd.read_csv(f8_fast / "figures" / name / f"{name}.csv")
    assert set(data["data"]) == set(_training.DATASETS)
    assert (data[data["kind"] == "curve"].groupby(["data", "depth"])["seed"].nunique() == _training.SEEDS["fast"]).all()
    # every tracked epoch's pairs are in the data, consistent with the curve's minimum
    curves, pairs = data[data["kind"] == "curve"], data[data["kind"] == "pair_cosine"]
    per_epoch = pairs.groupby(["run", "epoch"])["cosine"].min()
    assert len(per_epoch) == len(curves)
    for _, c in curves.iterrows():
        assert per_epoch[(c["run"], c["epoch"])] == pytest.approx(c["minibatch_min_cosine"])
    rows = paper_figures.FIGURES[name].report(data)
    assert len(rows) == 2 * len(_training.DATASETS)
    assert [r["claim"].endswith("matched training loss") for r in rows] == [False, True] * len(_training.DATASETS)
    for row, dataset in zip(rows[::2], _training.DATASETS):
        assert row["check"].startswith(_training.DATA_NAMES[dataset] + ", 3 seeds per configuration")
    report = (f8_fast / "report.md").read_text()
    assert report.count("| [F8_depth_training]") == 4 and "at matched training loss" in report


def test_figures_draw_from_seeds(tmp_path):
    rng = np.random.default_rng(3)
    data = pd.concat([*_seeds(10, [0.1] * 5, 0.0, rng.normal(0, 0.05, 5)),
                      *_seeds(16, [0.2] * 5, -0.3, rng.normal(0, 0.05, 5)),
                      *_seeds(10, [0.5] * 5, 0.1, rng.normal(0, 0.05, 5), data="mnist1d")], ignore_index=True)
    f08_depth_training.FIGURE.plot(data, tmp_path / "f8")
    variants = pd.concat([run_rows(f"{v}-{s}", [2.3, 1.0, 0.2], [0.1, 0.2, 0.3], depth=10, skip=sk, batchnorm=bn,
                                   seed=s) for v, (sk, bn) in f10_batchnorm_skip.VARIANTS.items() for s in range(3)],
                         ignore_index=True)
    f10_batchnorm_skip.FIGURE.plot(variants, tmp_path / "f10")
    for stem in ("f8", "f10"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 0
