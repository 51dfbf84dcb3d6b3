"""ResNet (ImageNet and CIFAR), DenseNet and GoogLeNet: exact parameter counts against
DESIGN.md's reference figures (abstract evaluation, nothing allocated), output and feature
shapes at 224x224, option-A shortcuts, input checks and GoogLeNet's auxiliary heads.

Counts are trainable parameters (the ``params`` collection: conv kernels, biases, BN scale
and bias, dense). BN running statistics (``batch_stats``) are not counted; with them every
count would be larger (checked below for ResNet-20).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.models.cnn.resnet import shortcut_a


def _abstract(model, batch=1):
    x = jax.ShapeDtypeStruct((batch, *model.input_shape), jnp.float32)
    return x, jax.eval_shape(model.init, jax.random.PRNGKey(0), x)


def _count(tree):
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


REFERENCE = {  # DESIGN.md "Reference figures"; ImageNet nets at 1000 classes, CIFAR at 10.
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
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "densenet_bc_100": 769_162,
    "googlenet": 6_998_552,
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_parameter_count_equals_reference_figure(name):
    _, variables = _abstract(zoo.create_model(name))
    assert _count(variables["params"]) == REFERENCE[name]


def test_densenet_bc_100_has_800032_parameters_at_100_classes():
    _, variables = _abstract(zoo.create_model("densenet_bc_100", num_classes=100))
    assert _count(variables["params"]) == 800_032


def test_googlenet_with_batch_norm_has_7005832_parameters():
    _, variables = _abstract(zoo.create_model("googlenet", batch_norm=True))
    assert _count(variables["params"]) == 7_005_832
    # BN replaces each conv's bias (C) by scale and bias (2C): +7,280 conv output channels.
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(variables["params"])]
    assert not any(p.endswith("['conv']['bias']") for p in paths)
    assert sum(p.endswith("['bn']['bias']") for p in paths) == 57  # 3 stem convs + 9 modules x 6


def test_googlenet_aux_heads_add_6379728_parameters():
    _, variables = _abstract(zoo.create_model("googlenet", aux_heads=True))
    assert _count(variables["params"]) == 6_998_552 + 3_188_840 + 3_190_888
    assert _count(variables["params"]["aux_head1"]) == 3_188_840


def test_reference_counts_exclude_batch_norm_running_statistics():
    _, variables = _abstract(zoo.create_model("resnet20"))
    # 19 BN layers over 16*7 + 32*6 + 64*6 = 688 channels: mean and var add 1,376.
    assert _count(variables["batch_stats"]) == 2 * (16 * 7 + 32 * 6 + 64 * 6)
    assert _count(variables["params"]) == 269_722


def test_growth_rate_is_configurable():
    _, v12 = _abstract(zoo.create_model("densenet_bc_100"))
    _, v24 = _abstract(zoo.create_model("densenet_bc_100", growth_rate=24))
    assert _count(v24["params"]) > _count(v12["params"])
    assert v24["params"]["classifier"]["kernel"].shape[0] == 2 * v12["params"]["classifier"]["kernel"].shape[0]


# 224x224 shapes: logits, pooled features and the last conv map (for CAM).
IMAGENET_FEATURES = {
    "resnet18": (7, 7, 512), "resnet34": (7, 7, 512), "resnet50": (7, 7, 2048),
    "resnet101": (7, 7, 2048), "resnet152": (7, 7, 2048), "densenet121": (7, 7, 1024),
    "densenet169": (7, 7, 1664), "densenet201": (7, 7, 1920), "googlenet": (7, 7, 1024),
}


@pytest.mark.parametrize("name", sorted(IMAGENET_FEATURES))
def test_output_feature_and_map_shapes_at_224(name):
    model = zoo.create_model(name, num_classes=7)
    x, variables = _abstract(model, batch=2)
    assert jax.eval_shape(model.apply, variables, x).shape == (2, 7)
    maps = jax.eval_shape(lambda v, x: model.apply(v, x, method=model.feature_maps), variables, x)
    assert maps.shape == (2, *IMAGENET_FEATURES[name])
    h = jax.eval_shape(lambda v, x: model.apply(v, x, method=model.forward_features), variables, x)
    assert h.shape == (2, IMAGENET_FEATURES[name][-1])


@pytest.mark.parametrize("name,maps", [("resnet20", (8, 8, 64)), ("densenet_bc_100", (8, 8, 342))])
def test_cifar_networks_keep_32x32_down_to_8x8(name, maps):
    model = zoo.create_model(name)
    x, variables = _abstract(model, batch=2)
    assert jax.eval_shape(model.apply, variables, x).shape == (2, 10)
    out = jax.eval_shape(lambda v, x: model.apply(v, x, method=model.feature_maps), variables, x)
    assert out.shape == (2, *maps)


def test_input_size_and_channels_are_configurable():
    model = zoo.create_model("resnet50", input_shape=(96, 128, 1), num_classes=5)
    x, variables = _abstract(model)
    assert jax.eval_shape(model.apply, variables, x).shape == (1, 5)
    assert variables["params"]["conv1"]["kernel"].shape == (7, 7, 1, 64)


def test_option_a_shortcut_subsamples_and_zero_pads_channels():
    x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3) + 1.0
    y = shortcut_a(x, 8, 2)
    assert y.shape == (2, 2, 2, 8)
    np.testing.assert_array_equal(y[..., :3], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 3:], 0.0)


def test_cifar_resnet_shortcuts_have_no_parameters():
    _, variables = _abstract(zoo.create_model("resnet20"))
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(variables["params"])]
    assert not any("downsample" in p for p in paths)
    # Every conv is a 3x3 one: conv1 plus two per block, 3 blocks per stage.
    kernels = [a.shape for p, a in jax.tree_util.tree_leaves_with_path(variables["params"])
               if "kernel" in jax.tree_util.keystr(p) and a.ndim == 4]
    assert len(kernels) == 1 + 2 * 9 and all(k[:2] == (3, 3) for k in kernels)


def test_imagenet_resnet_uses_projection_shortcuts_only_where_shape_changes():
    _, variables = _abstract(zoo.create_model("resnet18"))
    projected = sorted(k for k, v in variables["params"].items() if isinstance(v, dict) and "downsample_conv" in v)
    assert projected == ["layers_1_0", "layers_2_0", "layers_3_0"]
    _, variables = _abstract(zoo.create_model("resnet50"))
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
    _, inter = model.apply({**variables, "params": params}, x, capture_intermediates=True,
                           mutable=["intermediates"])
    block_in = inter["intermediates"]["layers_0_0"]["__call__"][0]
    block_out = inter["intermediates"]["layers_1_0"]["__call__"][0]
    np.testing.assert_allclose(block_out, jax.nn.relu(shortcut_a(block_in, 4, 2)), atol=1e-6)


@pytest.mark.parametrize("name", ["resnet18", "resnet20", "densenet121", "densenet_bc_100", "googlenet"])
def test_wrong_input_shape_raises_naming_expected_shape(name):
    model = zoo.create_model(name)
    _, variables = _abstract(model)
    h, w, c = model.input_shape
    for bad in [(1, h, w, c + 1), (1, h + 1, w, c), (h, w)]:
        with pytest.raises(ValueError, match=rf"expects .*\(B, {h}, {w}, {c}\)"):
            jax.eval_shape(model.apply, variables, jax.ShapeDtypeStruct(bad, jnp.float32))


@pytest.mark.parametrize("name,overrides", [
    ("resnet18", {"stage_sizes": ()}), ("resnet18", {"width": 0}), ("resnet20", {"input_shape": (32, 32)}),
    ("densenet121", {"growth_rate": 0}), ("densenet_bc_100", {"compression": 0.0}),
    ("googlenet", {"dropout_rate": 1.0}), ("googlenet", {"num_classes": 0}),
])
def test_bad_config_raises_value_error(name, overrides):
    with pytest.raises(ValueError, match=f"bad config for model '{name}'"):
        zoo.create_model(name, **overrides)


def _tiny_googlenet(**kw):
    model = zoo.create_model("googlenet", input_shape=(32, 32, 3), num_classes=3, width_divisor=32, **kw)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 32, 32, 3))
    return model, x, model.init(jax.random.PRNGKey(1), x)


def test_googlenet_aux_heads_are_sown_in_train_mode_only():
    model, x, variables = _tiny_googlenet(aux_heads=True)
    assert {"aux_head1", "aux_head2"} <= set(variables["params"])
    assert "aux_logits" not in variables
    rngs = {"dropout": jax.random.PRNGKey(2)}
    logits, state = model.apply(variables, x, train=True, rngs=rngs, mutable=["aux_logits"])
    assert logits.shape == (2, 3)
    assert state["aux_logits"]["aux1"][0].shape == (2, 3) and state["aux_logits"]["aux2"][0].shape == (2, 3)
    _, state = model.apply(variables, x, train=False, mutable=["aux_logits"])
    assert "aux_logits" not in state  # not computed in eval mode
    # The main output does not depend on the aux heads.
    without = zoo.create_model("googlenet", input_shape=(32, 32, 3), num_classes=3, width_divisor=32)
    main = {k: v for k, v in variables["params"].items() if not k.startswith("aux")}
    np.testing.assert_allclose(without.apply({"params": main}, x), model.apply(variables, x), rtol=1e-6)


def test_googlenet_batch_norm_variant_keeps_statistics_in_batch_stats():
    model, x, variables = _tiny_googlenet(batch_norm=True)
    assert "batch_stats" in variables
    _, state = model.apply(variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(0)},
                           mutable=["batch_stats"])
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state["batch_stats"], variables["batch_stats"])
    assert all(jax.tree.leaves(changed))


def test_cam_from_feature_maps_and_dense_kernel_matches_logits():
    model = zoo.create_model("resnet20", input_shape=(16, 16, 3), stage_sizes=(1, 1, 1), width=4, num_classes=3)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 3))
    variables = model.init(jax.random.PRNGKey(1), x)
    maps = model.apply(variables, x, method=model.feature_maps)
    fc = variables["params"]["fc"]
    cam = maps @ fc["kernel"]  # (B, h, w, classes)
    np.testing.assert_allclose(cam.mean(axis=(1, 2)) + fc["bias"], model.apply(variables, x), rtol=1e-5, atol=1e-5)
