"""zoo.data: datasets, batching, the IDX reader, TFDS through mock data and real files."""

import gzip
import io
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import require, require_module
from zoo.data import (Dataset, DatasetNotFoundError, describe_dataset, iterate_batches,
                      list_datasets, load_dataset, num_batches, read_idx)

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


# --------------------------------------------------------------------------------------
# digits (scikit-learn, the embedded default)
# --------------------------------------------------------------------------------------


def test_digits_shapes_dtypes_and_range():
    data = load_dataset("digits")
    assert data.task == "classification" and data.num_classes == data.num_outputs == 10
    assert data.x_train.shape == (1437, 8, 8, 1) and data.x_test.shape == (360, 8, 8, 1)
    assert data.input_shape == (8, 8, 1)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    # 17 grey levels 0..16 divided by 16, exactly.
    np.testing.assert_array_equal(np.unique(data.x_train * 16) % 1, 0)
    assert set(np.unique(data.y_train)) == set(range(10))
    assert data.class_names == tuple("0123456789")
    assert data.num_train + data.num_test == 1797


def test_digits_split_is_stratified():
    data = load_dataset("digits")
    train, test = np.bincount(data.y_train), np.bincount(data.y_test)
    # Each class holds within one example of its 20% share.
    assert np.all(np.abs(test - 0.2 * (train + test)) <= 1)


def test_digits_split_is_fixed_by_the_seed():
    first, again = load_dataset("digits"), load_dataset("digits", seed=0)
    np.testing.assert_array_equal(first.x_test, again.x_test)
    np.testing.assert_array_equal(first.y_train, again.y_train)
    other = load_dataset("digits", seed=1)
    assert not np.array_equal(first.y_test, other.y_test)
    assert other.num_test == first.num_test


def test_digits_seed_0_split_is_the_same_on_every_machine():
    """Pinned from scikit-learn's train_test_split(random_state=0, stratify=y)."""
    data = load_dataset("digits")
    assert data.y_test[:12].tolist() == [7, 6, 3, 7, 7, 3, 2, 8, 9, 3, 2, 6]
    assert float(data.x_test.astype(np.float64).sum()) == 7021.875


# --------------------------------------------------------------------------------------
# diabetes, xor, circles
# --------------------------------------------------------------------------------------


def test_diabetes_is_standardised_regression_with_recoverable_targets():
    from sklearn.datasets import load_diabetes

    data = load_dataset("diabetes")
    assert data.task == "regression" and data.num_classes is None and data.num_outputs == 1
    assert data.x_train.shape == (353, 10) and data.x_test.shape == (89, 10)
    assert data.y_train.shape == (353, 1) and data.y_test.shape == (89, 1)
    assert data.x_train.dtype == data.y_train.dtype == np.float32
    np.testing.assert_allclose(data.y_train.mean(), 0, atol=1e-5)
    np.testing.assert_allclose(data.y_train.std(), 1, atol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=0), 1, atol=1e-5)
    raw = np.sort(load_diabetes().target)
    unscaled = data.unscale_targets(np.concatenate([data.y_train, data.y_test]))[:, 0]
    np.testing.assert_allclose(np.sort(unscaled), raw, rtol=1e-5)
    again = load_dataset("diabetes")
    np.testing.assert_array_equal(data.x_test, again.x_test)
    assert not np.array_equal(data.y_test, load_dataset("diabetes", seed=1).y_test)


def test_xor_default_is_the_truth_table():
    data = load_dataset("xor")
    assert data.task == "classification" and data.num_classes == 2
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    pairs = sorted(zip(map(tuple, data.x_train.tolist()), data.y_train.tolist()))
    assert pairs == [((0.0, 0.0), 0), ((0.0, 1.0), 1), ((1.0, 0.0), 1), ((1.0, 1.0), 0)]
    np.testing.assert_array_equal(data.x_test, data.x_train)


