"""Pooling over the spatial axes of NHWC maps: the one max pool (optionally returning
its argmax indices), max unpooling, and adaptive average pooling.

Max pooling follows ``flax.linen.max_pool``: padding cells hold the dtype's lowest value
(-inf for floats) so they never win, the output size is the floor of
`zoo.nn.shapes.conv_output_size`, and each window's gradient goes to the *first* of its
maximal elements in row-major order, as XLA's select-and-scatter does. On CPU it is
computed from reshapes (non-overlapping windows) or a running maximum of strided slices
(overlapping or padded windows) with an explicit backward pass: XLA CPU rewrites
``nn.max_pool``'s select-and-scatter backward into iotas and a scatter, which was slower
in LeNet's and ResNet's training steps.

Index convention (``return_indices=True``): ``indices`` has the pooled shape
``(B, Ho, Wo, C)``, int32, and holds the flat position ``row * W + col`` of the window's
maximum in its own ``(H, W)`` input plane (unpadded coordinates; the first maximum in
row-major order on ties). This is PyTorch's convention for
``max_pool2d(..., return_indices=True)`` on NCHW: transposing our indices to NCHW gives
torch's, and `max_unpool` takes them as ``max_unpool2d`` does.

`max_unpool` is the adjoint of that gather: every pooled value is added at its index in a
zero map. For non-overlapping windows (SegNet's 2x2/2) each index appears once, so this
equals torch's ``max_unpool2d``; where overlapping windows share one argmax, torch keeps
one of the values and we add them, which makes ``max_unpool(dy, indices, shape)`` exactly
the gradient of the max pool for output cotangent ``dy``.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from zoo.nn.shapes import conv_output_size, conv_padding, pair

POOL_IMPLS = ("auto", "xla", "slices")

__all__ = ["POOL_IMPLS", "adaptive_avg_pool", "max_pool", "max_unpool"]


# --------------------------------------------------------------------------------------
# Max pooling
# --------------------------------------------------------------------------------------


def _lowest(dtype):
    """The padding value that never wins a max: -inf, or the integer dtype's minimum."""
    if jnp.issubdtype(dtype, jnp.floating):
        return -jnp.inf
    return jnp.iinfo(dtype).min


def _pool_geometry(x, window, stride, padding):
    (kh, kw), (sh, sw) = pair(window, "window"), pair(stride, "stride")
    pads = conv_padding(padding, (kh, kw), (sh, sw), x.shape[1:3])
    _, h, w, _ = x.shape
    return (kh, kw), (sh, sw), pads, conv_output_size(h, kh, sh, pads[0]), conv_output_size(w, kw, sw, pads[1])


def _is_tiling(window, stride, pads) -> bool:
    """Windows that tile the map without overlap or padding: pooling is a reshape."""
    return window == stride and pads == ((0, 0), (0, 0))


def _pool_windows(x, window, stride, pads, ho, wo):
    """The kh*kw strided views of the padded input, in row-major window order."""
    (kh, kw), (sh, sw) = window, stride
    b, _, _, c = x.shape
    if any(p for p_ in pads for p in p_):
        x = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=_lowest(x.dtype))
    return [
        lax.slice(x, (0, i, j, 0), (b, i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, c), (1, sh, sw, 1))
        for i in range(kh)
        for j in range(kw)
    ]


def _tiles(x, window, ho, wo):
    """(B, H, W, C) -> (B, Ho, kh, Wo, kw, C), the remainder rows and columns cropped."""
    kh, kw = window
    b, _, _, c = x.shape
    return x[:, : ho * kh, : wo * kw, :].reshape(b, ho, kh, wo, kw, c)


def _max_pool_forward(x, window, stride, pads):
    _, _, _, ho, wo = _pool_geometry(x, window, stride, pads)
    if _is_tiling(window, stride, pads):
        return _tiles(x, window, ho, wo).max(axis=(2, 4))
    return functools.reduce(jnp.maximum, _pool_windows(x, window, stride, pads, ho, wo))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(x, window, stride, pads):
    return _max_pool_forward(x, window, stride, pads)


def _max_pool_fwd(x, window, stride, pads):
    y = _max_pool_forward(x, window, stride, pads)
    return y, (x, y)


