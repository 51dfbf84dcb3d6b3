"""Recurrent cells and layers: PyTorch parity (LSTM, GRU, Elman; bidirectional, stacked,
packed variable-length batches), the seeds' peephole and GRU forms against NumPy loops of
their equations, masking, gradients through the scan, compile size independent of T, and
a short real training run on digits rows."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require_module
from jax.test_util import check_grads

import zoo
from zoo.models import recurrent as R

B, T, I, H = 3, 6, 4, 5
LENGTHS = np.array([6, 2, 4])


def _x(shape=(B, T, I), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _apply(model, variables, *args, **kwargs):
    """``model.apply`` under jit: one compile instead of op-by-op dispatch (faster here)."""
    return jax.jit(functools.partial(model.apply, **kwargs))(variables, *args)


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


# --------------------------------------------------------------------------------------
# PyTorch parity.
# --------------------------------------------------------------------------------------


def _torch_variables(module, kind, num_layers, bidirectional):
    def direction(layer, suffix):
        get = lambda n: getattr(module, f"{n}_l{layer}{suffix}").detach().numpy()
        return {"cell": R.from_torch(kind, get("weight_ih"), get("weight_hh"), get("bias_ih"),
                                     get("bias_hh"))}

    tree = {}
    for layer in range(num_layers):
        tree[f"layers_{layer}"] = (
            {"forward_rnn": direction(layer, ""), "backward_rnn": direction(layer, "_reverse")}
            if bidirectional else direction(layer, ""))
    return {"params": jax.tree.map(jnp.asarray, tree)}


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("num_layers,bidirectional,variable_lengths",
                         [(1, False, False), (2, True, True)])
def test_matches_torch(kind, num_layers, bidirectional, variable_lengths):
    torch = require_module("torch")
    torch.manual_seed(0)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
    ref = cls(I, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    x = _x()
    lengths = LENGTHS if variable_lengths else np.full(B, T)
    with torch.no_grad():
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            torch.from_numpy(x), torch.from_numpy(lengths), batch_first=True, enforce_sorted=False)
        out, state = ref(packed)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    h_n, c_n = state if kind == "lstm" else (state, None)

    model = R.StackedRNN(cell=kind, hidden_size=H, num_layers=num_layers, bidirectional=bidirectional)
    variables = _torch_variables(ref, kind, num_layers, bidirectional)
    carries, ys = _apply(model, variables, jnp.asarray(x),
                              lengths=jnp.asarray(lengths) if variable_lengths else None)
    np.testing.assert_allclose(ys, out.numpy(), rtol=1e-5, atol=1e-5)
    directions = 2 if bidirectional else 1
    for layer, carry in enumerate(carries):
        for d, c in enumerate(carry if bidirectional else (carry,)):
            k = layer * directions + d
            np.testing.assert_allclose(R.carry_output(c), h_n[k].numpy(), rtol=1e-5, atol=1e-5)
            if kind == "lstm":
                np.testing.assert_allclose(c[0], c_n[k].numpy(), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------
# The seeds' forms against NumPy loops of their equations.
# --------------------------------------------------------------------------------------


def _random_params(model, x, seed=1):
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.asarray(x))
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree.unflatten(tree, [0.5 * jax.random.normal(k, l.shape) for k, l in zip(keys, leaves)])


@pytest.mark.parametrize("peephole", ["full", "diagonal"])
def test_peephole_lstm_matches_numpy_seed_equations(peephole):
    """surf2019 "LSTM with Peephole Connection": f, i see C_(t-1), o sees C_t."""
    x = _x()
    model = R.RNN(R.LSTMCell(hidden_size=H, peephole=peephole))
    variables = _random_params(model, x)
    (c_out, h_out), ys = _apply(model, variables, jnp.asarray(x))

    w = jax.tree.map(np.asarray, variables["params"]["cell"])
    W, U, b = w["kernel"][:I], w["kernel"][I:], w["bias"]
    peep = (lambda c, p: c @ p) if peephole == "full" else (lambda c, p: c * p)
    c = h = np.zeros((B, H), np.float32)
    for t in range(T):
        pre_i, pre_f, pre_a, pre_o = np.split(x[:, t] @ W + h @ U + b, 4, axis=1)  # (i, f, a, o)
        i = _sigmoid(pre_i + peep(c, w["peephole_i"]))
        f = _sigmoid(pre_f + peep(c, w["peephole_f"]))
        a = np.tanh(pre_a)
        c = a * i + f * c
        o = _sigmoid(pre_o + peep(c, w["peephole_o"]))
        h = np.tanh(c) * o
        np.testing.assert_allclose(ys[:, t], h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c_out, c, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h_out, h, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("form", ["gru_seed", "gru_kang"])
def test_seed_gru_forms_match_numpy(form):
    """surf2019: C_t = (1-z) a + z C_(t-1); kang-lecture4 (no biases): h_t = (1-z) h + z h~;
    both with the reset gate before the recurrent product."""
    x = _x()
    spec = zoo.registry.get_spec(form)
    model = R.RNN(R.GRUCell(hidden_size=H, reset_after=False,
                            update_convention=spec.config["update_convention"],
                            use_bias=spec.config["use_bias"]))
    variables = _random_params(model, x)
    w = jax.tree.map(np.asarray, variables["params"]["cell"])
    assert ("bias" in w) == (form == "gru_seed")
    W_rz, U_rz = w["kernel"][:I], w["kernel"][I:]
    W_a, U_a = w["candidate_kernel"][:I], w["candidate_kernel"][I:]
    b_rz, b_a = w.get("bias", np.zeros(2 * H)), w.get("candidate_bias", np.zeros(H))
    h = np.zeros((B, H), np.float32)
    _, ys = _apply(model, variables, jnp.asarray(x))
    for t in range(T):
        rz = _sigmoid(x[:, t] @ W_rz + h @ U_rz + b_rz)
        r, z = rz[:, :H], rz[:, H:]
        a = np.tanh(x[:, t] @ W_a + (r * h) @ U_a + b_a)
        h = (1 - z) * a + z * h if form == "gru_seed" else (1 - z) * h + z * a
        np.testing.assert_allclose(ys[:, t], h, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------
# Layer semantics.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
def test_lengths_freeze_state_zero_outputs_and_match_truncated_runs(reverse):
    x = _x()
    model = R.RNN(R.LSTMCell(hidden_size=H), reverse=reverse)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.asarray(x))
    (c, h), ys = _apply(model, variables, jnp.asarray(x), lengths=jnp.asarray(LENGTHS))
    for b, n in enumerate(LENGTHS):
        (c_b, h_b), ys_b = _apply(model, variables, jnp.asarray(x[b:b + 1, :n]))
        np.testing.assert_allclose(ys[b, :n], ys_b[0], rtol=1e-5, atol=1e-6)
        assert np.all(np.asarray(ys[b, n:]) == 0)
        np.testing.assert_allclose(h[b], h_b[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c[b], c_b[0], rtol=1e-5, atol=1e-6)
    # Without return_sequences the layer gives the last valid output.
    last = R.RNN(R.LSTMCell(hidden_size=H), return_sequences=False, reverse=reverse)
    _, y_last = _apply(last, variables, jnp.asarray(x), lengths=jnp.asarray(LENGTHS))
    expected = ys[:, 0] if reverse else ys[np.arange(B), LENGTHS - 1]
    np.testing.assert_allclose(y_last, expected, rtol=1e-6)


def test_initial_carry_continues_a_sequence():
    x = jnp.asarray(_x())
    model = R.RNN(R.GRUCell(hidden_size=H))
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    carry, ys = _apply(model, variables, x)
    mid, ys1 = _apply(model, variables, x[:, :3])
    end, ys2 = _apply(model, variables, x[:, 3:], mid)
    np.testing.assert_allclose(jnp.concatenate([ys1, ys2], 1), ys, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(end, carry, rtol=1e-5, atol=1e-6)


def test_bidirectional_sum_and_dropout_between_layers():
    x = jnp.asarray(_x())
    concat = R.StackedRNN(cell="gru", hidden_size=H, bidirectional=True)
    variables = jax.jit(concat.init)(jax.random.PRNGKey(0), x)
    _, y_cat = _apply(concat, variables, x)
    _, y_sum = _apply(R.StackedRNN(cell="gru", hidden_size=H, bidirectional=True, merge="sum"), variables, x)
    np.testing.assert_allclose(y_sum, y_cat[..., :H] + y_cat[..., H:], rtol=1e-6)

    stacked = R.StackedRNN(cell="rnn", hidden_size=H, num_layers=2, dropout=0.5)
    variables = jax.jit(stacked.init)(jax.random.PRNGKey(0), x)
    eval_1, eval_2 = (_apply(stacked, variables, x)[1] for _ in range(2))
    np.testing.assert_array_equal(eval_1, eval_2)
    train = [_apply(stacked, variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(k)})[1]
             for k in (1, 2)]
    assert not np.allclose(train[0], train[1]) and not np.allclose(train[0], eval_1)


def test_remat_gives_the_same_values_and_gradients():
    x = jnp.asarray(_x())
    plain = R.StackedRNN(cell="lstm", hidden_size=H, return_sequences=False)
    remat = R.StackedRNN(cell="lstm", hidden_size=H, return_sequences=False, remat=True)
    variables = jax.jit(plain.init)(jax.random.PRNGKey(0), x)
    loss = lambda m: lambda v: jnp.sum(_apply(m, v, x)[1] ** 2)
    np.testing.assert_allclose(loss(remat)(variables), loss(plain)(variables), rtol=1e-6)
    g_plain, g_remat = jax.grad(loss(plain))(variables), jax.grad(loss(remat))(variables)
    for a, b in zip(jax.tree.leaves(g_plain), jax.tree.leaves(g_remat)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


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
        out, _ = jax.eval_shape(functools.partial(model.init_with_output, jax.random.PRNGKey(0)),
                                jax.ShapeDtypeStruct((64, 128, 64), jnp.float32))
        assert out.shape == (64, 10)


def test_program_size_does_not_grow_with_sequence_length():
    """One scan body whatever T: the jaxprs of the forward and backward pass at T=17 and at
    T=257 differ only in the length itself (T and T-1; no other array dimension is 16 or
    17, 256 or 257)."""
    model = zoo.create_model("lstm", input_shape=(None, 3), hidden_size=5, bidirectional=True,
                             num_classes=2)
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
    result = zoo.fit("lstm", load_dataset("digits"), epochs=3, batch_size=32, learning_rate=1e-2,
                     model_overrides={"hidden_size": 32}, progress=False)
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
    model = zoo.create_model("attention_lstm", input_shape=(6,), vocab_size=12, embedding_dim=3,
                             hidden_size=4, attention_size=5, num_classes=2)
    ids = np.array([[3, 4, 5, 0, 0, 0], [2, 0, 0, 0, 0, 0], [7, 8, 9, 10, 11, 1], [0] * 6], np.int32)
    variables = _numpy_params(model, ids)
    np.testing.assert_array_equal(R.lengths_from_padding(jnp.asarray(ids)), [3, 1, 6, 0])

    @jax.jit
    def run(v, ids):
        return (R.attention_weights(model, v, ids), model.apply(v, ids, method=model.forward_features),
                jax.grad(lambda v: jnp.sum(model.apply(v, ids)))(v))

    weights, pooled, grads = run(variables, jnp.asarray(ids))
    lengths = np.array([3, 1, 6, 0])
    valid = np.arange(6)[None, :] < lengths[:, None]
    np.testing.assert_allclose(weights.sum(1), [1, 1, 1, 0], rtol=1e-6)
    assert np.all(np.asarray(weights)[~valid] == 0)  # exactly zero on padding
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))  # no NaN from 0/0

    p = jax.tree.map(np.asarray, variables["params"])
    embedded = p["embed"]["embedding"][ids]
    encoder = R.StackedRNN(cell="lstm", hidden_size=4, bidirectional=True)  # alone: checked against torch above
    _, hs = jax.jit(encoder.apply)({"params": variables["params"]["encoder"]}, jnp.asarray(embedded),
                                   lengths=jnp.asarray(lengths))
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
    assert zoo.explain.attention_weights is R.attention_weights  # re-exported beside word_importance
    assert zoo.explain.gradient_norms_through_time is R.gradient_norms_through_time
    with pytest.raises(ValueError, match=r"pooling must be one of \('last', 'attention'\)"):
        zoo.create_model("lstm", pooling="mean")
    model = zoo.create_model("gru", input_shape=(4, 3), hidden_size=2)
    variables = _numpy_params(model, np.zeros((1, 4, 3), np.float32))
    with pytest.raises(ValueError, match="attention weights need pooling='attention'"):
        R.attention_weights(model, variables, jnp.zeros((1, 4, 3)))
    text = zoo.create_model("attention_lstm", input_shape=(5,), vocab_size=10, hidden_size=2, embedding_dim=2)
    variables = _numpy_params(text, np.zeros((1, 5), np.int32))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 10\)"):
        text.apply(variables, jnp.array([[1, 2, 10, 0, 0]]))
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 5\)"):
        text.apply(variables, jnp.zeros((1, 6), jnp.int32))
    # The float-feature classifier with attention pools over its valid steps too.
    seq = zoo.create_model("rnn", input_shape=(4, 3), hidden_size=2, pooling="attention")
    variables = _numpy_params(seq, np.zeros((1, 4, 3), np.float32))
    w = R.attention_weights(seq, variables, jnp.ones((2, 4, 3)), lengths=jnp.array([4, 2]))
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
    result = zoo.fit("attention_lstm", data, epochs=4, batch_size=32, learning_rate=1e-2,
                     model_overrides={"hidden_size": 16, "embedding_dim": 16}, progress=False)
    assert result.test_metrics["accuracy"] > 0.95  # chance: 0.5
    weights = np.asarray(R.attention_weights(result.model, result.variables, data.x_test))
    deciding = np.isin(data.x_test, [data.vocabulary.token_id(w)
                                     for w in POSITIVE_WORDS + NEGATIVE_WORDS + NEGATIONS])
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
    norms = R.gradient_norms_through_time(model, variables, jnp.asarray(x), jnp.asarray(y))
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
        norms = np.asarray(R.gradient_norms_through_time(model, variables, x, y)["encoder/layers_0"])
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
    np.testing.assert_array_equal(load_dataset("adding_problem", length=12, num_examples=256,
                                               num_test_examples=64, seed=3).x_test, data.x_test)
    with pytest.raises(ValueError, match="length"):
        load_dataset("adding_problem", length=1)
    # The registered LSTM classifier serves regression with one output (the engine adapts
    # num_classes to the target width); a short run lowers the loss.
    result = zoo.fit("lstm", data, epochs=3, batch_size=32, learning_rate=1e-2,
                     model_overrides={"hidden_size": 8}, progress=False)
    assert result.model.num_classes == 1 and result.task.name == "regression"
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert np.isfinite(result.test_metrics["mse"])