def test_xor_noisy_samples_are_seeded_and_keep_their_corner_label():
    data = load_dataset("xor", num_examples=400, noise=0.1, seed=3)
    assert data.x_train.shape == (400, 2) and data.x_test.shape == (400, 2)
    assert np.bincount(data.y_train).tolist() == [200, 200]
    corner = np.round(data.x_train)  # noise 0.1: every point stays nearest its corner
    np.testing.assert_array_equal(corner[:, 0].astype(int) ^ corner[:, 1].astype(int), data.y_train)
    assert not np.array_equal(data.x_train, data.x_test)
    np.testing.assert_array_equal(data.x_train, load_dataset("xor", num_examples=400, noise=0.1, seed=3).x_train)
    assert not np.array_equal(data.x_train, load_dataset("xor", num_examples=400, noise=0.1, seed=4).x_train)
    with pytest.raises(ValueError, match="num_examples"):
        load_dataset("xor", num_examples=3)


def test_circles_geometry_and_determinism():
    data = load_dataset("circles")
    assert data.task == "classification" and data.num_classes == 2
    assert data.x_train.shape == (300, 2) and data.x_test.shape == (100, 2)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    np.testing.assert_array_equal(data.x_train, load_dataset("circles").x_train)
    assert not np.array_equal(data.x_train, load_dataset("circles", seed=1).x_train)

    exact = load_dataset("circles", num_examples=50, noise=0.0, factor=0.5)
    radius = np.linalg.norm(exact.x_train, axis=1)
    np.testing.assert_allclose(radius[exact.y_train == 0], 1.0, rtol=1e-6)  # outer
    np.testing.assert_allclose(radius[exact.y_train == 1], 0.5, rtol=1e-6)  # inner
    with pytest.raises(ValueError, match="factor"):
        load_dataset("circles", factor=1.5)


# --------------------------------------------------------------------------------------
# The catalog: names, options, errors
# --------------------------------------------------------------------------------------


def test_list_datasets_covers_the_required_names():
    assert {"digits", "diabetes", "xor", "circles", "mnist", "fashion_mnist", "cifar10",
            "cifar100", "svhn_cropped"} <= set(list_datasets())
    assert "noise" in describe_dataset("circles")


def test_unknown_name_suggests_a_close_match():
    with pytest.raises(ValueError, match="digits") as info:
        load_dataset("digit")
    assert "Did you mean" in str(info.value) and "circles" in str(info.value)


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="unknown option.*nois.*its options: factor, noise"):
        load_dataset("circles", nois=0.1)
    with pytest.raises(ValueError, match="its options: none"):
        load_dataset("digits", noise=0.1)
    with pytest.raises(ValueError, match="reads no files"):
        load_dataset("digits", data_dir="/tmp")
    with pytest.raises(ValueError, match="seed"):
        load_dataset("digits", seed=-1)


def test_dataset_checks_its_arrays():
    x, y = np.zeros((4, 2), np.float32), np.zeros(3, np.int32)
    with pytest.raises(ValueError, match="x_train has 4 examples but y_train has 3"):
        Dataset(name="bad", task="classification", x_train=x, y_train=y, x_test=x, y_test=y,
                num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):
        Dataset(name="bad", task="classification", x_train=x, y_train=np.zeros(4, np.int32),
                x_test=x, y_test=np.zeros(4, np.int32))
    assert "train=1437" in repr(load_dataset("digits"))


# --------------------------------------------------------------------------------------
# with_validation
# --------------------------------------------------------------------------------------


