"""zoo.native: the LSTM's and the GRU's own CPU kernels equal the scan of `lstm_step` /
`gru_step` (outputs, final state and every gradient, to 1e-5) with every option, on one
worker thread and several;
the runner takes it for impl="auto" on the CPU and says why where it cannot; exported
programs never hold it; a missing compiler or ZOO_NATIVE=0 leaves the pure-JAX forms."""

import functools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require

import zoo
from zoo import native
from zoo.exporting import load_exported
from zoo.nn import fastrnn
from zoo.nn import recurrence as R

B, T, I = 3, 7, 5
TOL = 1e-5


@pytest.fixture(autouse=True)
def _kernels_built():
    require(native.available(), f"zoo.native cannot run here: {native.unavailable_reason()}")


def _problem(hidden, seed=0, bias=True, batch=B, cell="lstm"):
    """(weights, carry, x (batch, T, I)) of ``cell`` "lstm" or "gru" (zoo's layouts)."""
    ks = jax.random.split(jax.random.PRNGKey(seed), 7)
    u = lambda k, shape: jax.random.uniform(k, shape, jnp.float32, -0.5, 0.5)
    state = lambda k: 0.3 * jax.random.normal(k, (batch, hidden))
    x = jax.random.normal(ks[4], (batch, T, I))
    if cell == "lstm":
        w = {"kernel": u(ks[0], (I + hidden, 4 * hidden))}
        if bias:
            w["bias"] = u(ks[1], (4 * hidden,))
        return w, (state(ks[2]), state(ks[3])), x
    w = {"input_kernel": u(ks[0], (I, 3 * hidden)), "recurrent_kernel": u(ks[5], (hidden, 3 * hidden))}
    if bias:
        w.update(bias=u(ks[1], (3 * hidden,)), recurrent_bias=u(ks[6], (hidden,)))
    return w, state(ks[2]), x


def _loss(carry, ys):
    """Every part of the final state and every output gets its own cotangent."""
    out = sum(jnp.sum(jnp.cos(c) * (k + 1)) for k, c in enumerate(jax.tree.leaves(carry)))
    return out if ys is None else out + jnp.sum(jnp.sin(ys) * jnp.arange(1, T + 1)[None, :, None])


def _close(a, b):
    """Equal to TOL of each array's scale: a weight gradient sums T*B terms in its own
    order (the kernel's chunked product against XLA's dot), so its round-off grows with its size."""
    for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        p, q = np.asarray(p), np.asarray(q)
        assert p.shape == q.shape
        np.testing.assert_allclose(q, p, rtol=0, atol=TOL * max(1.0, float(np.abs(p).max())))


def _scan(w, carry, x, reverse, return_sequences, convention="keep"):
    if "kernel" in w:
        step = functools.partial(R.lstm_step, w)
    else:
        step = functools.partial(R.gru_step, w, reset_after=True, update_convention=convention)
    return R.scan_cell(step, carry, x, reverse=reverse, return_sequences=return_sequences)


def _kernel(w, carry, x, reverse, return_sequences, convention="keep"):
    options = dict(reverse=reverse, return_sequences=return_sequences, native=True)
    if "kernel" in w:
        return fastrnn.lstm_sequence(w, carry, x, **options)
    return fastrnn.gru_sequence(w, carry, x, update_convention=convention, **options)


