"""EMA of the weights and gradient accumulation: each equal to what it promises. The EMA
follows its NumPy recurrence (once per applied update), is what evaluation and the saved
variables use, and survives a resume; 4 accumulated micro-batches make the update of one
4x batch, with the step count, the logged learning rate and the schedule per update."""

import json
import math

import chex
import jax
import numpy as np
import optax
import pytest

import zoo
from zoo.train import fit
from zoo.train.checkpoint import read_variables
from zoo.train.state import create_train_state
from zoo.train.steps import make_train_step

QUIET = dict(progress=False)
SMALL = {"hidden_sizes": (8,)}


@pytest.mark.parametrize("accumulate", [1, 2])
def test_ema_follows_its_numpy_recurrence(accumulate):
    """ema_0 = w_0; after each applied update ema <- d ema + (1 - d) w (optax's
    incremental_update); with accumulation the weights, and so the average, move on
    every `accumulate`-th step only."""
    decay = 0.8
    model = zoo.create_model("mlp", input_shape=(4,), hidden_sizes=(3,), num_outputs=2)
    task = zoo.train.get_task("classification")
    tx = optax.sgd(0.5)
    if accumulate > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=accumulate)
    state = create_train_state(model, tx, (4,), seed=0)
    state = state.replace(ema_params=jax.tree.map(np.array, state.params))
    step = make_train_step(model, task, tx, ema_decay=decay, accumulate=accumulate)
    rng = np.random.default_rng(0)
    expected = jax.device_get(state.params)
    for i in range(5):
        batch = {
            "x": rng.standard_normal((6, 4)).astype(np.float32),
            "y": rng.integers(0, 2, 6).astype(np.int32),
            "mask": np.ones(6, np.float32),
        }
        before = jax.device_get(state.params)
        state, _ = step(state, batch)
        weights = jax.device_get(state.params)
        applied = (i + 1) % accumulate == 0
        moved = any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(weights), jax.tree.leaves(before)))
        assert moved == applied
        if applied:
            expected = jax.tree.map(lambda e, w: decay * e + (1 - decay) * w, expected, weights)
        chex.assert_trees_all_close(jax.device_get(state.ema_params), expected, rtol=1e-6, atol=1e-7)


def test_ema_weights_are_evaluated_saved_and_resumed(tmp_path):
    """Test metrics are those of the EMA weights; read_variables (fine-tuning, export)
    returns them; 2 + 1 epochs resumed == 3 epochs, EMA and MultiSteps state included
    (6 steps an epoch, 4 per update: accumulation straddles the epochs)."""
    kwargs = dict(epochs=3, batch_size=256, ema=0.9, accumulate=4, model_overrides=SMALL, tensorboard=False, **QUIET)
    full = fit("mlp", "digits", **kwargs)
    ema = full.state.ema_params
    assert not np.allclose(ema["out"]["kernel"], full.state.params["out"]["kernel"])
    chex.assert_trees_all_equal(full.variables["params"], ema)
    data = zoo.data.load_dataset("digits")
    again = zoo.train.evaluate(full.model, full.variables, data.x_test, data.y_test, task=full.task)
    assert again == pytest.approx(full.test_metrics, rel=1e-6)

    fit("mlp", "digits", workdir=str(tmp_path), **{**kwargs, "epochs": 2})
    resumed = fit("mlp", "digits", workdir=str(tmp_path), resume=True, **kwargs)
    chex.assert_trees_all_equal(resumed.state.params, full.state.params)
    chex.assert_trees_all_equal(resumed.state.ema_params, ema)
    chex.assert_trees_all_equal(resumed.state.opt_state, full.state.opt_state)
    saved, _ = read_variables(str(tmp_path))
    chex.assert_trees_all_close(saved["params"], jax.device_get(ema))


def test_accumulated_micro_batches_equal_one_big_batch(tmp_path):
    """Batches of 8 accumulated 4 at a time == batches of 32 (the same examples in the same
    order, no batch norm or dropout): the same weights after the epoch, Adam and a cosine
    schedule over the run's 40 updates included. The 161st micro-batch waits for 3 more."""
    common = dict(
        epochs=1,
        drop_remainder=True,
        optimizer="adam",
        learning_rate=1e-2,
        optimizer_kwargs={"schedule": "cosine"},
        model_overrides=SMALL,
        tensorboard=False,
        **QUIET,
    )
    big = fit("mlp", "digits", batch_size=32, **common)
    micro = fit("mlp", "digits", batch_size=8, accumulate=4, workdir=str(tmp_path), **common)
    chex.assert_trees_all_close(micro.state.params, big.state.params, rtol=1e-4, atol=1e-6)
    assert int(big.state.step) == 40 and int(micro.state.step) == 161
    assert int(micro.state.opt_state.gradient_step) == 40  # optimizer updates
    assert json.loads((tmp_path / "config.json").read_text())["schedule_length"] == 40

    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in lines if r.get("event") == "step"]
    assert [r["step"] for r in steps] == list(range(1, 162))
    # Cosine over 40 updates, one update per 4 steps: steps 1-4 use t = 0, 5-8 t = 1, ...
    expected = [0.5 * 1e-2 * (1 + math.cos(math.pi * min((s - 1) // 4, 40) / 40)) for s in range(1, 162)]
    np.testing.assert_allclose([r["learning_rate"] for r in steps], expected, rtol=1e-5, atol=1e-9)
    assert [r["step"] for r in lines if "event" not in r] == [161]


def test_bad_engine_options_are_one_line():
    with pytest.raises(ValueError, match=r"ema .* must be in \(0, 1\)"):
        fit("mlp", "digits", epochs=1, ema=1.5, **QUIET)
    with pytest.raises(ValueError, match="accumulate .* must be an integer >= 1"):
        fit("mlp", "digits", epochs=1, accumulate=0, **QUIET)
    with pytest.raises(ValueError, match="no update would be made"):
        fit("mlp", "digits", epochs=1, batch_size=2000, accumulate=2, **QUIET)
