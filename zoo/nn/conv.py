"""Worked-example convolution and pooling on single-channel 2-D arrays (seeds
kang-lecture4 "CNN Basics", duan-rnn-cnn "Convolution layer" and "Pooling",
khanzhina-deep-nets-architectures "Discrete convolution").

Every function takes ``x: (..., H, W)``: one image, or any number of leading axes (a
batch, channels) that share the same 2-D kernel. The results equal ``jax.vmap`` of the
single-image call; leading axes are handled by ``...`` indexing, so there is nothing to
vmap by hand. Everything is pure ``jnp``: jit-able, differentiable, exact on integers.

Two conventions, equal up to a 180-degree rotation of the kernel:

* ``correlate2d`` — cross-correlation, ``y[i, j] = sum_{a,b} x[i*S + a, j*S + b] k[a, b]``.
  This is what a CNN layer computes (``jax.lax.conv_general_dilated``, ``flax.linen.Conv``,
  ``torch.nn.functional.conv2d``), and what kang-lecture4's worked examples do: each
  slide multiplies the window by the kernel element by element, unflipped
  ("1x1 1x0 1x1 ..."; "0*0 + 0*-1 + ... + 105*5 + ... = 320").
* ``convolve2d`` — true convolution, the kernel flipped:
  ``convolve2d(x, k) == correlate2d(x, k[::-1, ::-1])``. duan defines
  ``S(i, j) = sum_{m,n} I(i - m, j - n) K(m, n)`` and khanzhina
  ``(x * k)_ij = sum_{p,q} x_{i+p, j+q} k_{r-p, r-q}`` — both flip the kernel (and index
  the output at the window's centre, which ``padding = r`` for a (2r+1)x(2r+1) kernel
  reproduces).

Which convention each seed example uses does not change its numbers: every kernel the
seeds print (kang's X-shaped 3x3 and sharpen kernels, duan's identity and edge-detection
kernels, the uniform 1/n averaging kernel) is symmetric under the 180-degree rotation, so
both functions give the slide's values. The conventions differ only for asymmetric kernels
(e.g. Sobel), where ``convolve2d`` gives the slide formulas of duan and khanzhina and
``correlate2d`` gives what a trained CNN layer computes.

Output size along each axis: ``output_size(H, F, S, P) = floor((H + 2P - F) / S) + 1``
(kang's formula, which omits the floor; `zoo.nn.shapes.conv_output_size`). Pooling uses
the same window arithmetic; `max_pool2d` is `zoo.nn.pooling.max_pool` on 2-D arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from zoo.nn.pooling import max_pool
from zoo.nn.shapes import conv_output_size

__all__ = [
    "KERNELS",
    "avg_pool2d",
    "avg_pool_as_conv",
    "convolve2d",
    "correlate2d",
    "max_pool2d",
    "output_size",
    "zero_pad",
]


def _frozen(rows, scale: float = 1.0) -> np.ndarray:
    # NumPy, not jnp: building jax arrays at import time would start the JAX backend.
    a = np.asarray(rows, np.float32) * np.float32(scale)
    a.flags.writeable = False
    return a


# Named 3x3 kernels, (F, F) float32. The first four are duan's "Filters (Convolution
# Kernels)" slide, sharpen is kang-lecture4's "Convolution with padding" slide; the two blurs
# complete the standard table those slides draw from (Wikipedia, "Kernel (image processing)").
KERNELS: dict[str, np.ndarray] = {
    "identity": _frozen([[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
    # duan's first edge detector: opposite-sign diagonal corners (responds to diagonal
    # structure, zero on flat regions and on straight horizontal or vertical edges).
    "edge_detection_diagonal": _frozen([[1, 0, -1], [0, 0, 0], [-1, 0, 1]]),
    # duan's second: the 4-neighbour Laplacian.
    "edge_detection_laplacian4": _frozen([[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
    # duan's third: the 8-neighbour Laplacian. The seed prints its centre as 0; an edge
    # detector must give 0 on a flat region, which needs the centre 8 (the table the slide
    # copies has 8). See tests/nn/test_conv.py.
    "edge_detection_laplacian8": _frozen([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    "sharpen": _frozen([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "box_blur": _frozen(np.ones((3, 3)), 1 / 9),
    "gaussian_blur": _frozen([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 1 / 16),
}


def output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length along one axis, ``floor((H + 2P - F) / S) + 1`` (kang-lecture4).

    `zoo.nn.shapes.conv_output_size` with the argument checks a worked example needs.

    Raises:
      ValueError: a size or kernel below 1, a stride below 1, a negative padding, or a
        kernel larger than the padded input.
    """
    if size < 1 or kernel < 1 or stride < 1 or padding < 0:
        raise ValueError(
            f"output_size needs H >= 1, F >= 1, S >= 1, P >= 0; got H={size}, F={kernel}, S={stride}, P={padding}"
        )
    if kernel > size + 2 * padding:
        raise ValueError(
            f"a {kernel}-wide window does not fit an input of size {size} with padding {padding} "
            f"(H + 2P = {size + 2 * padding} < F)"
        )
    return conv_output_size(size, kernel, stride, padding)