# H=6: one worker, a part-filled column panel; H=64: two workers (hidden units shared
# out, a meeting per step), 11 rows = a full row block of the packed product and a part
# one; H=100 with ZOO_NATIVE_THREADS=3: three workers (at least 32 units each) with
# uneven shares, more workers than this machine's cores.
# The GRU's two update conventions ride along with the direction: "keep" forwards,
# "take" reversed.
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("hidden,threads,batch", [(6, None, 3), (64, None, 11), (100, "3", 3)])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
def test_kernel_equals_the_scan(cell, hidden, threads, batch, return_sequences, reverse, monkeypatch):
    if threads:
        monkeypatch.setenv("ZOO_NATIVE_THREADS", threads)
    w, carry, x = _problem(hidden, batch=batch, cell=cell)
    args = (reverse, return_sequences, "take" if reverse else "keep")
    ref = _scan(w, carry, x, *args)
    got = jax.jit(_kernel, static_argnums=(3, 4, 5))(w, carry, x, *args)
    _close(ref, got)
    grads = lambda f: jax.grad(lambda w, c, x: _loss(*f(w, c, x, *args)), argnums=(0, 1, 2))(w, carry, x)
    _close(grads(_scan), jax.jit(lambda: grads(_kernel))())


# The weight gradients are summed over T*B rows a chunk of 256 at a time: 41 steps of 9
# make 369 rows, a full chunk and a part one; H=70 gives two workers of 35 units, each
# gate's columns a full panel and a part one.
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_weight_gradients_over_several_chunks(cell):
    hidden, steps, batch = 70, 41, 9
    w, carry, _ = _problem(hidden, seed=2, batch=batch, cell=cell)
    x = jax.random.normal(jax.random.PRNGKey(3), (batch, steps, I))
    loss = lambda f: lambda w: jnp.sum(jnp.sin(f(w, carry, x, False, True)[1]) * jnp.arange(1, steps + 1)[:, None])
    _close(jax.grad(loss(_scan))(w), jax.jit(jax.grad(loss(_kernel)))(w))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_kernel_without_bias_and_under_vmap(cell):
    w, carry, x = _problem(8, seed=1, bias=False, cell=cell)
    _close(_scan(w, carry, x, False, True), _kernel(w, carry, x, False, True))
    # vmap over a leading axis of sequences (each call runs on its own)
    xs = jnp.stack([x, 2 * x])
    ref = jax.vmap(lambda x: _scan(w, carry, x, False, True))(xs)
    _close(ref, jax.jit(jax.vmap(lambda x: _kernel(w, carry, x, False, True)))(xs))


def test_nan_in_the_input_stays_nan():
    """The kernel's own exp must not turn a NaN into a plausible number."""
    w, carry, x = _problem(8)
    (c, h), ys = _kernel(w, carry, x.at[0, 2, 0].set(jnp.nan), False, True)
    assert np.isnan(np.asarray(ys)[0, 2:]).all() and np.isfinite(np.asarray(ys)[1:]).all()
    assert np.isnan(np.asarray(h)[0]).all()


def _cell_run(impl, x, lengths=None, dtype=jnp.float32, kind="lstm"):
    cell = R.make_cell(kind, 8, impl=impl)
    params = cell.init(jax.random.PRNGKey(0), x.shape[-1])["params"]
    params = jax.tree.map(lambda a: a.astype(dtype), params)
    carry = cell.initial_carry(x.shape[0], dtype)
    return params, lambda p: R.scan_cell(
        cell.apply({"params": p}, x.shape[-1]), carry, x.astype(dtype), lengths=lengths
    )


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_auto_takes_the_kernel_on_the_cpu(kind, monkeypatch):
    x = _problem(8)[2]
    calls = []
    forward = getattr(native, f"{kind}_forward")
    monkeypatch.setattr(native, f"{kind}_forward", lambda *a, **k: calls.append(1) or forward(*a, **k))
    params, auto = _cell_run("auto", x, kind=kind)
    _, scan = _cell_run("scan", x, kind=kind)
    _close(scan(params), jax.jit(auto)(params))
    assert calls == [1]
    with native.disabled():  # then "auto" is the pure-JAX fast form
        assert native.unavailable_reason() == "they are turned off here (zoo.native.disabled)"
        _close(scan(params), jax.jit(auto)(params))
    assert calls == [1]


