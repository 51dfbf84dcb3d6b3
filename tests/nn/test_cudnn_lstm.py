"""zoo's LSTM parameters <-> cuDNN's flat weights (`zoo.nn.cudnn_lstm`), checked on CPU through
`jax.experimental.rnn.lstm_ref` (the library's scan of the same flat vector), and the
selection of the cuDNN path by ``impl``. The cuDNN kernel itself needs a CUDA GPU: the
README gives the command that compares it there."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import rnn

import zoo
from zoo.nn import cudnn_lstm
from zoo.nn.recurrence import LSTMCell, RNN, lstm_step, scan_cell

B, T, I, H = 3, 5, 4, 6


def _weights(key, use_bias=True):
    k1, k2 = jax.random.split(key)
    w = {"kernel": jax.random.normal(k1, (I + H, 4 * H)) * 0.4}
    if use_bias:
        w["bias"] = jax.random.normal(k2, (4 * H,)) * 0.4
    return w


def _inputs(key):
    kx, kc, kh = jax.random.split(key, 3)
    xs = jax.random.normal(kx, (B, T, I))
    return (jax.random.normal(kc, (B, H)), jax.random.normal(kh, (B, H))), xs


def test_flat_layout_is_cudnn_order():
    w = _weights(jax.random.PRNGKey(0))
    flat = cudnn_lstm.to_cudnn_weights(w["kernel"], w["bias"], I)
    assert flat.shape == (rnn.get_num_params_in_lstm(I, H, 1, False),)
    (w_ih,), (w_hh,), (b_ih,), (b_hh,) = (tuple(d.values()) for d in rnn.unpack_lstm_weights(flat, I, H, 1, False))
    # PyTorch's / cuDNN's W_ih is (4H, I): row g*H + j is gate g's unit j, zoo's column g*H + j.
    np.testing.assert_array_equal(w_ih, np.asarray(w["kernel"][:I]).T)
    np.testing.assert_array_equal(w_hh, np.asarray(w["kernel"][I:]).T)
    np.testing.assert_array_equal(b_ih, w["bias"])
    np.testing.assert_array_equal(b_hh, np.zeros(4 * H))


def test_round_trips():
    w = _weights(jax.random.PRNGKey(1))
    kernel, bias = cudnn_lstm.from_cudnn_weights(cudnn_lstm.to_cudnn_weights(w["kernel"], w["bias"], I), I, H)
    np.testing.assert_array_equal(kernel, w["kernel"])
    np.testing.assert_array_equal(bias, w["bias"])
    # From cuDNN (both biases set, as jax's own initialiser does): back gives the same vector
    # with the bias sum moved into b_ih.
    flat = rnn.init_lstm_weight(jax.random.PRNGKey(2), I, H, 1, False)
    kernel, bias = cudnn_lstm.from_cudnn_weights(flat, I, H)
    again = cudnn_lstm.to_cudnn_weights(kernel, bias, I)
    n_w = 4 * H * (I + H)
    np.testing.assert_array_equal(again[:n_w], flat[:n_w])
    np.testing.assert_allclose(again[n_w : n_w + 4 * H], flat[n_w : n_w + 4 * H] + flat[n_w + 4 * H :], rtol=1e-6)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="kernel"):
        cudnn_lstm.to_cudnn_weights(jnp.zeros((I + H, 4 * H)), jnp.zeros(4 * H), I + 1)
    with pytest.raises(ValueError, match="cuDNN LSTM"):
        cudnn_lstm.from_cudnn_weights(jnp.zeros(7), I, H)


@pytest.mark.parametrize(
    "reverse, return_sequences, use_bias, with_lengths",
    [(False, True, True, False), (True, True, True, False), (False, False, False, False), (False, True, True, True)],
)
def test_reference_equals_zoo_scan(reverse, return_sequences, use_bias, with_lengths):
    """zoo's scan of ``lstm_step`` and lstm_ref on the converted weights: outputs, final
    state and gradients w.r.t. zoo's parameters."""
    w = _weights(jax.random.PRNGKey(3), use_bias)
    carry, xs = _inputs(jax.random.PRNGKey(4))
    lengths = jnp.array([5, 2, 4]) if with_lengths else None

    def run(w, reference):
        if reference:
            return cudnn_lstm.lstm_sequence(
                w, carry, xs, reverse=reverse, return_sequences=return_sequences, lengths=lengths, reference=True
            )
        step = functools.partial(lstm_step, w)
        return scan_cell(step, carry, xs, reverse=reverse, return_sequences=return_sequences, lengths=lengths)

    chex.assert_trees_all_close(run(w, True), run(w, False), atol=1e-5)

    def loss(w, reference):
        (c, h), ys = run(w, reference)
        return jnp.sum(c * h) + (0.0 if ys is None else jnp.sum(jnp.sin(ys)))

    chex.assert_trees_all_close(jax.grad(loss)(w, True), jax.grad(loss)(w, False), atol=1e-5)


