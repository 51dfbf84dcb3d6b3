"""Recurrent classifiers (zoo.models.recurrent): gradients through the scan for every cell
form, input checks, compile size independent of T, attention pooling against NumPy, the
explanations (attention weights, gradient norms through time against the seed's product
formula), and short real training runs (digits rows, generated sentiment, adding problem).
The cells and layers themselves are tested in tests/nn/test_recurrence.py."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import zoo
from zoo.nn import recurrence as R

B, T, I, H = 3, 6, 4, 5


def _x(shape=(B, T, I), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _apply(model, variables, *args, **kwargs):
    """``model.apply`` under jit: one compile instead of op-by-op dispatch (faster here)."""
    return jax.jit(functools.partial(model.apply, **kwargs))(variables, *args)


def _random_params(model, x, seed=1):
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.asarray(x))
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree.unflatten(tree, [0.5 * jax.random.normal(k, l.shape) for k, l in zip(keys, leaves)])


def test_gradients_through_the_scan():
    """check_grads (order 1, reverse mode) through every step function, in one program:
    Elman; LSTM with full peepholes; GRU reset after; GRU reset before with the "take"
    convention and no biases; variable lengths."""
    names = ("rnn", "peephole_lstm", "gru", "gru_kang")
    models = [zoo.create_model(n, input_shape=(3, 2), hidden_size=3, num_classes=2) for n in names]
    x = jnp.asarray(_x((2, 3, 2)))
    variables = [_random_params(m, x, seed=k) for k, m in enumerate(models)]
    lengths = jnp.array([3, 2])
    f = jax.jit(lambda vs, x: [m.apply(v, x, lengths=lengths) for m, v in zip(models, vs)])
    check_grads(f, (variables, x), order=1, modes=["rev"], atol=2e-2, rtol=2e-2)


def test_classifier_reads_digit_images_as_rows_and_checks_shapes():
    model = zoo.create_model("lstm", input_shape=(8, 8, 1), hidden_size=4)
    x = jnp.zeros((2, 8, 8, 1))
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    assert variables["params"]["encoder"]["layers_0"]["cell"]["kernel"].shape == (8 + 4, 16)
    assert _apply(model, variables, x).shape == (2, 10)
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 8, 8, 1\)"):
        _apply(model, variables, jnp.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="update_convention"):
        zoo.create_model("gru", update_convention="sideways")
    with pytest.raises(ValueError, match="peephole"):
        zoo.create_model("peephole_lstm", peephole="round")
    y16 = _apply(model, variables, x.astype(jnp.bfloat16))  # bfloat16 input, float32 weights
    assert y16.shape == (2, 10) and bool(jnp.all(jnp.isfinite(y16)))
    free = zoo.create_model("gru", input_shape=(None, 3), hidden_size=4)  # free time axis
    v = jax.jit(free.init)(jax.random.PRNGKey(0), jnp.zeros((1, 5, 3)))
    assert _apply(free, v, jnp.zeros((2, 11, 3))).shape == (2, 10)


def test_bench_suite_configs_build():
    """zoo.bench.suite's lstm and gru entries (B=64, T=128, I=64, H=256) pass these keys."""
    for name in ("lstm", "gru"):
        model = zoo.create_model(name, input_shape=(128, 64), hidden_size=256, num_classes=10)
        out, _ = jax.eval_shape(
            functools.partial(model.init_with_output, jax.random.PRNGKey(0)),
            jax.ShapeDtypeStruct((64, 128, 64), jnp.float32),
        )
        assert out.shape == (64, 10)


def test_program_size_does_not_grow_with_sequence_length():
    """One scan body whatever T: the jaxprs of the forward and backward pass at T=17 and at
    T=257 differ only in the length itself (T and T-1; no other array dimension is 16 or
    17, 256 or 257)."""
    model = zoo.create_model("lstm", input_shape=(None, 3), hidden_size=5, bidirectional=True, num_classes=2)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((2, 4, 3)))

    def program(t):
        x = jnp.zeros((2, t, 3))
        lengths = jnp.array([t, 1])
        grad = jax.grad(lambda v: jnp.sum(model.apply(v, x, lengths=lengths)))
        text = str(jax.make_jaxpr(grad)(variables))
        return re.sub(rf"\b({t}|{t - 1})\b", "T", text)

    assert program(17) == program(257)


def test_lstm_learns_digits_rows():
    """A short real run of the training engine: digits as 8 steps of 8 pixels."""
    from zoo.data import load_dataset

    result = zoo.fit(
        "lstm",
        load_dataset("digits"),
        epochs=3,
        batch_size=32,
        learning_rate=1e-2,
        model_overrides={"hidden_size": 32},
        progress=False,
    )
    assert result.test_metrics["accuracy"] > 0.8
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


# --------------------------------------------------------------------------------------
# Attention pooling over time (Raffel & Ellis 2015) and the text classifier.
# --------------------------------------------------------------------------------------


def _numpy_params(model, x, seed=1, scale=0.5):
    """Variables drawn from N(0, scale^2) with NumPy (shapes from an abstract init: no
    compilation, and no per-shape compilation of jax.random either)."""
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.asarray(x))
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(scale * rng.normal(size=s.shape), s.dtype), shapes)


