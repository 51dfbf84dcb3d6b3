"""Window arithmetic shared by convolution and pooling: the output-size formula and the
forms a 2-D padding may take.

One formula serves every windowed operation of the zoo (`zoo.nn.conv`'s worked examples,
`zoo.nn.fastconv`'s convolutions, `zoo.nn.pooling`, the models' size checks)::

    out = floor((H + P_low + P_high - F) / S) + 1

kang-lecture4 writes it ``(H + 2P - F) / S + 1``, without the floor, for symmetric padding.
Its inverse, the output size of a transposed convolution (`conv_transpose_output_size`,
PyTorch's ``ConvTranspose2d`` rule)::

    out = (H - 1) * S - P_low - P_high + F + output_padding

is the largest input size (smallest, without ``output_padding``) that a convolution with
the same F, S, P maps back to H.
"""

from __future__ import annotations

import numpy as np
from jax import lax

Pads = tuple[tuple[int, int], tuple[int, int]]


def pair(value, name: str) -> tuple[int, int]:
    """An int or a sequence of two ints -> (h, w)."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {value}")
    return value  # type: ignore[return-value]


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int | tuple[int, int] = 0) -> int:
    """Length of a convolution's or pooling's output along one axis:
    ``floor((size + P_low + P_high - kernel) / stride) + 1``.

    ``padding``: cells added on each side (an int), or a (low, high) pair for asymmetric
    padding (what "SAME" resolves to at even sizes). No checks: a window larger than the
    padded input gives a size below 1, which callers report in their own terms.
    """
    low, high = (padding, padding) if isinstance(padding, (int, np.integer)) else padding
    return (size + low + high - kernel) // stride + 1


def conv_transpose_output_size(
    size: int, kernel: int, stride: int = 1, padding: int | tuple[int, int] = 0, output_padding: int = 0
) -> int:
    """Length of a transposed convolution's output along one axis:
    ``(size - 1) * stride - P_low - P_high + kernel + output_padding``.

    ``padding`` (an int, or a (low, high) pair) is the convolution's: the transposed
    convolution crops it from its full output, as PyTorch's ``ConvTranspose2d`` does.
    ``output_padding`` (0 <= it < stride) adds cells at the high end, to pick which of the
    ``stride`` input sizes that a strided convolution maps to ``size`` is meant.
    ``conv_output_size(conv_transpose_output_size(n, F, S, P, a), F, S, P) == n``.
    """
    low, high = (padding, padding) if isinstance(padding, (int, np.integer)) else padding
    return (size - 1) * stride - low - high + kernel + output_padding


def conv_padding(padding, kernel_size, strides, spatial) -> Pads:
    """Explicit ``((top, bottom), (left, right))`` padding of a 2-D window, from any form
    `flax.linen.Conv` accepts: "SAME", "VALID", an int, a pair of ints, or a pair of
    (low, high) pairs. ``spatial`` is the input's (H, W) (needed by "SAME")."""
    kernel_size, strides = pair(kernel_size, "kernel_size"), pair(strides, "strides")
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f"padding must be SAME, VALID or explicit, got {padding!r}")
        pads = lax.padtype_to_pads(tuple(spatial), kernel_size, strides, padding.upper())
        return tuple((int(lo), int(hi)) for lo, hi in pads)  # type: ignore[return-value]
    if isinstance(padding, (int, np.integer)):
        return ((int(padding),) * 2,) * 2  # type: ignore[return-value]
    padding = tuple(padding)
    if len(padding) != 2:
        raise ValueError(f"2-D padding needs two entries, got {padding}")
    return tuple(pair(p, "padding") for p in padding)  # type: ignore[return-value]
