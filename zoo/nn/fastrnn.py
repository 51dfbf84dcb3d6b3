"""Fast whole-sequence LSTM and GRU for CPU: the plain cells of `zoo.nn.recurrence`
(``lstm_step`` without peepholes, ``gru_step`` reset-after) with a hand-written backward
pass that touches less memory.

Why (DESIGN.md): XLA:CPU maps each execution's large temporaries afresh, so every page
touched is a page fault per call, and autodiff of the scanned step keeps ~100 MiB of
residuals at B=64, T=128, H=256. Here the forward scan stores only the gate activations
and the incoming ``c`` and ``h`` (the outputs are ``h`` shifted by one); the backward pass
runs in chunks of ``chunk`` steps: a reverse scan for the gate gradients, then one weight
gradient matmul per chunk, in a small buffer reused by every chunk.

``lstm_sequence(..., native=True)`` and ``gru_sequence(..., native=True)`` run the same
networks through `zoo.native`'s CPU kernels (one FFI call forward, one backward), what the
cells' ``impl="native"`` calls.

The result equals autodiff of the plain step up to float32 round-off. Masking, peepholes,
reset-before GRUs, remat and mixed dtypes are not handled (`lstm_applies` /
`gru_applies`); ``python -m zoo.bench.rnn_speed`` compares it with the scan, Flax, torch.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from zoo import native

DEFAULT_CHUNK = 16


def _chunked_reverse(step, carry, xs_t, per_step, chunk, accumulate, acc):
    """Run ``step(carry, per_step[t]) -> (carry, dg_t)`` backwards over time in chunks, each
    chunk's ``dg`` (C, B, ...) and slices of ``xs_t`` and ``per_step`` going to
    ``accumulate(acc, xs_chunk, per_step_chunk, dg) -> (acc, dx_chunk)`` (residuals read in
    place by index). Returns (carry, acc, dxs (T, B, I))."""
    T = xs_t.shape[0]
    C = max(1, min(int(chunk), T))
    n_full, r = divmod(T, C)

    def run_chunk(state, start, length):
        carry, acc = state

        def inner(carry, t):
            return step(carry, jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, t, 0, False), per_step))

        carry, dg = jax.lax.scan(inner, carry, start + jnp.arange(length), reverse=True)
        piece = lambda a: jax.lax.dynamic_slice_in_dim(a, start, length, 0)
        acc, dx = accumulate(acc, piece(xs_t), jax.tree.map(piece, per_step), dg)
        return (carry, acc), dx

    state = (carry, acc)
    dx_tail = dx_main = None
    if r:  # reverse time: the last r steps first
        state, dx_tail = run_chunk(state, n_full * C, r)
    if n_full:
        state, dx_main = jax.lax.scan(lambda st, k: run_chunk(st, k * C, C), state, jnp.arange(n_full), reverse=True)
        dx_main = dx_main.reshape((n_full * C,) + xs_t.shape[1:])
    parts = [p for p in (dx_main, dx_tail) if p is not None]
    dxs = parts[0] if len(parts) == 1 else jnp.concatenate(parts, 0)
    carry, acc = state
    return carry, acc, dxs


def _outputs(h_prev, h_last):
    """Per-step outputs h_1..h_T from the stored incoming states h_0..h_{T-1} and h_T."""
    return jnp.concatenate([h_prev[1:], h_last[None]], 0)


# --- LSTM: gates (i, f, a, o) as recurrence.lstm_step; kernel (I+H, 4H) = [W; U], bias (4H,)


def _lstm_cell(g, c):
    i, f, a, o = jnp.split(g, 4, axis=-1)
    i, f, a, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(a), jax.nn.sigmoid(o)
    c_new = a * i + f * c
    return c_new, jnp.tanh(c_new) * o, jnp.concatenate([i, f, a, o], -1)


def _lstm_forward(kernel, bias, c0, h0, xs):
    def step(carry, x_t):
        c, h = carry
        c_new, h_new, act = _lstm_cell(jnp.concatenate([x_t, h], -1) @ kernel + bias, c)
        return (c_new, h_new), (h, c, act)

    return jax.lax.scan(step, (c0, h0), xs)  # ((cT, hT), (h_prev, c_prev, acts))


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _lstm(kernel, bias, c0, h0, xs, return_sequences, chunk):
    (cT, hT), (h_prev, _, _) = _lstm_forward(kernel, bias, c0, h0, xs)
    return (cT, hT), (_outputs(h_prev, hT) if return_sequences else None)


def _lstm_fwd(kernel, bias, c0, h0, xs, return_sequences, chunk):
    (cT, hT), (h_prev, c_prev, acts) = _lstm_forward(kernel, bias, c0, h0, xs)
    out = (cT, hT), (_outputs(h_prev, hT) if return_sequences else None)
    return out, (kernel, xs, h_prev, c_prev, acts)


def _lstm_bwd(return_sequences, chunk, res, cotangents):
    kernel, xs, h_prev, c_prev, acts = res
    (dcT, dhT), dys = cotangents
    I = xs.shape[-1]
    H = h_prev.shape[-1]
    w_x = kernel[:I]
    w_h_t = kernel[I:].T  # (4H, H): laid out once for the per-step dgates @ U^T

    def step(carry, inp):
        dc, dh = carry
        if return_sequences:
            dy, cp, act = inp
            dh = dh + dy
        else:
            cp, act = inp
        i, f, a, o = jnp.split(act, 4, axis=-1)
        tc = jnp.tanh(a * i + f * cp)
        do = dh * tc
        dc = dc + dh * o * (1.0 - tc * tc)
        dg = jnp.concatenate(
            [dc * a * i * (1.0 - i), dc * cp * f * (1.0 - f), dc * i * (1.0 - a * a), do * o * (1.0 - o)], -1
        )
        return (dc * f, dg @ w_h_t), dg

    def accumulate(acc, x_c, p_c, dg):
        dk, db = acc
        hp_c = p_c[0]
        n = dg.shape[0] * dg.shape[1]
        dg2 = dg.reshape(n, dg.shape[-1])
        lhs = jnp.concatenate([x_c.reshape(n, I), hp_c.reshape(n, H)], -1)
        dk = dk + lhs.T @ dg2
        db = db + dg2.sum(0)
        return (dk, db), (dg2 @ w_x.T).reshape(x_c.shape)

    # y_t is step t's new h: its cotangent joins dh as the reverse scan enters step t.
    # h_prev rides along only for the chunk's dW; step() sees (dys?, c_prev, acts).
    inner = (dys, c_prev, acts) if return_sequences else (c_prev, acts)

    def step_with_hp(carry, inp):
        return step(carry, inp[1])

    acc0 = (jnp.zeros_like(kernel), jnp.zeros(kernel.shape[-1], kernel.dtype))
    (dc0, dh0), (dkernel, dbias), dxs = _chunked_reverse(
        step_with_hp, (dcT, dhT), xs, (h_prev, inner), chunk, accumulate, acc0
    )
    return dkernel, dbias, dc0, dh0, dxs


_lstm.defvjp(_lstm_fwd, _lstm_bwd)


# The same LSTM through zoo.native's kernels (float32 on the CPU): one FFI call forward,
# one backward.


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _native_lstm(kernel, bias, c0, h0, xs, return_sequences):
    hs, cs, _ = native.lstm_forward(xs, kernel, bias, c0, h0)
    return (cs[-1], hs[-1]), (hs[1:] if return_sequences else None)


def _native_lstm_fwd(kernel, bias, c0, h0, xs, return_sequences):
    hs, cs, acts = native.lstm_forward(xs, kernel, bias, c0, h0)
    out = (cs[-1], hs[-1]), (hs[1:] if return_sequences else None)
    return out, (kernel, bias, xs, hs, cs, acts)


def _native_lstm_bwd(return_sequences, res, cotangents):
    kernel, bias, xs, hs, cs, acts = res
    (dcT, dhT), dys = cotangents
    if not return_sequences:
        dys = jnp.zeros((0,), xs.dtype)
    dkernel, dbias, dxs, dc0, dh0 = native.lstm_backward(xs, kernel, bias, hs, cs, acts, dys, dcT, dhT)
    return dkernel, dbias, dc0, dh0, dxs


_native_lstm.defvjp(_native_lstm_fwd, _native_lstm_bwd)


# --- GRU, reset-after (PyTorch) form as recurrence.gru_step(reset_after=True)


def _gru_forward(w_i, w_h, b, b_hn, h0, xs, keep):
    H = h0.shape[-1]

    def step(h, x_t):
        gx = x_t @ w_i + b
        gh = h @ w_h
        r = jax.nn.sigmoid(gx[:, :H] + gh[:, :H])
        z = jax.nn.sigmoid(gx[:, H : 2 * H] + gh[:, H : 2 * H])
        q = gh[:, 2 * H :] + b_hn
        n = jnp.tanh(gx[:, 2 * H :] + r * q)
        h_new = (1.0 - z) * n + z * h if keep else (1.0 - z) * h + z * n
        return h_new, (h, jnp.concatenate([r, z, n, q], -1))

    return jax.lax.scan(step, h0, xs)  # (hT, (h_prev, acts))


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7, 8))
def _gru(w_i, w_h, b, b_hn, h0, xs, keep, return_sequences, chunk):
    hT, (h_prev, _) = _gru_forward(w_i, w_h, b, b_hn, h0, xs, keep)
    return hT, (_outputs(h_prev, hT) if return_sequences else None)


def _gru_fwd(w_i, w_h, b, b_hn, h0, xs, keep, return_sequences, chunk):
    hT, (h_prev, acts) = _gru_forward(w_i, w_h, b, b_hn, h0, xs, keep)
    out = hT, (_outputs(h_prev, hT) if return_sequences else None)
    return out, (w_i, w_h, xs, h_prev, acts)


def _gru_bwd(keep, return_sequences, chunk, res, cotangents):
    w_i, w_h, xs, h_prev, acts = res
    dhT, dys = cotangents
    I = xs.shape[-1]
    H = h_prev.shape[-1]
    w_h_t = w_h.T  # (3H, H)

    def step(dh, inp):
        if return_sequences:
            hp, (dy, act) = inp
            dh = dh + dy
        else:
            hp, (act,) = inp
        r, z, n, q = jnp.split(act, 4, axis=-1)
        if keep:  # h' = (1-z) n + z h
            dn, dz, dh_direct = dh * (1.0 - z), dh * (hp - n), dh * z
        else:  # h' = (1-z) h + z n
            dn, dz, dh_direct = dh * z, dh * (n - hp), dh * (1.0 - z)
        dp = dn * (1.0 - n * n)
        ds_r = dp * q * r * (1.0 - r)
        ds_z = dz * z * (1.0 - z)
        dq = dp * r
        dgx = jnp.concatenate([ds_r, ds_z, dp], -1)
        dgh = jnp.concatenate([ds_r, ds_z, dq], -1)
        return dh_direct + dgh @ w_h_t, (dgx, dgh)

    def accumulate(acc, x_c, p_c, dg):
        dwi, dwh, db, dbhn = acc
        hp_c = p_c[0]
        dgx, dgh = dg
        n = dgx.shape[0] * dgx.shape[1]
        dgx2, dgh2 = dgx.reshape(n, 3 * H), dgh.reshape(n, 3 * H)
        dwi = dwi + x_c.reshape(n, I).T @ dgx2
        dwh = dwh + hp_c.reshape(n, H).T @ dgh2
        db = db + dgx2.sum(0)
        dbhn = dbhn + dgh2[:, 2 * H :].sum(0)
        return (dwi, dwh, db, dbhn), (dgx2 @ w_i.T).reshape(x_c.shape)

    inner = (dys, acts) if return_sequences else (acts,)
    acc0 = (jnp.zeros_like(w_i), jnp.zeros_like(w_h), jnp.zeros(3 * H, w_i.dtype), jnp.zeros(H, w_i.dtype))
    dh0, (dwi, dwh, db, dbhn), dxs = _chunked_reverse(step, dhT, xs, (h_prev, inner), chunk, accumulate, acc0)
    return dwi, dwh, db, dbhn, dh0, dxs


_gru.defvjp(_gru_fwd, _gru_bwd)


# The same GRU through zoo.native's kernels.


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def _native_gru(w_i, w_h, b, b_hn, h0, xs, keep, return_sequences):
    hs, _ = native.gru_forward(xs, w_i, w_h, b, b_hn, h0, keep=keep)
    return hs[-1], (hs[1:] if return_sequences else None)


def _native_gru_fwd(w_i, w_h, b, b_hn, h0, xs, keep, return_sequences):
    hs, acts = native.gru_forward(xs, w_i, w_h, b, b_hn, h0, keep=keep)
    return (hs[-1], (hs[1:] if return_sequences else None)), (w_i, w_h, xs, hs, acts)


def _native_gru_bwd(keep, return_sequences, res, cotangents):
    w_i, w_h, xs, hs, acts = res
    dhT, dys = cotangents
    if not return_sequences:
        dys = jnp.zeros((0,), xs.dtype)
    dwi, dwh, db, dbhn, dxs, dh0 = native.gru_backward(xs, w_i, w_h, hs, acts, dys, dhT, keep=keep)
    return dwi, dwh, db, dbhn, dh0, dxs


_native_gru.defvjp(_native_gru_fwd, _native_gru_bwd)


# --- Public entry points


def _run(fn, xs, time_major, reverse, return_sequences):
    xs_t = xs if time_major else jnp.swapaxes(xs, 0, 1)
    if reverse:
        xs_t = jnp.flip(xs_t, 0)
    carry, ys = fn(xs_t)
    if ys is not None:
        if reverse:
            ys = jnp.flip(ys, 0)
        if not time_major:
            ys = jnp.swapaxes(ys, 0, 1)
    return carry, ys


def lstm_sequence(
    w, carry, xs, *, reverse=False, return_sequences=True, time_major=False, chunk=DEFAULT_CHUNK, native=False
):
    """The plain LSTM over a whole sequence, what ``scan_cell(partial(lstm_step, w), carry,
    xs, reverse=...)`` returns: w {"kernel": (I+H, 4H), "bias": (4H,) optional}, carry (c, h)
    each (B, H), xs (B, T, I) or (T, B, I) with ``time_major`` -> ((c, h), ys or None).
    ``native``: through `zoo.native`'s CPU kernels (float32; RuntimeError where they
    cannot run) instead of the scan with the hand-written backward pass; differentiable
    once, in reverse mode (for higher derivatives run the cell with ``impl="scan"``).
    """
    c0, h0 = carry
    kernel = w["kernel"]
    bias = w["bias"] if "bias" in w else jnp.zeros(kernel.shape[-1], kernel.dtype)
    if native:
        sequence = lambda xs_t: _native_lstm(kernel, bias, c0, h0, xs_t, bool(return_sequences))
    else:
        sequence = lambda xs_t: _lstm(kernel, bias, c0, h0, xs_t, bool(return_sequences), int(chunk))
    return _run(sequence, xs, time_major, reverse, return_sequences)


def gru_sequence(
    w,
    h,
    xs,
    *,
    update_convention="keep",
    reverse=False,
    return_sequences=True,
    time_major=False,
    chunk=DEFAULT_CHUNK,
    native=False,
):
    """The reset-after GRU (`recurrence.gru_step(reset_after=True)`) over a whole sequence.

    w: {"input_kernel": (I, 3H), "recurrent_kernel": (H, 3H), "bias": (3H,) optional,
    "recurrent_bias": (H,) optional}; h (B, H). Returns (h, ys) as `lstm_sequence`;
    ``native`` as there.
    """
    if update_convention not in ("keep", "take"):
        raise ValueError(f"update_convention must be 'keep' or 'take', got {update_convention!r}")
    w_i, w_h = w["input_kernel"], w["recurrent_kernel"]
    H = w_h.shape[0]
    b = w["bias"] if "bias" in w else jnp.zeros(3 * H, w_i.dtype)
    b_hn = w["recurrent_bias"] if "recurrent_bias" in w else jnp.zeros(H, w_i.dtype)
    keep = update_convention == "keep"
    if native:
        sequence = lambda xs_t: _native_gru(w_i, w_h, b, b_hn, h, xs_t, keep, bool(return_sequences))
    else:
        sequence = lambda xs_t: _gru(w_i, w_h, b, b_hn, h, xs_t, keep, bool(return_sequences), int(chunk))
    return _run(sequence, xs, time_major, reverse, return_sequences)


def _same_dtype(*trees):
    leaves = [x for t in trees for x in jax.tree.leaves(t)]
    return len({jnp.result_type(x) for x in leaves}) == 1


def lstm_applies(w, carry, xs, *, peephole=None, lengths=None, remat=False) -> bool:
    """Whether `lstm_sequence` computes what the plain scan would for these arguments."""
    return (
        peephole is None
        and lengths is None
        and not remat
        and set(w) <= {"kernel", "bias"}
        and _same_dtype(w, carry, xs)
    )


def gru_applies(w, h, xs, *, reset_after=True, lengths=None, remat=False) -> bool:
    """Whether `gru_sequence` computes what the plain scan would for these arguments."""
    return (
        reset_after
        and lengths is None
        and not remat
        and set(w) <= {"input_kernel", "recurrent_kernel", "bias", "recurrent_bias"}
        and _same_dtype(w, h, xs)
    )