def test_with_validation_is_disjoint_complete_and_seeded():
    data = load_dataset("digits")
    # Tag every training example with its index to follow it through the split.
    tagged = Dataset(name="tagged", task="classification", x_train=np.arange(data.num_train)[:, None],
                     y_train=data.y_train, x_test=data.x_test, y_test=data.y_test, num_classes=10)
    split = tagged.with_validation(0.1, seed=0)
    train, val = split.x_train[:, 0], split.x_val[:, 0]
    assert len(val) == 144 and len(train) == 1437 - 144  # ceil(0.1 * 1437)
    assert not set(train) & set(val)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(1437))
    np.testing.assert_array_equal(split.y_val, data.y_train[val])
    np.testing.assert_array_equal(tagged.with_validation(0.1, seed=0).x_val, split.x_val)
    assert not np.array_equal(tagged.with_validation(0.1, seed=1).x_val, split.x_val)
    assert split.num_val == 144 and split.x_test is tagged.x_test


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_with_validation_rejects_fractions_outside_0_1(fraction):
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        load_dataset("digits").with_validation(fraction, seed=0)


def test_with_validation_rejects_empty_parts_and_a_second_split():
    with pytest.raises(ValueError, match="leaves no training examples"):
        load_dataset("xor").with_validation(0.9, seed=0)  # ceil(3.6) = 4 of 4
    assert load_dataset("xor").with_validation(0.1, seed=0).num_val == 1
    with pytest.raises(ValueError, match="already has a validation split"):
        load_dataset("digits").with_validation(0.1, seed=0).with_validation(0.1, seed=0)


# --------------------------------------------------------------------------------------
# iterate_batches
# --------------------------------------------------------------------------------------

X = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # row i is all i
Y = np.arange(10, dtype=np.int32)


def _order(batches):
    return np.concatenate([b["y"][b["mask"] > 0] for b in batches]).tolist()


def test_each_example_once_per_epoch_and_x_y_stay_paired():
    batches = list(iterate_batches(X, Y, 3, seed=0, epoch=0))
    assert [len(b["x"]) for b in batches] == [3, 3, 3, 1]
    assert sorted(_order(batches)) == list(range(10))
    for b in batches:
        np.testing.assert_array_equal(b["x"][:, 0], b["y"])
        assert b["mask"].dtype == np.float32 and np.all(b["mask"] == 1)


def test_order_is_a_function_of_seed_and_epoch():
    def order(seed, epoch):
        return _order(iterate_batches(X, Y, 4, seed=seed, epoch=epoch))

    assert order(0, 5) == order(0, 5)
    assert order(0, 5) == np.random.default_rng([0, 5]).permutation(10).tolist()
    assert order(0, 5) != order(0, 6)
    assert order(0, 5) != order(1, 5)


def test_drop_remainder():
    batches = list(iterate_batches(X, Y, 4, seed=0, epoch=0, drop_remainder=True))
    assert [len(b["x"]) for b in batches] == [4, 4]
    assert len(set(_order(batches))) == 8


def test_pad_fills_the_last_batch_with_masked_zeros():
    batches = list(iterate_batches(X, Y, 4, seed=0, epoch=0, shuffle=False, pad=True))
    assert [b["x"].shape for b in batches] == [(4, 3)] * 3
    last = batches[-1]
    np.testing.assert_array_equal(last["mask"], [1, 1, 0, 0])
    np.testing.assert_array_equal(last["y"], [8, 9, 0, 0])
    np.testing.assert_array_equal(last["x"][2:], 0)
    assert last["x"].dtype == X.dtype and last["y"].dtype == Y.dtype
    # A batch larger than the data is padded too: one shape for every evaluation set.
    (only,) = iterate_batches(X, Y, 16, seed=0, epoch=0, shuffle=False, pad=True)
    assert only["x"].shape == (16, 3) and only["mask"].sum() == 10


def test_batch_size_at_least_n_gives_one_full_batch():
    for drop_remainder in (False, True):
        (only,) = iterate_batches(X, Y, 10_000, seed=0, epoch=0, drop_remainder=drop_remainder)
        assert sorted(only["y"].tolist()) == list(range(10))


def test_shuffle_false_keeps_the_order():
    assert _order(iterate_batches(X, Y, 3, seed=0, epoch=7, shuffle=False)) == list(range(10))


