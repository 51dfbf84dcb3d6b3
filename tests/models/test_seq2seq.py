"""Sequence to sequence: attention scores against NumPy, masking, teacher forcing equal to
the decoder run step by step, greedy decoding against a Python loop of the same decoder,
program size independent of the lengths, gradients, the sequence_to_sequence task's
metrics, the generated tasks, BLEU golden values, config errors, and short real runs of
the training engine (reverse with attention, the seed's long word)."""

import functools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require_module
from jax.test_util import check_grads

import zoo
from zoo import metrics
from zoo.data import Dataset, load_dataset
from zoo.data import seq2seq_tasks as D
from zoo.models import seq2seq as S
from zoo.tasks import get_task

B, SRC, DQ, DK, A = 3, 5, 4, 6, 7
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0]], bool)


def _random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _softmax_masked(scores, mask):
    e = np.where(mask, np.exp(scores - np.where(mask, scores, -np.inf).max(-1, keepdims=True)), 0.0)
    return e / e.sum(-1, keepdims=True)


# --------------------------------------------------------------------------------------
# Attention against NumPy references.
# --------------------------------------------------------------------------------------


def _numpy_scores(score, w, q, memory):
    """The papers' scores, one (query, source position) at a time, column-vector algebra
    written with Flax's (in, out) kernels: W x is x @ W."""
    out = np.zeros(memory.shape[:2], np.float32)
    for b in range(memory.shape[0]):
        for s in range(memory.shape[1]):
            h_t, h_s = q[b], memory[b, s]
            if score == "dot":  # Luong: h_t^T h_s
                out[b, s] = h_t @ h_s
            elif score == "general":  # Luong: h_t^T W_a h_s, W_a (Dq, Dk)
                out[b, s] = h_t @ w["W_a"] @ h_s
            elif score == "concat":  # Luong (paper): v^T tanh(W_a [h_t; h_s])
                out[b, s] = w["v"] @ np.tanh(np.concatenate([h_t, h_s]) @ w["W_a"])
            else:  # Bahdanau: v^T tanh(W_1 h_s + W_2 s_(t-1))
                out[b, s] = w["v"] @ np.tanh(h_s @ w["W_1"] + h_t @ w["W_2"])
    return out


@pytest.mark.parametrize("score", S.SCORES)
def test_attention_matches_numpy_masks_padding_and_rows_sum_to_one(score):
    dq = DK if score == "dot" else DQ
    memory, q = _random((B, SRC, DK), 0), _random((B, dq), 1)
    module = S.Attention(score=score, units=A)
    variables = module.init(jax.random.PRNGKey(0), memory, MASK, dq)
    attend = module.apply(variables, memory, MASK, dq)
    context, weights = attend(jnp.asarray(q))
    w = jax.tree.map(np.asarray, variables.get("params", {}))
    expected = _softmax_masked(_numpy_scores(score, w, q, memory), MASK)
    np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(weights)[~MASK] == 0.0)  # padded source positions: exactly zero
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(context, np.einsum("bs,bsd->bd", expected, memory), rtol=1e-5, atol=1e-6)


def test_seed_luong_concat_score_is_the_papers_not_the_slides():
    """kang-lecture4 writes the concat score as v^T tanh(W_c [c_t; h_t]): circular, since c_t
    is the attention-weighted sum these scores produce. Luong et al. (2015, eq. 8) score
    v^T tanh(W_a [h_t; h_s]): W_a reads the decoder state and one source state (Dq + Dk rows),
    and the score of position s changes with h_s alone."""
    memory, q = _random((1, SRC, DK), 0), _random((1, DQ), 1)
    mask = np.ones((1, SRC), bool)
    module = S.Attention(score="concat", units=A)
    variables = module.init(jax.random.PRNGKey(0), memory, mask, DQ)
    assert variables["params"]["W_a"].shape == (DQ + DK, A)
    w = variables["params"]
    keys = S.project_keys("concat", w, jnp.asarray(memory))
    scores = S.attention_scores("concat", w, jnp.asarray(q), keys)
    moved = memory.copy()
    moved[0, 2] += 1.0
    scores2 = S.attention_scores("concat", w, jnp.asarray(q), S.project_keys("concat", w, jnp.asarray(moved)))
    changed = np.abs(np.asarray(scores2 - scores))[0] > 1e-7
    assert changed.tolist() == [False, False, True, False, False]


