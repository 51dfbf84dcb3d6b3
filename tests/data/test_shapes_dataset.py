"""Generated segmentation scenes (zoo.data.shapes): shapes, dtypes, label ranges, seeding,
the masks' geometry, the salient object's mask, and the Dataset record's per-pixel labels."""

import numpy as np
import pytest

from zoo.data import load_dataset
from zoo.data.base import Dataset
from zoo.data.shapes import _shape_masks, salient_scenes, shapes


def test_shapes_arrays_and_classes():
    data = load_dataset("shapes", num_examples=40, num_test_examples=10, size=24)
    assert data.task == "segmentation" and data.num_classes == 4 and data.num_outputs == 4
    assert data.class_names == ("background", "circle", "square", "triangle")
    assert data.x_train.shape == (40, 24, 24, 1) and data.x_train.dtype == np.float32
    assert data.y_train.shape == (40, 24, 24) and data.y_train.dtype == np.int32
    assert data.x_test.shape == (10, 24, 24, 1) and data.y_test.shape == (10, 24, 24)
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert set(np.unique(data.y_train)) == {0, 1, 2, 3}
    assert all((y > 0).any() for y in data.y_train)  # every image has a shape


def test_shapes_are_seeded_and_splits_differ():
    a, b, c = (shapes(seed=s, num_examples=8, num_test_examples=8, size=16) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.x_train, a.x_test)


def test_shapes_without_noise_are_flat_regions_of_their_labels():
    data = shapes(num_examples=20, num_test_examples=1, size=32, noise=0.0, max_shapes=1)
    for x, y in zip(data.x_train[..., 0], data.y_train):
        # one shape, one grey level inside it, another outside
        assert np.unique(x[y > 0]).size == 1 and np.unique(x[y == 0]).size == 1
        assert x[y > 0][0] > x[y == 0][0]


def test_mask_geometry_has_equal_areas():
    kinds = np.array([1, 2, 3])
    centre = np.full(3, 100.0, np.float32)
    masks = _shape_masks(kinds, centre, centre, np.full(3, 40.0, np.float32), 200)
    areas = masks.sum(axis=(1, 2))
    np.testing.assert_allclose(areas, np.pi * 40**2, rtol=0.03)  # up to pixel rounding
    assert masks[0, 100, 139] and not masks[0, 130, 130]  # the circle is round
    assert masks[1, 134, 134]  # the square reaches its corners
    assert masks[2, 100 + 30, 100] and not masks[2, 100 - 40, 100 + 20]  # the triangle narrows to the top


def test_salient_scenes_mask_the_big_bright_object():
    data = load_dataset("salient_scenes", num_examples=30, num_test_examples=5, size=32, noise=0.0)
    assert data.task == "segmentation" and data.num_classes == 2
    assert data.y_train.shape == (30, 32, 32) and set(np.unique(data.y_train)) == {0, 1}
    for x, y in zip(data.x_train[..., 0], data.y_train):
        assert np.unique(x[y == 1]).size == 1 and x[y == 1][0] >= 0.85  # one bright object
        assert y.sum() >= np.pi * (0.15 * 32) ** 2 * 0.5  # large (minus the image border)
    assert salient_scenes(num_examples=4, num_test_examples=1, clutter=0, noise=0.0).x_train.std() > 0


def test_bad_options_raise():
    with pytest.raises(ValueError, match="size must be an integer >= 8"):
        shapes(size=4)
    with pytest.raises(ValueError, match="noise"):
        shapes(noise=-1.0)
    with pytest.raises(ValueError, match="max_shapes"):
        load_dataset("shapes", max_shapes=0)


def test_dataset_checks_per_pixel_labels():
    x = np.zeros((2, 4, 4, 1), np.float32)
    y = np.zeros((2, 4, 4), np.int32)
    y[0, 0, 0] = 4
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\)"):
        Dataset("bad", "segmentation", x, y, x, y, num_classes=4)
    with pytest.raises(ValueError, match="segmentation dataset needs num_classes"):
        Dataset("bad", "segmentation", x, y * 0, x, y * 0)


def test_resizing_takes_the_nearest_label():
    data = shapes(num_examples=3, num_test_examples=2, size=16).resized(32, 32)
    assert data.x_train.shape == (3, 32, 32, 1) and data.y_train.shape == (3, 32, 32)
    np.testing.assert_array_equal(
        data.y_train[:, ::2, ::2], shapes(num_examples=3, num_test_examples=2, size=16).y_train
    )