def test_num_batches_matches_iterate_batches():
    for n in (0, 1, 9, 10, 11):
        for batch_size in (1, 3, 10, 12):
            for drop in (False, True):
                yielded = iterate_batches(np.arange(n), np.arange(n), batch_size, seed=0,
                                          epoch=0, drop_remainder=drop)
                assert num_batches(n, batch_size, drop) == len(list(yielded)), (n, batch_size, drop)


def test_iterate_batches_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        next(iterate_batches(X, Y, 0, seed=0, epoch=0))
    with pytest.raises(ValueError, match="x has 10 examples but y has 9"):
        next(iterate_batches(X, Y[:9], 2, seed=0, epoch=0))
    with pytest.raises(ValueError, match="seed"):
        next(iterate_batches(X, Y, 2, seed=-1, epoch=0))


# --------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------

_TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
               np.float64: 0x0E}


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


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-5], "truncated IDX data"),
    (lambda b: b + b"\x00\x00", "2 unexpected bytes"),
    (lambda b: b"\x01\x02" + b[2:], "not an IDX file"),
    (lambda b: b[:2] + b"\x07" + b[3:], "unknown IDX element type code 0x07"),
    (lambda b: b[:6], "truncated IDX header"),
    (lambda b: b"", "not an IDX file"),
    (lambda b: gzip.compress(b)[:-12], "corrupt or truncated gzip"),
    (lambda b: gzip.compress(b)[:10] + b"garbage" * 3, "corrupt or truncated gzip"),
])
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


