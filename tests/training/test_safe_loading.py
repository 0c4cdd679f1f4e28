"""Files from users run no code: CIFAR-10 batches and training checkpoints are read with restricted unpicklers.

Each malicious file here is first shown to work (plain ``pickle.loads`` or
``torch.load(weights_only=False)`` does create the marker file), so that the
refusal that follows is a real one.
"""

import builtins
import os
import pickle
import struct

import numpy as np
import pandas as pd
import pytest
import torch

import montecarlo as mc
from montecarlo.testing import CIFAR_FILES, SETTING_DEFAULTS, TRAIN_DEFAULTS, read_cifar_batch, tracked_epochs
from montecarlo.testing import loop as training


def python2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch as the original CIFAR-10 files are written (Python 2 cPickle, protocol 2), assembled opcode by opcode.

    Python 3 cannot write Python 2 ``str`` (``SHORT_BINSTRING``/``BINSTRING``) or the legacy ``numpy.core`` path,
    so the opcodes are written here directly, following pickletools' description of protocol 2.
    """
    def string(b: bytes) -> bytes:
        return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)

    def integer(i: int) -> bytes:
        return b"K" + bytes([i]) if i < 256 else b"M" + struct.pack("<H", i) if i < 65536 else b"J" + struct.pack("<i", i)

    n = data.shape[0]
    array = (b"cnumpy.core.multiarray\n_reconstruct\n" b"cnumpy\nndarray\n" + integer(0) + b"\x85" + string(b"b")
             + b"\x87R"  # _reconstruct(ndarray, (0,), 'b')
             + b"(" + integer(1) + integer(n) + integer(3072) + b"\x86"  # BUILD state: (1, (n, 3072), dtype, False, raw)
             + b"cnumpy\ndtype\n" + string(b"u1") + integer(0) + integer(1) + b"\x87R"
             + b"(" + integer(3) + string(b"|") + b"NNN" + b"J\xff\xff\xff\xffJ\xff\xff\xff\xff" + integer(0) + b"tb"
             + b"\x89" + string(data.tobytes()) + b"tb")
    label_list = b"](" + b"".join(integer(int(v)) for v in labels) + b"e"
    return (b"\x80\x02}(" + string(b"batch_label") + string(b"training batch 1 of 5") + string(b"data") + array
            + string(b"labels") + label_list + b"u.")


def py3_protocol(protocol):
    return lambda data, labels: pickle.dumps({b"batch_label": b"x", b"data": data, b"labels": labels,
                                              b"filenames": [b"a.png"] * len(labels)}, protocol=protocol)


WRITERS = {"python2": python2_batch, "protocol2": py3_protocol(2), "protocol4": py3_protocol(4),
           "protocol5": py3_protocol(5)}


def write_cifar(folder, writer, sizes=(3, 2, 2, 1, 2, 3), seed=0):
    rng = np.random.default_rng(seed)
    written = {}
    for name, n in zip(CIFAR_FILES, sizes):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).tolist()
        (folder / name).write_bytes(writer(data, labels))
        written[name] = (data, labels)
    return written


def test_the_python2_emulation_is_a_real_cifar_pickle(tmp_path):
    """The hand-assembled bytes unpickle (with the ordinary unpickler) to the dict a real batch holds."""
    data = np.arange(2 * 3072, dtype=np.int64).reshape(2, 3072).astype(np.uint8)
    batch = pickle.loads(python2_batch(data, [3, 9]), encoding="bytes")
    assert set(batch) == {b"batch_label", b"data", b"labels"} and batch[b"labels"] == [3, 9]
    assert batch[b"data"].dtype == np.uint8
    np.testing.assert_array_equal(batch[b"data"], data)


@pytest.mark.parametrize("writer", WRITERS)
def test_cifar_batches_load_to_the_pixels_written(tmp_path, writer):
    written = write_cifar(tmp_path, WRITERS[writer])
    data = mc.load_dataset("cifar10", tmp_path)
    train = np.concatenate([written[name][0] for name in CIFAR_FILES[:-1]])
    test = written["test_batch"][0]
    assert data.train_x.shape == (10, 3, 32, 32) and data.test_x.shape == (3, 3, 32, 32)
    # pixels: channel-major rows of 3 x 1024, standardised by the training set's mean and std of pixel / 255
    raw_train, raw_test = train.reshape(-1, 3, 32, 32) / 255.0, test.reshape(-1, 3, 32, 32) / 255.0
    mean, std = raw_train.mean(), raw_train.std()
    np.testing.assert_allclose(data.train_x, (raw_train - mean) / std, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(data.test_x, (raw_test - mean) / std, rtol=1e-12, atol=1e-12)
    # and the first image's green channel, pixel (31, 0), is byte 1024 + 31 * 32 of its row
    assert data.train_x[0, 1, 31, 0] * std + mean == pytest.approx(train[0, 1024 + 31 * 32] / 255.0, abs=1e-12)
    np.testing.assert_array_equal(data.train_y, sum((written[n][1] for n in CIFAR_FILES[:-1]), []))
    np.testing.assert_array_equal(data.test_y, written["test_batch"][1])


class OpenMarker:
    """Unpickled by a plain unpickler, this opens (so creates) the marker file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return builtins.open, (self.path, "w")