# --------------------------------------------------------------------------------------
# The decoder: teacher forcing, greedy decoding, program size, gradients.
# --------------------------------------------------------------------------------------

V, T_IN, T_OUT = 6, 5, 6


def _model(attention, **kw):
    config = dict(
        input_shape=(T_IN,),
        vocab_size=V,
        output_length=T_OUT,
        embed_dim=3,
        hidden_size=4,
        num_layers=2,
        bidirectional=True,
        attention=attention,
    )
    config.update(kw)
    return S.Seq2Seq(**config)


def _tokens(seed=0, shape=(B, T_IN), lengths=(5, 2, 4)):
    rng = np.random.default_rng(seed)
    x = rng.integers(4, V, shape).astype(np.int32)
    if lengths is not None:
        x[np.arange(shape[1])[None, :] >= np.asarray(lengths)[:, None]] = 0
    return x


def _target(seed=1):
    y = np.random.default_rng(seed).integers(4, V, (B, T_OUT)).astype(np.int32)
    y[0, 3:], y[0, 3] = 0, D.EOS
    y[1, -1] = D.EOS
    return y


def _step_by_step(module, x, y):
    """Inside the bound model: the decoder's step called once per time step in a Python
    loop (unrolled under jit: one compile instead of op-by-op dispatch) — teacher-forced,
    and greedy with the end-token rule written out — plus the model's own scanned outputs."""
    features = module.forward_features(x)
    fns = module.decoder.functions(features["memory"], features["mask"])
    feed = jnp.zeros((x.shape[0], module.decoder.hidden_size if module.input_feeding else 0))
    start = (features["carry"], feed)

    carry, tf_logits, tf_alpha = start, [], []
    inputs = jnp.concatenate([jnp.full((x.shape[0], 1), D.BOS), y[:, :-1]], 1)
    for t in range(y.shape[1]):
        carry, (out, alpha) = fns.step(carry, fns.embed(jnp.asarray(inputs[:, t])))
        tf_logits.append(fns.logits(out))
        tf_alpha.append(alpha)

    carry, token = start, jnp.full((x.shape[0],), D.BOS)
    greedy_tokens, greedy_alpha = [], []
    done = jnp.zeros(x.shape[0], bool)
    for t in range(y.shape[1]):
        carry, (out, alpha) = fns.step(carry, fns.embed(token))
        token = jnp.argmax(fns.logits(out), -1)
        token = jnp.where(done, 0, token)  # nothing is written after the end token
        greedy_tokens.append(token)
        greedy_alpha.append(jnp.where(done[:, None], 0.0, alpha))
        done = done | (token == D.EOS)
    return (
        jnp.stack(tf_logits, 1),
        jnp.stack(tf_alpha, 1),
        jnp.stack(greedy_tokens, 1),
        jnp.stack(greedy_alpha, 1),
        module(x, y),
    )


@pytest.mark.parametrize(
    "attention,options",
    [
        ("bahdanau", {}),  # 2 layers, bidirectional LSTM encoder
        ("general", {"input_feeding": True, "cell": "gru", "num_layers": 1, "bidirectional": False}),
    ],
)
def test_teacher_forcing_and_greedy_equal_the_decoder_run_step_by_step(attention, options):
    model = _model(attention, **options)
    x, y = _tokens(), _target()
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), x, y)
    # A bias towards EOS so that greedy decoding ends early in some rows.
    eos_bias = 2.5
    params = jax.tree_util.tree_map_with_path(
        lambda p, v: (
            v.at[D.EOS].add(eos_bias)
            if "output" in jax.tree_util.keystr(p) and "bias" in jax.tree_util.keystr(p)
            else v
        ),
        variables["params"],
    )
    variables = {"params": params}
    tf_logits, tf_alpha, greedy, greedy_alpha, out = jax.jit(functools.partial(model.apply, method=_step_by_step))(
        variables, x, y
    )
    greedy = np.asarray(greedy)
    np.testing.assert_allclose(out["logits"], tf_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out["predictions"], greedy)
    ended = greedy == D.EOS
    assert ended[:, :-1].any(), "the test needs a row that ends before the last step"
    for row, stops in zip(np.asarray(out["predictions"]), ended):
        if stops.any():
            assert np.all(row[np.argmax(stops) + 1 :] == 0)  # padding after the end token
    assert out["attention"].shape == (B, T_OUT, T_IN)
    np.testing.assert_allclose(out["attention"], tf_alpha, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["predicted_attention"], greedy_alpha, rtol=1e-5, atol=1e-6)
    # Padded source positions get no weight; live rows sum to 1.
    pad = np.broadcast_to((x == 0)[:, None, :], out["attention"].shape)
    assert np.all(np.asarray(out["attention"])[pad] == 0)
    np.testing.assert_allclose(np.asarray(out["attention"]).sum(-1), 1.0, rtol=1e-5)
    # Without a target the model decodes output_length tokens greedily.
    free = jax.jit(model.apply)(variables, x)
    np.testing.assert_array_equal(free["predictions"], greedy)


