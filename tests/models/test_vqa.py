"""VQA models (zoo.models.vqa) and the captioner (zoo.models.captioning): built from
registered parts (the CNN's and LSTM's own variables), what each question encoder can
see (a bag of words ignores word order, the LSTM does not), the question-only model
ignores the image, attention weights, config errors, and one short `zoo.fit` run each
through the engine's two-part inputs and teacher forcing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.data.vqa_scenes import caption_scenes, vqa_scenes

SMALL = {"input_shape": ((16, 16, 3), (5,)), "num_classes": 4, "vocab_size": 11, "embed_dim": 3, "hidden_size": 6}


def _inputs(seed=0, batch=4):
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(batch, 16, 16, 3)).astype(np.float32)
    questions = rng.integers(2, 11, (batch, 5)).astype(np.int32)
    questions[:, 4] = 0  # padding
    return images, questions


def _init(name, **kw):
    model = zoo.create_model(name, **{**SMALL, **kw})
    x = _inputs()
    return model, model.init(jax.random.PRNGKey(0), x), x


def test_parts_are_the_registered_cnn_and_lstm():
    model, variables, (images, questions) = _init("vqa_lstm_cnn")
    cnn = zoo.create_model("lenet5", input_shape=(16, 16, 3))
    lstm = zoo.create_model("lstm", input_shape=(5,), vocab_size=11, embedding_dim=3, hidden_size=6)
    params = variables["params"]
    np.testing.assert_allclose(
        model.apply(variables, images, method=lambda m, x: m.cnn.forward_features(x)),
        cnn.apply({"params": params["cnn"]}, images, method=cnn.forward_features),
    )
    np.testing.assert_allclose(
        model.apply(variables, questions, method=model.encode_question),
        lstm.apply({"params": params["lstm"]}, questions, method=lstm.forward_features),
    )
    # Only the parts' features are used: no head parameters of the CNN or the LSTM.
    assert set(params["cnn"]) == {"conv1", "conv2"} and set(params["lstm"]) == {"embed", "encoder"}


def test_bag_of_words_ignores_word_order_and_the_lstm_does_not():
    images, questions = _inputs()
    swapped = questions.copy()
    swapped[:, [0, 2]] = questions[:, [2, 0]]
    for name, same in (("vqa_bow_cnn", True), ("vqa_lstm_cnn", False)):
        model, variables, _ = _init(name)
        a, b = (model.apply(variables, (images, q)) for q in (questions, swapped))
        assert np.allclose(a, b, atol=1e-6) == same, name
    model, variables, _ = _init("vqa_bow_cnn")
    bag = variables["params"]["bag_of_words"]["embedding"]
    expected = np.tanh(bag[questions].sum(1) - (questions == 0).sum(1)[:, None] * bag[0])  # padding left out
    np.testing.assert_allclose(model.apply(variables, questions, method=model.encode_question), expected, atol=1e-6)


def test_question_only_model_ignores_the_image():
    model, variables, (images, questions) = _init("vqa_question_lstm")
    np.testing.assert_array_equal(
        model.apply(variables, (images, questions)), model.apply(variables, (1.0 - images, questions))
    )
    model, variables, _ = _init("vqa_lstm_cnn")
    assert not np.allclose(model.apply(variables, (images, questions)), model.apply(variables, (1 - images, questions)))


def test_attention_weights_cover_the_feature_map():
    model, variables, x = _init("vqa_attention")
    weights = model.apply(variables, x, method=model.attention_map)
    assert weights.shape == (4, 2, 2)  # LeNet-5's map of a 16x16 image
    np.testing.assert_allclose(weights.sum((1, 2)), 1.0, rtol=1e-5)
    # Any registered CNN with feature maps serves (shapes traced, nothing computed).
    other = zoo.create_model(
        "vqa_attention", **SMALL, image_encoder="resnet20", image_config={"stage_sizes": (1, 1, 1), "width": 4}
    )
    other_variables = jax.eval_shape(other.init, jax.random.PRNGKey(0), x)
    assert jax.eval_shape(lambda v: other.apply(v, x, method=other.attention_map), other_variables).shape == (4, 4, 4)
    plain, plain_variables, _ = _init("vqa_lstm_cnn")
    with pytest.raises(ValueError, match="attention_map needs a model with attention=True"):
        plain.apply(plain_variables, x, method=plain.attention_map)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"input_shape": ((16, 16), (5,))}, r"input_shape must be \(\(H, W, C\), \(T,\)\)"),
        ({"image_encoder": "lstm"}, "must be a registered image CNN"),
        ({"image_encoder": "lenet5x"}, "unknown model 'lenet5x'"),
        ({"image_encoder": "vgg11", "attention": True}, "attention needs a CNN with feature_maps"),
        ({"fusion": "sum"}, "unknown fusion 'sum'"),
        ({"question_encoder": "gru"}, "unknown question encoder 'gru'"),
    ],
)
def test_config_errors_name_the_option(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("vqa_lstm_cnn", **overrides)


def test_inputs_must_be_image_and_question():
    model, variables, (images, questions) = _init("vqa_lstm_cnn")
    with pytest.raises(ValueError, match=r"expects x = \(images, questions\)"):
        model.apply(variables, images)
    with pytest.raises(ValueError, match="4 images but 3 questions"):
        model.apply(variables, (images, questions[:3]))


def test_fit_trains_a_vqa_model_on_two_part_inputs():
    data = vqa_scenes(num_examples=96, num_test_examples=32, size=16)
    result = zoo.fit(
        "vqa_lstm_cnn",
        data,
        epochs=2,
        batch_size=32,
        progress=False,
        model_overrides={"hidden_size": 8, "embed_dim": 4},
    )
    assert result.model.input_shape == ((16, 16, 3), (7,)) and result.model.vocab_size == len(data.vocabulary)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert 0.0 <= result.test_metrics["accuracy"] <= 1.0


def test_captioner_teacher_forcing_beam_and_attention():
    data = caption_scenes(num_examples=64, num_test_examples=8, size=16, max_objects=3)
    result = zoo.fit(
        "captioner_attention",
        data,
        epochs=2,
        batch_size=32,
        progress=False,
        model_overrides={"hidden_size": 8, "embed_dim": 4},
    )
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    model, variables, x = result.model, result.variables, jnp.asarray(data.x_test)
    out = model.apply(variables, x, jnp.asarray(data.y_test))
    assert out["attention"].shape == (8, 15, 4) and model.apply(variables, method=model.feature_grid) == (2, 2)
    valid = data.y_test != 0
    np.testing.assert_allclose(np.asarray(out["attention"]).sum(-1)[valid], 1.0, rtol=1e-5)
    greedy = model.apply(variables, x)["predictions"]
    np.testing.assert_array_equal(model.apply(variables, x, 1, method=model.beam_search)["predictions"], greedy)
