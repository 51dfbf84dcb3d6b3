"""ResNets (ImageNet and CIFAR layouts): exact parameter counts against DESIGN.md's reference
figures (abstract evaluation, nothing allocated), shapes, option-A and projection
shortcuts, input checks and the CAM identity.

Counts are trainable parameters (the ``params`` collection: conv kernels, biases, BN scale
and bias, dense). BN running statistics (``batch_stats``) are not counted. With them every
count would be larger (checked below for ResNet-20)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cnn_testing import abstract, check_cifar_maps, check_shapes_at_224, check_wrong_input_shapes_raise, count

import zoo
from zoo.models.cnn.resnet import shortcut_a


REFERENCE = {  # DESIGN.md "Reference figures"
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_parameter_count_equals_reference_figure(name):
    _, variables = abstract(zoo.create_model(name))
    assert count(variables["params"]) == REFERENCE[name]


# 224x224 shapes: logits, pooled features and the last conv map (for CAM).
IMAGENET_FEATURES = {
    "resnet18": (7, 7, 512),
    "resnet34": (7, 7, 512),
    "resnet50": (7, 7, 2048),
    "resnet101": (7, 7, 2048),
    "resnet152": (7, 7, 2048),
}


@pytest.mark.parametrize("name", sorted(IMAGENET_FEATURES))
def test_output_feature_and_map_shapes_at_224(name):
    check_shapes_at_224(name, IMAGENET_FEATURES[name])


@pytest.mark.parametrize("name,maps", [("resnet20", (8, 8, 64))])
def test_cifar_networks_keep_32x32_down_to_8x8(name, maps):
    check_cifar_maps(name, maps)


@pytest.mark.parametrize("name", ["resnet18", "resnet20"])
def test_wrong_input_shape_raises_naming_expected_shape(name):
    check_wrong_input_shapes_raise(name)


@pytest.mark.parametrize(
    "name,overrides",
    [("resnet18", {"stage_sizes": ()}), ("resnet18", {"width": 0}), ("resnet20", {"input_shape": (32, 32)})],
)
def test_bad_config_raises_value_error(name, overrides):
    with pytest.raises(ValueError, match=f"bad config for model '{name}'"):
        zoo.create_model(name, **overrides)


def test_reference_counts_exclude_batch_norm_running_statistics():
    _, variables = abstract(zoo.create_model("resnet20"))
    # 19 BN layers over 16*7 + 32*6 + 64*6 = 688 channels: mean and var add 1,376.
    assert count(variables["batch_stats"]) == 2 * (16 * 7 + 32 * 6 + 64 * 6)
    assert count(variables["params"]) == 269_722


def test_input_size_and_channels_are_configurable():
    model = zoo.create_model("resnet50", input_shape=(96, 128, 1), num_classes=5)
    x, variables = abstract(model)
    assert jax.eval_shape(model.apply, variables, x).shape == (1, 5)
    assert variables["params"]["conv1"]["kernel"].shape == (7, 7, 1, 64)


def test_option_a_shortcut_subsamples_and_zero_pads_channels():
    x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3) + 1.0
    y = shortcut_a(x, 8, 2)
    assert y.shape == (2, 2, 2, 8)
    np.testing.assert_array_equal(y[..., :3], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 3:], 0.0)


def test_cifar_resnet_shortcuts_have_no_parameters():
    _, variables = abstract(zoo.create_model("resnet20"))
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(variables["params"])]
    assert not any("downsample" in p for p in paths)
    # Every conv is a 3x3 one: conv1 plus two per block, 3 blocks per stage.
    kernels = [
        a.shape
        for p, a in jax.tree_util.tree_leaves_with_path(variables["params"])
        if "kernel" in jax.tree_util.keystr(p) and a.ndim == 4
    ]
    assert len(kernels) == 1 + 2 * 9 and all(k[:2] == (3, 3) for k in kernels)


def test_imagenet_resnet_uses_projection_shortcuts_only_where_shape_changes():
    _, variables = abstract(zoo.create_model("resnet18"))
    projected = sorted(k for k, v in variables["params"].items() if isinstance(v, dict) and "downsample_conv" in v)
    assert projected == ["layers_1_0", "layers_2_0", "layers_3_0"]
    _, variables = abstract(zoo.create_model("resnet50"))
    assert "downsample_conv" in variables["params"]["layers_0_0"]  # 64 -> 256 channels
    assert variables["params"]["layers_1_0"]["conv2"]["kernel"].shape == (3, 3, 128, 128)  # stride on 3x3


def test_cifar_block_output_equals_residual_plus_zero_padded_input():
    model = zoo.create_model("resnet20", input_shape=(8, 8, 3), stage_sizes=(1, 1), width=2, num_classes=2)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
    variables = model.init(jax.random.PRNGKey(1), x)
    # Zero the second BN's scale and bias of the striding block: its output is then
    # relu(shortcut(x)) = relu(zero-padded subsampled input).
    params = jax.tree.map(lambda a: a, variables["params"])
    params["layers_1_0"]["bn2"] = jax.tree.map(jnp.zeros_like, params["layers_1_0"]["bn2"])
    _, inter = model.apply({**variables, "params": params}, x, capture_intermediates=True, mutable=["intermediates"])
    block_in = inter["intermediates"]["layers_0_0"]["__call__"][0]
    block_out = inter["intermediates"]["layers_1_0"]["__call__"][0]
    np.testing.assert_allclose(block_out, jax.nn.relu(shortcut_a(block_in, 4, 2)), atol=1e-6)


def test_cam_from_feature_maps_and_dense_kernel_matches_logits():
    model = zoo.create_model("resnet20", input_shape=(16, 16, 3), stage_sizes=(1, 1, 1), width=4, num_classes=3)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 3))
    variables = model.init(jax.random.PRNGKey(1), x)
    maps = model.apply(variables, x, method=model.feature_maps)
    fc = variables["params"]["fc"]
    cam = maps @ fc["kernel"]  # (B, h, w, classes)
    np.testing.assert_allclose(cam.mean(axis=(1, 2)) + fc["bias"], model.apply(variables, x), rtol=1e-5, atol=1e-5)