def test_program_size_does_not_grow_with_the_lengths():
    """One scan body for the encoder, the teacher-forced decoder and greedy decoding: the
    jaxprs of the loss gradient plus greedy decoding at (T_in, T_out) = (23, 29) and
    (257, 263) are the same program up to array sizes."""

    def program(t_in, t_out):
        model = _model("bahdanau", input_shape=(None,), output_length=t_out, num_layers=1)
        x, y = jnp.ones((2, t_in), jnp.int32), jnp.ones((2, t_out), jnp.int32)
        variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x[:, :3], y[:, :3])  # shapes suffice

        def f(v):
            loss = jnp.sum(model.apply(v, x, y, train=True)["logits"])
            return loss + jnp.sum(model.apply(v, x)["predictions"])

        # Sizes differ (the lengths, and widths holding T_in attention weights); the
        # equations may not: an unrolled loop would add T of them.
        # (line breaks too: the printer wraps by width).
        return re.sub(r"\s+", " ", re.sub(r"\d+", "N", str(jax.make_jaxpr(jax.grad(f))(variables))))

    assert program(23, 29) == program(257, 263)


def test_gradients_through_encoder_attention_and_decoder():
    """check_grads (order 1, reverse mode) of the teacher-forced logits of a Bahdanau model
    with variable source lengths (the other scores' gradients reach every parameter in the
    registry-wide test)."""
    x, y = _tokens(), _target()
    model = _model("bahdanau", num_layers=1, bidirectional=False)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), x, y)
    f = jax.jit(lambda v: model.apply(v, x, y, train=True)["logits"])
    check_grads(f, (variables,), order=1, modes=["rev"], atol=2e-2, rtol=2e-2)


# --------------------------------------------------------------------------------------
# The engine's sequence_to_sequence task.
# --------------------------------------------------------------------------------------


def test_sequence_to_sequence_task_ignores_padding():
    task = get_task("sequence_to_sequence")
    assert task.inputs({"x": 1, "y": 2}) == (1, 2) and get_task("classification").inputs({"x": 1}) == (1,)
    logits = _random((2, 4, 5), 3)
    y = np.array([[4, 2, 3, 0], [1, 4, 4, 3]], np.int32)
    logits[0, 0, 4] = 10.0  # y[0, 0] right, the rest whatever the random logits give
    m = jax.tree.map(np.asarray, task.per_example({"logits": jnp.asarray(logits)}, {"y": jnp.asarray(y)}))
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    for b, n in ((0, 3), (1, 4)):
        ce = -np.mean([logp[b, t, y[b, t]] for t in range(n)])
        np.testing.assert_allclose(m["loss"][b], ce, rtol=1e-5)
        right = [np.argmax(logits[b, t]) == y[b, t] for t in range(n)]
        np.testing.assert_allclose(m["token_accuracy"][b], np.mean(right), rtol=1e-6)
        assert m["exact_match"][b] == float(all(right))
    # Exact match from greedy predictions when the model gives them: pads included.
    preds = np.where(y > 0, y, 0)
    m2 = task.per_example({"logits": jnp.asarray(logits), "predictions": jnp.asarray(preds)}, {"y": jnp.asarray(y)})
    np.testing.assert_array_equal(m2["exact_match"], [1.0, 1.0])
    preds[1, 3] = 0  # stopped without the end token
    m3 = task.per_example({"logits": jnp.asarray(logits), "predictions": jnp.asarray(preds)}, {"y": jnp.asarray(y)})
    np.testing.assert_array_equal(m3["exact_match"], [1.0, 0.0])


