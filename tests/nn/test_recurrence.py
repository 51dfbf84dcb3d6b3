"""zoo.nn.recurrence: the cells and layers against PyTorch (LSTM, GRU, Elman; bidirectional,
stacked, packed variable-length batches), the seeds' peephole and GRU forms against NumPy
loops of their equations, masking, initial carries, dropout between layers, remat, and the
cell's ``impl`` choice of how the scan runner runs it."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require_module

from zoo.interop.torch_rnn import from_torch
from zoo.nn import recurrence as R

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
        return {"cell": from_torch(kind, get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"))}

    tree = {}
    for layer in range(num_layers):
        tree[f"layers_{layer}"] = (
            {"forward_rnn": direction(layer, ""), "backward_rnn": direction(layer, "_reverse")}
            if bidirectional
            else direction(layer, "")
        )
    return {"params": jax.tree.map(jnp.asarray, tree)}


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("num_layers,bidirectional,variable_lengths", [(1, False, False), (2, True, True)])
def test_matches_torch(kind, num_layers, bidirectional, variable_lengths):
    torch = require_module("torch")
    torch.manual_seed(0)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
    ref = cls(I, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    x = _x()
    lengths = LENGTHS if variable_lengths else np.full(B, T)
    with torch.no_grad():
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            torch.from_numpy(x), torch.from_numpy(lengths), batch_first=True, enforce_sorted=False
        )
        out, state = ref(packed)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    h_n, c_n = state if kind == "lstm" else (state, None)

    model = R.StackedRNN(cell=kind, hidden_size=H, num_layers=num_layers, bidirectional=bidirectional)
    variables = _torch_variables(ref, kind, num_layers, bidirectional)
    carries, ys = _apply(model, variables, jnp.asarray(x), lengths=jnp.asarray(lengths) if variable_lengths else None)
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


@pytest.mark.parametrize("form", ["seed", "kang"])
def test_seed_gru_forms_match_numpy(form):
    """surf2019: C_t = (1-z) a + z C_(t-1); kang-lecture4 (no biases): h_t = (1-z) h + z h~;
    both with the reset gate before the recurrent product."""
    x = _x()
    model = R.RNN(
        R.GRUCell(
            hidden_size=H,
            reset_after=False,
            update_convention="keep" if form == "seed" else "take",
            use_bias=form == "seed",
        )
    )
    variables = _random_params(model, x)
    w = jax.tree.map(np.asarray, variables["params"]["cell"])
    assert ("bias" in w) == (form == "seed")
    W_rz, U_rz = w["kernel"][:I], w["kernel"][I:]
    W_a, U_a = w["candidate_kernel"][:I], w["candidate_kernel"][I:]
    b_rz, b_a = w.get("bias", np.zeros(2 * H)), w.get("candidate_bias", np.zeros(H))
    h = np.zeros((B, H), np.float32)
    _, ys = _apply(model, variables, jnp.asarray(x))
    for t in range(T):
        rz = _sigmoid(x[:, t] @ W_rz + h @ U_rz + b_rz)
        r, z = rz[:, :H], rz[:, H:]
        a = np.tanh(x[:, t] @ W_a + (r * h) @ U_a + b_a)
        h = (1 - z) * a + z * h if form == "seed" else (1 - z) * h + z * a
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
        (c_b, h_b), ys_b = _apply(model, variables, jnp.asarray(x[b : b + 1, :n]))
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

    stacked = R.StackedRNN(cell="rnn", hidden_size=H, num_layers=2, dropout_rate=0.5)
    variables = jax.jit(stacked.init)(jax.random.PRNGKey(0), x)
    eval_1, eval_2 = (_apply(stacked, variables, x)[1] for _ in range(2))
    np.testing.assert_array_equal(eval_1, eval_2)
    train = [_apply(stacked, variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(k)})[1] for k in (1, 2)]
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


# --------------------------------------------------------------------------------------
# The cell's impl: how the one scan runner runs it.
# --------------------------------------------------------------------------------------


def _cell_run(cell, x, lengths=None):
    """The cell's params and a jit'd ``params -> (carry, ys)`` through `scan_cell`."""
    params = jax.jit(lambda key: cell.init(key, x.shape[-1]))(jax.random.PRNGKey(0))["params"]
    carry = cell.initial_carry(x.shape[0])
    run = jax.jit(lambda p: R.scan_cell(cell.apply({"params": p}, x.shape[-1]), carry, x, lengths=lengths))
    return params, run


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_impl_is_the_cells_choice(kind, monkeypatch):
    """impl="scan", or the cell's step wrapped by the caller, takes the plain scan; "auto"
    and "fast" take the fast form, equal to the scan to 1e-5 (values and gradients)."""
    x = jnp.asarray(_x())
    calls = []
    fast_fn = getattr(R.fastrnn, f"{kind}_sequence")

    def counted(*args, **kwargs):
        calls.append(kind)
        return fast_fn(*args, **kwargs)

    monkeypatch.setattr(R.fastrnn, f"{kind}_sequence", counted)
    params, scan = _cell_run(R.make_cell(kind, H, impl="scan"), x)
    runs = {impl: _cell_run(R.make_cell(kind, H, impl=impl), x)[1] for impl in ("auto", "fast")}
    reference = scan(params)
    assert calls == []  # impl="scan" never builds the fast form's computation
    for impl, run in runs.items():
        out = run(params)
        assert len(calls) == 1, impl
        calls.clear()
        for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(reference), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    loss = lambda run: lambda p: jnp.sum(jnp.sin(run(p)[1]))
    for a, b in zip(
        jax.tree.leaves(jax.grad(loss(runs["fast"]))(params)),
        jax.tree.leaves(jax.grad(loss(scan))(params)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)

    # A step wrapped by the caller is a plain function: the scan runs it, whatever the cell's impl.
    cell = R.make_cell(kind, H, impl="fast")
    step = cell.apply({"params": params}, I)
    wrapped = lambda carry, x_t: step(carry, x_t)
    carry, ys = jax.jit(lambda: R.scan_cell(wrapped, cell.initial_carry(B), x))()
    assert calls == []
    np.testing.assert_allclose(ys, reference[1], rtol=1e-5, atol=1e-5)


def test_impl_fast_raises_where_the_fast_form_cannot_apply():
    x = jnp.asarray(_x())
    for cell, words in (
        (lambda: R.ElmanCell(hidden_size=H, impl="fast"), "has no fast form"),
        (lambda: R.LSTMCell(hidden_size=H, peephole="full", impl="fast"), "has no fast form"),
        (lambda: R.GRUCell(hidden_size=H, reset_after=False, impl="fast"), "has no fast form"),
        (lambda: R.LSTMCell(hidden_size=H, impl="quick"), r"impl must be one of \('auto'"),
    ):
        with pytest.raises(ValueError, match=words):
            cell()
    params, run = _cell_run(R.LSTMCell(hidden_size=H, impl="fast"), x, lengths=jnp.asarray(LENGTHS))
    with pytest.raises(ValueError, match="impl='fast' cannot run this sequence: variable lengths"):
        run(params)
    # "auto" falls back to the scan for the same arguments (masking), as the layers rely on.
    params, run = _cell_run(R.LSTMCell(hidden_size=H), x, lengths=jnp.asarray(LENGTHS))
    assert np.all(np.asarray(run(params)[1])[1, 2:] == 0)
    # Options of another cell are rejected rather than ignored.
    with pytest.raises(ValueError, match="peephole='full' applies to the lstm cell, not to 'gru'"):
        R.cell_options("gru", peephole="full")
    assert R.cell_options("gru", peephole=None, reset_after=False) == {"reset_after": False}