def test_missing_data_dir(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="is not a folder"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")


def test_real_fashion_mnist_from_the_debian_package():
    require(os.path.isdir(DEBIAN_FASHION_MNIST),
            f"{DEBIAN_FASHION_MNIST} is missing: apt-get install dataset-fashion-mnist")
    data = load_dataset("fashion_mnist")  # no data_dir: the Debian folder is searched first
    assert DEBIAN_FASHION_MNIST in data.description
    assert data.x_train.shape == (60_000, 28, 28, 1) and data.x_test.shape == (10_000, 28, 28, 1)
    assert data.x_train.dtype == np.float32 and 0.0 <= data.x_train.min() < data.x_train.max() <= 1.0
    assert data.num_classes == 10 and data.class_names[0] == "T-shirt/top"
    assert np.bincount(data.y_train).tolist() == [6000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10


# --------------------------------------------------------------------------------------
# TFDS: mock data (no TensorFlow, no network), a real prepared folder, missing data
# --------------------------------------------------------------------------------------

TFDS_SETS = {
    "mnist": ((28, 28, 1), 10),
    "fashion_mnist": ((28, 28, 1), 10),
    "cifar10": ((32, 32, 3), 10),
    "cifar100": ((32, 32, 3), 100),
    "svhn_cropped": ((32, 32, 3), 10),
}


@pytest.fixture
def tfds(monkeypatch):
    """tensorflow_datasets, with the batched reads of its `mock_data` repaired.

    In tensorflow-datasets 4.9.10, `mock_data` gives the mocked array_record source
    ``__getitems__ = functools.partial(_getitems, generator=...)``: an instance attribute,
    which Python does not bind, so ``source.__getitems__(keys)`` passes the keys as
    `self` and raises TypeError (TFDS's own mock test only reads ``source[i]``). The
    replacement takes the call with or without `self`; data_source reads never ask for
    serialized records, which is all the original adds.
    """
    tfds = require_module("tensorflow_datasets")
    from tensorflow_datasets.testing import mocking

    def getitems(*self_and_keys, generator, serialized=False):
        assert not serialized
        return [generator[key] for key in self_and_keys[-1]]

    monkeypatch.setattr(mocking, "_getitems", getitems)
    return tfds


@pytest.mark.parametrize("name", sorted(TFDS_SETS))
def test_tfds_sets_through_mock_data(tfds, tmp_path, name):
    image_shape, num_classes = TFDS_SETS[name]
    with tfds.testing.mock_data(policy=tfds.testing.MockPolicy.USE_CODE, num_examples=6):
        # An empty data_dir keeps fashion_mnist off the Debian IDX folder, so TFDS is
        # read; the mock itself ignores data_dir.
        data = load_dataset(name, data_dir=tmp_path)
    assert "tensorflow-datasets" in data.description
    assert data.x_train.shape == (6, *image_shape) and data.x_test.shape == (6, *image_shape)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.num_classes == num_classes and len(data.class_names) == num_classes
    assert np.all((0 <= data.y_train) & (data.y_train < num_classes))
    assert "tensorflow" not in sys.modules


def test_tfds_real_prepared_folder_without_tensorflow(tmp_path):
    """The non-mock path: array_record files prepared here (from pre-encoded PNGs, so no
    TensorFlow is needed to write them) and read back through tfds.data_source."""
    tfds = require_module("tensorflow_datasets")  # unpatched: no mock here
    require_module("PIL")  # TFDS decodes PNG with Pillow or OpenCV
    from PIL import Image

    def png(label):
        buffer = io.BytesIO()
        Image.fromarray(np.full((28, 28), label * 20, np.uint8)).save(buffer, format="PNG")
        buffer.seek(0)
        return buffer

    class SmallMnist(tfds.image_classification.MNIST, skip_registration=True):
        name = "mnist"  # writes mnist/3.0.1 under data_dir, as `tfds build mnist` would

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(12), "test": self._generate_examples(5)}

        def _generate_examples(self, n):
            for i in range(n):
                yield i, {"image": png(i % 10), "label": i % 10}

    SmallMnist(data_dir=str(tmp_path), file_format="array_record").download_and_prepare()
    data = load_dataset("mnist", data_dir=tmp_path)
    assert data.x_train.shape == (12, 28, 28, 1) and data.x_test.shape == (5, 28, 28, 1)
    assert sorted(data.y_train.tolist()) == sorted(i % 10 for i in range(12))
    np.testing.assert_allclose(data.x_train[:, 5, 5, 0], data.y_train * 20 / 255, rtol=1e-6)
    assert data.class_names == tuple("0123456789")
    assert "tensorflow" not in sys.modules


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_tfds_set_not_prepared_says_how_to_get_it(tmp_path, name):
    require_module("tensorflow_datasets")
    with pytest.raises(DatasetNotFoundError, match=f"not prepared.*tfds build {name}") as info:
        load_dataset(name, data_dir=tmp_path)
    message = str(info.value)
    assert "pip install tensorflow" in message and "never downloads" in message
    assert ("IDX" in message) == (name == "mnist")
    assert not os.listdir(tmp_path)  # nothing written, nothing downloaded


def test_import_zoo_data_imports_neither_tfds_nor_sklearn():
    code = ("import sys, zoo.data; "
            "print(sorted(m for m in ('tensorflow_datasets', 'tensorflow', 'sklearn') if m in sys.modules))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=root, env={**os.environ, "PYTHONPATH": root})
    assert out.stdout.strip() == "[]"


def test_image_size_option_resizes_every_split_bilinearly():
    data = load_dataset("digits", image_size=28)
    small = load_dataset("digits")
    assert data.input_shape == (28, 28, 1) and data.num_train == small.num_train
    np.testing.assert_array_equal(data.y_test, small.y_test)
    assert data.x_train.dtype == np.float32 and 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    # Bilinear upsampling keeps the mean brightness of an image close to the original's.
    np.testing.assert_allclose(data.x_test.mean(axis=(1, 2, 3)), small.x_test.mean(axis=(1, 2, 3)), atol=0.03)
    assert load_dataset("digits", image_size=(16, 12)).input_shape == (16, 12, 1)
    with pytest.raises(ValueError, match="not images"):
        load_dataset("circles", image_size=28)
    with pytest.raises(ValueError, match="positive"):
        load_dataset("digits", image_size=0)