def test_reverse_with_attention_trains_through_fit():
    """A short real run of zoo.fit on the reverse task (length 5, 6 symbols): the loss falls,
    teacher-forced token accuracy rises, and the engine's greedy exact match equals the
    one scored from `translate`'s decoded test split."""
    data = load_dataset("reverse", length=5, vocabulary=6, num_examples=1024, num_test_examples=128)
    result = zoo.fit(
        "seq2seq_bahdanau",
        data,
        epochs=3,
        batch_size=32,
        learning_rate=1e-2,
        progress=False,
        eval_batch_size=128,
        model_overrides={"hidden_size": 16, "embed_dim": 8},
    )
    assert result.task.name == "sequence_to_sequence"
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    assert result.test_metrics["token_accuracy"] > 0.95
    assert 0.0 <= result.test_metrics["exact_match"] <= 1.0
    predictions = S.translate(result.model, result.variables, data.x_test)
    scores = S.score_translations(predictions, data.y_test)
    assert scores["exact_match"] == pytest.approx(result.test_metrics["exact_match"], abs=1e-6)


def test_char_lstm_spells_the_seeds_long_word():
    """surf2019-cha: "What if words are so long? e.g., Pneumonoultramicroscopicsilicovolcanoconiosis".
    An LSTM trained on next-character prediction spells the word by greedy generation from
    its first letter."""
    data = load_dataset("long_word", copies=32)
    result = zoo.fit(
        "char_rnn",
        data,
        epochs=40,
        batch_size=32,
        learning_rate=2e-2,
        progress=False,
        validation_fraction=0.0,
        model_overrides={"hidden_size": 64, "cell": "lstm"},
    )
    assert result.test_metrics["exact_match"] == 1.0
    generated = result.model.apply(
        result.variables, data.x_test[:, 0], method=S.CharRNN.generate, length=data.x_test.shape[1]
    )["predictions"]
    spelled = D.LONG_WORD[0] + "".join(D.decode_tokens(data.vocabulary, generated[0]))
    assert spelled == D.LONG_WORD


def test_rnn_autoencoder_reconstructs_float_sequences_by_regression():
    """Float sequences: the regression task's squared error through zoo.fit (x is its own
    target), loss falling on sine waves. Tokens: logits out, no attention (shapes only)."""
    rng = np.random.default_rng(0)
    phase, freq = rng.uniform(0, 2 * np.pi, (320, 1)), rng.uniform(0.5, 1.5, (320, 1))
    waves = np.sin(0.5 * freq * np.arange(8)[None, :] + phase)[..., None].astype(np.float32)  # (N, 8, 1)
    data = Dataset(
        name="waves",
        task="regression",
        x_train=waves[:256],
        y_train=waves[:256],
        x_test=waves[256:],
        y_test=waves[256:],
    )
    result = zoo.fit(
        "rnn_autoencoder",
        data,
        epochs=4,
        batch_size=32,
        learning_rate=1e-2,
        progress=False,
        model_overrides={"hidden_size": 16},
    )
    assert result.task.name == "regression" and zoo.model_info("rnn_autoencoder")["task"] == "regression"
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    assert result.model.apply(result.variables, waves[:2]).shape == (2, 8, 1)
    tokens = zoo.create_model("rnn_autoencoder", input_shape=(5,), vocab_size=V, output_length=6, hidden_size=4)
    x, y = _tokens(), np.concatenate([_tokens(), np.full((B, 1), D.EOS)], 1)
    out, _ = jax.eval_shape(tokens.init_with_output, jax.random.PRNGKey(0), x, y)
    assert out["logits"].shape == (B, 6, V) and out["predictions"].shape == (B, 6) and "attention" not in out


# --------------------------------------------------------------------------------------
# Data.
# --------------------------------------------------------------------------------------


def test_copy_and_reverse_tasks():
    copy = load_dataset("copy", length=6, vocabulary=5, min_length=3, num_examples=20, num_test_examples=5)
    rev = load_dataset("reverse", length=6, vocabulary=5, min_length=3, num_examples=20, num_test_examples=5)
    assert copy.task == "sequence_to_sequence" and copy.input_shape == (6,) and copy.y_train.shape == (20, 7)
    assert copy.model_config == {"vocab_size": 9, "output_length": 7}
    for x, yc, yr in zip(copy.x_train, copy.y_train, rev.y_train):
        n = int(np.sum(x > 0))
        assert 3 <= n <= 6 and np.all(x[n:] == 0) and np.all((x[:n] >= 4) & (x[:n] < 9))
        np.testing.assert_array_equal(yc[:n], x[:n])
        np.testing.assert_array_equal(yr[:n], x[:n][::-1])
        assert yc[n] == yr[n] == D.EOS and np.all(yc[n + 1 :] == 0)
    again = load_dataset("copy", length=6, vocabulary=5, min_length=3, num_examples=20, num_test_examples=5)
    np.testing.assert_array_equal(again.x_test, copy.x_test)
    with pytest.raises(ValueError, match="min_length"):
        load_dataset("copy", length=3, min_length=5)