def test_native_impl_says_why_it_cannot_run():
    x = _problem(8)[2]
    with pytest.raises(ValueError, match="GRUCell has no native kernel"):
        R.GRUCell(hidden_size=8, reset_after=False, impl="native")
    with pytest.raises(ValueError, match="ElmanCell has no native kernel"):
        R.ElmanCell(hidden_size=8, impl="native")
    with pytest.raises(ValueError, match="LSTMCell has no native kernel"):
        R.LSTMCell(hidden_size=8, peephole="full", impl="native")
    params, run = _cell_run("native", x, lengths=jnp.array([7, 3, 5]))
    with pytest.raises(ValueError, match="impl='native' cannot run this sequence: variable lengths"):
        run(params)
    params, run = _cell_run("native", x, dtype=jnp.bfloat16)
    with pytest.raises(ValueError, match="the native kernel runs float32 weights, state and inputs"):
        run(params)
    params, run = _cell_run("native", x)
    with native.disabled(), pytest.raises(ValueError, match=r"zoo.native cannot run: they are turned off here"):
        run(params)
    # "auto" falls back for the same arguments (masking): the scan zeroes steps past a length.
    params, run = _cell_run("auto", x, lengths=jnp.array([7, 3, 5]))
    assert np.all(np.asarray(run(params)[1])[1, 3:] == 0)


def test_exported_programs_hold_no_native_call(tmp_path):
    model = zoo.create_model("lstm", num_classes=3, hidden_size=8, input_shape=(5, 2))
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 2))
    variables = model.init(jax.random.PRNGKey(0), x)
    lowered = jax.jit(lambda x: model.apply(variables, x)).lower(x).as_text()
    assert "zoo_lstm_forward" in lowered  # in this process the model runs the kernel
    exported = load_exported(zoo.export(model, variables, x, tmp_path / "lstm.jax"))
    assert "zoo_lstm" not in exported.mlir_module()
    np.testing.assert_allclose(exported.call(x), model.apply(variables, x), rtol=TOL, atol=TOL)


def _reason_in_a_fresh_process(tmp_path, **env):
    code = "from zoo import native; print(native.unavailable_reason())"
    environ = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), **env}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, check=True)
    return done.stdout.strip()


def test_without_a_working_compiler_the_kernels_are_off_with_one_line(tmp_path):
    assert _reason_in_a_fresh_process(tmp_path, ZOO_NATIVE="0") == "ZOO_NATIVE=0 turns them off"
    assert _reason_in_a_fresh_process(tmp_path, CXX="no-such-compiler") == "no C++ compiler ($CXX or c++) was found"
    failed = _reason_in_a_fresh_process(tmp_path, CXX="false")  # a "compiler" that fails
    assert failed.startswith(
        "the kernels could not be built: compiling rnn_kernels.cc, conv_kernels.cc and winograd_kernels.cc failed"
    )
    assert not list(tmp_path.rglob("*.so"))  # no half-written library is left to load later


@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
def test_matmul_equals_numpy_with_its_gradients(transpose_a, transpose_b):
    """Every layout; one side long enough to be shared among workers by rows, then by
    columns; gradients against jnp's product."""
    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    for m, k, n in ((300, 40, 7), (5, 70, 200)):
        a = jax.random.normal(keys[0], (k, m) if transpose_a else (m, k))
        b = jax.random.normal(keys[1], (n, k) if transpose_b else (k, n))
        op_a, op_b = (a.T if transpose_a else a), (b.T if transpose_b else b)
        got = jax.jit(native.matmul, static_argnums=(2, 3))(a, b, transpose_a, transpose_b)
        np.testing.assert_allclose(
            got, np.asarray(op_a, np.float64) @ np.asarray(op_b, np.float64), rtol=1e-4, atol=1e-4
        )
        g = jax.random.normal(keys[2], (m, n))
        expected = jax.grad(lambda a, b: jnp.sum((a.T if transpose_a else a) @ (b.T if transpose_b else b) * g), (0, 1))
        actual = jax.grad(lambda a, b: jnp.sum(native.matmul(a, b, transpose_a, transpose_b) * g), (0, 1))
        _close(expected(a, b), actual(a, b))
