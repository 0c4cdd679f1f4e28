"""Training: seeded, resumable after interruption, the minibatch-pair protocol checked by hand, CLI."""

import numpy as np
import pandas as pd
import pytest
import torch

import montecarlo as mc
from montecarlo import CNN, build_model, minibatch_cosines
from montecarlo.__main__ import main
from montecarlo.testing import LOSS, SETTING_DEFAULTS, TRAIN_DEFAULTS, loop, runs, tracked_epochs

SETTINGS = dict(SETTING_DEFAULTS, epochs=4, track_points=3, pairs=4, pair_batch=32, probe_size=16)
RUN = dict(TRAIN_DEFAULTS, depth=10, width=1, base=4, lr=0.1)


def test_tracked_epochs():
    assert tracked_epochs(30, "linear", 4) == [0, 10, 20, 30]
    assert tracked_epochs(100, "log", 4) == [0, 1, 10, 100]
    assert tracked_epochs(3, "log", 8) == [0, 1, 2, 3]


def test_a_run_is_a_pure_function_of_its_configuration():
    a = loop.train_run(RUN, SETTINGS, progress=False)
    b = loop.train_run(RUN, SETTINGS, progress=False)
    pd.testing.assert_frame_equal(a.drop(columns="tracking_seconds"), b.drop(columns="tracking_seconds"))
    assert list(a["epoch"]) == tracked_epochs(4, "log", 3)
    assert a["train_loss"].iloc[-1] < a["train_loss"].iloc[0]  # SGD trains
    c = loop.train_run(dict(RUN, seed=1), SETTINGS, progress=False)
    assert not np.allclose(c["train_loss"], a["train_loss"])


def test_a_run_is_the_same_whatever_the_callers_torch_threads(monkeypatch):
    """Runs train on one torch thread (``loop.TORCH_THREADS``) whatever the caller set: the frame of a caller on
    2 threads equals that of a caller on 1 bitwise, although a CNN gradient itself rounds differently on 2 threads
    (checked first, so that the equality is not vacuous: SGD would amplify it), and the caller's count is restored."""
    short = dict(SETTINGS, epochs=2, track_points=2)
    before = torch.get_num_threads()
    data = mc.load_dataset("digits")
    x, y = torch.from_numpy(data.train_x[:128]).float(), torch.from_numpy(data.train_y[:128])
    model = build_model("cnn", 10, 1, data.shape, data.num_classes, base=4, seed=0, dtype=torch.float32)
    try:
        gradients, frames = [], []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model.zero_grad()
            LOSS(model(x), y).mean().backward()
            gradients.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
            monkeypatch.setattr(loop, "_INITIAL_ROWS", {})  # each records its own epoch-0 row
            frames.append(loop.train_run(RUN, short, progress=False).drop(columns="tracking_seconds"))
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    assert not torch.equal(*gradients)
    pd.testing.assert_frame_equal(*frames, check_exact=True)


def test_step_sizes_of_one_model_share_the_epoch_0_row_and_it_is_the_row_they_would_record(monkeypatch):
    """A run whose epoch-0 row comes from another step size's run (loop._INITIAL_ROWS) has the frame it has when
    it records that row itself (cache emptied), bitwise; the shared row differs from the other run's only in lr; a
    batch-norm model, so that restoring the running statistics after the record matters; another seed records anew."""
    run, short = dict(RUN, batchnorm=True), dict(SETTINGS, epochs=2, track_points=2)
    shared, fresh = {}, {}  # the epoch-0 rows the runs leave (in place of the process's own)
    monkeypatch.setattr(loop, "_INITIAL_ROWS", shared)
    first = loop.train_run(dict(run, lr=0.1), short, progress=False)
    assert len(shared) == 1
    reused = loop.train_run(dict(run, lr=0.05), short, progress=False)
    monkeypatch.setattr(loop, "_INITIAL_ROWS", fresh)
    recorded = loop.train_run(dict(run, lr=0.05), short, progress=False)
    pd.testing.assert_frame_equal(reused.drop(columns="tracking_seconds"), recorded.drop(columns="tracking_seconds"),
                                  check_exact=True)
    a, b = first.iloc[0].drop(["lr", "tracking_seconds"]), reused.iloc[0].drop(["lr", "tracking_seconds"])
    assert a.to_dict() == b.to_dict() and (first["lr"].iloc[0], reused["lr"].iloc[0]) == (0.1, 0.05)
    assert not first["train_loss"].iloc[1:].equals(reused["train_loss"].iloc[1:])  # different step sizes
    other_seed = loop.train_run(dict(run, lr=0.05, seed=1), short, progress=False)
    assert other_seed["train_loss"].iloc[0] != recorded["train_loss"].iloc[0] and len(fresh) == 2


def test_resuming_from_a_checkpoint_continues_exactly(tmp_path):
    run = dict(RUN, batchnorm=True, skip=True)
    uninterrupted = loop.train_run(run, SETTINGS, progress=False)
    checkpoint = tmp_path / "run.pt"
    first = loop.train_run(run, SETTINGS, checkpoint=checkpoint, progress=False, stop_after=2)  # "killed"
    tracked = tracked_epochs(SETTINGS["epochs"], "log", SETTINGS["track_points"])
    assert checkpoint.exists() and list(first["epoch"]) == [e for e in tracked if e <= 2]
    resumed = loop.train_run(run, SETTINGS, checkpoint=checkpoint, progress=False)
    pd.testing.assert_frame_equal(resumed.drop(columns="tracking_seconds"),
                                  uninterrupted.drop(columns="tracking_seconds"))


