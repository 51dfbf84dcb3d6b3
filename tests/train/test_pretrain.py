"""Greedy layer-wise pretraining (zoo.train.pretrain) and starting a fit from given variables."""

import jax
import numpy as np
import pytest

import zoo
from zoo.data import load_dataset
from zoo.train.finetune import init_from_variables
from zoo.train.pretrain import pretrain_layerwise, stacked_variables


def test_each_layer_trains_on_the_codes_of_the_one_before():
    data = load_dataset("digits")
    layers = [("autoencoder", {"hidden_sizes": (16,)}), ("autoencoder", {"hidden_sizes": (6,)})]
    results = pretrain_layerwise(layers, data, epochs=1, progress=False)
    assert results[0].model.input_shape == (8, 8, 1) and results[1].model.input_shape == (16,)
    codes = results[0].model.apply(results[0].variables, data.x_test, method="encode")
    direct = results[1].model.apply(results[1].variables, codes, method="encode")
    assert direct.shape == (len(data.x_test), 6)
    # The second layer's test loss is measured on the first layer's codes, in (0, 1).
    assert 0 < results[1].test_metrics["reconstruction_error"] < results[0].test_metrics["reconstruction_error"] * 10

    init = stacked_variables(results, {"encoder_0": "hidden_{}"})
    model = zoo.create_model("mlp", hidden_sizes=(16, 6), activation="sigmoid")
    fresh = model.init(jax.random.PRNGKey(0), data.x_test[:2])
    started = init_from_variables(model, fresh, init)
    np.testing.assert_array_equal(started["params"]["hidden_1"]["kernel"], init["params"]["hidden_1"]["kernel"])
    np.testing.assert_array_equal(started["params"]["out"]["kernel"], fresh["params"]["out"]["kernel"])
    result = zoo.fit(
        "mlp",
        data,
        model_overrides={"hidden_sizes": (16, 6), "activation": "sigmoid"},
        initial_variables=init,
        epochs=1,
        progress=False,
    )
    assert result.test_metrics["accuracy"] > 0.1


def test_initial_variables_that_do_not_fit_are_one_clear_error():
    data = load_dataset("digits")
    wrong = {"params": {"hidden_0": {"kernel": np.zeros((64, 5), np.float32), "bias": np.zeros(5, np.float32)}}}
    with pytest.raises(ValueError, match=r"shape mismatch.*hidden_0/kernel \(64, 5\)"):
        zoo.fit("mlp", data, model_overrides={"hidden_sizes": (16,)}, initial_variables=wrong, epochs=1, progress=False)
    with pytest.raises(ValueError, match="have no place in the model"):
        stray = {"params": {"encoder_9": {"kernel": np.zeros((2, 2), np.float32)}}}
        zoo.fit("mlp", data, initial_variables=stray, epochs=1, progress=False)


def test_initial_variables_stay_usable_after_the_fit():
    """The train step donates its state: the caller's arrays must be copies, not donated."""
    data = load_dataset("digits")
    model = zoo.create_model("mlp", hidden_sizes=(8,))
    variables = model.init(jax.random.PRNGKey(0), data.x_test[:2])
    zoo.fit("mlp", data, model_overrides={"hidden_sizes": (8,)}, initial_variables=variables, epochs=1, progress=False)
    assert np.isfinite(np.asarray(variables["params"]["hidden_0"]["kernel"])).all()  # not deleted
