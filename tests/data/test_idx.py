"""The IDX reader (MNIST file format)."""

import gzip
import os

import numpy as np
import pytest

from zoo.data import DatasetNotFoundError, load_dataset, read_idx

_TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of ``array``: magic 00 00 type ndim, big-endian sizes and data."""
    header = bytes([0, 0, _TYPE_CODES[array.dtype.type], array.ndim])
    return header + np.array(array.shape, ">u4").tobytes() + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, compress=False):
    content = idx_bytes(array)
    with open(path, "wb") as f:
        f.write(gzip.compress(content) if compress else content)
    return str(path)


def write_mnist_folder(folder, n_train=20, n_test=10, compress=True):
    """Four small MNIST-style files; image i is filled with its label * 20."""
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = np.broadcast_to((labels * 20)[:, None, None], (n, 28, 28)).astype(np.uint8)
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", labels, compress)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, compress):
    array = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    back = read_idx(write_idx(tmp_path / "a-idx3-ubyte", array, compress))
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)
    back[0, 0, 0] = 1  # a writable array


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    labels = np.arange(7, dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "gzipped-no-suffix", labels, True)), labels)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "plain.gz", labels, False)), labels)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[:-5], "truncated IDX data"),
        (lambda b: b + b"\x00\x00", "2 unexpected bytes"),
        (lambda b: b"\x01\x02" + b[2:], "not an IDX file"),
        (lambda b: b[:2] + b"\x07" + b[3:], "unknown IDX element type code 0x07"),
        (lambda b: b[:6], "truncated IDX header"),
        (lambda b: b"", "not an IDX file"),
        (lambda b: gzip.compress(b)[:-12], "corrupt or truncated gzip"),
        (lambda b: gzip.compress(b)[:10] + b"garbage" * 3, "corrupt or truncated gzip"),
    ],
)
def test_read_idx_rejects_damaged_files_naming_them(tmp_path, damage, message):
    path = tmp_path / "damaged-idx3-ubyte"
    path.write_bytes(damage(idx_bytes(np.zeros((3, 4, 4), np.uint8))))
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_from_an_idx_folder(tmp_path, compress):
    write_mnist_folder(tmp_path, compress=compress)
    data = load_dataset("mnist", data_dir=str(tmp_path))
    assert data.x_train.shape == (20, 28, 28, 1) and data.x_test.shape == (10, 28, 28, 1)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    np.testing.assert_allclose(data.x_train[:, 0, 0, 0], data.y_train * 20 / 255, rtol=1e-6)
    assert data.num_classes == 10 and str(tmp_path) in data.description


def test_idx_folder_accepts_the_dotted_file_names(tmp_path):
    write_mnist_folder(tmp_path, compress=False)
    for path in tmp_path.iterdir():
        path.rename(tmp_path / path.name.replace("-idx", ".idx"))
    assert load_dataset("fashion_mnist", data_dir=tmp_path).num_train == 20


def test_idx_folder_missing_a_file(tmp_path):
    write_mnist_folder(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DatasetNotFoundError, match=r"lacks the IDX file\(s\) t10k-labels-idx1-ubyte"):
        load_dataset("mnist", data_dir=tmp_path)


def test_idx_folder_with_inconsistent_files(tmp_path):
    write_mnist_folder(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(9, np.uint8), True)
    with pytest.raises(ValueError, match="10 images but .*t10k-labels-idx1-ubyte.gz holds 9 labels"):
        load_dataset("mnist", data_dir=tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(10, 10, np.uint8), True)
    with pytest.raises(ValueError, match="label 10 out of range; expected 0..9"):
        load_dataset("mnist", data_dir=tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros((10, 1), np.uint8), True)
    with pytest.raises(ValueError, match="expected uint8 labels of shape"):
        load_dataset("mnist", data_dir=tmp_path)
