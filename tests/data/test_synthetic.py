"""Generated datasets: XOR and circles."""

import numpy as np
import pytest

from zoo.data import load_dataset


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
