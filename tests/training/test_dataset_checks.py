"""MNIST's IDX files are checked as CIFAR's batches are, each refusal naming the file; load_dataset's own arguments
are refused by name.  The files are written here in the real IDX format (big-endian header, then the bytes)."""

import gzip
import re
import struct

import numpy as np
import pytest

from montecarlo import load_dataset

FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def idx_bytes(array, type_code=0x08, dtype=">u1") -> bytes:
    array = np.asarray(array)
    return (struct.pack(">HBB", 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.astype(dtype).tobytes())


def mnist(folder, **files) -> None:
    """A tiny, valid MNIST in ``folder`` (3 training and 2 test images of 4 x 4), any file replaced by ``files``."""
    rng = np.random.default_rng(0)
    arrays = {"train_images": rng.integers(0, 256, (3, 4, 4)), "train_labels": [0, 9, 4],
              "test_images": rng.integers(0, 256, (2, 4, 4)), "test_labels": [1, 2]}
    for key, name in FILES.items():
        data = files.get(key, idx_bytes(arrays[key]))
        (folder / name).write_bytes(data)


def refused(folder, key):
    """What ``load_dataset("mnist", folder)`` says, after checking that it names the file ``key``."""
    with pytest.raises(ValueError) as error:
        load_dataset("mnist", folder)
    message = str(error.value)
    assert message.startswith(f"{folder / FILES[key]}: "), message
    return message


def test_labels_not_one_per_image_are_refused(tmp_path):
    mnist(tmp_path)  # the valid files load (so the refusals below are the change's, not the fixture's)
    data = load_dataset("mnist", tmp_path)
    assert data.train_x.shape == (3, 1, 4, 4) and data.train_y.tolist() == [0, 9, 4]
    mnist(tmp_path, train_labels=idx_bytes([0, 1, 2, 3, 4]))  # 3 images, 5 labels
    message = refused(tmp_path, "train_labels")
    assert f"5 labels, but {tmp_path / FILES['train_images']} holds 3 images" in message


def test_a_label_outside_the_ten_classes_is_refused(tmp_path):
    mnist(tmp_path, test_labels=idx_bytes([1, 200]))
    assert "labels must be integers 0..9 (10 classes), got values from 1 to 200" in refused(tmp_path, "test_labels")


def test_pixels_that_cannot_be_standardised_are_refused_not_turned_into_nan(tmp_path):
    mnist(tmp_path, train_images=idx_bytes(np.full((3, 4, 4), 7)))  # every pixel one value: std 0, NaN after
    assert "cannot be standardised" in refused(tmp_path, "train_images")


def test_a_file_whose_size_does_not_match_its_header_is_refused_naming_it(tmp_path):
    valid = idx_bytes(np.zeros((3, 4, 4)))
    mnist(tmp_path, train_images=valid[:-5])  # truncated
    message = refused(tmp_path, "train_images")
    assert "header says shape (3, 4, 4), 48 bytes of data after the 16-byte header, but 43 follow" in message
    mnist(tmp_path, train_images=valid + b"\0")
    assert "but 49 follow" in refused(tmp_path, "train_images")
    mnist(tmp_path, train_images=valid[:10])  # the header itself cut short
    assert "IDX header cut short" in refused(tmp_path, "train_images")
    mnist(tmp_path, train_labels=idx_bytes([0.5, 1.0, 2.0], type_code=0x0D, dtype=">f4"))  # a float IDX
    assert "not an unsigned-byte IDX file" in refused(tmp_path, "train_labels")


def test_a_damaged_gzip_and_mismatched_image_sizes_are_refused_naming_the_file(tmp_path):
    mnist(tmp_path)
    (tmp_path / FILES["test_labels"]).unlink()
    packed = gzip.compress(idx_bytes([1, 2]))
    gz = tmp_path / (FILES["test_labels"] + ".gz")
    gz.write_bytes(packed[: len(packed) - 6])
    with pytest.raises(ValueError, match=rf"^{re.escape(str(gz))}: not a readable IDX file"):
        load_dataset("mnist", tmp_path)
    gz.write_bytes(packed)
    assert load_dataset("mnist", tmp_path).test_y.tolist() == [1, 2]
    mnist(tmp_path, test_images=idx_bytes(np.zeros((2, 5, 5))))
    assert "images of (5, 5) pixels" in refused(tmp_path, "test_images")


def test_load_datasets_arguments_are_refused_by_name():
    for seed in (-1, 1.5, "0"):
        with pytest.raises((ValueError, TypeError), match=r"argument 'seed' must be an integer >= 0"):
            load_dataset("digits", seed=seed)
    with pytest.raises(ValueError, match=r"argument 'seed' must be an integer >= 0, got -1"):
        load_dataset("sphere", seed=-1)
    with pytest.raises(TypeError, match=r"argument 'data_dir' must be a folder path"):
        load_dataset("mnist", 5)
