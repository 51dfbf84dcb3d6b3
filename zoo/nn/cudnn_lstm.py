"""The plain LSTM (no peepholes) through cuDNN, with `jax.experimental.rnn`, as Keras does
with ``use_cudnn="auto"``: the same parameters and outputs as the scan.

zoo's LSTM holds ``kernel (I+H, 4H) = [W; U]`` and ``bias (4H,)``, gate blocks (i, f, a, o)
in PyTorch's order, which cuDNN shares. cuDNN takes one flat float32 vector (layout in
`jax.experimental.rnn`'s docstring): ``W_ih (4H, I)``, ``W_hh (4H, H)``, then ``b_ih (4H,)``
and ``b_hh (4H,)``. `to_cudnn_weights` writes zoo's bias as ``b_ih`` with ``b_hh = 0``;
`from_cudnn_weights` sums the two biases (cuDNN's and PyTorch's cell adds them), so a round
trip from zoo is exact and one from cuDNN is exact up to that sum.

`lstm_sequence` runs a whole sequence as `zoo.nn.recurrence.scan_cell` does, on the GPU
through ``jax.experimental.rnn.lstm`` (cuDNN's kernel, forward and backward); with
``reference=True`` through ``jax.experimental.rnn.lstm_ref``, the library's own scan
of the same flat weights, which runs anywhere and is what the CPU tests compare with.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.experimental import rnn


def to_cudnn_weights(kernel, bias, input_size: int):
    """zoo's ``kernel (I+H, 4H)``, ``bias (4H,)`` -> cuDNN's flat vector
    ``(4H*I + 4H*H + 8H,)`` for one layer, one direction."""
    hidden = kernel.shape[1] // 4
    if kernel.shape != (input_size + hidden, 4 * hidden) or bias.shape != (4 * hidden,):
        raise ValueError(
            f"an LSTM with input {input_size} needs kernel (I+H, 4H) and bias (4H,), "
            f"got {tuple(kernel.shape)} and {tuple(bias.shape)}"
        )
    w_ih, w_hh = kernel[:input_size].T, kernel[input_size:].T
    parts = (w_ih, w_hh, bias, jnp.zeros_like(bias))
    return jnp.concatenate([p.reshape(-1) for p in parts])


def from_cudnn_weights(flat, input_size: int, hidden_size: int):
    """cuDNN's flat vector for one layer, one direction -> zoo's ``(kernel (I+H, 4H),
    bias (4H,))``, the two biases summed."""
    expected = rnn.get_num_params_in_lstm(input_size, hidden_size, 1, False)
    if flat.shape != (expected,):
        raise ValueError(
            f"a cuDNN LSTM of input {input_size}, hidden {hidden_size} has {expected} weights, got {flat.shape}"
        )
    w_ih, w_hh, b_ih, b_hh = (d[0] for d in rnn.unpack_lstm_weights(flat, input_size, hidden_size, 1, False))
    return jnp.concatenate([w_ih.T, w_hh.T], 0), b_ih + b_hh


def lstm_sequence(w, carry, xs, *, reverse: bool = False, return_sequences: bool = True, lengths=None, reference=False):
    """``w`` = {"kernel", "bias" (optional)} (zoo's layout), carry ``(c, h)`` each (B, H), xs (B, T, I)
    -> (final carry (c, h), ys (B, T, H) or None), as `zoo.nn.recurrence.scan_cell` with
    ``lstm_step``: with ``lengths`` (B,), the state is taken at each sequence's own last step
    and later outputs are zero (forward direction only); ``reverse`` runs from T-1 to 0."""
    c, h = carry
    batch, steps, input_size = xs.shape
    hidden = h.shape[-1]
    if reverse and lengths is not None:
        raise ValueError("the cuDNN LSTM runs reversed sequences without lengths only")
    if reverse:
        xs = xs[:, ::-1]
    seq_lengths = jnp.full((batch,), steps, jnp.int32) if lengths is None else jnp.asarray(lengths, jnp.int32)
    bias = w["bias"] if "bias" in w else jnp.zeros(4 * hidden, w["kernel"].dtype)  # use_bias=False
    flat = to_cudnn_weights(w["kernel"], bias, input_size)
    if reference:
        unpacked = rnn.unpack_lstm_weights(flat, input_size, hidden, 1, False)
        ys, h_n, c_n = rnn.lstm_ref(xs, h[None], c[None], *unpacked, seq_lengths, input_size, hidden, 1, 0.0, False)
    else:
        ys, h_n, c_n = rnn.lstm(xs, h[None], c[None], flat, seq_lengths, input_size, hidden, 1, 0.0, False)
    if reverse:
        ys = ys[:, ::-1]
    return (c_n[0], h_n[0]), (ys if return_sequences else None)


def on_gpu() -> bool:
    """Whether the default backend runs cuDNN (CUDA GPUs)."""
    return jax.default_backend() == "gpu" and any(d.platform == "gpu" for d in jax.devices())
