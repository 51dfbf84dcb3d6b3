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
