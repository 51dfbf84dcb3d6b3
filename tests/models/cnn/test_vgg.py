"""VGG A, A-LRN, B, C, D, E: exact parameter counts (jax.eval_shape, no allocation), C's
1x1 convs, A-LRN's normalisation, shapes and input validation."""

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
        ("vgg11", {}, 132_863_336),
        ("vgg11_lrn", {}, 132_863_336),
        ("vgg13", {}, 133_047_848),
        ("vgg16_c", {}, 133_638_952),
        ("vgg16", {}, 138_357_544),
        ("vgg19", {}, 143_667_240),
    ],
)
def test_parameter_count_matches_reference_figure(name, overrides, expected):
    check_parameter_count_without_batch_norm(name, overrides, expected)


@pytest.mark.parametrize(
    "name, overrides, batch_shape, features",
    [
        ("vgg16", {}, (2, 224, 224, 3), 7 * 7 * 512),
        ("vgg16_c", {"input_shape": (64, 96, 3), "num_classes": 7}, (2, 64, 96, 3), 2 * 3 * 512),
    ],
)
def test_output_and_feature_shapes_at_stated_input_sizes(name, overrides, batch_shape, features):
    check_output_and_feature_shapes(name, overrides, batch_shape, features)


@pytest.mark.parametrize("name, bad_shape, expected", [("vgg19", (2, 3, 224, 224), r"\(B, 224, 224, 3\)")])
def test_wrong_input_shape_raises_value_error_naming_expected_shape(name, bad_shape, expected):
    check_wrong_input_shape_names_expected(name, bad_shape, expected)


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("vgg11", {"input_shape": (16, 16, 3)}, "at least 32x32"),
        ("vgg16", {"width_divisor": 3}, "width_divisor"),
        ("vgg19", {"num_classes": -1}, "positive"),
    ],
)
def test_invalid_config_raises_clear_value_error(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model(name, **overrides)


def test_vgg_c_uses_one_by_one_convs_in_last_three_stages():
    params = abstract_variables(zoo.create_model("vgg16_c"))["params"]
    for name in ("conv3_3", "conv4_3", "conv5_3"):
        assert params[name]["kernel"].shape[:2] == (1, 1)
    d = abstract_variables(zoo.create_model("vgg16"))["params"]
    assert d["conv3_3"]["kernel"].shape[:2] == (3, 3)


def test_vgg11_lrn_normalises_after_first_conv():
    kw = {"input_shape": (32, 32, 3), "width_divisor": 16, "fc_size": 8, "num_classes": 3}
    a, lrn = zoo.create_model("vgg11", **kw), zoo.create_model("vgg11_lrn", **kw)
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 32, 32, 3)) * 50
    v = a.init(jax.random.PRNGKey(1), x)
    assert jax.tree.structure(v) == jax.tree.structure(lrn.init(jax.random.PRNGKey(1), x))
    assert not np.allclose(a.apply(v, x), lrn.apply(v, x))
