"""Text CNN (Kim 2014): parameter counts, embedding modes, max over time and word
localisation against NumPy, input checks, training on the generated sentiment task, and
word vectors loaded from a file feeding a static model. (The text data it reads is tested
in tests/data/: test_text.py, test_sentiment.py, test_imdb.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import zoo
from zoo import registry
from zoo.data import load_dataset
from zoo.data.sentiment import NEGATIONS, NEGATIVE_WORDS, POSITIVE_WORDS
from zoo.data.text import PAD, Vocabulary, load_word_vectors
from zoo.models.cnn.textcnn import word_importance
from zoo.train.state import create_train_state
from zoo.train.steps import make_train_step
from zoo.tasks import get_task


def _param_count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def _vectors(vocab_size, dim, seed=0):
    return np.random.default_rng(seed).uniform(-0.25, 0.25, (vocab_size, dim)).astype(np.float32)


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------

# Kim's configuration at vocab 1000 x dim 300, widths 3/4/5 x 100 maps, 2 classes, by hand:
KIM_EMBEDDING = 1000 * 300  # 300,000
KIM_CONVS = sum(h * 300 * 100 + 100 for h in (3, 4, 5))  # 90,100 + 120,100 + 150,100 = 360,300
KIM_DENSE = 300 * 2 + 2  # 602


@pytest.mark.parametrize(
    "mode, trained, frozen",
    [
        ("rand", 660_902, 0),
        ("non-static", 660_902, 0),
        ("static", 360_902, 300_000),
        ("multichannel", 660_902, 300_000),
    ],
)
def test_kim_configuration_parameter_count_by_hand(mode, trained, frozen):
    assert KIM_EMBEDDING + KIM_CONVS + KIM_DENSE == 660_902
    vectors = None if mode == "rand" else _vectors(1000, 300)
    model = zoo.create_model("text_cnn", vocab_size=1000, embedding_mode=mode, pretrained_vectors=vectors)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((2, 64), jnp.int32))
    assert _param_count(shapes["params"]) == trained
    assert _param_count(shapes.get("constants", {})) == frozen


def test_static_mode_keeps_vectors_out_of_params_and_out_of_gradients():
    vectors = _vectors(20, 4)
    model = zoo.create_model(
        "text_cnn",
        input_shape=(6,),
        vocab_size=20,
        embedding_dim=4,
        num_filters=2,
        embedding_mode="static",
        pretrained_vectors=vectors,
    )
    x = jnp.arange(2, 14, dtype=jnp.int32).reshape(2, 6)
    variables = model.init(jax.random.PRNGKey(0), x)
    assert "embedding" not in variables["params"]
    np.testing.assert_array_equal(variables["constants"]["static_embedding"], vectors)
    # Even differentiating with respect to every variable, stop_gradient leaves it at zero.
    grads = jax.grad(lambda v: jnp.sum(model.apply(v, x) ** 2))(variables)
    np.testing.assert_array_equal(grads["constants"]["static_embedding"], 0)
    assert float(jnp.abs(grads["params"]["classifier"]["kernel"]).max()) > 0


def test_module_wraps_a_matrix_itself():
    """The module, not a constructor, wraps a plain matrix in the hashable holder, so the
    class built directly equals the registered model."""
    from zoo.models.cnn.textcnn import PretrainedVectors, TextCNN

    vectors = _vectors(20, 4)
    config = dict(input_shape=(6,), vocab_size=20, embedding_dim=4, num_filters=2, embedding_mode="non-static")
    direct = TextCNN(**config, pretrained_vectors=vectors)
    assert isinstance(direct.pretrained_vectors, PretrainedVectors)
    assert hash(direct.pretrained_vectors) == hash(direct.pretrained_vectors)
    x = jnp.arange(2, 14, dtype=jnp.int32).reshape(2, 6)
    registered = zoo.create_model("text_cnn", **config, pretrained_vectors=vectors)
    np.testing.assert_array_equal(
        direct.init(jax.random.PRNGKey(0), x)["params"]["embedding"],
        registered.init(jax.random.PRNGKey(0), x)["params"]["embedding"],
    )
    vectors[0, 0] = 99.0  # the module holds its own copy
    np.testing.assert_array_equal(direct.pretrained_vectors.matrix[0, 0], _vectors(20, 4)[0, 0])


def test_multichannel_structure_and_shared_filters():
    """Each filter is applied to both channels and the results added (Kim): the same
    logits as one channel holding the sum of the two embeddings."""
    vectors = _vectors(25, 5)
    kw = dict(input_shape=(7,), vocab_size=25, embedding_dim=5, filter_widths=(2, 3), num_filters=4, num_classes=3)
    multi = zoo.create_model("text_cnn", embedding_mode="multichannel", pretrained_vectors=vectors, **kw)
    x = jnp.asarray([[3, 4, 5, 6, 0, 0, 0], [7, 8, 9, 10, 11, 12, 13]], jnp.int32)
    variables = multi.init(jax.random.PRNGKey(0), x)
    params = variables["params"]
    assert set(params) == {"embedding", "convs_0", "convs_1", "classifier"}
    assert set(variables["constants"]) == {"static_embedding"}
    assert params["embedding"].shape == variables["constants"]["static_embedding"].shape == (25, 5)
    assert params["convs_0"]["kernel"].shape == (2, 5, 4)  # one kernel per filter, not per channel
    assert params["convs_1"]["kernel"].shape == (3, 5, 4)
    assert params["classifier"]["kernel"].shape == (8, 3)
    logits = multi.apply(variables, x)
    assert logits.shape == (2, 3)
    assert multi.apply(variables, x, method=multi.forward_features).shape == (2, 8)

    trained = params["embedding"] + 0.1  # make the two channels differ
    single = zoo.create_model(
        "text_cnn", embedding_mode="non-static", pretrained_vectors=np.asarray(trained) + vectors, **kw
    )
    single_params = {**params, "embedding": trained + vectors}
    np.testing.assert_allclose(
        multi.apply({"params": {**params, "embedding": trained}, "constants": variables["constants"]}, x),
        single.apply({"params": single_params}, x),
        rtol=1e-5,
        atol=1e-6,
    )


def _numpy_reference(params, ids, widths, target):
    """Kim's forward pass and the word-importance definition, in NumPy."""
    emb = np.asarray(params["embedding"])[ids] * (ids != PAD)[..., None]
    batch, num_tokens = ids.shape
    pooled, scores = [], np.zeros((batch, num_tokens))
    kernel = np.asarray(params["classifier"]["kernel"])
    offset = 0
    for k, h in enumerate(widths):
        w, b = np.asarray(params[f"convs_{k}"]["kernel"]), np.asarray(params[f"convs_{k}"]["bias"])
        positions = num_tokens - h + 1
        maps = np.zeros((batch, positions, w.shape[-1]))
        for i in range(positions):
            maps[:, i] = np.maximum(np.einsum("bjd,jdf->bf", emb[:, i : i + h], w) + b, 0)
        pooled.append(maps.max(axis=1))
        for n in range(batch):
            for f in range(w.shape[-1]):
                start = int(np.argmax(maps[n, :, f]))
                scores[n, start : start + h] += kernel[offset + f, target[n]] * maps[n, start, f] / h
        offset += w.shape[-1]
    features = np.concatenate(pooled, axis=-1)
    logits = features @ kernel + np.asarray(params["classifier"]["bias"])
    return features, logits, scores


