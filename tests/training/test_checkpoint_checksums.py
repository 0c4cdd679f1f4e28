"""A training checkpoint is verified against the checksum record beside it before it is loaded: a damaged one, or
another run's, is named on stderr and the run starts afresh, ending with the numbers of an uninterrupted run."""

import shutil

import pandas as pd
import pytest

from montecarlo.testing import SETTING_DEFAULTS, TRAIN_DEFAULTS
from montecarlo.testing import loop as training

SETTINGS = dict(SETTING_DEFAULTS, data="digits", epochs=3, track_points=3, pairs=2, pair_batch=16, probe_size=8,
                batch_size=64)
RUN = dict(TRAIN_DEFAULTS, model="mlp", depth=1, width=16, lr=0.1)


def numbers(frame):
    return frame.drop(columns="tracking_seconds")


@pytest.fixture(scope="module")
def uninterrupted():
    return numbers(training.train_run(RUN, SETTINGS, progress=False))


def interrupted(tmp_path, run=RUN):
    """A checkpoint after 2 of 3 epochs, as a run killed then leaves it."""
    checkpoint = tmp_path / "run.pt"
    training.train_run(run, SETTINGS, checkpoint=checkpoint, progress=False, stop_after=2)
    return checkpoint


def resume(checkpoint, capsys):
    started = []
    frame = training.train_run(RUN, SETTINGS, checkpoint=checkpoint, progress=False, on_start=started.append)
    return numbers(frame), started, capsys.readouterr().err


def flip_one_byte(data: bytes) -> bytes:
    data = bytearray(data)
    data[len(data) // 2] ^= 0x01
    return bytes(data)


def test_an_intact_checkpoint_is_resumed_from_its_epoch(tmp_path, uninterrupted, capsys):
    checkpoint = interrupted(tmp_path)
    assert (tmp_path / "run.sha256").exists()  # the record beside it
    frame, started, err = resume(checkpoint, capsys)
    assert started == [2] and "warning" not in err
    pd.testing.assert_frame_equal(frame, uninterrupted)


@pytest.mark.parametrize("damage, why", [
    (flip_one_byte, "changed bytes"),  # one bit in the weights used to resume silently
    (lambda data: data[: len(data) // 2], "truncated"),
])
def test_a_damaged_checkpoint_is_named_and_the_run_restarts_to_the_uninterrupted_numbers(tmp_path, uninterrupted,
                                                                                          capsys, damage, why):
    checkpoint = interrupted(tmp_path)
    checkpoint.write_bytes(damage(checkpoint.read_bytes()))
    frame, started, err = resume(checkpoint, capsys)
    assert f"warning: checkpoint {checkpoint}: " in err and why in err and "restarting the run from epoch 0" in err
    assert started == [0]
    pd.testing.assert_frame_equal(frame, uninterrupted)


def test_another_runs_checkpoint_or_one_without_its_record_is_not_resumed(tmp_path, uninterrupted, capsys):
    (tmp_path / "other").mkdir()
    other = interrupted(tmp_path / "other", run=dict(RUN, seed=1))
    mine = tmp_path / "run.pt"
    shutil.copyfile(other, mine)  # the other run's checkpoint and record under this run's names
    shutil.copyfile(other.with_suffix(".sha256"), tmp_path / "run.sha256")
    frame, started, err = resume(mine, capsys)
    assert f"warning: checkpoint {mine}: " in err and "checkpoint of" in err and started == [0]
    pd.testing.assert_frame_equal(frame, uninterrupted)

    mine = interrupted(tmp_path / "other")  # this run's own checkpoint, its record removed
    (tmp_path / "other" / "run.sha256").unlink()
    frame, started, err = resume(mine, capsys)
    assert "no checksum file run.sha256" in err and started == [0]
    pd.testing.assert_frame_equal(frame, uninterrupted)


def test_a_run_killed_between_the_record_and_the_checkpoint_resumes_from_the_one_before(tmp_path, uninterrupted,
                                                                                         capsys):
    """The record is written first and names the checkpoint it replaces: killed before the new checkpoint was
    written, the old one still verifies, and the run resumes from it rather than from the beginning."""
    checkpoint = tmp_path / "run.pt"
    training.train_run(RUN, SETTINGS, checkpoint=checkpoint, progress=False, stop_after=1)
    after_one = checkpoint.read_bytes()
    training.train_run(RUN, SETTINGS, checkpoint=checkpoint, progress=False, stop_after=1)  # epoch 2 written
    checkpoint.write_bytes(after_one)  # as if killed after epoch 2's record, before its checkpoint
    frame, started, err = resume(checkpoint, capsys)
    assert started == [1] and "warning" not in err
    pd.testing.assert_frame_equal(frame, uninterrupted)
    checkpoint.write_bytes(flip_one_byte(checkpoint.read_bytes()))  # neither the new content nor the old: damaged
    assert "changed bytes" in resume(checkpoint, capsys)[2]
