"""Training in bfloat16 and float16 (``fit(..., dtype=...)``, ``train.py --dtype``): float32
master parameters and optimizer state, losses that follow the float32 run, and float16's
dynamic loss scaling (`zoo.optim.dynamic_loss_scale`), which skips a step with non-finite
gradients and adapts its scale."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import zoo
from zoo import optim
from zoo.data import Dataset, load_dataset
from zoo.tasks import get_task
from zoo.train import fit
from zoo.train.state import create_train_state, example_inputs
from zoo.train.steps import make_train_step

F32 = jnp.dtype(jnp.float32)


def _float_dtypes(tree):
    return {a.dtype for a in jax.tree.leaves(tree) if jnp.issubdtype(a.dtype, jnp.floating)}


def test_loss_scale_skips_non_finite_steps_and_adapts():
    params = {"w": jnp.array([1.0, 2.0])}
    tx = optim.dynamic_loss_scale(optax.adam(0.1), initial_scale=8.0, period=2, factor=2)
    state = tx.init(params)
    assert float(optim.loss_scale_of(state)) == 8.0 and optim.loss_scale_of(optax.sgd(1.0).init(params)) is None
    # Found inside another wrapper too (gradient accumulation).
    assert float(optim.loss_scale_of(optax.MultiSteps(tx, 2).init(params))) == 8.0

    # Non-finite: no update, adam's moments and count untouched, scale halved.
    updates, skipped = tx.update({"w": jnp.array([jnp.inf, 8.0])}, state, params)
    np.testing.assert_array_equal(updates["w"], [0.0, 0.0])
    chex.assert_trees_all_equal(skipped.inner_state, state.inner_state)
    assert float(optim.loss_scale_of(skipped)) == 4.0

    # Finite gradients are divided by the scale: the step equals adam's on g / 4.
    scaled = {"w": jnp.array([4.0, -8.0])}
    updates, after = tx.update(scaled, skipped, params)
    expected, _ = optax.adam(0.1).update({"w": jnp.array([1.0, -2.0])}, optax.adam(0.1).init(params), params)
    chex.assert_trees_all_close(updates, expected)
    assert float(optim.loss_scale_of(after)) == 4.0
    _, after = tx.update(scaled, after, params)  # the second finite step in a row: doubled
    assert float(optim.loss_scale_of(after)) == 8.0


# One model per family besides the MLP, which test_fit_digits_in_half_precision trains.
FAMILIES = {
    "cnn": ("conv_autoencoder", "reconstruction", {}),  # LeNet-5's forward: tests/nn/test_precision.py
    "recurrent": ("lstm", "classification", {"num_layers": 1, "bidirectional": False, "dropout_rate": 0.0}),
    "autoencoder": ("autoencoder", "reconstruction", {"input_shape": (8, 8, 1)}),
    "seq2seq": ("seq2seq", "sequence_to_sequence", {"num_layers": 1, "bidirectional": False}),
}


def _batch(model, task, key):
    shape = tuple(model.input_shape)
    kx, ky = jax.random.split(key)
    if task == "sequence_to_sequence":
        x = jax.random.randint(kx, (4, *shape), 3, 7)
        y = jax.random.randint(ky, (4, model.output_length), 3, 7)
    else:
        x = jax.random.uniform(kx, (4, *shape))
        y = x if task == "reconstruction" else jax.random.randint(ky, (4,), 0, 3)
    return {"x": x, "y": y, "mask": jnp.ones(4)}


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_trains_in_bfloat16(family):
    """Three engine steps on a fixed batch: finite falling losses, float32 parameters and
    optimizer state (forward equality with float32: tests/nn/test_precision.py)."""
    name, task_name, overrides = FAMILIES[family]
    task = get_task(task_name)
    model = zoo.create_model(name, dtype="bfloat16", **{**zoo.registry.get_spec(name).test_config, **overrides})
    batch = _batch(model, task_name, jax.random.PRNGKey(0))
    inputs = example_inputs(task, batch["x"].shape[1:], batch["x"].dtype, batch["y"].shape[1:], batch["y"].dtype)
    tx = optax.adam(1e-2)
    state = create_train_state(model, tx, batch["x"].shape[1:], seed=0, inputs=inputs)
    step = make_train_step(model, task, tx)
    losses = []
    for _ in range(3):
        state, sums = step(state, batch)
        losses.append(float(sums["loss"] / sums["count"]))
    assert _float_dtypes((state.params, state.opt_state, state.model_state)) == {F32}
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_fit_digits_in_half_precision(dtype):
    """The engine end to end (what ``train.py --dtype`` runs): one epoch of the MLP on digits."""
    data = load_dataset("digits")
    result = fit("mlp", data, epochs=1, dtype=dtype, progress=False)
    reference = fit("mlp", data, epochs=1, progress=False)
    assert result.model.dtype == dtype and _float_dtypes(result.state.params) == {F32}
    assert result.config.dtype == dtype
    np.testing.assert_allclose(result.history[0]["train_loss"], reference.history[0]["train_loss"], rtol=0.05)
    assert result.test_metrics["accuracy"] > 0.85
    if dtype == "float16":  # scaled, and the scale did not collapse
        assert 1.0 <= float(optim.loss_scale_of(result.state.opt_state)) <= 2.0**15


def test_dtype_errors():
    with pytest.raises(ValueError, match="dtype must be one of"):
        fit("mlp", "digits", epochs=1, dtype="float64", progress=False)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    data = Dataset(
        name="or",
        task="classification",
        x_train=x,
        y_train=np.array([0, 1, 1, 1]),
        x_test=x,
        y_test=np.array([0, 1, 1, 1]),
        num_classes=2,
    )
    with pytest.raises(ValueError, match="learns by a rule"):
        fit("perceptron_rosenblatt", data, epochs=1, dtype="bfloat16", validation_fraction=0.0, progress=False)
