"""Fast 2-D convolution for CPU training steps (NHWC, HWIO).

On the 2-core x86 CPUs this project is benchmarked on, XLA's convolutions are slow (Eigen
for small ones, YNNPACK 2-5x slower still for larger ones), while its matmuls run near
peak. This module computes ``lax.conv_general_dilated``'s convolution from matmuls, with
matmul backward passes, in three ways, and a fourth through a kernel of zoo's own:

* *im2col* (`conv2d_im2col`): the ``kh * kw`` shifted input slices as one patch matrix
  times the kernel reshaped to ``(kh * kw * C_in, C_out)``; custom_vjp keeping only the
  input; big patch matrices go in batch chunks (a scan) to stay in cache.
* *banded* (`conv2d_banded`): per block of ``block_w`` output columns, ``kh`` contiguous
  row windows times a block-Toeplitz kernel (`banded_kernel`): far fewer copies for few
  input channels, at the price of the band's zeros. Autodiff backward.
* *winograd* (`conv2d_winograd`): 3x3 stride-1 by F(2x2, 3x3), 16 matmuls over
  transformed 4x4 tiles; custom_vjp, both gradients in the Winograd domain.
* *native* (`conv2d_native`): stride-1 convolutions through zoo's own CPU kernel
  (`zoo.native.conv2d`, float32), where XLA's convolution is slowest: narrow channel
  counts (an autoencoder's, a U-Net's, a first or last layer).

`conv2d` dispatches (``impl="auto"``: `choose_conv_impl`); `Conv` is `flax.linen.Conv`
with the same fields and variables plus ``conv_impl``. All ways agree with the plain path
to float32 rounding (tests/nn/test_fastconv.py).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from zoo import native, runtime
from zoo.nn.shapes import Pads, conv_output_size, conv_padding, pair

CONV_IMPLS = ("auto", "xla", "im2col", "banded", "winograd", "native")

_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


# --- Convolution


def conv2d_xla(x, kernel, strides=1, padding="VALID", precision=None):
    """``lax.conv_general_dilated`` on NHWC inputs and HWIO kernels (the plain path)."""
    pads = conv_padding(padding, kernel.shape[:2], strides, x.shape[1:3])
    return lax.conv_general_dilated(
        x, kernel, pair(strides, "strides"), pads, dimension_numbers=_DIMENSION_NUMBERS, precision=precision
    )


def im2col(x, kernel_size, strides=1, padding: Pads = ((0, 0), (0, 0))):
    """(B, H, W, C) -> patches (B, Ho, Wo, kh * kw * C), ordered (i, j, c) like an HWIO
    kernel reshaped to (kh * kw * C, O): entry [b, y, x, (i * kw + j) * C + c] is
    ``padded[b, y * sh + i, x * sw + j, c]``."""
    (kh, kw), (sh, sw) = pair(kernel_size, "kernel_size"), pair(strides, "strides")
    b, h, w, c = x.shape
    ho, wo = conv_output_size(h, kh, sh, padding[0]), conv_output_size(w, kw, sw, padding[1])
    if any(p for pair in padding for p in pair):
        x = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
    cols = [
        lax.slice(x, (0, i, j, 0), (b, i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, c), (1, sh, sw, 1))
        for i in range(kh)
        for j in range(kw)
    ]
    return jnp.concatenate(cols, axis=-1) if len(cols) > 1 else cols[0]


def windows_tile(kernel_size, strides, padding: Pads, image_hw, windows_hw) -> bool:
    """Whether ``windows_hw`` windows of ``kernel_size`` at ``strides`` cover the unpadded
    ``image_hw`` once each, side by side: then `col2im` is a reshape."""
    (kh, kw), (sh, sw) = pair(kernel_size, "kernel_size"), pair(strides, "strides")
    return (
        (kh, kw) == (sh, sw)
        and (windows_hw[0] * kh, windows_hw[1] * kw) == tuple(image_hw)
        and not any(p for side in padding for p in side)
    )


def col2im(patch_grads, input_shape, kernel_size, strides=1, padding: Pads = ((0, 0), (0, 0))):
    """The transpose of `im2col`: (B, Ho, Wo, kh * kw * C) -> (B, H, W, C), each patch
    entry added back onto the input cell it was read from."""
    (kh, kw), (sh, sw) = pair(kernel_size, "kernel_size"), pair(strides, "strides")
    b, h, w, c = input_shape
    ho, wo = patch_grads.shape[1:3]
    if windows_tile((kh, kw), (sh, sw), padding, (h, w), (ho, wo)):
        # One entry per cell (U-Net's 2x2/2 up-convolution): a reshape.
        return patch_grads.reshape(b, ho, wo, kh, kw, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
    hp, wp = h + padding[0][0] + padding[0][1], w + padding[1][0] + padding[1][1]
    zero = jnp.zeros((), patch_grads.dtype)
    total = None
    for n in range(kh * kw):
        i, j = divmod(n, kw)
        piece = lax.slice_in_dim(patch_grads, n * c, (n + 1) * c, axis=3)
        config = (
            (0, 0, 0),
            (i, hp - i - sh * (ho - 1) - 1, sh - 1),
            (j, wp - j - sw * (wo - 1) - 1, sw - 1),
            (0, 0, 0),
        )
        placed = lax.pad(piece, zero, config)
        total = placed if total is None else total + placed
    return lax.slice(total, (0, padding[0][0], padding[1][0], 0), (b, padding[0][0] + h, padding[1][0] + w, c))


def _matmul(a, b, precision):
    """(..., K) @ (K, N)."""
    return lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())), precision=precision)


# XLA:CPU's dot contracts a long axis into a small output slowly: a weight gradient's sum
# over every pixel (B=16 64x64: (65536, 16)^T (65536, 4) 1.05 ms against OpenBLAS's 0.44;
# (16384, 64)^T (16384, 32) 1.66 against 1.13), not a large one ((65536, 64)^T (65536, 64)
# 9.0 against 10.7).
_SMALL_GRADIENT = 64 * 64


def weight_gradient(a, b, precision=None):
    """a^T @ b for a (K, M) and b (K, N), the sum over K rows (pixels) of a weight
    gradient: through zoo's own matmul (OpenBLAS) on the CPU in float32 when the (M, N)
    output is smaller than 64x64 and K is at least 65536 (a 1x1 conv's over 64x64 maps,
    B=16), else XLA's dot. (From 4096 rows, which adds a U-Net's 2x2/2 up-convolutions,
    the U-Net step read 0.85-0.92 of torch against 0.89-0.94: no gain.)"""
    small = a.shape[1] * b.shape[1] < _SMALL_GRADIENT and a.shape[0] >= 16 * _SMALL_GRADIENT
    if small and jax.default_backend() == "cpu" and a.dtype == b.dtype == jnp.float32 and native.available():
        return native.matmul(a, b, True, False)
    return lax.dot_general(a, b, (((0,), (0,)), ((), ())), precision=precision)


# A patch matrix over PATCH_WHOLE_BYTES is built one batch chunk of at most
# PATCH_CHUNK_BYTES at a time, to stay in cache (fastest on ResNet-18's convolutions).
PATCH_CHUNK_BYTES = 6 * 2**20
PATCH_WHOLE_BYTES = 10 * 2**20


def _is_pointwise(kernel_shape, pads) -> bool:
    return tuple(kernel_shape[:2]) == (1, 1) and pads == ((0, 0), (0, 0))


def _patches(x, kernel_shape, strides, pads):
    if _is_pointwise(kernel_shape, pads):
        return x if strides == (1, 1) else x[:, :: strides[0], :: strides[1], :]
    return im2col(x, kernel_shape[:2], strides, pads)


def _im2col_forward(x, kernel, strides, pads, precision):
    kh, kw, c, o = kernel.shape
    patches = _patches(x, kernel.shape, strides, pads)
    y = _matmul(patches.reshape(-1, kh * kw * c), kernel.reshape(kh * kw * c, o), precision)
    return y.reshape(*patches.shape[:3], o)


def _im2col_backward(x, kernel, dy, strides, pads, precision):
    """(dx, dkernel) of `_im2col_forward` for the output cotangent ``dy``."""
    kh, kw, c, o = kernel.shape
    k = kh * kw * c
    patches = _patches(x, kernel.shape, strides, pads)
    dkernel = weight_gradient(patches.reshape(-1, k), dy.reshape(-1, o), precision).reshape(kernel.shape)
    dpatches = lax.dot_general(dy, kernel.reshape(k, o), (((3,), (1,)), ((), ())), precision=precision)
    if _is_pointwise(kernel.shape, pads) and strides == (1, 1):
        return dpatches, dkernel
    return col2im(dpatches, x.shape, (kh, kw), strides, pads), dkernel


def _num_chunks(x_shape, kernel_shape, strides, pads, itemsize) -> int:
    """Batch chunks for the im2col convolution: 1 if the patches fit in PATCH_WHOLE_BYTES
    (or there are none: pointwise), else the fewest within PATCH_CHUNK_BYTES each."""
    if _is_pointwise(kernel_shape, pads):
        return 1
    b, h, w, c = x_shape
    kh, kw = kernel_shape[:2]
    per_example = (
        conv_output_size(h, kh, strides[0], pads[0]) * conv_output_size(w, kw, strides[1], pads[1]) * kh * kw * c
    )
    if b * per_example * itemsize <= PATCH_WHOLE_BYTES:
        return 1
    for n in range(1, b + 1):
        if b % n == 0 and (b // n) * per_example * itemsize <= PATCH_CHUNK_BYTES:
            return n
    return b


def _split(a, n):
    return a.reshape(n, a.shape[0] // n, *a.shape[1:])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _conv_im2col(x, kernel, strides, pads, precision, chunks):
    return _conv_im2col_fwd(x, kernel, strides, pads, precision, chunks)[0]


def _conv_im2col_fwd(x, kernel, strides, pads, precision, chunks):
    if chunks == 1:
        y = _im2col_forward(x, kernel, strides, pads, precision)
    else:
        ys = lax.map(lambda xc: _im2col_forward(xc, kernel, strides, pads, precision), _split(x, chunks))
        y = ys.reshape(x.shape[0], *ys.shape[2:])
    return y, (x, kernel)


def _conv_im2col_bwd(strides, pads, precision, chunks, residuals, dy):
    x, kernel = residuals
    dy = dy.astype(x.dtype)
    if chunks == 1:
        dx, dkernel = _im2col_backward(x, kernel, dy, strides, pads, precision)
    else:

        def body(acc, chunk):
            dxc, dkc = _im2col_backward(chunk[0], kernel, chunk[1], strides, pads, precision)
            return acc + dkc, dxc

        dkernel, dxs = lax.scan(body, jnp.zeros(kernel.shape, dy.dtype), (_split(x, chunks), _split(dy, chunks)))
        dx = dxs.reshape(x.shape)
    return dx.astype(x.dtype), dkernel.astype(kernel.dtype)


_conv_im2col.defvjp(_conv_im2col_fwd, _conv_im2col_bwd)


def conv2d_im2col(x, kernel, strides=1, padding="VALID", precision=None, chunks: int | None = None):
    """`conv2d_xla`'s convolution as im2col + one matmul; backward: kernel gradient
    ``patches^T @ dy``, input gradient `col2im` of ``dy @ W^T``. ``chunks``: None picks."""
    strides = pair(strides, "strides")
    pads = conv_padding(padding, kernel.shape[:2], strides, x.shape[1:3])
    if chunks is None:
        chunks = _num_chunks(x.shape, kernel.shape, strides, pads, jnp.dtype(x.dtype).itemsize)
    if x.shape[0] % chunks:
        raise ValueError(f"chunks={chunks} does not divide the batch of {x.shape[0]}")
    return _conv_im2col(x, kernel, strides, pads, precision, int(chunks))


def banded_kernel(kernel, block_w: int, stride_w: int = 1):
    """The kernel of `conv2d_banded` as a matrix: (kh, kw, C, O) -> (kh * win * C,
    block_w * O) with ``win = stride_w * (block_w - 1) + kw``; entry [(i, p, c), (v, o)] is
    ``kernel[i, p - stride_w * v, c, o]`` (zero where that index is outside 0..kw-1): a
    block-Toeplitz matrix that maps ``win`` input columns to ``block_w`` output columns."""
    kh, kw, c, o = kernel.shape
    win = stride_w * (block_w - 1) + kw
    columns = [
        jnp.pad(kernel, ((0, 0), (stride_w * v, win - stride_w * v - kw), (0, 0), (0, 0))) for v in range(block_w)
    ]
    return jnp.stack(columns, axis=3).reshape(kh * win * c, block_w * o)


def conv2d_banded(x, kernel, strides=1, padding="VALID", precision=None, block_w: int | None = None):
    """`conv2d_xla`'s convolution as one matmul over row patches and a banded kernel.

    A block of ``block_w`` output columns reads ``win = sw * (block_w - 1) + kw`` padded
    input columns from each of its ``kh`` input rows: contiguous runs, concatenated into
    one patch row for `banded_kernel`. ``block_w = 1`` is im2col; wider blocks copy
    ``kh * win * C / block_w`` values per pixel instead of ``kh * kw * C`` for ``win / kw``
    times the FLOPs. ``block_w``: None picks `choose_block_width`.
    """
    strides = pair(strides, "strides")
    pads = conv_padding(padding, kernel.shape[:2], strides, x.shape[1:3])
    kh, kw, c, o = kernel.shape
    (sh, sw) = strides
    b, h, w, _ = x.shape
    ho, wo = conv_output_size(h, kh, sh, pads[0]), conv_output_size(w, kw, sw, pads[1])
    bw = min(block_w or choose_block_width(x.shape, kernel.shape, strides, pads), wo)
    nb = -(-wo // bw)
    win = sw * (bw - 1) + kw
    # Block n's window starts at column n * step; a window spans `shifts` steps. Piece (i, s)
    # holds, for every block at once, columns s * step ... of its window in input row i: a
    # slice of the rows reshaped to (nb, step), so kh * shifts pieces (not kh * nb: XLA
    # copies each piece in a pass of its own).
    step = bw * sw
    shifts = -(-win // step)
    extra = max(0, step * (nb + shifts - 1) - (w + pads[1][0] + pads[1][1]))
    if any(p for pair in pads for p in pair) or extra:
        x = jnp.pad(x, ((0, 0), pads[0], (pads[1][0], pads[1][1] + extra), (0, 0)))
    hp, wp = x.shape[1:3]
    rows = x.reshape(b, hp, wp * c)
    pieces = [
        lax.slice(rows, (0, i, s * step * c), (b, i + sh * (ho - 1) + 1, (s + nb) * step * c), (1, sh, 1)).reshape(
            b, ho, nb, step * c
        )[..., : min(step, win - s * step) * c]
        for i in range(kh)
        for s in range(shifts)
    ]
    patches = jnp.concatenate(pieces, axis=-1) if len(pieces) > 1 else pieces[0]
    patches = patches.reshape(b * ho * nb, kh * win * c)
    y = _matmul(patches, banded_kernel(kernel, bw, sw), precision).reshape(b, ho, nb * bw, o)
    return y[:, :, :wo, :] if nb * bw != wo else y


# Winograd F(2x2, 3x3) (Lavin & Gray 2016): a 4x4 input tile d gives a 2x2 output tile
# A^T [(G g G^T) * (B^T d B)] A, 16 multiplications instead of 36.
_WINO_BT = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))
_WINO_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
_WINO_AT = ((1, 1, 1, 0), (0, 1, -1, -1))


def _combine(coefficients, terms):
    """sum_i coefficients[i] * terms[i] with exact small coefficients (0, +-1 skip the multiply)."""
    total = None
    for c, t in zip(coefficients, terms):
        if c == 0:
            continue
        v = t if c == 1 else -t if c == -1 else c * t
        total = v if total is None else total + v
    return total


def _winograd_tiles(x, pads, th, tw):
    """The 16 transformed input planes B^T d B of the 4x4 tiles at stride 2, each (B*th*tw, C)."""
    b, h, w, c = x.shape
    x = jnp.pad(
        x, ((0, 0), (pads[0][0], 2 * th + 2 - h - pads[0][0]), (pads[1][0], 2 * tw + 2 - w - pads[1][0]), (0, 0))
    )
    d = [
        [lax.slice(x, (0, i, j, 0), (b, i + 2 * th - 1, j + 2 * tw - 1, c), (1, 2, 2, 1)) for j in range(4)]
        for i in range(4)
    ]
    rows = [[_combine(_WINO_BT[r], [d[i][j] for i in range(4)]) for j in range(4)] for r in range(4)]
    return [_combine(_WINO_BT[q], rows[r]).reshape(-1, c) for r in range(4) for q in range(4)]


def _winograd_kernel(kernel):
    """The 16 transformed kernel planes G g G^T, each (C, O), as elementwise sums of the
    9 kernel taps (no einsum: with 512 channels that was a 10x slower transpose-and-dot)."""
    taps = [[kernel[a, b] for b in range(3)] for a in range(3)]
    rows = [[_combine(_WINO_G[i], [taps[a][b] for a in range(3)]) for b in range(3)] for i in range(4)]
    return [_combine(_WINO_G[j], rows[i]) for i in range(4) for j in range(4)]


# Flipping a 3x3 kernel in both spatial axes permutes its Winograd planes: G J = P G with
# J the reversal and P the swap of rows 0 and 3, so the plane (i, j) of the flipped kernel
# is the plane (p(i), p(j)) of the kernel.
_WINO_FLIP = tuple(p * 4 + q for p in (3, 1, 2, 0) for q in (3, 1, 2, 0))


def _winograd_forward(x, planes, pads, precision, transposed=False):
    """Stride-1 3x3 convolution by Winograd F(2x2, 3x3) from the 16 transformed kernel
    ``planes`` ((C, O) each; (O, C) used transposed when ``transposed``): 16 matmuls of
    the (B*th*tw, C) transformed input tiles, then the output transform."""
    b, h, w, c = x.shape
    o = planes[0].shape[0 if transposed else 1]
    ho, wo = conv_output_size(h, 3, 1, pads[0]), conv_output_size(w, 3, 1, pads[1])
    th, tw = -(-ho // 2), -(-wo // 2)
    v = _winograd_tiles(x, pads, th, tw)
    contract = (((1,), (1,)), ((), ())) if transposed else (((1,), (0,)), ((), ()))
    m = [lax.dot_general(v[k], planes[k], contract, precision=precision) for k in range(16)]
    rows = [[_combine(_WINO_AT[p], [m[i * 4 + j] for i in range(4)]) for j in range(4)] for p in range(2)]
    y = [[_combine(_WINO_AT[q], rows[p]).reshape(b, th, tw, o) for q in range(2)] for p in range(2)]
    y = jnp.stack([jnp.stack(y[p], axis=3) for p in range(2)], axis=2).reshape(b, 2 * th, 2 * tw, o)
    return y[:, :ho, :wo, :] if (2 * th, 2 * tw) != (ho, wo) else y


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_winograd(x, kernel, pads, precision, on_native):
    return _conv_winograd_fwd(x, kernel, pads, precision, on_native)[0]


def _conv_winograd_fwd(x, kernel, pads, precision, on_native):
    if on_native:
        return native.winograd_conv(x, kernel, pads), (x, kernel, None)
    planes = _winograd_kernel(kernel)
    return _winograd_forward(x, planes, pads, precision), (x, kernel, planes)


def _conv_winograd_bwd(pads, precision, on_native, residuals, dy):
    """Kernel gradient in the Winograd domain (16 matmuls V_k^T @ dM_k, then G^T dU G);
    input gradient as the Winograd convolution of dy with the flipped, transposed kernel
    (the forward's planes, permuted and used transposed); zoo's own kernels do the same."""
    x, kernel, planes = residuals
    dy = dy.astype(x.dtype)
    (h, w), (ho, wo) = x.shape[1:3], dy.shape[1:3]
    back = ((2 - pads[0][0], h + pads[0][0] - ho), (2 - pads[1][0], w + pads[1][0] - wo))
    if on_native:
        return native.winograd_conv(dy, kernel, back, transposed=True), native.winograd_kernel_grad(x, dy, pads)
    b, o = x.shape[0], dy.shape[3]
    th, tw = -(-ho // 2), -(-wo // 2)
    dyp = jnp.pad(dy, ((0, 0), (0, 2 * th - ho), (0, 2 * tw - wo), (0, 0)))
    dyt = [
        [
            lax.slice(dyp, (0, p, q, 0), (b, p + 2 * th - 1, q + 2 * tw - 1, o), (1, 2, 2, 1)).reshape(-1, o)
            for q in range(2)
        ]
        for p in range(2)
    ]
    at = np.asarray(_WINO_AT)
    rows = [[_combine(at[:, i], [dyt[p][q] for p in range(2)]) for q in range(2)] for i in range(4)]
    dm = [_combine(at[:, j], rows[i]) for i in range(4) for j in range(4)]
    v = _winograd_tiles(x, pads, th, tw)
    du = [lax.dot_general(v[k], dm[k], (((0,), (0,)), ((), ())), precision=precision) for k in range(16)]
    gt = np.asarray(_WINO_G).T  # dkernel[a, b] = sum_ij G[i, a] G[j, b] dU[i, j]
    rows = [[_combine(gt[a], [du[i * 4 + j] for i in range(4)]) for j in range(4)] for a in range(3)]
    dkernel = jnp.stack([jnp.stack([_combine(gt[b], rows[a]) for b in range(3)]) for a in range(3)])
    dx = _winograd_forward(dy, [planes[k] for k in _WINO_FLIP], back, precision, transposed=True)
    return dx.astype(x.dtype), dkernel.astype(kernel.dtype)


_conv_winograd.defvjp(_conv_winograd_fwd, _conv_winograd_bwd)


def conv2d_winograd(x, kernel, strides=1, padding="VALID", precision=None):
    """`conv2d_xla`'s convolution for 3x3 stride-1 kernels by Winograd's F(2x2, 3x3), 16 instead
    of 36 multiplications per 2x2 tile, backward too: through zoo's own kernels
    (`zoo.native.winograd_conv`, float32 at full precision) where they can run
    (`native_blocker`), else written in JAX; other shapes fall back to `conv2d_im2col`."""
    strides = pair(strides, "strides")
    pads = conv_padding(padding, kernel.shape[:2], strides, x.shape[1:3])
    if (
        tuple(kernel.shape[:2]) != (3, 3)
        or strides != (1, 1)
        or min(pads[0] + pads[1]) < 0
        or max(pads[0] + pads[1]) > 2
    ):
        return conv2d_im2col(x, kernel, strides, pads, precision)
    return _conv_winograd(x, kernel, pads, precision, native_blocker(x, kernel, strides, pads) is None)


def native_blocker(x, kernel, strides, pads) -> str | None:
    """Why `zoo.native.conv2d` (and for a 3x3 kernel `zoo.native.winograd_conv`) cannot take
    this convolution here (None if it can)."""
    if jax.default_backend() != "cpu":
        return f"the native convolution runs on the CPU, the default backend is {jax.default_backend()}"
    if x.dtype != jnp.float32 or kernel.dtype != jnp.float32:
        return f"the native convolution runs float32, got {x.dtype} and {kernel.dtype}"
    if strides != (1, 1) or not native.conv2d_supports(x.shape, kernel.shape, pads):
        return "the native convolution takes stride 1 with each padding below the kernel size"
    if (reason := native.unavailable_reason()) is not None:
        return f"zoo.native cannot run: {reason}"
    return None


def conv2d_native(x, kernel, strides=1, padding="VALID", precision=None, *, bias=None, relu=False):
    """`conv2d_xla`'s convolution through zoo's own CPU kernel (`zoo.native.conv2d`, float32,
    full precision whatever ``precision``, ``bias`` and ReLU added as it stores the outputs)
    where it takes the shape (stride 1, each padding below the kernel size); other shapes
    take "auto"'s other ways. ValueError when the kernels cannot run here (another backend
    or dtype, kernels off or unbuilt)."""
    strides = pair(strides, "strides")
    pads = conv_padding(padding, kernel.shape[:2], strides, x.shape[1:3])
    blocker = native_blocker(x, kernel, strides, pads)
    if blocker is None:
        return native.conv2d(x, kernel, pads, bias, relu)
    if strides == (1, 1) and native.conv2d_supports(x.shape, kernel.shape, pads):
        raise ValueError(f"conv_impl='native': {blocker}")
    impl = choose_conv_impl(x.shape, kernel.shape, strides, native_ok=False)
    return conv2d(x, kernel, strides, pads, impl, precision, bias=bias, relu=relu)


# Cost model of `choose_block_width`, per output pixel in multiply-adds: the matmul (band's
# zeros included) at efficiency 1 / (1 + _NARROW_N / (block_w * O)), plus _COPY_COST per
# patch value copied, growing with the pieces per patch row. Fitted to LeNet's convs and
# ResNet's 7x7/2 RGB stem on a 2-core x86 CPU.
_NARROW_N, _COPY_COST, _PIECES = 24.0, 15.0, 512.0


def choose_block_width(input_shape, kernel_shape, strides=1, padding="VALID") -> int:
    """Output columns per block for `conv2d_banded`: the lowest modelled cost per output
    pixel, counting the columns wasted when the width does not divide the output."""
    _, h, w, c = input_shape
    kh, kw, _, o = kernel_shape
    sw = pair(strides, "strides")[1]
    pads = conv_padding(padding, (kh, kw), strides, (h, w))
    wo = conv_output_size(w, kw, sw, pads[1])
    best, best_cost = 1, float("inf")
    # Runs of fewer than 16 values (kw * C at block width 1) copy slowly (VGG's 3x3 RGB conv).
    smallest = 2 if kw * c < 16 and wo > 1 else 1
    for bw in range(smallest, min(wo, 32) + 1):
        win = sw * (bw - 1) + kw
        blocks = -(-wo // bw)
        matmul = kh * win * c * o * (1 + _NARROW_N / (bw * o))
        copy = _COPY_COST * kh * win * c / bw * (1 + blocks * kh / _PIECES)
        cost = blocks * bw / wo * (matmul + copy)
        if cost < best_cost - 1e-9:
            best, best_cost = bw, cost
    return best


# Winograd moves 4x its input through its transforms; with narrow channels that traffic
# outweighs the saved multiplies once a batch's maps leave the cache (measured fwd+bwd on
# 2 cores: at 16-32 channels XLA's own convolution wins from about 2 MiB of input).
_WINOGRAD_WIDE, _WINOGRAD_CACHED_BYTES = 64, 2 * 2**20
# With `zoo.runtime.tune_cpu`'s allocator, Winograd's large temporaries are reused rather
# than page-faulted in each call, and it wins from 32 channels on any map (fwd+bwd, 3 runs
# each, B=16 32x32 64->32: 13-16 ms vs XLA's 23; B=64 32x32 32->32: 46-50 vs 52-57; the
# same without the tuning: 13-15 vs 22, but 62-79 vs 49-53).
_WINOGRAD_WIDE_TUNED = 32
# A convolution to a few output channels (an image decoder's last layer) runs slowly in
# XLA's own kernel (B=64, 32x32, 16 -> 1: 9-10 ms against Winograd's 5-6.5 ms, 3 runs),
# and its Winograd output side is small whatever the map.
_WINOGRAD_NARROW_OUT = 4


# zoo's own convolution (zoo.native) against "auto"'s other ways, 3x3 stride 1, fwd+bwd on 2
# cores with `tune_cpu` (min of 3 runs): it wins with 32 or fewer input channels, fewer than
# 32 output channels, or at most 64 of each (B=64 32x32 16->16: 4.7 vs 11 ms; B=16 64x64
# 16->16: 6.7 vs 11.6; B=16 16x16 32->64: 4.3 vs 5.6; 1->16 first layers 0.8 vs 1.4; 16->1
# last layers 1.3 vs 5.2; B=16 32x32 64->64: 12.8 vs Winograd's 17.0; 32x32 64->32: 7.1
# vs 10.9; 16x16 64->64: 3.6 vs 5.0) and ties or loses beyond, where Winograd runs (B=16
# 16x16 64->128: 6.9 vs 7.1 ms; 128->64: 6.8 vs 6.8; 128->128: 13.2 vs 10.0). So do 2x2
# convs (a stride-2 transposed 3x3's phases, `zoo.nn.conv_transpose`: B=64 16x16 16->64
# 4.3 vs 6.3 ms); not 1x1 (a matmul already: B=16 64x64 16->16 1.8 vs 1.8 ms, 16->4 2.1 vs
# 1.5). The same holds for 4x4 and 5x5 kernels, since the kernel computes fewer than 16
# output channels and one input channel's kernel gradient on planes (zoo.native), fwd+bwd
# on a 2-core Intel Xeon, median of 5: LeNet's B=128 28x28 1->6 first layer 0.67 vs banded
# 1.65 ms (torch 1.30); 14x14 6->16 1.81 vs 4.28 (torch 2.52); B=32 28x28 16->32 6.5 vs
# im2col's 22.3; B=32 14x14 32->64 5.6 vs 12.5; B=16 14x14 64->64 6.1 vs 14.4.
_NATIVE_INPUTS, _NATIVE_OUTPUTS, _NATIVE_BOTH = 32, 32, 64

# zoo's own Winograd kernel (zoo.native.winograd_conv, which "winograd" runs where zoo.native
# can) against the direct kernel above and "auto"'s other ways, 3x3 stride 1, fwd+bwd on a
# 2-core Intel Xeon with `tune_cpu` (median of 30): from 32 channels each, more than 32 on
# one side, and maps of 4x4 or more it wins or ties (B=16 32x32 64->64: 9.4 vs the direct
# 13.3 ms; 16x16 128->128: 9.4 vs XLA's Winograd 10.9; 8x8 256->256: 9.5 vs 10.7; 4x4
# 128->128: 1.3 vs 1.5; 4x4 256->256: 3.2 vs im2col's 3.9; B=64 16x16 32->48: 5.2 vs 6.9;
# 16x16 32->64: 2.0-2.2 vs 2.1-2.5) and compiles in 0.05 s, not XLA's Winograd's 1.1 s. It
# ties at 32->32 (B=16 32x32: 3.6 vs 3.6; B=64 8x8: 1.5 vs 1.3), which stays direct, and on
# 4x4 512->512 maps (13.4 vs im2col's 13.2), and loses on 2x2 (7.8 vs 4.5).
_NATIVE_WINOGRAD_CHANNELS, _NATIVE_WINOGRAD_PIXELS = 32, 16


def choose_conv_impl(
    input_shape,
    kernel_shape,
    strides=1,
    platform: str | None = None,
    cpu_tuned: bool | None = None,
    native_ok: bool | Callable[[], bool] = False,
) -> str:
    """The way "auto" convolves an NHWC ``input_shape`` with an HWIO ``kernel_shape``: "xla"
    off CPU; on CPU (measured fwd+bwd, DESIGN.md), when ``native_ok`` (zoo's kernels take
    it: `native_blocker`; a callable is asked only for such a conv, as the first asking
    builds the kernels), "winograd" (zoo's own) for a 3x3 stride-1 conv of >= 32 channels
    each side, > 32 on one, on a map of >= 16 pixels, and "native" for other 2x2 to 5x5
    stride-1 convs from <= 32 input channels, to < 32 output channels, or of <= 64 each;
    then "banded" for <= 8 input channels; for 3x3
    stride-1 convs on >= 64-pixel maps "winograd" when both channel counts are >= 64 (>= 32
    when ``cpu_tuned``, by default `zoo.runtime.cpu_tuned()`), or the input fits in 2 MiB
    and either count is above 16, or the output has <= 4 channels, else "xla"; "im2col"
    otherwise."""
    platform = platform or jax.default_backend()
    if platform != "cpu":
        return "xla"
    b, h, w, c = input_shape
    kh, kw, _, o = kernel_shape
    stride_1_3x3 = (kh, kw) == (3, 3) and pair(strides, "strides") == (1, 1)
    small = 2 <= kh <= 5 and 2 <= kw <= 5 and pair(strides, "strides") == (1, 1)
    winograd_wide = min(c, o) >= _NATIVE_WINOGRAD_CHANNELS and max(c, o) > _NATIVE_WINOGRAD_CHANNELS
    if stride_1_3x3 and winograd_wide and h * w >= _NATIVE_WINOGRAD_PIXELS:
        if native_ok() if callable(native_ok) else native_ok:
            return "winograd"
    elif small and (c <= _NATIVE_INPUTS or o < _NATIVE_OUTPUTS or max(c, o) <= _NATIVE_BOTH):
        if native_ok() if callable(native_ok) else native_ok:
            return "native"
    if c <= 8:
        return "banded"
    if stride_1_3x3 and h * w >= 64:
        tuned = runtime.cpu_tuned() if cpu_tuned is None else cpu_tuned
        wide = min(c, o) >= (_WINOGRAD_WIDE_TUNED if tuned else _WINOGRAD_WIDE)
        cached = b * h * w * c * 4 <= _WINOGRAD_CACHED_BYTES and max(c, o) > 16
        return "winograd" if wide or cached or o <= _WINOGRAD_NARROW_OUT else "xla"
    return "im2col"


def conv2d(x, kernel, strides=1, padding="VALID", impl: str = "auto", precision=None, *, bias=None, relu=False):
    """2-D cross-correlation of NHWC ``x`` with an HWIO ``kernel`` (``lax.conv_general_dilated``
    semantics; ``padding`` in any form `conv_padding` accepts), then ``+ bias`` (O,) if given
    and ReLU if ``relu`` (the native kernel adds them as it stores each output, sparing a
    pass over the map). ``impl``: one of `CONV_IMPLS` ("auto": `choose_conv_impl`)."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"unknown conv impl {impl!r}; expected one of {CONV_IMPLS}")
    if x.ndim != 4 or kernel.ndim != 4 or x.shape[-1] != kernel.shape[2]:
        raise ValueError(
            f"conv2d needs NHWC input and HWIO kernel with matching channels, got {x.shape} and {kernel.shape}"
        )
    if impl == "auto":
        strides = pair(strides, "strides")
        pads = conv_padding(padding, kernel.shape[:2], strides, x.shape[1:3])
        impl = choose_conv_impl(
            x.shape, kernel.shape, strides, native_ok=lambda: native_blocker(x, kernel, strides, pads) is None
        )
    if impl == "native":
        return conv2d_native(x, kernel, strides, padding, precision, bias=bias, relu=relu)
    fn = {"xla": conv2d_xla, "im2col": conv2d_im2col, "banded": conv2d_banded, "winograd": conv2d_winograd}[impl]
    y = fn(x, kernel, strides, padding, precision)
    y = y if bias is None else y + bias
    return nn.relu(y) if relu else y


class Conv(nn.Module):
    """A 2-D `flax.linen.Conv` (NHWC) whose convolution is `conv2d` with ``conv_impl``: same
    fields (ungrouped, undilated), defaults, variables and unbatched (H, W, C) inputs; and
    ``relu``: ReLU on the output, in the convolution's own pass where `conv2d` can."""

    features: int
    kernel_size: int | Sequence[int]
    strides: int | Sequence[int] = 1
    padding: Any = "SAME"
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    precision: Any = None
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros_init()
    conv_impl: str = "auto"
    relu: bool = False

    def __post_init__(self):
        if self.conv_impl not in CONV_IMPLS:
            raise ValueError(f"Conv: conv_impl must be one of {CONV_IMPLS}, got {self.conv_impl!r}")
        super().__post_init__()

    @nn.compact
    def __call__(self, inputs):
        kernel_size = pair(self.kernel_size, "kernel_size")
        unbatched = inputs.ndim == 3
        if unbatched:
            inputs = inputs[None]
        if inputs.ndim != 4:
            raise ValueError(f"Conv expects (B, H, W, C) or (H, W, C) inputs, got shape {inputs.shape}")
        kernel = self.param(
            "kernel", self.kernel_init, kernel_size + (inputs.shape[-1], self.features), self.param_dtype
        )
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
        inputs, kernel, bias = nn.dtypes.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        y = conv2d(
            inputs, kernel, self.strides, self.padding, self.conv_impl, self.precision, bias=bias, relu=self.relu
        )
        return y[0] if unbatched else y