def test_max_over_time_and_word_importance_match_numpy():
    widths = (2, 3)
    model = zoo.create_model(
        "text_cnn", input_shape=(6,), vocab_size=9, embedding_dim=3, filter_widths=widths, num_filters=2, num_classes=2
    )
    ids = np.array([[2, 3, 4, 5, 0, 0], [8, 7, 6, 5, 4, 3]], np.int32)
    variables = model.init(jax.random.PRNGKey(3), ids)
    features, logits, scores = _numpy_reference(variables["params"], ids, widths, target=[1, 0])
    np.testing.assert_allclose(
        model.apply(variables, ids, method=model.forward_features), features, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(model.apply(variables, ids), logits, rtol=1e-5, atol=1e-6)
    importance = word_importance(model, variables, ids, target_class=jnp.array([1, 0]))
    assert importance.shape == (2, 6) and importance.dtype == jnp.float32
    np.testing.assert_allclose(importance, scores, rtol=1e-5, atol=1e-6)
    # The scores of a text add up to its logit minus the output bias.
    bias = np.asarray(variables["params"]["classifier"]["bias"])
    np.testing.assert_allclose(
        np.asarray(importance).sum(1), logits[[0, 1], [1, 0]] - bias[[1, 0]], rtol=1e-5, atol=1e-6
    )


def test_padding_embeds_to_zero():
    model = zoo.create_model("text_cnn", input_shape=(5,), vocab_size=6, embedding_dim=2, num_filters=2)
    ids = jnp.asarray([[2, 0, 3, 0, 0]])
    variables = model.init(jax.random.PRNGKey(0), ids)
    vectors = model.apply(variables, ids, method=lambda m, x: m.embed(x))
    np.testing.assert_array_equal(vectors[0, [1, 3, 4]], 0)
    np.testing.assert_array_equal(vectors[0, 0], variables["params"]["embedding"][2])


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"embedding_mode": "dynamic"}, "unknown embedding_mode 'dynamic'"),
        ({"embedding_mode": "static"}, "needs pretrained_vectors"),
        (
            {"embedding_mode": "non-static", "pretrained_vectors": np.zeros((10, 300), np.float32)},
            r"shape \(10, 300\) but the model has vocab_size=20000",
        ),
        ({"pretrained_vectors": np.zeros((20000, 300), np.float32)}, "'rand' trains random vectors"),
        ({"input_shape": (4,)}, "shorter than the widest filter"),
        ({"filter_widths": (3, 0)}, "filter_widths must be positive"),
        ({"dropout_rate": 1.0}, "dropout_rate"),
    ],
)
def test_bad_configs_are_value_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("text_cnn", **overrides)