def test_dates_targets_are_the_iso_dates_of_the_sources():
    data = load_dataset("dates", num_examples=300, num_test_examples=50, seed=3)
    vocab = data.vocabulary
    months = {m: i + 1 for i, m in enumerate(D.MONTHS)}
    sources = ["".join(D.decode_tokens(vocab, x)) for x in data.x_train]
    targets = ["".join(D.decode_tokens(vocab, y)) for y in data.y_train]
    assert len(set(sources)) == len(sources)
    for src, iso in zip(sources, targets):
        year, month, day = map(int, iso.split("-"))
        assert 1900 <= year <= 2099
        # Each format names the month (a word, its first 3 letters, or m/d/yyyy).
        named = [m for m in D.MONTHS if m[:3] in src]
        assert months[named[0]] == month if named else src.startswith(f"{month}/{day}/")
    assert {"/" in s for s in sources} == {True, False} and any("thousand" in s for s in sources)
    assert D.ordinal_words(23) == "twenty third" and D.ordinal_suffix(11) == "11th"
    assert D.ordinal_suffix(22) == "22nd" and D.number_words(40) == "forty"
    words = load_dataset("dates", num_examples=50, num_test_examples=10, level="word")
    assert words.input_shape[0] < data.input_shape[0]


# --------------------------------------------------------------------------------------
# BLEU and exact match.
# --------------------------------------------------------------------------------------


def test_bleu_golden_values():
    """By hand: two sentences, hypotheses "a b c d e" / "a b c", references "a b c d f" /
    "a b c d". Clipped matches over the corpus: 1-grams 7/8, 2-grams 5/6, 3-grams 3/4,
    4-grams 1/2; c = 8, r = 9, BP = exp(1 - 9/8)."""
    hyps = ["a b c d e".split(), "a b c".split()]
    refs = [["a b c d f".split()], ["a b c d".split()]]
    expected = math.exp(1 - 9 / 8) * (7 / 8 * 5 / 6 * 3 / 4 * 1 / 2) ** 0.25
    assert metrics.corpus_bleu(refs, hyps) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.638157, abs=1e-6)
    # Papineni et al.'s modified precision example: "the" x7 against "the cat is on the mat" -> 2/7.
    hyp, ref = ["the"] * 7, "the cat is on the mat".split()
    assert metrics.modified_precision([ref], hyp, 1) == (2, 7)
    assert metrics.corpus_bleu([[ref]], [hyp], max_n=1) == pytest.approx(2 / 7)
    assert metrics.corpus_bleu([[ref]], [ref]) == 1.0
    assert metrics.corpus_bleu([[ref]], [["dog"] * 6]) == 0.0
    # Multiple references: clip by the most generous one, BP by the closest length.
    # ("the" twice is allowed by the second reference; r = 3, the closest length to c = 2.)
    two_refs = [[ref, ["the", "the", "x"]]]
    assert metrics.corpus_bleu(two_refs, [["the", "the"]], max_n=1) == pytest.approx(math.exp(1 - 3 / 2))
    assert metrics.exact_match([[1, 2], [3]], [[1, 2], [4]]) == 0.5
    with pytest.raises(ValueError, match="reference sets"):
        metrics.corpus_bleu([[ref]], [hyp, hyp])


def test_bleu_matches_nltk():
    require_module("nltk")
    from nltk.translate import bleu_score as nltk_bleu

    rng = np.random.default_rng(0)
    refs = [[list(rng.integers(0, 5, rng.integers(4, 12))) for _ in range(2)] for _ in range(20)]
    hyps = [list(rng.integers(0, 5, rng.integers(4, 12))) for _ in range(20)]
    assert metrics.corpus_bleu(refs, hyps) == pytest.approx(nltk_bleu.corpus_bleu(refs, hyps), rel=1e-9)