def _max_pool_bwd(window, stride, pads, residuals, dy):
    """Each window's gradient goes to the first (row-major) of its maximal elements."""
    x, y = residuals
    (kh, kw), (sh, sw) = window, stride
    b, h, w, c = x.shape
    ho, wo = y.shape[1:3]
    zero = jnp.zeros((), dy.dtype)
    if _is_tiling(window, stride, pads):
        xc = _tiles(x, window, ho, wo)
        ym, g = y[:, :, None, :, None, :], dy[:, :, None, :, None, :]
        taken = jnp.zeros(ym.shape, bool)
        parts = []
        for i in range(kh):
            row = []
            for j in range(kw):
                hit = (xc[:, :, i : i + 1, :, j : j + 1, :] == ym) & ~taken
                taken = taken | hit
                row.append(jnp.where(hit, g, zero))
            parts.append(jnp.concatenate(row, axis=4) if kw > 1 else row[0])
        dx = (jnp.concatenate(parts, axis=2) if kh > 1 else parts[0]).reshape(b, ho * kh, wo * kw, c)
        if (ho * kh, wo * kw) != (h, w):
            dx = jnp.pad(dx, ((0, 0), (0, h - ho * kh), (0, w - wo * kw), (0, 0)))
        return (dx,)
    views = _pool_windows(x, window, stride, pads, ho, wo)
    hp, wp = h + pads[0][0] + pads[0][1], w + pads[1][0] + pads[1][1]
    taken = jnp.zeros(y.shape, bool)
    total = None
    for n, view in enumerate(views):
        i, j = divmod(n, kw)
        hit = (view == y) & ~taken
        taken = taken | hit
        # Scatter window offset (i, j)'s share back onto the padded grid by interior padding.
        config = (
            (0, 0, 0),
            (i, hp - i - sh * (ho - 1) - 1, sh - 1),
            (j, wp - j - sw * (wo - 1) - 1, sw - 1),
            (0, 0, 0),
        )
        placed = lax.pad(jnp.where(hit, dy, zero), zero, config)
        total = placed if total is None else total + placed
    dx = lax.slice(total, (0, pads[0][0], pads[1][0], 0), (b, pads[0][0] + h, pads[1][0] + w, c))
    return (dx,)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def _argmax_indices(x, window, stride, pads, ho, wo):
    """Flat ``row * W + col`` input positions of each window's first maximum: (B, Ho, Wo, C) int32."""
    (kh, kw), (sh, sw) = window, stride
    w = x.shape[2]
    if _is_tiling(window, stride, pads):
        b, c = x.shape[0], x.shape[3]
        tiles = _tiles(x, window, ho, wo).transpose(0, 1, 3, 5, 2, 4)  # (B, Ho, Wo, C, kh, kw)
        offset = jnp.argmax(tiles.reshape(b, ho, wo, c, kh * kw), axis=-1)  # the first maximum
        di, dj = offset // kw, offset % kw
    else:
        # A running maximum with a strict ">" keeps the first of equal maxima.
        views = _pool_windows(x, window, stride, pads, ho, wo)
        best, offset = views[0], jnp.zeros(views[0].shape, jnp.int32)
        for n, view in enumerate(views[1:], start=1):
            better = view > best
            best = jnp.where(better, view, best)
            offset = jnp.where(better, n, offset)
        di, dj = offset // kw, offset % kw
    rows = (jnp.arange(ho, dtype=jnp.int32) * sh - pads[0][0])[:, None, None]
    cols = (jnp.arange(wo, dtype=jnp.int32) * sw - pads[1][0])[None, :, None]
    return ((rows + di) * w + cols + dj).astype(jnp.int32)


def max_pool(x, window, stride=None, padding=0, *, return_indices: bool = False, impl: str = "auto"):
    """Max pooling over H, W of an NHWC map: ``x: (B, H, W, C) -> (B, Ho, Wo, C)``.

    ``window``, ``stride``: ints or (h, w) pairs (``stride`` defaults to ``window``);
    ``padding``: an int, ((top, bottom), (left, right)), "SAME" or "VALID"; padding cells
    never win. ``Ho = conv_output_size(H, kh, sh, (top, bottom))``, likewise Wo.

    ``return_indices=True`` returns ``(pooled, indices)``, ``indices`` (B, Ho, Wo, C)
    int32 flat positions ``row * W + col`` of each maximum (see the module docstring),
    for `max_unpool`.

    ``impl``: "xla" (``nn.max_pool``: reduce_window, select_and_scatter backward),
    "slices" (reshape-and-max for non-overlapping windows, a max of strided slices
    otherwise; explicit first-maximum backward) or "auto" ("slices" on CPU, "xla"
    elsewhere). Values, gradients and indices are the same either way.
    """
    if impl not in POOL_IMPLS:
        raise ValueError(f"unknown pool impl {impl!r}; expected one of {POOL_IMPLS}")
    x = jnp.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"max_pool expects (B, H, W, C) input, got shape {x.shape}")
    window_, stride_, pads, ho, wo = _pool_geometry(x, window, window if stride is None else stride, padding)
    if ho <= 0 or wo <= 0:
        raise ValueError(f"max_pool window {window_} larger than the padded input {x.shape[1:3]}")
    if impl == "auto":
        impl = "slices" if jax.default_backend() == "cpu" else "xla"
    if impl == "xla":
        pooled = nn.max_pool(x, window_, stride_, pads)
    else:
        pooled = _max_pool(x, window_, stride_, pads)
    if not return_indices:
        return pooled
    return pooled, _argmax_indices(lax.stop_gradient(x), window_, stride_, pads, ho, wo)