def test_attention_pooling_matches_numpy_and_ignores_padding():
    """e_t = v^T tanh(W h_t + b), alpha = softmax over the valid steps, c = sum_t alpha_t h_t;
    lengths come from the padding (id 0 at the end); an all-padding text pools to 0."""
    model = zoo.create_model(
        "attention_lstm",
        input_shape=(6,),
        vocab_size=12,
        embedding_dim=3,
        hidden_size=4,
        attention_size=5,
        num_classes=2,
    )
    ids = np.array([[3, 4, 5, 0, 0, 0], [2, 0, 0, 0, 0, 0], [7, 8, 9, 10, 11, 1], [0] * 6], np.int32)
    variables = _numpy_params(model, ids)
    np.testing.assert_array_equal(R.lengths_from_padding(jnp.asarray(ids)), [3, 1, 6, 0])

    @jax.jit
    def run(v, ids):
        return (
            zoo.explain.attention_weights(model, v, ids),
            model.apply(v, ids, method=model.forward_features),
            jax.grad(lambda v: jnp.sum(model.apply(v, ids)))(v),
        )

    weights, pooled, grads = run(variables, jnp.asarray(ids))
    lengths = np.array([3, 1, 6, 0])
    valid = np.arange(6)[None, :] < lengths[:, None]
    np.testing.assert_allclose(weights.sum(1), [1, 1, 1, 0], rtol=1e-6)
    assert np.all(np.asarray(weights)[~valid] == 0)  # exactly zero on padding
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))  # no NaN from 0/0

    p = jax.tree.map(np.asarray, variables["params"])
    embedded = p["embed"]["embedding"][ids]
    encoder = R.StackedRNN(cell="lstm", hidden_size=4, bidirectional=True)  # alone: checked against torch in tests/nn
    _, hs = jax.jit(encoder.apply)(
        {"params": variables["params"]["encoder"]}, jnp.asarray(embedded), lengths=jnp.asarray(lengths)
    )
    hs = np.asarray(hs, np.float64)
    a = p["attention"]
    e = np.tanh(hs @ a["project"]["kernel"] + a["project"]["bias"]) @ a["score"]["kernel"][:, 0]
    e = np.where(valid, e, -np.inf)
    alpha = np.exp(e - e.max(1, keepdims=True, initial=-1e30, where=valid))
    alpha = alpha / np.maximum(alpha.sum(1, keepdims=True), 1e-30)
    np.testing.assert_allclose(weights, alpha, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(pooled, np.einsum("bt,bth->bh", alpha, hs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pooled[3], 0)


def test_attention_option_errors_name_the_valid_choices():
    with pytest.raises(ValueError, match=r"pooling must be one of \('last', 'attention'\)"):
        zoo.create_model("lstm", pooling="mean")
    model = zoo.create_model("gru", input_shape=(4, 3), hidden_size=2)
    variables = _numpy_params(model, np.zeros((1, 4, 3), np.float32))
    with pytest.raises(ValueError, match="attention weights need pooling='attention'"):
        zoo.explain.attention_weights(model, variables, jnp.zeros((1, 4, 3)))
    text = zoo.create_model("attention_lstm", input_shape=(5,), vocab_size=10, hidden_size=2, embedding_dim=2)
    variables = _numpy_params(text, np.zeros((1, 5), np.int32))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 10\)"):
        text.apply(variables, jnp.array([[1, 2, 10, 0, 0]]))
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 5\)"):
        text.apply(variables, jnp.zeros((1, 6), jnp.int32))
    # The float-feature classifier with attention pools over its valid steps too.
    seq = zoo.create_model("rnn", input_shape=(4, 3), hidden_size=2, pooling="attention")
    variables = _numpy_params(seq, np.zeros((1, 4, 3), np.float32))
    w = zoo.explain.attention_weights(seq, variables, jnp.ones((2, 4, 3)), lengths=jnp.array([4, 2]))
    np.testing.assert_allclose(w.sum(1), 1, rtol=1e-6)
    assert float(jnp.abs(w[1, 2:]).max()) == 0


def test_attention_lstm_learns_sentiment_and_attends_to_the_deciding_words():
    """A short real run on the generated sentiment task; attention concentrates on the
    words that decide the label (the sentiment word, or the negation flipping it): several
    times their share under uniform weights. (Not all of it: the bidirectional states
    around those words also hold the polarity, so attention may read it there — attention
    shows where the pooled evidence was read, not a causal attribution.)"""
    from zoo.data import load_dataset
    from zoo.data.sentiment import NEGATIONS, NEGATIVE_WORDS, POSITIVE_WORDS

    data = load_dataset("sentiment", num_examples=2000, num_test_examples=300)
    result = zoo.fit(
        "attention_lstm",
        data,
        epochs=4,
        batch_size=32,
        learning_rate=1e-2,
        model_overrides={"hidden_size": 16, "embedding_dim": 16},
        progress=False,
    )
    assert result.test_metrics["accuracy"] > 0.95  # chance: 0.5
    weights = np.asarray(zoo.explain.attention_weights(result.model, result.variables, data.x_test))
    deciding = np.isin(data.x_test, [data.vocabulary.token_id(w) for w in POSITIVE_WORDS + NEGATIVE_WORDS + NEGATIONS])
    uniform_share = deciding.sum(1) / (data.x_test != 0).sum(1)  # about 0.15
    assert np.mean((weights * deciding).sum(1)) > 2.5 * np.mean(uniform_share)