def _pair(value, name: str) -> tuple[int, int]:
    """An int or an (h, w) pair -> (h, w)."""
    pair = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(pair) != 2 or any(int(v) != v for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_image(x, what: str) -> None:
    if len(np.shape(x)) < 2:
        raise ValueError(f"{what} expects x of shape (..., H, W), got shape {np.shape(x)}")


def zero_pad(x, p):
    """Pad the last two axes with ``p`` zeros on each side (``p``: int or (ph, pw)).

    ``x: (..., H, W) -> (..., H + 2 ph, W + 2 pw)``, same dtype.
    """
    _check_image(x, "zero_pad")
    ph, pw = _pair(p, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be >= 0, got {p!r}")
    return _pad_last_two(jnp.asarray(x), (ph, pw))


def _geometry(x, window, stride, padding, what: str):
    """Check ``x: (..., H, W)`` and the window arithmetic; return (window, stride, padding) pairs.

    Raises the user-facing ValueError (bad shape, negative padding, window larger than the
    padded input) before anything is traced.
    """
    _check_image(x, what)
    window, stride, padding = _pair(window, "window"), _pair(stride, "stride"), _pair(padding, "padding")
    if min(padding) < 0:
        raise ValueError(f"{what}: padding must be >= 0, got {padding}")
    for size, f, s, p in zip(np.shape(x)[-2:], window, stride, padding):
        output_size(size, f, s, p)
    return window, stride, padding


def _windows(padded, window: tuple[int, int], stride: tuple[int, int]) -> Iterator[tuple[int, int, jnp.ndarray]]:
    """For each window offset (a, b), the strided view ``v[..., i, j] = padded[..., i*sh + a, j*sw + b]``.

    ``padded: (..., H + 2 ph, W + 2 pw)``; every view is ``(..., out_h, out_w)``. A windowed
    reduction (correlation, max, mean) is then a reduction over these F_h * F_w views — the
    shifted-slice form, also the fast one on CPU for small kernels (DESIGN.md).
    """
    (fh, fw), (sh, sw) = window, stride
    out_h = conv_output_size(padded.shape[-2], fh, sh)
    out_w = conv_output_size(padded.shape[-1], fw, sw)
    for a in range(fh):
        for b in range(fw):
            yield a, b, padded[..., a : a + sh * (out_h - 1) + 1 : sh, b : b + sw * (out_w - 1) + 1 : sw]


def _pad_last_two(x, padding: tuple[int, int], fill=0):
    ph, pw = padding
    return jnp.pad(x, [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)], constant_values=fill)


# The loops over window offsets are unrolled at trace time; jit makes each call one
# compiled program instead of F_h * F_w separately dispatched slices and products.
@partial(jax.jit, static_argnames=("stride", "padding"))
def _correlate(x, kernel, stride, padding):
    views = _windows(_pad_last_two(x, padding), kernel.shape, stride)
    return sum(kernel[a, b] * view for a, b, view in views)


@partial(jax.jit, static_argnames=("window", "stride", "padding"))
def _avg_pool(x, window, stride, padding):
    total = sum(view for _, _, view in _windows(_pad_last_two(x, padding), window, stride))
    return total / (window[0] * window[1])


def _kernel_2d(kernel, what: str):
    kernel = jnp.asarray(kernel)
    if kernel.ndim != 2:
        raise ValueError(f"{what} expects a 2-D kernel (F_h, F_w), got shape {kernel.shape}")
    return kernel


def correlate2d(x, kernel, stride=1, padding=0):
    """Cross-correlation, what a CNN layer computes: ``y[i, j] = sum_{a,b} xp[i*S + a, j*S + b] k[a, b]``.

    ``x: (..., H, W)``, ``kernel: (F_h, F_w)``, ``xp = zero_pad(x, padding)``; stride and
    padding are ints or (h, w) pairs. Returns ``(..., out_h, out_w)`` with
    ``out_h = output_size(H, F_h, S_h, P_h)`` (likewise for W), in the promoted dtype of x
    and kernel (integers stay exact).
    """
    kernel = _kernel_2d(kernel, "correlate2d")
    _, stride, padding = _geometry(x, kernel.shape, stride, padding, "correlate2d")
    return _correlate(jnp.asarray(x), kernel, stride, padding)


def convolve2d(x, kernel, stride=1, padding=0):
    """True convolution (kernel flipped in both axes), as duan and khanzhina define it.

    Equal to ``correlate2d(x, kernel[::-1, ::-1], stride, padding)``; same shapes. With
    ``padding = r`` for a (2r+1)x(2r+1) kernel, ``y[i, j]`` is duan's
    ``S(i, j) = sum_{m,n=-r..r} I(i - m, j - n) K(m, n)`` (zeros outside the image).
    """
    kernel = _kernel_2d(kernel, "convolve2d")
    return correlate2d(x, kernel[::-1, ::-1], stride, padding)


def max_pool2d(x, size, stride=None, padding=0):
    """Max over each ``size`` window (int or (h, w); stride defaults to ``size``).

    ``x: (..., H, W) -> (..., out_h, out_w)``, same dtype; padding cells are -inf (the
    dtype's minimum for integers), so they never win. `zoo.nn.pooling.max_pool` (which
    also returns argmax indices, for unpooling) on the 2-D maps. duan: [[1,2,5,6],[3,4,7,8],[9,8,5,4],
    [7,6,3,2]] with a 2x2 window and stride 2 -> [[4, 8], [9, 5]].
    """
    window, stride, padding = _geometry(x, size, size if stride is None else stride, padding, "max_pool2d")
    x = jnp.asarray(x)
    # The zoo's one max pool runs on NHWC maps: leading axes become the batch, one channel.
    maps = x.reshape(-1, *x.shape[-2:], 1)
    pooled = max_pool(maps, window, stride, padding)
    return pooled.reshape(*x.shape[:-2], *pooled.shape[1:3])


def avg_pool2d(x, size, stride=None, padding=0):
    """Mean over each ``size`` window (int or (h, w); stride defaults to ``size``).

    ``x: (..., H, W) -> (..., out_h, out_w)`` floating point. Zero padding counts in the
    divisor (every window divides by F_h * F_w, PyTorch's ``count_include_pad=True``), which
    is what the convolution in `avg_pool_as_conv` computes.
    """
    window, stride, padding = _geometry(x, size, size if stride is None else stride, padding, "avg_pool2d")
    return _avg_pool(jnp.asarray(x), window, stride, padding)


def avg_pool_as_conv(x, size, stride=None, padding=0):
    """Average pooling as a strided convolution (kang-lecture4, "Strided Convolution").

    kang: "average pooling is a special case of strided convolution: all weights are 1/n",
    n being the number of cells in the window — for a ``size`` x ``size`` window, a kernel
    of ``size**2`` weights ``1/size**2``. The uniform kernel is its own flip, so correlation
    and convolution agree. ``x: (..., H, W) -> (..., out_h, out_w)``, equal to
    ``avg_pool2d(x, size, stride, padding)`` (stride defaults to ``size``).
    """
    fh, fw = _pair(size, "size")
    dtype = jnp.result_type(jnp.asarray(x).dtype, jnp.float32)
    weights = jnp.full((fh, fw), 1.0 / (fh * fw), dtype)
    return correlate2d(x, weights, (fh, fw) if stride is None else stride, padding)
