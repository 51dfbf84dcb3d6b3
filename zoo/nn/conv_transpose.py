"""Transposed convolution (NHWC), PyTorch's ``ConvTranspose2d`` semantics (seed:
kang-lecture4, "Convolutional Auto-Encoder: Transpose convolution").

Each input cell scatters a copy of the kernel, scaled by its value, onto the output; the
copies of neighbouring cells lie ``stride`` apart and overlap where they meet::

    y[i*S + a - P_low, j*S + b - P_left, o] += x[i, j, c] * kernel[a, b, c, o]

``kernel`` is (kh, kw, C_in, features): PyTorch's weight (C_in, features, kh, kw) permuted
to (2, 3, 0, 1), no flip. (Flax's ``nn.ConvTranspose`` with ``transpose_kernel=False``
uses the spatially flipped kernel.) Output size, `zoo.nn.shapes.conv_transpose_output_size`::

    H_out = (H - 1) * S - P_low - P_high + F + output_padding

Padding semantics, as the seed cautions: ``padding`` P is the padding of the convolution
this one transposes, and it *crops* P cells from each side of the full scatter. Seen as a
plain stride-1 convolution, the transposed convolution inserts S - 1 zeros between input
cells, pads F - 1 - P zeros on each side ("padding 0 in transpose convolution: add F - 1
pixels; padding 1: F - 2 pixels") and correlates with the flipped kernel. That is the
"xla" way below (``lax.conv_general_dilated`` with ``lhs_dilation``).

The transposed convolution is the adjoint of the strided convolution with the same F, S, P
and the kernel's channel axes swapped: ``conv_transpose2d(x, k) == vjp of
conv2d(., k.transpose(0, 1, 3, 2))`` at ``x`` (tests/nn/test_conv_transpose.py). The
"im2col" way computes it so, with `zoo.nn.fastconv`'s matmul pieces: one matmul
``x @ K^T`` to (kh * kw * features) values per input cell, then `col2im` adds them onto
the output; its backward pass is the forward of the im2col convolution (patches of ``dy``
times K for the input gradient, ``patches^T @ x`` for the kernel's). On CPU that avoids
XLA's zero-dilated convolution, which multiplies by the inserted zeros.

The "polyphase" way splits the output by phase: the output rows ``e, e + S, e + 2S, ...``
read only every S-th kernel row and the input rows next to them, so each phase is a
stride-1 convolution with about F / S taps. All S*S phases come from one stride-1
convolution of ``x`` to S*S*O channels whose kernel holds each phase's rows, zero where a
phase has fewer taps (`_phase_taps`), through `fastconv.conv2d` (which on the CPU takes
zoo's own kernel where it is faster, as for the 3x3/2 up-convolution below); a reshape
then interleaves the phases ("depth to space"). The phase maps tile the output itself
where that costs no extra taps (3x3/2 with padding 1: no crop, no wasted phase cells),
else the uncropped scatter, cropped. Nothing is multiplied by an inserted zero, and no
map is added up kh * kw times as col2im does where windows overlap: for the 3x3/2
up-convolution of a 16x16x32 map to 32 channels, B=64, forward plus backward take 9 ms
against 17 ms (im2col) and 67 ms (xla) on this project's CPU (torch's ConvTranspose2d: 9.4
ms). Below a few MiB of scattered values im2col is the faster (`choose_transpose_impl`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from zoo.nn.fastconv import col2im, conv2d, im2col, weight_gradient, windows_tile
from zoo.nn.shapes import Pads, conv_padding, conv_transpose_output_size, pair

CONV_TRANSPOSE_IMPLS = ("auto", "xla", "im2col", "polyphase")

__all__ = ["CONV_TRANSPOSE_IMPLS", "ConvTranspose", "choose_transpose_impl", "conv_transpose2d", "transpose_geometry"]


def transpose_geometry(input_hw, kernel_size, strides=1, padding=0, output_padding=0):
    """Checked ``(pads, output_padding, (H_out, W_out))`` of a transposed convolution.

    ``padding``: an int, an (h, w) pair, or ((top, bottom), (left, right)), each >= 0;
    ``output_padding``: an int or (h, w) pair, 0 <= it < stride (PyTorch's rule).
    """
    if isinstance(padding, str):
        raise ValueError(f"transposed convolution padding must be explicit (ints), got {padding!r}")
    (kh, kw), (sh, sw) = pair(kernel_size, "kernel_size"), pair(strides, "strides")
    pads = conv_padding(padding, (kh, kw), (sh, sw), input_hw)
    extra = pair(output_padding, "output_padding")
    if min(sh, sw) < 1 or min(p for lh in pads for p in lh) < 0:
        raise ValueError(f"transposed convolution needs strides >= 1 and padding >= 0, got {strides}, {padding}")
    if not all(0 <= e < s for e, s in zip(extra, (sh, sw))):
        raise ValueError(f"output_padding {extra} must be >= 0 and smaller than the stride {(sh, sw)}")
    out = tuple(
        conv_transpose_output_size(n, k, s, p, e) for n, k, s, p, e in zip(input_hw, (kh, kw), (sh, sw), pads, extra)
    )
    if min(out) < 1:
        raise ValueError(f"transposed convolution output {out} is empty: padding {pads} crops more than it makes")
    return pads, extra, out


def _xla(x, kernel, strides, pads: Pads, extra, precision):
    """The seed's view: zeros between input cells, F - 1 - P padding, flipped kernel."""
    kh, kw = kernel.shape[:2]
    dilated_pads = [(k - 1 - lo, k - 1 - hi + e) for k, (lo, hi), e in zip((kh, kw), pads, extra)]
    return lax.conv_general_dilated(
        x,
        kernel[::-1, ::-1],
        (1, 1),
        dilated_pads,
        lhs_dilation=strides,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=precision,
    )


def _flat(kernel):
    """(kh, kw, C_in, O) -> (kh * kw * O, C_in): the im2col matrix of the convolution it transposes."""
    kh, kw, c, o = kernel.shape
    return kernel.transpose(0, 1, 3, 2).reshape(kh * kw * o, c)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _im2col(x, kernel, strides, pads, out_hw, precision):
    kh, kw, _, o = kernel.shape
    scattered = lax.dot_general(x, _flat(kernel), (((3,), (1,)), ((), ())), precision=precision)
    return col2im(scattered, (x.shape[0], *out_hw, o), (kh, kw), strides, pads)


def _im2col_fwd(x, kernel, strides, pads, out_hw, precision):
    return _im2col(x, kernel, strides, pads, out_hw, precision), (x, kernel)


def _im2col_bwd(strides, pads, out_hw, precision, residuals, dy):
    x, kernel = residuals
    kh, kw, c, o = kernel.shape
    # im2col pads dy and reads the windows the forward scattered into (the output_padding
    # rows, if any, lie past the last window and are never read, as in the forward).
    patches = im2col(dy.astype(x.dtype), (kh, kw), strides, pads)[:, : x.shape[1], : x.shape[2]]
    dx = lax.dot_general(patches, _flat(kernel), (((3,), (0,)), ((), ())), precision=precision)
    dflat = weight_gradient(patches.reshape(-1, kh * kw * o), x.reshape(-1, c), precision)
    dkernel = dflat.reshape(kh, kw, o, c).transpose(0, 1, 3, 2)
    return dx.astype(x.dtype), dkernel.astype(kernel.dtype)


_im2col.defvjp(_im2col_fwd, _im2col_bwd)


def _phase_taps(kernel_size: int, stride: int, pad_low: int, out_size: int):
    """One axis of the polyphase split: ``(shift, first, rows)``, the cheapest of the S ways.

    The phase maps tile the output shifted by ``shift`` cells: output cell ``m`` is phase
    ``e`` of phase cell ``u`` where ``m + shift = u * S + e``, which is the uncropped scatter's
    cell ``u * S + e + P - shift``, so it sums ``x[u + d - t] * kernel[r + S t]`` over t, with
    ``d, r = divmod(e + P - shift, S)``. Tap a of the stride-1 phase convolution reads
    ``x[u + first + a]``; ``rows[a, e]`` is the kernel row it meets in phase e, or
    ``kernel_size`` (a zero row) where that phase has none. Shift 0 needs no crop but may
    need more taps (the phases read different offsets d); shift ``P mod S`` needs
    ceil(F / S) taps but one more phase cell, cropped.
    """
    ways = []
    for shift in range(stride):
        reads = []  # (input offset, phase, kernel row)
        for e in range(stride):
            d, r = divmod(e + pad_low - shift, stride)
            reads += [(d - t, e, r + stride * t) for t in range(-(-(kernel_size - r) // stride))]
        first = min(offset for offset, _, _ in reads)
        rows = np.full((max(offset for offset, _, _ in reads) - first + 1, stride), kernel_size)
        for offset, e, row in reads:
            rows[offset - first, e] = row
        cost = len(rows) * -(-(out_size + shift) // stride)  # taps x phase cells
        ways.append((cost, shift, first, rows))
    return min(ways, key=lambda way: way[:2])[1:]


def _polyphase(x, kernel, strides, pads: Pads, out_hw, precision):
    """All S*S output phases from one stride-1 convolution of ``x``, then a depth-to-space
    interleave (module docstring)."""
    kh, kw, c, o = kernel.shape
    b = x.shape[0]
    (sh, sw) = strides
    (shift_h, first_h, rows_h), (shift_w, first_w, rows_w) = (
        _phase_taps(k, s, p[0], n) for k, s, p, n in zip((kh, kw), strides, pads, out_hw)
    )
    counts = [-(-(n + shift) // s) for n, shift, s in zip(out_hw, (shift_h, shift_w), strides)]
    # Phase cell u reads input cells u + first ... u + first + taps - 1; those outside x are
    # zero (padding), those x has beyond them are not read (a crop).
    x_pads, starts, stops = [], [], []
    for n, first, taps, count in zip(x.shape[1:3], (first_h, first_w), (len(rows_h), len(rows_w)), counts):
        last = count - 1 + first + taps - 1
        x_pads.append((max(0, -first), max(0, last - (n - 1))))
        starts.append(max(0, first))
        stops.append(min(n, last + 1))
    x = lax.slice(x, (0, starts[0], starts[1], 0), (b, stops[0], stops[1], c))
    # phase_kernel[a, b, c, (e, f, o)] = kernel[rows_h[a, e], rows_w[b, f], c, o], zero where none.
    padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
    phase_kernel = padded[rows_h[:, None, :, None], rows_w[None, :, None, :]]  # (Th, Tw, Sh, Sw, C, O)
    phase_kernel = phase_kernel.transpose(0, 1, 4, 2, 3, 5).reshape(len(rows_h), len(rows_w), c, sh * sw * o)
    phases = conv2d(x, phase_kernel, 1, tuple(x_pads), precision=precision)
    y = phases.reshape(b, counts[0], counts[1], sh, sw, o).transpose(0, 1, 3, 2, 4, 5)
    y = y.reshape(b, counts[0] * sh, counts[1] * sw, o)
    return lax.slice(y, (0, shift_h, shift_w, 0), (b, shift_h + out_hw[0], shift_w + out_hw[1], o))


# Where windows overlap, im2col's scattered matrix (B*H*W, kh*kw*O) goes through memory
# twice (col2im forward, im2col of dy backward); up to 16 MiB of it im2col is the faster
# way on this project's CPU (3x3/2 up-convolutions, B=64, forward + backward: 0.8 against
# 1.6 ms for 8x8x32 -> 16 and 2.0 against 2.3 ms for 16x16x16 -> 16, the transposed
# autoencoder's step 0.96 of torch's against 0.89), past it the polyphase way (18 against
# 9.5 ms for 16x16x32 -> 32).
_IM2COL_MAX_SCATTERED = 2**22


def choose_transpose_impl(
    input_shape, kernel_shape, strides, pads: Pads, output_hw, platform: str | None = None
) -> str:
    """The way "auto" takes for NHWC ``input_shape`` and kernel ``kernel_shape`` (kh, kw, C,
    O): "xla" off CPU; on CPU "xla" for stride 1 (a plain convolution), "im2col" where the
    input's windows tile the output (`fastconv.windows_tile`: col2im is a reshape) or its
    scattered matrix is small, "polyphase" for larger maps whose windows overlap or leave a
    gap (padding, output_padding)."""
    if (platform or jax.default_backend()) != "cpu" or pair(strides, "strides") == (1, 1):
        return "xla"
    (b, h, w, _), (kh, kw, _, o) = input_shape, kernel_shape
    if windows_tile((kh, kw), strides, pads, output_hw, (h, w)) or b * h * w * kh * kw * o <= _IM2COL_MAX_SCATTERED:
        return "im2col"
    return "polyphase"


def conv_transpose2d(x, kernel, strides=1, padding=0, output_padding=0, impl: str = "auto", precision=None):
    """Transposed convolution of NHWC ``x`` (B, H, W, C_in) with ``kernel`` (kh, kw, C_in, O).

    Returns (B, H_out, W_out, O), ``H_out = (H - 1) * S - P_top - P_bottom + kh +
    output_padding`` (see the module docstring; values equal ``torch.nn.functional.
    conv_transpose2d`` with weight ``kernel.transpose(2, 3, 0, 1)``). ``impl``: "xla"
    (dilated convolution), "im2col" (matmul + col2im, matmul backward), "polyphase" (one
    matmul for all output phases) or "auto" (`choose_transpose_impl`).
    """
    if impl not in CONV_TRANSPOSE_IMPLS:
        raise ValueError(f"unknown conv transpose impl {impl!r}; expected one of {CONV_TRANSPOSE_IMPLS}")
    if x.ndim != 4 or kernel.ndim != 4 or x.shape[-1] != kernel.shape[2]:
        raise ValueError(
            "conv_transpose2d needs NHWC input (B, H, W, C_in) and kernel (kh, kw, C_in, O), "
            f"got {x.shape} and {kernel.shape}"
        )
    strides = pair(strides, "strides")
    pads, extra, out_hw = transpose_geometry(x.shape[1:3], kernel.shape[:2], strides, padding, output_padding)
    if impl == "auto":
        impl = choose_transpose_impl(x.shape, kernel.shape, strides, pads, out_hw)
    if impl == "xla":
        return _xla(x, kernel, strides, pads, extra, precision)
    if impl == "polyphase":
        return _polyphase(x, kernel, strides, pads, out_hw, precision)
    return _im2col(x, kernel, strides, pads, out_hw, precision)


class ConvTranspose(nn.Module):
    """A 2-D transposed convolution layer (NHWC), PyTorch's ``ConvTranspose2d``.

    ``x: (B, H, W, C_in) -> (B, H_out, W_out, features)`` with ``H_out = (H - 1) *
    strides - 2 * padding + kernel_size + output_padding``. Variables: ``kernel`` (kh, kw,
    C_in, features) (torch's weight permuted (2, 3, 0, 1)) and ``bias`` (features,).
    ``padding``: int, (h, w), or ((top, bottom), (left, right)); ``conv_impl``: see
    `conv_transpose2d`. Common choices: kernel 2, stride 2, padding 0 doubles the size
    with no overlap (U-Net's "up-conv 2x2"); kernel 3, stride 2, padding 1, output_padding
    1 doubles it too, with overlapping copies (the exact inverse size of a "SAME" 3x3/2
    convolution on an even map).
    """

    features: int
    kernel_size: int | Sequence[int]
    strides: int | Sequence[int] = 1
    padding: Any = 0
    output_padding: int | Sequence[int] = 0
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    precision: Any = None
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros_init()
    conv_impl: str = "auto"

    def __post_init__(self):
        if self.conv_impl not in CONV_TRANSPOSE_IMPLS:
            raise ValueError(f"ConvTranspose: conv_impl must be one of {CONV_TRANSPOSE_IMPLS}, got {self.conv_impl!r}")
        super().__post_init__()

    @nn.compact
    def __call__(self, inputs):
        if inputs.ndim != 4:
            raise ValueError(f"ConvTranspose expects (B, H, W, C) inputs, got shape {inputs.shape}")
        kernel_size = pair(self.kernel_size, "kernel_size")
        kernel = self.param(
            "kernel", self.kernel_init, kernel_size + (inputs.shape[-1], self.features), self.param_dtype
        )
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
        inputs, kernel, bias = nn.dtypes.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        y = conv_transpose2d(
            inputs, kernel, self.strides, self.padding, self.output_padding, self.conv_impl, self.precision
        )
        return y if bias is None else y + bias