def test_bad_token_ids_are_value_errors():
    model = zoo.create_model("text_cnn", input_shape=(6,), vocab_size=10, embedding_dim=2, num_filters=2)
    ids = jnp.ones((2, 6), jnp.int32)
    variables = model.init(jax.random.PRNGKey(0), ids)
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 10\).*from 1 to 10"):
        model.apply(variables, ids.at[0, 0].set(10))
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 6\)"):
        model.apply(variables, jnp.ones((2, 7), jnp.int32))
    with pytest.raises(ValueError, match="fractional"):
        model.apply(variables, jnp.full((2, 6), 1.5))
    with pytest.raises(ValueError, match=r"target_class must be in \[0, 2\)"):
        word_importance(model, variables, ids, target_class=2)


def test_adapt_config_takes_vocab_size_from_the_data():
    data_config = {"vocab_size": 57, "not_a_model_key": 1}
    assert registry.adapt_config("text_cnn", (20,), 2, data_config) == {
        "input_shape": (20,),
        "num_classes": 2,
        "vocab_size": 57,
    }
    # Models without the key ignore it: one dataset serves every family.
    assert registry.adapt_config("mlp", (20,), 2, data_config) == {"input_shape": (20,), "num_outputs": 2}


# --------------------------------------------------------------------------------------
# Training on the generated task, and word localisation
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    """Kim's text CNN ("rand", 32-d vectors, widths 3/4/5 x 16 maps) trained 4 epochs by
    zoo.fit on the generated sentiment task (2,000 train / 500 test reviews, 25% negated)."""
    data = load_dataset("sentiment")
    overrides = registry.adapt_config("text_cnn", data.input_shape, data.num_outputs, data.model_config)
    overrides.update(embedding_dim=32, num_filters=16)
    result = zoo.fit(
        "text_cnn",
        data,
        epochs=4,
        batch_size=50,
        learning_rate=1e-2,
        validation_fraction=0.0,
        progress=False,
        model_overrides=overrides,
    )
    return data, result


def test_short_training_on_the_sentiment_task(trained):
    data, result = trained
    assert result.model.vocab_size == len(data.vocabulary) == data.model_config["vocab_size"]
    assert result.test_metrics["accuracy"] >= 0.95
    assert result.history[-1]["train_accuracy"] > result.history[0]["train_accuracy"]


