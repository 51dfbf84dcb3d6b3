"""Mixed precision through ``create_model(name, dtype=..., param_dtype=...)`` (`zoo.nn.precision`):
one model per family computes in bfloat16 and matches float32 within a stated tolerance,
with the same variables (names, shapes, float32 storage)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.nn.precision import cast_floats, with_precision

# bfloat16 keeps 8 significant bits (relative step 2^-8 = 0.4%); a few layers of rounding
# stay well inside 3% of the output's scale.
BF16_TOLERANCE = 0.03
DROPOUT = {"dropout": jax.random.PRNGKey(2)}

# One model per family: (name, overrides, the model call's positional inputs).
FAMILIES = {
    "perceptron": ("mlp", {"input_shape": (8, 8, 1), "hidden_sizes": (16,)}),
    "perceptron_batch_norm": ("dff", {"input_shape": (8, 8, 1), "hidden_sizes": (16, 16)}),
    "cnn": ("lenet5", {}),
    "recurrent": ("lstm", {"input_shape": (None, 4), "hidden_size": 8, "num_classes": 3}),
    "autoencoder": ("autoencoder", {"input_shape": (8, 8, 1)}),
    "seq2seq": ("seq2seq", {"num_layers": 1, "bidirectional": False}),
}


def _inputs(name, model, key):
    spec = zoo.registry.get_spec(name)
    shape = tuple(7 if d is None else d for d in model.input_shape)
    if spec.input_dtype.startswith("int"):  # sequence to sequence: source and target ids
        x = jax.random.randint(key, (2, *shape), 3, 7)
        return x, jax.random.randint(jax.random.fold_in(key, 1), (2, model.output_length), 3, 7)
    return (jax.random.uniform(key, (2, *shape)),)


def _build(name, overrides, **precision):
    return zoo.create_model(name, **{**zoo.registry.get_spec(name).test_config, **overrides}, **precision)


@pytest.mark.parametrize("family", FAMILIES)
def test_bfloat16_forward_matches_float32(family):
    name, overrides = FAMILIES[family]
    fp32, bf16 = _build(name, overrides), _build(name, overrides, dtype="bfloat16")
    assert (bf16.dtype, bf16.param_dtype) == ("bfloat16", "float32")
    inputs = _inputs(name, fp32, jax.random.PRNGKey(0))
    variables = jax.jit(fp32.init)(jax.random.PRNGKey(1), *inputs)
    # The same variables, stored in float32, whichever model initialises them.
    mixed_vars = jax.eval_shape(bf16.init, jax.random.PRNGKey(1), *inputs)
    chex.assert_trees_all_equal_shapes_and_dtypes(mixed_vars, variables)

    expected = jax.jit(fp32.apply)(variables, *inputs)
    got = jax.jit(bf16.apply)(variables, *inputs)
    chex.assert_trees_all_equal_dtypes(got, expected)  # outputs back in float32
    floats = [(e, g) for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(got)) if e.dtype == jnp.float32]
    assert floats  # seq2seq: logits and attention besides the greedy ids
    for e, g in floats:
        scale = float(jnp.max(jnp.abs(e)))
        assert float(jnp.max(jnp.abs(e - g))) <= BF16_TOLERANCE * scale, family
        assert not np.array_equal(e, g)  # it did compute in bfloat16


def test_products_run_in_bfloat16_on_float32_parameters():
    model = zoo.create_model("mlp", input_shape=(4,), hidden_sizes=(8,), num_outputs=3, dtype="bfloat16")
    x = jnp.ones((2, 4))
    variables = model.init(jax.random.PRNGKey(0), x)
    jaxpr = str(jax.make_jaxpr(lambda v: model.apply(v, x))(variables))
    dots = [line for line in jaxpr.splitlines() if "dot_general" in line]
    assert len(dots) == 2 and all("bf16[" in line and "f32[" not in line.split("=")[0] for line in dots)
    grads = jax.grad(lambda v: jnp.sum(model.apply(v, x)))(variables)
    assert {a.dtype for a in jax.tree.leaves(grads)} == {jnp.dtype(jnp.float32)}


def test_batch_norm_statistics_stay_float32():
    name, overrides = FAMILIES["perceptron_batch_norm"]
    model = _build(name, overrides, dtype="bfloat16")
    (x,) = _inputs(name, model, jax.random.PRNGKey(0))
    variables = model.init(jax.random.PRNGKey(1), x)
    _, state = model.apply(variables, x, train=True, mutable=["batch_stats"], rngs=DROPOUT)
    stats = jax.tree.leaves(state["batch_stats"])
    assert stats and {a.dtype for a in stats} == {jnp.dtype(jnp.float32)}
    fp32 = _build(name, overrides)
    _, expected = fp32.apply(variables, x, train=True, mutable=["batch_stats"], rngs=DROPOUT)
    chex.assert_trees_all_close(state, expected, atol=0.02, rtol=0.02)


def test_param_dtype_stores_parameters_in_bfloat16():
    model = zoo.create_model("mlp", input_shape=(4,), hidden_sizes=(8,), dtype="bfloat16", param_dtype="bfloat16")
    variables = model.init(jax.random.PRNGKey(0), jnp.ones((2, 4)))
    assert {a.dtype for a in jax.tree.leaves(variables)} == {jnp.dtype(jnp.bfloat16)}
    assert model.apply(variables, jnp.ones((2, 4))).dtype == jnp.float32


def test_other_methods_and_an_unregistered_module():
    model = zoo.create_model("autoencoder", input_shape=(8, 8, 1), dtype="bfloat16")
    x = jnp.ones((2, 8, 8, 1))
    variables = model.init(jax.random.PRNGKey(0), x)
    code = model.apply(variables, x, method="encode")
    fp32 = zoo.create_model("autoencoder", input_shape=(8, 8, 1))
    np.testing.assert_allclose(code, fp32.apply(variables, x, method="encode"), atol=0.03)
    # Any Linen module, not only registered ones; float32 both ways is the module itself.
    assert with_precision(fp32) is fp32
    again = with_precision(model, "float32")
    assert again.dtype == "float32"
    chex.assert_trees_all_close(again.apply(variables, x), fp32.apply(variables, x))


def test_bad_dtype_is_one_clear_error():
    with pytest.raises(ValueError, match=r"model 'mlp'.*dtype must be one of"):
        zoo.create_model("mlp", dtype="float64")
    with pytest.raises(ValueError, match="param_dtype must be one of"):
        zoo.create_model("mlp", param_dtype="half")


def test_cast_floats_leaves_integers_alone():
    tree = {"ids": jnp.arange(3), "x": jnp.ones(2), "n": 3, "none": None}
    out = cast_floats(tree, jnp.bfloat16)
    assert out["ids"].dtype == jnp.int32 and out["x"].dtype == jnp.bfloat16 and out["n"] == 3