def max_unpool(pooled, indices, output_shape):
    """Each pooled value put back at its remembered argmax, zeros elsewhere (the unpooling
    of a SegNet / convolutional auto-encoder decoder).

    ``pooled``: (B, Ho, Wo, C); ``indices``: (B, Ho, Wo, C) int flat positions ``row * W +
    col`` from ``max_pool(..., return_indices=True)``; ``output_shape``: the pooled map's
    input size, (H, W) or (B, H, W, C). Returns (B, H, W, C) in ``pooled``'s dtype. Values
    that share an index are added (the adjoint of the pool's gather; see the module
    docstring). Differentiable in ``pooled``; jit- and vmap-able.
    """
    pooled, indices = jnp.asarray(pooled), jnp.asarray(indices)
    if pooled.ndim != 4 or indices.shape != pooled.shape:
        raise ValueError(
            f"max_unpool expects pooled and indices of one shape (B, Ho, Wo, C), got {pooled.shape} and {indices.shape}"
        )
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise ValueError(f"max_unpool indices must be integers, got {indices.dtype}")
    output_shape = tuple(int(d) for d in output_shape)
    if len(output_shape) == 4:
        if (output_shape[0], output_shape[3]) != (pooled.shape[0], pooled.shape[3]):
            raise ValueError(
                f"max_unpool output_shape {output_shape} does not match pooled {pooled.shape} in batch or channels"
            )
        output_shape = output_shape[1:3]
    if len(output_shape) != 2 or min(output_shape) < 1:
        raise ValueError(f"max_unpool output_shape must be (H, W) or (B, H, W, C), got {output_shape}")
    b, ho, wo, c = pooled.shape
    h, w = output_shape
    if h % ho or w % wo:
        return _unpool_scatter(pooled, indices, h, w)
    # Indices from a pool whose windows tile the map (SegNet's 2x2/2) each lie in their own
    # window: a select per window cell, which XLA fuses (its scatter, and the gather of its
    # gradient, run element by element). Any index elsewhere takes the scatter.
    kh, kw = h // ho, w // wo
    rows = jnp.arange(ho, dtype=indices.dtype)[:, None, None, None, None] * kh
    cols = jnp.arange(wo, dtype=indices.dtype)[None, None, :, None, None] * kw
    offset_rows = jnp.arange(kh, dtype=indices.dtype)[None, :, None, None, None]
    offset_cols = jnp.arange(kw, dtype=indices.dtype)[None, None, None, :, None]
    cells = (rows + offset_rows) * w + cols + offset_cols  # (Ho, kh, Wo, kw, 1): each cell's flat position
    home_rows = jnp.arange(ho, dtype=indices.dtype)[None, :, None, None]
    home_cols = jnp.arange(wo, dtype=indices.dtype)[None, None, :, None]
    home = (indices // w // kh == home_rows) & (indices % w // kw == home_cols)
    return lax.cond(
        jnp.all(home & (indices >= 0) & (indices < h * w)),
        lambda p, i: _unpool_tiles(p, i, cells, h, w),
        lambda p, i: _unpool_scatter(p, i, h, w),
        pooled,
        indices,
    )


def _unpool_tiles(pooled, indices, cells, h, w):
    b, ho, wo, c = pooled.shape
    hit = indices[:, :, None, :, None, :] == cells[None]
    out = jnp.where(hit, pooled[:, :, None, :, None, :], jnp.zeros((), pooled.dtype))
    return out.reshape(b, h, w, c)


def _unpool_scatter(pooled, indices, h, w):
    b, ho, wo, c = pooled.shape
    flat = indices.reshape(b, ho * wo, c)
    batch = jnp.arange(b)[:, None, None]
    channel = jnp.arange(c)[None, None, :]
    out = jnp.zeros((b, h * w, c), pooled.dtype)
    # Out-of-range indices are dropped rather than clamped onto a border cell.
    out = out.at[batch, flat, channel].add(pooled.reshape(b, ho * wo, c), mode="drop")
    return out.reshape(b, h, w, c)


# --------------------------------------------------------------------------------------
# Adaptive average pooling
# --------------------------------------------------------------------------------------


def _adaptive_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) averaging matrix: row i averages inputs floor(i n_in/n_out) .. ceil((i+1) n_in/n_out)-1."""
    m = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        start, end = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool(x, output_size: tuple[int, int]):
    """PyTorch's ``AdaptiveAvgPool2d`` for NHWC: (B, H, W, C) -> (B, oh, ow, C).

    Output cell (i, j) averages rows ``floor(i H/oh) .. ceil((i+1) H/oh) - 1`` and the
    matching columns (so windows may overlap when H is not a multiple of oh, and an input
    smaller than the output is repeated). Identity when (H, W) == output_size.
    """
    oh, ow = output_size
    h, w = x.shape[-3], x.shape[-2]
    if (h, w) == (oh, ow):
        return x
    ph = jnp.asarray(_adaptive_matrix(h, oh), x.dtype)
    pw = jnp.asarray(_adaptive_matrix(w, ow), x.dtype)
    return jnp.einsum("ih,jw,...hwc->...ijc", ph, pw, x)