def _reference_kernel(x, h_0, c_0, weights, seq_lengths, input_size, hidden_size, num_layers, dropout, bidirectional):
    """jax.experimental.rnn.lstm's signature, computed by lstm_ref (stands in for cuDNN on CPU)."""
    unpacked = rnn.unpack_lstm_weights(weights, input_size, hidden_size, num_layers, bidirectional)
    return rnn.lstm_ref(
        x, h_0, c_0, *unpacked, seq_lengths, input_size, hidden_size, num_layers, dropout, bidirectional
    )


def test_auto_selects_cudnn_on_a_gpu(monkeypatch):
    """With the backend reported as a GPU and cuDNN's kernel replaced by lstm_ref, impl
    "auto" takes the cuDNN path (counted) and the registered LSTM model gives the scan's
    outputs and gradients."""
    model = zoo.create_model("lstm", input_shape=(None, I), hidden_size=H, num_classes=3)
    x = jax.random.normal(jax.random.PRNGKey(5), (B, T, I))
    variables = model.init(jax.random.PRNGKey(6), x)
    grad = jax.grad(lambda v, m: jnp.sum(m.apply(v, x) ** 2))
    scan_model = model.clone(impl="scan")
    expected_y, expected_g = scan_model.apply(variables, x), grad(variables, scan_model)

    calls = []
    monkeypatch.setattr(cudnn_lstm, "on_gpu", lambda: True)
    monkeypatch.setattr(rnn, "lstm", lambda *a: calls.append(1) or _reference_kernel(*a))
    chex.assert_trees_all_close(model.apply(variables, x), expected_y, atol=1e-5)
    chex.assert_trees_all_close(grad(variables, model), expected_g, atol=1e-5)
    assert calls, "impl='auto' on a GPU did not take the cuDNN path"
    calls.clear()
    model.clone(impl="scan").apply(variables, x)
    model.clone(cell="gru", impl="auto").init(jax.random.PRNGKey(0), x)
    assert not calls  # scan asked for, or a cell without a cuDNN form


def test_cudnn_needs_a_gpu_and_a_plain_lstm():
    carry, xs = _inputs(jax.random.PRNGKey(7))
    layer = RNN(LSTMCell(hidden_size=H, impl="cudnn"))
    with pytest.raises(ValueError, match="CUDA GPU"):
        layer.init(jax.random.PRNGKey(0), xs)
    with pytest.raises(ValueError, match="no cuDNN form"):
        LSTMCell(hidden_size=H, peephole="diagonal", impl="cudnn")


@pytest.mark.skipif(not cudnn_lstm.on_gpu(), reason="cuDNN needs a CUDA GPU (run this file on one: see the README)")
@pytest.mark.parametrize("reverse, with_lengths", [(False, False), (True, False), (False, True)])
def test_cudnn_equals_the_scan_on_a_gpu(reverse, with_lengths):
    """cuDNN's kernel against zoo's scan, outputs and gradients, at full float32 precision
    (cuDNN and XLA would otherwise use TF32)."""
    w = _weights(jax.random.PRNGKey(8))
    carry, xs = _inputs(jax.random.PRNGKey(9))
    lengths = jnp.array([5, 2, 4]) if with_lengths else None

    def loss(w, impl):
        layer = RNN(LSTMCell(hidden_size=H, impl=impl), reverse=reverse)
        (c, h), ys = layer.apply({"params": {"cell": w}}, xs, carry, lengths)
        return jnp.sum(c * h) + jnp.sum(jnp.sin(ys)), ys

    with jax.default_matmul_precision("highest"):
        (value, ys), grads = jax.value_and_grad(loss, has_aux=True)(w, "cudnn")
        (value_scan, ys_scan), grads_scan = jax.value_and_grad(loss, has_aux=True)(w, "scan")
    chex.assert_trees_all_close((value, ys, grads), (value_scan, ys_scan, grads_scan), atol=1e-4, rtol=1e-4)
