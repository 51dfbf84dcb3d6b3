"""GoogLeNet: exact parameter counts against DESIGN.md's reference figures (with and without
batch norm and auxiliary heads; abstract evaluation), shapes, input checks, the auxiliary
heads' sown logits and the batch-norm variant's statistics.

Counts are trainable parameters (the ``params`` collection: conv kernels, biases, BN scale
and bias, dense). BN running statistics (``batch_stats``) are not counted."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cnn_testing import abstract, check_shapes_at_224, check_wrong_input_shapes_raise, count

import zoo


REFERENCE = {  # DESIGN.md "Reference figures"
    "googlenet": 6_998_552
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_parameter_count_equals_reference_figure(name):
    _, variables = abstract(zoo.create_model(name))
    assert count(variables["params"]) == REFERENCE[name]


# 224x224 shapes: logits, pooled features and the last conv map (for CAM).
IMAGENET_FEATURES = {"googlenet": (7, 7, 1024)}


@pytest.mark.parametrize("name", sorted(IMAGENET_FEATURES))
def test_output_feature_and_map_shapes_at_224(name):
    check_shapes_at_224(name, IMAGENET_FEATURES[name])


@pytest.mark.parametrize("name", ["googlenet"])
def test_wrong_input_shape_raises_naming_expected_shape(name):
    check_wrong_input_shapes_raise(name)


@pytest.mark.parametrize("name,overrides", [("googlenet", {"dropout_rate": 1.0}), ("googlenet", {"num_classes": 0})])
def test_bad_config_raises_value_error(name, overrides):
    with pytest.raises(ValueError, match=f"bad config for model '{name}'"):
        zoo.create_model(name, **overrides)


def test_googlenet_with_batch_norm_has_7005832_parameters():
    _, variables = abstract(zoo.create_model("googlenet", batch_norm=True))
    assert count(variables["params"]) == 7_005_832
    # BN replaces each conv's bias (C) by scale and bias (2C): +7,280 conv output channels.
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(variables["params"])]
    assert not any(p.endswith("['conv']['bias']") for p in paths)
    assert sum(p.endswith("['bn']['bias']") for p in paths) == 57  # 3 stem convs + 9 modules x 6


def test_googlenet_aux_heads_add_6379728_parameters():
    _, variables = abstract(zoo.create_model("googlenet", aux_heads=True))
    assert count(variables["params"]) == 6_998_552 + 3_188_840 + 3_190_888
    assert count(variables["params"]["aux_head1"]) == 3_188_840


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
    _, state = model.apply(variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(0)}, mutable=["batch_stats"])
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state["batch_stats"], variables["batch_stats"])
    assert all(jax.tree.leaves(changed))