class SystemMarker:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.system, (f"touch '{self.path}'",)


@pytest.mark.parametrize("payload, refused", [(OpenMarker, r"\.open"), (SystemMarker, r"\.system")])
def test_a_malicious_cifar_batch_is_refused_before_it_runs(tmp_path, payload, refused):
    write_cifar(tmp_path, WRITERS["protocol2"])
    marker = tmp_path / "MARKER"
    evil = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": payload(marker)}, protocol=2)
    pickle.loads(evil)  # the payload is real: an ordinary unpickler runs it
    assert marker.exists()
    marker.unlink()
    (tmp_path / "data_batch_1").write_bytes(evil)
    with pytest.raises(ValueError, match=rf"data_batch_1 is not a plain CIFAR-10 batch: it names the global \S*{refused}"):
        mc.load_dataset("cifar10", tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    ([1, 2, 3], r"holds a list, not a dict"),
    ({b"data": np.zeros((2, 3072), np.uint8)}, r"lacks the key\(s\) b'labels'"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, r"lacks the key\(s\) b'data', b'labels'"),
    ({b"data": np.zeros((2, 3072)), b"labels": [0, 1]}, r"b'data' must be a uint8 array .* got a float64 array"),
    ({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}, r"shape \(n, 3072\).*got a uint8 array of shape \(2, 1024\)"),
    ({b"data": [[0] * 3072], b"labels": [0]}, r"b'data' must be a uint8 array .* got a list"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"integers 0..9, got values from 0 to 10"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0.5, 1.0]}, r"b'labels' must be a list of integers"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}, r"2 images but 3 labels"),
])
def test_a_batch_that_is_not_cifar_is_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(ValueError, match=message) as error:
        read_cifar_batch(path)
    assert str(path) in str(error.value)


def test_a_damaged_batch_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "data_batch_3"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}, protocol=2)[:-40])
    with pytest.raises(ValueError, match=r"data_batch_3 is not a readable CIFAR-10 python batch"):
        read_cifar_batch(path)


# ---------------------------------------------------------------- checkpoints

SETTINGS = dict(SETTING_DEFAULTS, data="digits", epochs=3, track_points=3, pairs=2, pair_batch=16, probe_size=8,
                batch_size=64)
RUN = dict(TRAIN_DEFAULTS, model="mlp", depth=1, width=16, lr=0.1)


@pytest.mark.parametrize("payload", [OpenMarker, SystemMarker])
def test_a_malicious_checkpoint_is_refused_before_it_runs(tmp_path, payload):
    marker, checkpoint = tmp_path / "MARKER", tmp_path / "run.pt"
    # with a valid checksum record (as a forger would write it), so that the restricted loader is what refuses it
    training.save_checkpoint({"model": {}, "optimizer": {}, "epoch": 1, "step": 1, "rows": [payload(marker)]},
                             checkpoint, RUN, SETTINGS)
    torch.load(checkpoint, weights_only=False)  # the payload is real: an unrestricted load runs it
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ValueError, match=r"checkpoint .*run\.pt cannot be read as tensors and plain containers"
                                         r".*GLOBAL") as error:
        training.train_run(RUN, SETTINGS, checkpoint=checkpoint, progress=False)
    assert str(checkpoint) in str(error.value) and "weights_only=False" not in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize("change, message", [
    (dict(epoch=7), r"has epoch 7; a checkpoint of a 3-epoch run has an integer 1..3"),
    (dict(epoch=1.0), r"has epoch 1.0"),
    (dict(rows={"epoch": 0}), r"rows that are not a list of dicts"),
    (dict(rows=[{"epoch": 1, "train_loss": 2.0}]), r"must start with epoch 0"),
    (dict(model={"weight": torch.zeros(3)}), r"does not fit this run's model"),
    (dict(step=None), r"has step None"),
])
def test_a_checkpoint_with_wrong_content_is_refused_naming_the_file(tmp_path, change, message):
    checkpoint = tmp_path / "run.pt"
    training.train_run(RUN, SETTINGS, checkpoint=checkpoint, progress=False, stop_after=1)
    state = torch.load(checkpoint, weights_only=True)
    training.save_checkpoint({**state, **change}, checkpoint, RUN, SETTINGS)  # with a valid checksum record
    with pytest.raises(ValueError, match=message) as error:
        training.train_run(RUN, SETTINGS, checkpoint=checkpoint, progress=False)
    assert f"checkpoint {checkpoint}" in str(error.value)
    state.pop("rows")
    training.save_checkpoint(state, checkpoint, RUN, SETTINGS)
    with pytest.raises(ValueError, match=r"lacks the key\(s\) rows"):
        training.train_run(RUN, SETTINGS, checkpoint=checkpoint, progress=False)


