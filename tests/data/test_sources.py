"""Dataset sources: digits, diabetes, real Fashion-MNIST from the Debian package, TFDS sets."""

import io
import os
import sys

import numpy as np
import pytest

from conftest import require, require_module
from zoo.data import DatasetNotFoundError, load_dataset

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


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


def test_real_fashion_mnist_from_the_debian_package():
    require(
        os.path.isdir(DEBIAN_FASHION_MNIST), f"{DEBIAN_FASHION_MNIST} is missing: apt-get install dataset-fashion-mnist"
    )
    data = load_dataset("fashion_mnist")  # no data_dir: the Debian folder is searched first
    assert DEBIAN_FASHION_MNIST in data.description
    assert data.x_train.shape == (60_000, 28, 28, 1) and data.x_test.shape == (10_000, 28, 28, 1)
    assert data.x_train.dtype == np.float32 and 0.0 <= data.x_train.min() < data.x_train.max() <= 1.0
    assert data.num_classes == 10 and data.class_names[0] == "T-shirt/top"
    assert np.bincount(data.y_train).tolist() == [6000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10


TFDS_SETS = {
    "mnist": ((28, 28, 1), 10),
    "fashion_mnist": ((28, 28, 1), 10),
    "cifar10": ((32, 32, 3), 10),
    "cifar100": ((32, 32, 3), 100),
    "svhn_cropped": ((32, 32, 3), 10),
}


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


def test_breast_cancer_is_scaled_with_training_ranges_only():
    from sklearn.datasets import load_breast_cancer

    data = load_dataset("breast_cancer")
    assert data.x_train.shape == (455, 30) and data.x_test.shape == (114, 30)
    assert data.class_names == ("malignant", "benign") and data.num_classes == 2
    np.testing.assert_allclose(data.x_train.min(0), 0.0)
    np.testing.assert_allclose(data.x_train.max(0), 1.0)
    assert data.x_test.min() >= 0 and data.x_test.max() <= 1
    raw = load_breast_cancer()
    assert np.bincount(np.concatenate([data.y_train, data.y_test])).tolist() == np.bincount(raw.target).tolist()