def test_optimizer_step_moves_the_non_static_channel_only(tmp_path):
    """Vectors read from a GloVe-format file into a multichannel model; after one train
    step of the engine (Adam), the static channel (constants) is bit-identical to them
    while the non-static channel (params) moved."""
    vocab = Vocabulary.build([" ".join(f"w{i}" for i in range(28))])  # 30 tokens with PAD, UNK
    rng = np.random.default_rng(0)
    path = tmp_path / "vectors.txt"
    path.write_text(
        "".join(f"w{i} " + " ".join(f"{v:.4f}" for v in rng.normal(0, 0.3, 6)) + "\n" for i in range(0, 28, 2))
    )
    vectors = load_word_vectors(path, vocab, dim=6)
    model = zoo.create_model(
        "text_cnn",
        input_shape=(8,),
        vocab_size=len(vocab),
        embedding_dim=6,
        num_filters=3,
        embedding_mode="multichannel",
        pretrained_vectors=vectors,
    )
    tx = optax.adam(0.1)
    state = create_train_state(model, tx, (8,), seed=0)
    np.testing.assert_array_equal(state.model_state["constants"]["static_embedding"], vectors)
    np.testing.assert_array_equal(state.params["embedding"], vectors)  # both start pre-trained
    batch = {
        "x": np.arange(2, 26, dtype=np.int32).reshape(3, 8),
        "y": np.array([0, 1, 0], np.int32),
        "mask": np.ones(3, np.float32),
    }
    state, _ = make_train_step(model, get_task("classification"), tx)(state, batch)
    np.testing.assert_array_equal(state.model_state["constants"]["static_embedding"], vectors)
    moved = np.abs(np.asarray(state.params["embedding"]) - vectors).max(axis=1)
    # Max-over-time passes gradient only to the tokens of each feature's winning window.
    assert np.count_nonzero(moved[2:26]) >= 8
    np.testing.assert_array_equal(moved[[0, 1, 26, 27, 28, 29]], 0)  # tokens not in the batch


def test_word_importance_ranks_the_sentiment_word_highest(trained):
    data, result = trained
    vocab = data.vocabulary
    sentiment_ids = [vocab.token_id(w) for w in POSITIVE_WORDS + NEGATIVE_WORDS]
    negation_ids = [vocab.token_id(w) for w in NEGATIONS]
    plain = ~np.isin(data.x_test, negation_ids).any(axis=1)  # reviews without a negation
    x = data.x_test[plain]
    scores = np.asarray(word_importance(result.model, result.variables, x, data.y_test[plain]))
    top_token = x[np.arange(len(x)), scores.argmax(axis=1)]
    assert len(x) > 300
    assert np.mean(np.isin(top_token, sentiment_ids)) >= 0.8
    # And nearly always among the two highest-scored tokens of its review.
    sentiment_score = scores[np.isin(x, sentiment_ids)]  # one sentiment word per review
    assert np.mean((scores > sentiment_score[:, None]).sum(axis=1) <= 1) >= 0.95


# --------------------------------------------------------------------------------------
# Word vectors from a file
# --------------------------------------------------------------------------------------


def test_loaded_vectors_feed_a_static_model(tmp_path):
    vocab = Vocabulary.build(["good bad movie"])
    path = tmp_path / "v.txt"
    path.write_text("good 1 0\nbad 0 1\n")
    vectors = load_word_vectors(path, vocab, unknown="zero")
    model = zoo.create_model(
        "text_cnn",
        input_shape=(5,),
        vocab_size=len(vocab),
        embedding_dim=2,
        num_filters=2,
        embedding_mode="static",
        pretrained_vectors=vectors,
    )
    ids = vocab.encode_batch(["good movie", "bad"], 5)
    variables = model.init(jax.random.PRNGKey(0), ids)
    np.testing.assert_array_equal(variables["constants"]["static_embedding"], vectors)
    assert model.apply(variables, ids).shape == (2, 2)
    assert "PretrainedVectors(shape=(5, 2))" in repr(model)  # the run config stays short