def test_an_honest_checkpoint_loads_safely_and_resumes_exactly(tmp_path):
    uninterrupted = training.train_run(RUN, SETTINGS, progress=False)
    checkpoint = tmp_path / "run.pt"
    first = training.train_run(RUN, SETTINGS, checkpoint=checkpoint, progress=False, stop_after=2)
    state = torch.load(checkpoint, weights_only=True)  # what train_run writes passes the restricted loader
    assert state["epoch"] == 2 and [r["epoch"] for r in state["rows"]] == list(first["epoch"])
    resumed = training.train_run(RUN, SETTINGS, checkpoint=checkpoint, progress=False)
    assert list(resumed["epoch"]) == tracked_epochs(3, "log", 3)
    pd.testing.assert_frame_equal(resumed.drop(columns="tracking_seconds"),
                                  uninterrupted.drop(columns="tracking_seconds"))


def test_a_checkpoint_of_other_code_is_not_resumed(tmp_path, monkeypatch, capsys):
    checkpoint = tmp_path / "run.pt"
    training.train_run(RUN, SETTINGS, checkpoint=checkpoint, progress=False, stop_after=2)
    assert torch.load(checkpoint, weights_only=True)["code"] == mc.code_fingerprint()
    monkeypatch.setattr(training, "code_fingerprint", lambda: "another-version")
    resumed_from = []
    frame = training.train_run(RUN, SETTINGS, checkpoint, progress=False, on_start=resumed_from.append)
    assert resumed_from == [0]  # started afresh rather than continuing the other code's epochs
    assert "written by other code" in capsys.readouterr().err
    monkeypatch.undo()
    pd.testing.assert_frame_equal(frame.drop(columns="tracking_seconds"),
                                  training.train_run(RUN, SETTINGS, progress=False).drop(columns="tracking_seconds"))


# ---------------------------------------------------------------- a failed start leaves nothing behind

def test_a_missing_dataset_leaves_no_store_and_the_corrected_call_succeeds(tmp_path):
    out, missing = tmp_path / "store", tmp_path / "no-such-cifar"
    small = dict(RUN, epochs=1, track_points=2, pairs=2, pair_batch=16, probe_size=8)
    spec = mc.TrainingGrid.from_mapping(dict(small, data="cifar10", data_dir=str(missing)))
    with pytest.raises(FileNotFoundError, match=rf"CIFAR-10 needs these files in {missing} \(that folder does not"):
        mc.run_training(spec, out, progress=False)
    assert not out.exists()
    store = mc.run_training(mc.TrainingGrid.from_mapping(dict(small, data="digits")), out, progress=False)
    assert len(store.done()) == 1 and (out / "manifest.json").exists()


def test_a_malicious_batch_fails_the_start_too(tmp_path):
    folder, out, marker = tmp_path / "cifar", tmp_path / "store", tmp_path / "MARKER"
    folder.mkdir()
    write_cifar(folder, WRITERS["protocol4"])
    (folder / "test_batch").write_bytes(pickle.dumps(OpenMarker(marker)))
    spec = mc.TrainingGrid.from_mapping(dict(RUN, data="cifar10", data_dir=str(folder), epochs=1))
    with pytest.raises(ValueError, match=r"test_batch is not a plain CIFAR-10 batch"):
        mc.run_training(spec, out, progress=False)
    assert not out.exists() and not marker.exists()


# ---------------------------------------------------------------- settings of the wrong type

@pytest.mark.parametrize("key, value, message", [
    ("lr_milestones", 3, r"argument 'lr_milestones' must be a list of integers >= 1 .* got 3"),
    ("lr_milestones", "80,160", r"argument 'lr_milestones' must be a list of integers"),
    ("lr_milestones", [80.0], r"argument 'lr_milestones' must be a list of integers"),
    ("lr_milestones", [0], r"argument 'lr_milestones' must be an integer >= 1, got 0"),
    ("epochs", 2.5, r"argument 'epochs' must be an integer >= 1, got 2.5"),
    ("batch_size", "x", r"argument 'batch_size' must be an integer >= 1, got 'x'"),
    ("lr", "fast", r"argument 'lr' must be a finite real number > 0, got 'fast'"),
    ("lr_decay", "x", r"argument 'lr_decay' must be a finite real number > 0"),
    ("data_dir", 3, r"argument 'data_dir' must be a folder path"),
    ("track", 1, r"argument 'track' must be one of 'log', 'linear'"),
    ("dtype", 64, r"argument 'dtype' must be 'float64' or 'float32'"),
    ("skip", "yes", r"argument 'skip' must be True or False"),
])
def test_settings_of_the_wrong_type_are_refused_by_name(key, value, message):
    with pytest.raises(ValueError, match=message):
        mc.TrainingGrid.from_mapping({key: value})
    assert mc.TrainingGrid.from_mapping({"lr_milestones": [2, 4]}).settings["lr_milestones"] == (2, 4)
