"""Building/floor localisation (Kim, Lee & Huang 2018): the UJIIndoorLoc CSV loader on
generated files, the two models' outputs and loss against NumPy, layer-wise pretraining of
the encoder, and training end to end."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.data import DatasetNotFoundError, load_dataset
from zoo.data import ujiindoorloc as uji
from zoo.tasks import get_task
from zoo.train.pretrain import pretrain_layerwise, stacked_variables


@pytest.fixture(scope="module")
def uji_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uji")
    uji.write_csv(folder / "trainingData.csv", uji.generate_fingerprints(60, seed=1))
    uji.write_csv(folder / "validationData.csv", uji.generate_fingerprints(20, seed=2))
    return folder


def test_generated_csv_reads_back_through_the_loader(uji_folder):
    written = uji.generate_fingerprints(60, seed=1)
    assert written["rssi"].shape == (60, 520)
    assert set(np.unique(written["rssi"][written["rssi"] > 0]).tolist()) == {100}  # positive = not detected
    data = load_dataset("ujiindoorloc", data_dir=uji_folder)
    assert data.x_train.shape == (60, 520) and data.x_test.shape == (20, 520) and data.num_classes == 13
    assert data.model_config == {"floors_per_building": (4, 4, 5)}
    # -110 dBm (and "not detected") -> 0, 0 dBm -> 1, linear between.
    expected = np.where(written["rssi"] == 100, 0.0, (written["rssi"] + 110) / 110)
    np.testing.assert_allclose(data.x_train, expected, rtol=1e-6)
    offsets = np.array([0, 4, 8])
    np.testing.assert_array_equal(data.y_train, offsets[written["BUILDINGID"]] + written["FLOOR"])
    assert data.class_names[12] == "building 2 floor 4"


def test_bad_files_are_clear_errors(uji_folder, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no UJIIndoorLoc file at .*trainingData.csv"):
        load_dataset("ujiindoorloc", data_dir=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="pass data_dir"):
        load_dataset("ujiindoorloc")
    (tmp_path / "trainingData.csv").write_text("WAP001,FLOOR\n1,2\n")
    with pytest.raises(ValueError, match="not a UJIIndoorLoc file: expected 529 columns.*missing WAP002"):
        uji.read_csv(tmp_path / "trainingData.csv")
    with pytest.raises(ValueError, match="building 0 has 4 floors, but a fingerprint is on floor 4"):
        uji.building_floor_class(np.array([0]), np.array([4]), (4, 4, 5))


def _tiny(heads):
    model = zoo.create_model(
        "building_floor_dnn" if heads == "multilabel" else "building_floor_hierarchical",
        input_shape=(6,),
        encoder_sizes=(5,),
        hidden_sizes=(4,),
        floors_per_building=(2, 3),
        num_classes=5,
    )
    x = jax.random.uniform(jax.random.PRNGKey(0), (4, 6))
    variables = model.init(jax.random.PRNGKey(1), x)
    params = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    h = np.maximum(np.asarray(x, np.float64) @ params["encoder_0"]["kernel"] + params["encoder_0"]["bias"], 0)
    return model, variables, params, x, h


def _dense(p, h):
    return h @ p["kernel"] + p["bias"]


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _log_sigmoid(z):
    return -np.logaddexp(0, -z)


Y = np.array([0, 1, 2, 4])  # building-floor classes of (2, 3) floors: b0f0, b0f1, b1f0, b1f2
BUILDING, FLOOR = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 2])


def test_multilabel_outputs_and_loss_equal_numpy():
    """The paper: sigmoid building one-hot and floor one-hot, binary cross-entropy summed."""
    model, variables, p, x, h = _tiny("multilabel")
    scores = _dense(p["out"], np.maximum(_dense(p["classifier_0"], h), 0))
    building, floor = scores[:, :2], scores[:, 2:]
    out = model.apply(variables, x)
    np.testing.assert_allclose(out["building_logits"], building, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["floor_logits"][:, 1], floor, rtol=1e-5, atol=1e-6)
    joint = _log_sigmoid(building)[:, [0, 0, 1, 1, 1]] + _log_sigmoid(floor)[:, [0, 1, 0, 1, 2]]
    np.testing.assert_allclose(out["logits"], joint, rtol=1e-5, atol=1e-6)

    def bce(z, t):
        return np.sum(np.logaddexp(0, z) - t * z, -1)

    metrics = get_task("building_floor").per_example(out, {"y": jnp.asarray(Y)})
    loss = bce(building, np.eye(2)[BUILDING]) + bce(floor, np.eye(3)[FLOOR])
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    right_b, right_f = building.argmax(-1) == BUILDING, floor.argmax(-1) == FLOOR
    np.testing.assert_array_equal(metrics["building_accuracy"], right_b)
    np.testing.assert_array_equal(metrics["floor_accuracy"], right_f)
    np.testing.assert_array_equal(metrics["accuracy"], right_b & right_f)


def test_hierarchical_outputs_and_loss_equal_numpy():
    """Shared code, a building branch, one floor branch per building (its own weights);
    loss CE(building) + CE(the true building's floor branch); building 0's third floor
    does not exist and is never predicted."""
    model, variables, p, x, h = _tiny("hierarchical")
    building = _dense(p["building_out"], np.maximum(_dense(p["building_branch_0"], h), 0))
    floors = np.stack(
        [
            np.maximum(h @ p["floor_branches_0"]["kernel"][k] + p["floor_branches_0"]["bias"][k], 0)
            @ p["floor_out"]["kernel"][k]
            + p["floor_out"]["bias"][k]
            for k in range(2)
        ],
        1,
    )  # (4, 2, 3)
    out = model.apply(variables, x)
    np.testing.assert_allclose(out["building_logits"], building, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["floor_logits"][:, 1], floors[:, 1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["floor_logits"][:, 0, :2], floors[:, 0, :2], rtol=1e-5, atol=1e-6)
    assert (np.asarray(out["floor_logits"][:, 0, 2]) < -1e8).all()
    log_floor = [_log_softmax(floors[:, 0, :2]), _log_softmax(floors[:, 1])]
    joint = np.stack(
        [_log_softmax(building)[:, b] + log_floor[b][:, f] for b, f in [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]], 1
    )
    np.testing.assert_allclose(out["logits"], joint, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.exp(out["logits"]).sum(-1), 1.0, rtol=1e-5)  # a distribution over building-floors
    metrics = get_task("building_floor").per_example(out, {"y": jnp.asarray(Y)})
    np.testing.assert_allclose(metrics["loss"], -joint[np.arange(4), Y], rtol=1e-5)


def test_bad_configs_are_clear_errors():
    with pytest.raises(ValueError, match=r"num_classes \(13\) must be the number of building-floors.* = 5"):
        zoo.create_model("building_floor_dnn", floors_per_building=(2, 3))
    with pytest.raises(ValueError, match="heads must be one of"):
        zoo.create_model("building_floor_dnn", heads="flat")


def test_pretrained_encoder_then_both_models_train_on_generated_fingerprints():
    data = load_dataset("wifi_fingerprints", num_examples=200, num_test_examples=100, noise_db=4.0, floor_loss_db=12.0)
    common = {"epochs": 8, "batch_size": 16, "learning_rate": 5e-3, "progress": False, "validation_fraction": 0.0}
    layer = ("autoencoder", {"hidden_sizes": (16,), "activation": "relu", "decoder_activation": "identity"})
    init = stacked_variables(pretrain_layerwise([layer], data, epochs=1, progress=False), {"encoder_0": "encoder_{}"})
    small = {"encoder_sizes": (16,), "hidden_sizes": (32,)}
    dnn = zoo.fit("building_floor_dnn", data, model_overrides=small, initial_variables=init, **common)
    hierarchical = zoo.fit("building_floor_hierarchical", data, model_overrides=small, **common)
    for result in (dnn, hierarchical):
        metrics = result.test_metrics  # chance: 1/3 building, about 1/4 floor
        assert metrics["building_accuracy"] > 0.9 and metrics["floor_accuracy"] > 0.5, metrics
        assert metrics["accuracy"] <= min(metrics["building_accuracy"], metrics["floor_accuracy"])
