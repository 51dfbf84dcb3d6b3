"""Stage-wise training over resolution (zoo.train.stagewise)."""

import jax
import numpy as np
import pytest

import zoo
from zoo.runtime import run_once
from zoo.train.stagewise import train_stagewise

SMALL = {"stage_sizes": (1, 1, 1), "conv_impl": "xla"}


def _digits(n=64, size=16):
    data = zoo.data.load_dataset("digits", image_size=size)
    return zoo.data.Dataset(
        "digits16", "classification", data.x_train[:n], data.y_train[:n], data.x_test[:n], data.y_test[:n], 10
    )


def test_each_stage_starts_from_the_last_ones_weights_at_its_resolution():
    data = _digits()
    # One full batch, no validation split: one train step (and one compile of it) per stage.
    lr = 1e-3
    results = train_stagewise(
        "resnet20",
        data,
        factors=(4, 2, 1),
        epochs=1,
        batch_size=len(data.x_train),
        validation_fraction=0,
        optimizer="adam",
        learning_rate=lr,
        model_overrides=SMALL,
        progress=False,
    )
    assert [r.model.input_shape for r in results] == [(4, 4, 1), (8, 8, 1), (16, 16, 1)]
    assert [r.history[-1]["step"] for r in results] == [1, 1, 1]
    first, second = results[0].variables, results[1].variables
    # One step per stage from the previous stage's weights: the change is one update, small.
    change = [
        float(np.max(np.abs(a - b)))
        for a, b in zip(jax.tree.leaves(first["params"]), jax.tree.leaves(second["params"]))
    ]
    fresh_model = zoo.create_model("resnet20", input_shape=(8, 8, 1), **SMALL)
    fresh = run_once(lambda: fresh_model.init(jax.random.PRNGKey(0), data.x_test[:2, ::2, ::2]))
    distance = [
        float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(first["params"]), jax.tree.leaves(fresh["params"]))
    ]
    assert max(change) < max(distance)
    # Adam's first update moves each parameter by at most the learning rate: within one update
    # of the last stage's weights. A stage started afresh (from fit's own initialisation, as
    # the first stage did) would be up to two updates away, one of each stage.
    assert max(change) < 1.5 * lr
    assert set(results[-1].test_metrics) >= {"accuracy", "loss"}


def test_bad_stages_are_clear_errors():
    data = _digits()
    with pytest.raises(ValueError, match="must be >= 1 and divide the image size 16x16"):
        train_stagewise("resnet20", data, factors=(3, 1), epochs=1, progress=False)
    with pytest.raises(ValueError, match="2 stages but 3 epoch counts"):
        train_stagewise("resnet20", data, factors=(2, 1), epochs=(1, 1, 1), progress=False)
    with pytest.raises(ValueError, match="subsamples images"):
        train_stagewise("mlp", zoo.data.load_dataset("diabetes"), progress=False)
