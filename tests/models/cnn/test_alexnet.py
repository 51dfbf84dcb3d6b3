"""AlexNet (paper, two towers or one) and torchvision's 64-filter variant: exact parameter
counts (jax.eval_shape, no allocation), grouping, shapes, input validation, dropout."""

import jax
import numpy as np
import pytest
from cnn_testing import (
    abstract_variables,
    check_output_and_feature_shapes,
    check_parameter_count_without_batch_norm,
    check_wrong_input_shape_names_expected,
)

import zoo


@pytest.mark.parametrize(
    "name, overrides, expected",
    [
        ("alexnet", {}, 60_965_224),
        ("alexnet", {"input_shape": (224, 224, 3), "padding": 2}, 60_965_224),
        ("alexnet", {"groups": 1}, 62_378_344),
        ("alexnet", {"input_shape": (224, 224, 3), "padding": 2, "groups": 1}, 62_378_344),
        ("alexnet", {"input_shape": (224, 224, 3)}, 49_430_888),
        ("alexnet_torchvision", {}, 61_100_840),
    ],
)
def test_parameter_count_matches_reference_figure(name, overrides, expected):
    check_parameter_count_without_batch_norm(name, overrides, expected)


@pytest.mark.parametrize(
    "name, overrides, batch_shape, features",
    [
        ("alexnet", {}, (2, 227, 227, 3), 6 * 6 * 256),
        ("alexnet", {"input_shape": (224, 224, 3), "padding": 2}, (2, 224, 224, 3), 6 * 6 * 256),
        ("alexnet", {"input_shape": (224, 224, 3)}, (2, 224, 224, 3), 5 * 5 * 256),
        ("alexnet_torchvision", {}, (2, 224, 224, 3), 6 * 6 * 256),
        ("alexnet_torchvision", {"input_shape": (256, 200, 3)}, (2, 256, 200, 3), 6 * 6 * 256),
    ],
)
def test_output_and_feature_shapes_at_stated_input_sizes(name, overrides, batch_shape, features):
    check_output_and_feature_shapes(name, overrides, batch_shape, features)


@pytest.mark.parametrize(
    "name, bad_shape, expected",
    [
        ("alexnet", (2, 224, 224, 3), r"\(B, 227, 227, 3\)"),
        ("alexnet_torchvision", (2, 224, 224, 1), r"\(B, 224, 224, 3\)"),
    ],
)
def test_wrong_input_shape_raises_value_error_naming_expected_shape(name, bad_shape, expected):
    check_wrong_input_shape_names_expected(name, bad_shape, expected)


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("alexnet", {"groups": 3}, "groups"),
        ("alexnet", {"widths": (96, 255, 384, 384, 256)}, "divisible"),
        ("alexnet", {"widths": (96, 256, 384)}, "5 positive"),
        ("alexnet", {"input_shape": (40, 40, 3)}, "too small"),
        ("alexnet", {"padding": -1}, "padding"),
        ("alexnet", {"dropout_rate": 1.0}, "dropout_rate"),
        ("alexnet_torchvision", {"fc_size": 0}, "positive"),
    ],
)
def test_invalid_config_raises_clear_value_error(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model(name, **overrides)


def test_alexnet_grouping_splits_conv2_conv4_conv5_only():
    params = abstract_variables(zoo.create_model("alexnet"))["params"]
    assert params["conv1"]["kernel"].shape == (11, 11, 3, 96)
    assert params["conv2"]["kernel"].shape == (5, 5, 48, 256)
    assert params["conv3"]["kernel"].shape == (3, 3, 256, 384)
    assert params["conv4"]["kernel"].shape == (3, 3, 192, 384)
    assert params["conv5"]["kernel"].shape == (3, 3, 192, 256)


def test_dropout_is_active_only_in_training():
    model = zoo.create_model("alexnet", input_shape=(67, 67, 3), widths=(8, 16, 16, 16, 8), fc_size=16)
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 67, 67, 3))
    v = model.init(jax.random.PRNGKey(1), x)
    np.testing.assert_array_equal(model.apply(v, x), model.apply(v, x))
    y1 = model.apply(v, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    y2 = model.apply(v, x, train=True, rngs={"dropout": jax.random.PRNGKey(3)})
    assert not np.allclose(y1, y2)
