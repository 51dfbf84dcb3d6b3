"""Window arithmetic shared by convolution and pooling: the output-size formula and the
forms a 2-D padding may take.

One formula serves every windowed operation of the zoo (`zoo.nn.conv`'s worked examples,
`zoo.nn.fastconv`'s convolutions, `zoo.nn.pooling`, the models' size checks)::

    out = floor((H + P_low + P_high - F) / S) + 1

kang-lecture4 writes it ``(H + 2P - F) / S + 1``, without the floor, for symmetric padding.
The inverse map, the output size of a transposed convolution (and the default size of a
max unpooling), belongs beside it in this module.
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
