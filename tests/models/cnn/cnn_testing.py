"""Helpers of the CNN tests: abstract variables (jax.eval_shape, nothing allocated) and
parameter counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo


def abstract(model, batch=1):
    """(abstract input, abstract variables) of ``model`` at its input shape."""
    x = jax.ShapeDtypeStruct((batch, *model.input_shape), jnp.float32)
    return x, jax.eval_shape(model.init, jax.random.PRNGKey(0), x)


def abstract_variables(model, batch=1):
    return abstract(model, batch)[1]


def count(tree):
    """Number of scalars in a tree of arrays."""
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


# The checks every CNN's test file runs on its own architectures (one body each).


def check_parameter_count_without_batch_norm(name, overrides, expected):
    variables = abstract_variables(zoo.create_model(name, **overrides))
    assert count(variables["params"]) == expected
    assert set(variables) <= {"params", "constants"}  # no batch norm in these networks


def check_output_and_feature_shapes(name, overrides, batch_shape, features):
    """Logits (B, classes) and flattened features (B, features) at ``batch_shape``."""
    model = zoo.create_model(name, **overrides)
    num_classes = overrides.get("num_classes", 10 if name.startswith("lenet") else 1000)
    x = jax.ShapeDtypeStruct(batch_shape, jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    assert jax.eval_shape(model.apply, variables, x).shape == (batch_shape[0], num_classes)
    h = jax.eval_shape(lambda v, x: model.apply(v, x, method=model.forward_features), variables, x)
    assert h.shape == (batch_shape[0], features)


def check_wrong_input_shape_names_expected(name, bad_shape, expected):
    model = zoo.create_model(name)
    good = jax.ShapeDtypeStruct((2, *model.input_shape), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), good)
    with pytest.raises(ValueError, match="expects input of shape " + expected):
        jax.eval_shape(model.apply, variables, jax.ShapeDtypeStruct(bad_shape, jnp.float32))


def check_shapes_at_224(name, feature_map):
    """Logits and the last conv map ``feature_map`` (H, W, C, for CAM), from one abstract
    pass through the deep part (a 152-layer trace is the cost here): the maps, globally
    pooled, go through the head. (That forward_features and head compose to the forward
    pass is the registry-wide tests' business, at every model's test size.)"""
    model = zoo.create_model(name, num_classes=7)
    x = jax.ShapeDtypeStruct((2, *model.input_shape), jnp.float32)

    def maps_and_logits(m, x):
        maps = m.feature_maps(x)
        return maps, m.head(maps.mean(axis=(1, 2)))

    (maps, logits), _ = jax.eval_shape(
        lambda k, x: model.init_with_output(k, x, method=maps_and_logits), jax.random.PRNGKey(0), x
    )
    assert maps.shape == (2, *feature_map) and logits.shape == (2, 7)


def check_cifar_maps(name, maps):
    """A CIFAR network keeps 32x32 inputs down to ``maps`` (8, 8, C)."""
    model = zoo.create_model(name)
    x, variables = abstract(model, batch=2)
    assert jax.eval_shape(model.apply, variables, x).shape == (2, 10)
    out = jax.eval_shape(lambda v, x: model.apply(v, x, method=model.feature_maps), variables, x)
    assert out.shape == (2, *maps)


def check_wrong_input_shapes_raise(name):
    """Wrong channels, wrong height, or no batch axis: a ValueError naming (B, H, W, C)."""
    model = zoo.create_model(name)
    _, variables = abstract(model)
    h, w, c = model.input_shape
    for bad in [(1, h, w, c + 1), (1, h + 1, w, c), (h, w)]:
        with pytest.raises(ValueError, match=rf"expects .*\(B, {h}, {w}, {c}\)"):
            jax.eval_shape(model.apply, variables, jax.ShapeDtypeStruct(bad, jnp.float32))
