"""zoo.nn.fastrnn: the whole-sequence LSTM/GRU with a hand-written backward pass equals the
plain step functions run by zoo.nn.recurrence.scan_cell (outputs, final states and
gradients): the cells' ``impl="fast"`` against their ``impl="scan"``."""

import functools

import jax
import jax.test_util
import jax.numpy as jnp
import numpy as np
import pytest

from zoo.nn import fastrnn
from zoo.nn import recurrence as R

B, T, I, H = 3, 7, 5, 4
TOL = 1e-5


def _uniform(key, shape):
    return jax.random.uniform(key, shape, jnp.float32, -0.5, 0.5)


def _inputs(seed=0):
    ks = jax.random.split(jax.random.PRNGKey(seed), 4)
    x = jax.random.normal(ks[0], (B, T, I))
    c0 = 0.3 * jax.random.normal(ks[1], (B, H))
    h0 = 0.3 * jax.random.normal(ks[2], (B, H))
    return x, c0, h0, ks[3]


def _lstm_weights(key, bias=True):
    k1, k2 = jax.random.split(key)
    w = {"kernel": _uniform(k1, (I + H, 4 * H))}
    if bias:
        w["bias"] = _uniform(k2, (4 * H,))
    return w


def _gru_weights(key, bias=True):
    k = jax.random.split(key, 4)
    w = {"input_kernel": _uniform(k[0], (I, 3 * H)), "recurrent_kernel": _uniform(k[1], (H, 3 * H))}
    if bias:
        w.update(bias=_uniform(k[2], (3 * H,)), recurrent_bias=_uniform(k[3], (H,)))
    return w


def _cell_step(kind, w, impl, **options):
    """The `Recurrence` of cell ``kind`` with ``impl`` on the weights ``w`` (a cell without
    biases where ``w`` has none)."""
    cell = R.make_cell(kind, H, impl=impl, use_bias="bias" in w, **options)
    return cell.apply({"params": w}, I)


def _close(a, b):
    for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(q), np.asarray(p), rtol=TOL, atol=TOL)


def _loss(carry, ys):
    """A loss that gives every output and every part of the final carry its own cotangent."""
    out = sum(jnp.sum(jnp.cos(c) * (k + 1)) for k, c in enumerate(jax.tree.leaves(carry)))
    return out if ys is None else out + jnp.sum(jnp.sin(ys) * jnp.arange(ys.shape[1])[None, :, None])


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("chunk,bias", [(1, True), (3, True), (16, True), (3, False)])
def test_lstm_sequence_equals_scan_of_lstm_step(return_sequences, reverse, chunk, bias):
    x, c0, h0, key = _inputs()
    w = _lstm_weights(key, bias)

    def plain(w, c0, h0, x):
        return R.scan_cell(
            _cell_step("lstm", w, "scan"), (c0, h0), x, reverse=reverse, return_sequences=return_sequences
        )

    def fast(w, c0, h0, x):
        return fastrnn.lstm_sequence(w, (c0, h0), x, reverse=reverse, return_sequences=return_sequences, chunk=chunk)

    _close(plain(w, c0, h0, x), fast(w, c0, h0, x))
    args = (w, c0, h0, x)
    g_plain = jax.jit(jax.grad(lambda *a: _loss(*plain(*a)), argnums=(0, 1, 2, 3)))(*args)
    g_fast = jax.jit(jax.grad(lambda *a: _loss(*fast(*a)), argnums=(0, 1, 2, 3)))(*args)
    _close(g_plain, g_fast)


@pytest.mark.parametrize("update_convention", ["keep", "take"])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("chunk,bias", [(1, True), (3, True), (16, True), (3, False)])
def test_gru_sequence_equals_scan_of_gru_step(update_convention, return_sequences, reverse, chunk, bias):
    x, _, h0, key = _inputs(1)
    w = _gru_weights(key, bias)

    def plain(w, h0, x):
        step = _cell_step("gru", w, "scan", update_convention=update_convention)
        return R.scan_cell(step, h0, x, reverse=reverse, return_sequences=return_sequences)

    def fast(w, h0, x):
        return fastrnn.gru_sequence(
            w,
            h0,
            x,
            update_convention=update_convention,
            reverse=reverse,
            return_sequences=return_sequences,
            chunk=chunk,
        )

    _close(plain(w, h0, x), fast(w, h0, x))
    g_plain = jax.jit(jax.grad(lambda *a: _loss(*plain(*a)), argnums=(0, 1, 2)))(w, h0, x)
    g_fast = jax.jit(jax.grad(lambda *a: _loss(*fast(*a)), argnums=(0, 1, 2)))(w, h0, x)
    _close(g_plain, g_fast)


def test_time_major_and_jit():
    x, c0, h0, key = _inputs(2)
    w = _lstm_weights(key)
    (c, h), ys = jax.jit(functools.partial(fastrnn.lstm_sequence, time_major=True))(w, (c0, h0), jnp.swapaxes(x, 0, 1))
    (c_ref, h_ref), ys_ref = R.scan_cell(_cell_step("lstm", w, "scan"), (c0, h0), x)
    _close((c_ref, h_ref, ys_ref), (c, h, jnp.swapaxes(ys, 0, 1)))


def test_check_grads_small():
    x, c0, h0, key = _inputs(3)
    w = _lstm_weights(key)
    f = lambda k, x: fastrnn.lstm_sequence({"kernel": k, "bias": w["bias"]}, (c0, h0), x, chunk=2)[1]
    jax.test_util.check_grads(f, (w["kernel"], x), order=1, modes=["rev"], atol=2e-2, rtol=2e-2)


def test_applies():
    x, c0, h0, key = _inputs()
    w = _lstm_weights(key)
    assert fastrnn.lstm_applies(w, (c0, h0), x)
    assert not fastrnn.lstm_applies(w, (c0, h0), x, peephole="full")
    assert not fastrnn.lstm_applies(w, (c0, h0), x, lengths=jnp.full((B,), T))
    assert not fastrnn.lstm_applies(w, (c0, h0), x, remat=True)
    assert not fastrnn.lstm_applies(w, (c0, h0), x.astype(jnp.bfloat16))
    g = _gru_weights(key)
    assert fastrnn.gru_applies(g, h0, x)
    assert not fastrnn.gru_applies(g, h0, x, reset_after=False)


def test_bad_update_convention():
    x, _, h0, key = _inputs()
    with pytest.raises(ValueError, match="update_convention"):
        fastrnn.gru_sequence(_gru_weights(key), h0, x, update_convention="other")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_every_impl_of_the_cell_gives_the_same_numbers(kind):
    """Through the public runner: impl "scan", "auto" and "fast" agree (values and weight
    gradients, forwards and reversed), and "auto" falls back to the scan where the fast
    form does not apply (masking)."""
    x, c0, h0, key = _inputs(4)
    w = _lstm_weights(key) if kind == "lstm" else _gru_weights(key)
    carry = (c0, h0) if kind == "lstm" else h0

    def run(impl, reverse=False, lengths=None):
        return jax.jit(lambda w: R.scan_cell(_cell_step(kind, w, impl), carry, x, reverse=reverse, lengths=lengths))

    for reverse in (False, True):
        reference = run("scan", reverse)
        g_ref = jax.grad(lambda w: _loss(*reference(w)))(w)
        for impl in ("auto", "fast"):
            fast = run(impl, reverse)
            _close(reference(w), fast(w))
            _close(g_ref, jax.grad(lambda w: _loss(*fast(w)))(w))
    lengths = jnp.full((B,), T)
    _close(run("scan", lengths=lengths)(w), run("auto", lengths=lengths)(w))