def test_minibatch_pair_cosines_by_hand():
    """Each cosine is that of the gradients of the mean loss over two random minibatches (parameters flattened)."""
    torch.manual_seed(0)
    model = CNN(10, 1, 1, 3, skip=True, batchnorm=True, base=4).double()
    x = torch.randn(40, 1, 8, 8, dtype=torch.float64)
    y = torch.randint(3, (40,))
    running = [m.running_mean.clone() for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    cosines = minibatch_cosines(model, x, y, 3, 10, np.random.default_rng(5))
    after = [m.running_mean for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(a, b) for a, b in zip(running, after))  # running statistics untouched
    rng = np.random.default_rng(5)
    model.train()
    for k in range(3):
        grads = []
        for _ in range(2):
            index = torch.from_numpy(rng.choice(40, size=10, replace=False))
            model.zero_grad()
            LOSS(model(x[index]), y[index]).mean().backward()
            grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).clone())
        expected = float(grads[0] @ grads[1] / (grads[0].norm() * grads[1].norm()))
        assert cosines[k] == pytest.approx(expected, rel=1e-10)


def test_float32_tracking_agrees_with_float64():
    """Training defaults to float32 (8x faster convolutions on the CPU); a short run agrees with float64."""
    short = dict(SETTINGS, epochs=2, track_points=2)
    single = loop.train_run(RUN, dict(short, dtype="float32"), progress=False)
    double = loop.train_run(RUN, dict(short, dtype="float64"), progress=False)
    for column in ("train_loss", "probe_min_cosine", "probe_eta_star", "minibatch_min_cosine"):
        np.testing.assert_allclose(single[column], double[column], rtol=1e-3, atol=1e-4, err_msg=column)


def test_build_model_is_seeded_and_he_initialised():
    a = build_model("cnn", 16, 2, (1, 8, 8), 10, seed=3)
    b = build_model("cnn", 16, 2, (1, 8, 8), 10, seed=3)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    for conv in (a.blocks[0].conv1, a.blocks[1].conv1):  # He: std sqrt(2 / fan_in), fan_in = C_in * 3 * 3
        expected = np.sqrt(2 / (conv.in_channels * 9))
        assert abs(conv.weight.std().item() - expected) < 4 * expected / np.sqrt(2 * conv.weight.numel())
    assert sum(isinstance(m, torch.nn.Conv2d) for m in a.modules()) == 1 + 2 * 6  # stem + 2 per block, no shortcuts
    with pytest.raises(ValueError, match=r"argument 'depth' must be 6 n \+ 4"):
        build_model("cnn", 15, 1, (1, 8, 8), 10)


def test_training_grid_is_validated_before_training():
    with pytest.raises(ValueError, match=r"unknown training key\(s\) 'epoch'"):
        runs.TrainingGrid.from_mapping({"epoch": 3})
    with pytest.raises(ValueError, match=r"training point .* is impossible: argument 'depth' must be 6 n \+ 4"):
        runs.TrainingGrid.from_mapping({"depth": [16, 17]})


def test_cli_train_stores_runs_and_resumes(tmp_path, capsys, monkeypatch):
    """The command line, in this process as in test_cli_errors (test_training_dask runs it as a process of its own)."""
    argv = ["train", "--model", "cnn", "--depth", "10", "--width", "1", "2", "--base", "4", "--data", "digits",
            "--epochs", "2", "--track-points", "2", "--pairs", "2", "--pair-batch", "16", "--probe-size", "8", "--out",
            str(tmp_path / "store")]
    code, captured = main(argv), capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    assert "2/2 runs stored" in captured.out and "min minibatch cos" in captured.out
    store = mc.ResultsStore(tmp_path / "store", runs.TrainingGrid.from_mapping(
        {"model": "cnn", "depth": 10, "width": [1, 2], "base": 4, "data": "digits", "epochs": 2, "track_points": 2,
         "pairs": 2, "pair_batch": 16, "probe_size": 8}).to_dict())
    frame = store.frame()
    assert sorted(frame["width"].unique()) == [1, 2] and len(frame["minibatch_cosines"].iloc[0]) == 2
    monkeypatch.setattr(runs, "train_one", lambda *args, **kwargs: pytest.fail("retrained a stored run"))
    code, captured = main(argv), capsys.readouterr()
    assert code == 0 and "2/2 runs stored" in captured.out
    assert main(["train", "--data", "mnist", "--out", str(tmp_path / "m")]) == 2
    assert "train-images-idx3-ubyte" in capsys.readouterr().err


def test_a_diverging_run_stops_and_says_so():
    frame = loop.train_run(dict(RUN, lr=1e5), dict(SETTINGS, epochs=3), progress=False)
    assert bool(frame["diverged"].iloc[-1]) and not frame["diverged"].iloc[:-1].any()
    assert not np.isfinite(frame["train_loss"].iloc[-1]) or frame["train_loss"].iloc[-1] > 10
