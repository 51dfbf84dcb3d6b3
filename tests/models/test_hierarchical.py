"""Hierarchical auxiliary learning (zoo.models.hierarchical): the seed's superclass table,
the HAL forward pass and loss against NumPy, backbones by name, training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.models.hierarchical import SUPERCLASS_CASES, coarse_categories, superclass_of
from zoo.tasks import get_task

# surf2019-cha-rnn-hierarchical-b, "Hierarchical Auxiliary Learning", as printed (the
# CIFAR-10 Case3 row's stray comma "{2, 3, 4, ,5, 6, 7}" read as the six animals).
SEED_TABLE = {
    ("mnist", "case1"): [{5, 6, 7, 8, 9}, {0, 1, 2, 3, 4}],
    ("mnist", "case2"): [{1, 3, 5, 7, 9}, {0, 2, 4, 6, 8}],
    ("mnist", "case3"): [{2, 3, 5, 7}, {0, 1, 4, 6, 8, 9}],
    ("mnist", "case4"): [{0, 6, 8, 9}, {2, 3, 5}, {1, 4, 7}],
    ("cifar10", "case1"): [{5, 6, 7, 8, 9}, {0, 1, 2, 3, 4}],
    ("cifar10", "case2"): [{1, 3, 5, 7, 9}, {0, 2, 4, 6, 8}],
    ("cifar10", "case3"): [{2, 3, 4, 5, 6, 7}, {0, 1, 8, 9}],
    ("cifar10", "case4"): [{1, 9}, {3, 5}, {4, 7}, {0, 8}, {2, 6}],
}


@pytest.mark.parametrize("table, case", sorted(SEED_TABLE))
def test_superclass_tables_are_the_seeds(table, case):
    mapping = superclass_of(table, case)
    groups = [set(np.flatnonzero(mapping == g).tolist()) for g in range(mapping.max() + 1)]
    assert groups == SEED_TABLE[table, case]
    for alias in ("svhn", "digits"):  # the seed's MNIST/SVHN row serves digits too
        if table == "mnist":
            np.testing.assert_array_equal(superclass_of(alias, case), mapping)


def test_every_table_puts_each_class_in_one_superclass():
    for table, cases in SUPERCLASS_CASES.items():
        for case in cases:
            assert sorted(np.unique(superclass_of(table, case)).tolist()) == list(range(len(cases[case])))


def test_bad_tables_and_cases_are_clear_errors():
    with pytest.raises(ValueError, match="has no case 'case9'; cases: \\['case1'"):
        superclass_of("mnist", "case9")
    with pytest.raises(ValueError, match="no superclass table for 'imagenet'"):
        superclass_of("imagenet", "case1")
    with pytest.raises(ValueError, match=r"classes \[10, 11\] have no superclass"):
        superclass_of("mnist", "case1", num_classes=12)
    with pytest.raises(ValueError, match="fusion must be"):
        zoo.create_model("hal", fusion="sum")


def _tiny(**overrides):
    model = zoo.create_model("hal", input_shape=(4,), backbone_config=(("hidden_sizes", (6,)),), **overrides)
    x = jax.random.uniform(jax.random.PRNGKey(0), (5, 4))
    return model, model.init(jax.random.PRNGKey(1), x), x


@pytest.mark.parametrize("fusion", ["softmax", "logits"])
def test_forward_and_loss_equal_numpy(fusion):
    model, variables, x = _tiny(fusion=fusion, aux_weight=0.7, case="case4")
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    xn = np.asarray(x, np.float64)
    h = np.maximum(xn @ p["features"]["hidden_0"]["kernel"] + p["features"]["hidden_0"]["bias"], 0)
    aux = h @ p["aux"]["kernel"] + p["aux"]["bias"]
    scores = np.exp(aux) / np.exp(aux).sum(-1, keepdims=True) if fusion == "softmax" else aux
    logits = np.concatenate([h, scores], -1) @ p["classifier"]["kernel"] + p["classifier"]["bias"]
    out = model.apply(variables, x)
    np.testing.assert_allclose(out["logits"], logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["aux_logits"], aux, rtol=1e-5, atol=1e-6)
    y = np.array([0, 1, 4, 7, 9])
    metrics = get_task("hierarchical_classification").per_example(out, {"y": jnp.asarray(y)})

    def ce(z, t):
        z = z - z.max(-1, keepdims=True)
        return np.log(np.exp(z).sum(-1)) - z[np.arange(len(t)), t]

    coarse = superclass_of("digits", "case4")[y]
    np.testing.assert_allclose(metrics["loss"], ce(logits, y) + 0.7 * ce(aux, coarse), rtol=1e-5)
    np.testing.assert_allclose(metrics["superclass_accuracy"], (aux.argmax(-1) == coarse).astype(float))


def test_backbones_by_name_give_their_features_to_the_heads():
    for backbone, shape, table, case, superclasses in [
        ("resnet20", (32, 32, 3), "cifar10", "case4", 5),
        ("lenet5", (28, 28, 1), "mnist", "case3", 2),
    ]:
        model = zoo.create_model("hal", backbone=backbone, input_shape=shape, superclasses=table, case=case)
        x = jax.ShapeDtypeStruct((2, *shape), jnp.float32)
        variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
        out = jax.eval_shape(model.apply, variables, x)
        assert out["logits"].shape == (2, 10) and out["aux_logits"].shape == (2, superclasses)
        features = jax.eval_shape(lambda v, x: model.apply(v, x, method=model.forward_features), variables, x)
        assert variables["params"]["classifier"]["kernel"].shape == (features.shape[-1] + superclasses, 10)


def test_hal_trains_on_digits_and_reports_both_heads():
    result = zoo.fit("hal", "digits", epochs=3, progress=False)
    metrics = result.test_metrics
    assert metrics["accuracy"] > 0.85 and metrics["superclass_accuracy"] > 0.85
    assert metrics["loss"] == pytest.approx(metrics["fine_loss"] + metrics["superclass_loss"], rel=1e-5)
    with pytest.raises(ValueError, match="covers classes 0 to 9, but the model has 1 classes"):
        zoo.fit("hal", "diabetes", epochs=1, progress=False)


def test_hdcnn_averages_the_fine_classifiers_by_the_coarse_probabilities():
    """Yan et al.: p(j) = sum_k B_k p_k(j); the consistency term 0.5 * lambda * sum_k
    (t_k - mean_i B_ik)^2 with t_k the share of classes in superclass k."""
    model = zoo.create_model("hdcnn", input_shape=(4,), backbone_config=(("hidden_sizes", (6,)),), case="case4")
    x = jax.random.uniform(jax.random.PRNGKey(0), (5, 4))
    variables = model.init(jax.random.PRNGKey(1), x)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    h = np.maximum(
        np.asarray(x, np.float64) @ p["features"]["hidden_0"]["kernel"] + p["features"]["hidden_0"]["bias"], 0
    )

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    b = softmax(h @ p["coarse"]["kernel"] + p["coarse"]["bias"])  # (5, 3)
    fine = softmax((h @ p["fine"]["kernel"] + p["fine"]["bias"]).reshape(5, 3, 10))
    prob = np.einsum("bk,bkj->bj", b, fine)
    out = model.apply(variables, x)
    np.testing.assert_allclose(np.exp(out["logits"]), prob, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.exp(out["logits"]).sum(-1), 1.0, rtol=1e-5)
    share = np.array([4, 3, 3]) / 10  # case4: circle {0,6,8,9}, curve {2,3,5}, straight {1,4,7}
    np.testing.assert_allclose(out["penalties"]["consistency"], 0.5 * np.sum((share - b.mean(0)) ** 2), rtol=1e-5)
    metrics = get_task("hierarchical_classification").per_example(out, {"y": jnp.arange(5)})
    np.testing.assert_allclose(
        metrics["loss"], metrics["fine_loss"] + metrics["superclass_loss"] + metrics["consistency"], rtol=1e-6
    )


def test_hdcnn_trains_on_digits():
    result = zoo.fit("hdcnn", "digits", epochs=3, progress=False)
    assert result.test_metrics["accuracy"] > 0.85 and result.test_metrics["superclass_accuracy"] > 0.85


def test_spectral_clustering_of_a_confusion_matrix_recovers_its_blocks():
    """HD-CNN's coarse categories: classes confused with each other (blocks {0, 4, 7},
    {1, 2, 9}, {3, 5, 6, 8}, rows and columns interleaved) end in one superclass; the
    groups are numbered by their smallest class, and hdcnn takes the mapping."""
    blocks = [(0, 4, 7), (1, 2, 9), (3, 5, 6, 8)]
    rng = np.random.default_rng(0)
    confusion = rng.integers(0, 3, (10, 10)).astype(float)  # stray confusions
    for block in blocks:
        confusion[np.ix_(block, block)] += rng.integers(20, 40, (len(block), len(block)))
    confusion[np.arange(10), np.arange(10)] += 300  # mostly right
    mapping = coarse_categories(confusion, 3)
    assert [set(np.flatnonzero(mapping == g).tolist()) for g in range(3)] == [set(b) for b in blocks]
    model = zoo.create_model(
        "hdcnn", input_shape=(4,), backbone_config=(("hidden_sizes", (6,)),), superclass_map=tuple(mapping)
    )
    x = jnp.ones((2, 4))
    out = model.apply(model.init(jax.random.PRNGKey(0), x), x)
    assert out["aux_logits"].shape == (2, 3)
    np.testing.assert_array_equal(out["superclass_of"], mapping)
    with pytest.raises(ValueError, match="num_groups must be in"):
        coarse_categories(confusion, 10)
    with pytest.raises(ValueError, match="superclass_map must give each of the 10 classes"):
        zoo.create_model("hdcnn", superclass_map=(0, 2))


def test_hal_trains_a_lenet5_backbone_through_its_features():
    """HAL on a CNN: LeNet-5's forward_features (its 16 x 5 x 5 feature maps, flattened)
    feed the superclass head and the classifier; digits at 28x28, 600 examples, 3 epochs."""
    from zoo.experiments.hal import train_subset

    data = train_subset(zoo.data.load_dataset("digits", image_size=28), 600)
    overrides = {"backbone": "lenet5", "case": "case4", "backbone_config": (("conv_impl", "xla"),)}
    result = zoo.fit(
        "hal", data, model_overrides=overrides, epochs=3, learning_rate=3e-3, validation_fraction=0.0, progress=False
    )
    assert result.variables["params"]["classifier"]["kernel"].shape == (400 + 3, 10)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.test_metrics["accuracy"] > 0.5 and result.test_metrics["superclass_accuracy"] > 0.6