# --------------------------------------------------------------------------------------
# Gradient norm through time (kang-lecture4, "Gradient Vanishing/Exploding Problem").
# --------------------------------------------------------------------------------------


def test_gradient_norms_match_the_seed_product_formula():
    """dL/dh_t = dL/dh_(t+1) diag(1 - h_(t+1)^2) U^T, back from dL/dh_T = (softmax - onehot) W_out^T / B
    (the seed's product over steps), for a tiny Elman RNN classifier."""
    Tn, In, Hn, Bn = 5, 2, 3, 2
    model = zoo.create_model("rnn", input_shape=(Tn, In), hidden_size=Hn, num_classes=2)
    x = _x((Bn, Tn, In), seed=4)
    y = np.array([0, 1])
    variables = _numpy_params(model, x, seed=2, scale=0.8)
    norms = zoo.explain.gradient_norms_through_time(model, variables, jnp.asarray(x), jnp.asarray(y))
    assert list(norms) == ["encoder/layers_0"]

    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    K, b = p["encoder"]["layers_0"]["cell"]["kernel"], p["encoder"]["layers_0"]["cell"]["bias"]
    W, U = K[:In], K[In:]
    h, hs = np.zeros((Bn, Hn)), []
    for t in range(Tn):
        h = np.tanh(x[:, t] @ W + h @ U + b)
        hs.append(h)
    logits = h @ p["out"]["kernel"] + p["out"]["bias"]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    g = (probs - np.eye(2)[y]) @ p["out"]["kernel"].T / Bn  # mean loss over the batch
    expected = [np.linalg.norm(g)]
    for t in range(Tn - 1, 0, -1):
        g = (g * (1 - hs[t] ** 2)) @ U.T
        expected.append(np.linalg.norm(g))
    np.testing.assert_allclose(norms["encoder/layers_0"], expected[::-1], rtol=1e-4)


def test_elman_gradient_vanishes_much_faster_than_lstm():
    """Over 50 steps ||dL/dh_1|| / ||dL/dh_50|| falls to ~1e-13 for an Elman RNN and stays
    ~1e-5 for an LSTM whose forget gate starts open (forget_bias=1): the cell state's
    additive path carries the gradient (fixed seeds and PyTorch's default init otherwise)."""
    Tn = 50
    x = jnp.asarray(_x((16, Tn, 4)))
    y = jnp.asarray(np.arange(16) % 2)
    decay = {}
    for name, extra in (("rnn", {}), ("lstm", {"forget_bias": 1.0})):
        model = zoo.create_model(name, input_shape=(Tn, 4), hidden_size=32, num_classes=2, **extra)
        variables = jax.jit(model.init)(jax.random.PRNGKey(0), x)
        norms = np.asarray(zoo.explain.gradient_norms_through_time(model, variables, x, y)["encoder/layers_0"])
        assert np.all(np.isfinite(norms)) and norms[-1] > 0
        decay[name] = norms[0] / norms[-1]
    assert decay["rnn"] < 1e-10
    assert decay["lstm"] > 1e-7
    assert decay["lstm"] / decay["rnn"] > 1e4


# --------------------------------------------------------------------------------------
# The adding problem (Hochreiter & Schmidhuber 1997).
# --------------------------------------------------------------------------------------


def test_adding_problem_data_and_lstm_regression_through_the_engine():
    from zoo.data import load_dataset

    data = load_dataset("adding_problem", length=12, num_examples=256, num_test_examples=64, seed=3)
    x, y = data.x_train, data.y_train
    assert x.shape == (256, 12, 2) and y.shape == (256, 1) and data.task == "regression"
    markers = x[..., 1]
    assert np.all(markers.sum(1) == 2) and np.all(markers[:, :6].sum(1) == 1)  # one per half
    np.testing.assert_allclose(y[:, 0], (x[..., 0] * markers).sum(1), rtol=1e-6)
    assert 0 <= x[..., 0].min() and x[..., 0].max() < 1
    np.testing.assert_array_equal(
        load_dataset("adding_problem", length=12, num_examples=256, num_test_examples=64, seed=3).x_test, data.x_test
    )
    with pytest.raises(ValueError, match="length"):
        load_dataset("adding_problem", length=1)
    # The registered LSTM classifier serves regression with one output (the engine adapts
    # num_classes to the target width); a short run lowers the loss.
    result = zoo.fit(
        "lstm", data, epochs=3, batch_size=32, learning_rate=1e-2, model_overrides={"hidden_size": 8}, progress=False
    )
    assert result.model.num_classes == 1 and result.task.name == "regression"
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert np.isfinite(result.test_metrics["mse"])
