"""The dataset catalog: names, options, image resizing, import cost."""

import os
import subprocess
import sys

import numpy as np
import pytest

from zoo.data import DatasetNotFoundError, describe_dataset, list_datasets, load_dataset


def test_list_datasets_covers_the_required_names():
    assert {
        "digits",
        "diabetes",
        "xor",
        "circles",
        "mnist",
        "fashion_mnist",
        "cifar10",
        "cifar100",
        "svhn_cropped",
    } <= set(list_datasets())
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


def test_missing_data_dir(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="is not a folder"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")


def test_import_zoo_data_imports_neither_tfds_nor_sklearn():
    code = (
        "import sys, zoo.data; "
        "print(sorted(m for m in ('tensorflow_datasets', 'tensorflow', 'sklearn') if m in sys.modules))"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
    )
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