def test_score_translations_cuts_at_the_end_token():
    preds = np.array([[5, 6, D.EOS, 0], [5, 7, D.EOS, 0]])
    targets = np.array([[5, 6, D.EOS, 0], [5, 6, D.EOS, 0]])
    s = S.score_translations(preds, targets)
    assert s["exact_match"] == 0.5 and 0.0 <= s["bleu"] < 1.0


# --------------------------------------------------------------------------------------
# Config and input errors.
# --------------------------------------------------------------------------------------


def test_bad_config_and_inputs_raise_clear_errors():
    with pytest.raises(
        ValueError, match=r"unknown attention 'luong'.* Valid attentions: bahdanau, concat, dot, general, none"
    ):
        zoo.create_model("seq2seq", attention="luong")
    with pytest.raises(
        ValueError, match=r"Luong attention score 'bahdanau'.* Valid Luong attention scores: concat, dot, general"
    ):
        zoo.create_model("seq2seq_luong", attention="bahdanau")
    with pytest.raises(ValueError, match="input_feeding"):
        zoo.create_model("seq2seq", attention="bahdanau", input_feeding=True)
    with pytest.raises(ValueError, match="unknown cell 'lsmt'"):
        zoo.create_model("char_rnn", cell="lsmt")
    with pytest.raises(ValueError, match=r"attention score 'cosine'"):
        S.Attention(score="cosine")
    model = _model("dot")
    x, y = _tokens(), _target()
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x, y)  # the checks run while tracing
    apply = functools.partial(jax.eval_shape, model.apply, variables)
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 5\)"):
        apply(np.zeros((B, 6), np.int32))
    with pytest.raises(ValueError, match="expects int input"):
        apply(np.zeros((B, T_IN), np.float32))
    with pytest.raises(ValueError, match=r"targets y of shape \(B, T_out\)"):
        apply(x, y[:, :, None])
    with pytest.raises(ValueError, match="dot attention needs decoder states as wide"):
        S.Attention(score="dot").init(jax.random.PRNGKey(0), jnp.zeros((1, 3, 4)), jnp.ones((1, 3), bool), 5)


# --------------------------------------------------------------------------------------
# Beam search.
# --------------------------------------------------------------------------------------


def _sequence_log_probs(model, variables, x, candidates):
    """Log-probability of each candidate (N, T) for each source row of x: the sum of its
    teacher-forced token log-probabilities up to and including its first EOS; -inf for a
    candidate with anything but padding after its EOS (beam search cannot make those)."""
    n, t = candidates.shape
    every = np.tile(candidates, (len(x), 1))  # (B * N, T): all candidates for each row
    logits = model.apply(variables, np.repeat(x, n, 0), every, train=True)["logits"]
    logp = np.take_along_axis(np.asarray(jax.nn.log_softmax(logits, -1)), every[..., None], -1)[..., 0]
    ends = np.where((candidates == D.EOS).any(1), np.argmax(candidates == D.EOS, 1), t - 1)
    counted = np.arange(t)[None, :] <= ends[:, None]
    padded_after = np.all((candidates == 0) | counted, 1)
    scores = np.where(counted[None], logp.reshape(len(x), n, t), 0.0).sum(-1)
    return np.where(padded_after[None], scores, -np.inf)


@pytest.mark.parametrize("attention", ["none", "bahdanau"])
def test_beam_search_with_every_path_kept_is_exhaustive_search(attention):
    """With K = V^(T-1) beams nothing is ever pruned: the best beam is the most probable
    sequence of all V^T, and its score is that sequence's log-probability; one beam is
    greedy decoding."""
    model = _model(attention, output_length=3)
    x = _tokens(lengths=(5, 2, 4))
    variables = model.init(jax.random.PRNGKey(0), x, _target()[:, :3])
    candidates = np.array(np.meshgrid(*[np.arange(V)] * 3, indexing="ij")).reshape(3, -1).T.astype(np.int32)
    scores = _sequence_log_probs(model, variables, x, candidates)
    beam = model.apply(variables, x, V**2, method=model.beam_search)
    np.testing.assert_array_equal(beam["predictions"], candidates[scores.argmax(1)])
    np.testing.assert_allclose(beam["scores"], scores.max(1), rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(np.asarray(beam["beam_scores"]), axis=1) <= 0)  # best first
    one = model.apply(variables, x, 1, method=model.beam_search)
    np.testing.assert_array_equal(one["predictions"], model.apply(variables, x)["predictions"])
