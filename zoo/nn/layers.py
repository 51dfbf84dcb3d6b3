"""Shared pieces for convolutional networks (NHWC): local response normalisation,
adaptive average pooling and the convolution output-size formula.

Conventions: feature maps are ``(B, H, W, C)``; channel-wise operations act on the last axis.
"""

from __future__ import annotations


import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from zoo.nn.initializers import constant, variance_scaling


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Spatial size after a convolution or pooling window: ``floor((H + 2P - F) / S) + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def local_response_norm(x, *, size: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75):
    """Local response normalisation across channels (Krizhevsky et al. 2012, Section 3.3).

    ``b_i = a_i / (k + alpha * sum_{j in window(i)} a_j^2) ** beta`` where the window holds
    the ``size`` channels ``i - size//2 .. i + (size-1)//2`` (clipped at the ends; for odd
    ``size`` this is the paper's ``max(0, i-n/2) .. min(N-1, i+n/2)``). ``x``: (..., C).

    Note on PyTorch: ``torch.nn.LocalResponseNorm(size, alpha_t, beta, k)`` divides its
    alpha by ``size`` (``k + alpha_t/size * sum``), so this function with ``alpha`` equals
    torch's with ``alpha_t = alpha * size`` (same window, same zero padding at the ends).
    """
    if size < 1:
        raise ValueError(f"LRN size must be >= 1, got {size}")
    channels = x.shape[-1]
    # A sum of `size` shifted slices of the zero-padded squares (differentiable and jit-able
    # everywhere, unlike a generic reduce_window).
    padded = jnp.pad(jnp.square(x), [(0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2)])
    summed = sum(padded[..., i:i + channels] for i in range(size))
    return x / jnp.power(k + alpha * summed, beta)


class LocalResponseNorm(nn.Module):
    """`local_response_norm` as a parameter-free layer (AlexNet: size 5, k 2, alpha 1e-4, beta 0.75)."""

    size: int = 5
    k: float = 2.0
    alpha: float = 1e-4
    beta: float = 0.75

    def __post_init__(self):
        if self.size < 1 or self.k < 0 or self.alpha < 0:
            raise ValueError(f"LRN needs size >= 1, k >= 0, alpha >= 0; got {self.size}, {self.k}, {self.alpha}")
        super().__post_init__()

    def __call__(self, x):
        return local_response_norm(x, size=self.size, k=self.k, alpha=self.alpha, beta=self.beta)


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


def max_pool(x, window: int, stride: int, padding: int = 0):
    """Max pooling over H, W of an NHWC map (``padding`` cells of -inf on each side)."""
    return nn.max_pool(x, (window, window), (stride, stride), ((padding, padding), (padding, padding)))


# Compile-cheap initializers (see zoo.nn.initializers) shared by the CNN families.
lecun_normal = variance_scaling(1.0, "fan_in", "truncated_normal")  # Flax's default kernel init
he_normal_fan_out = variance_scaling(2.0, "fan_out", "normal")  # torchvision's ResNet convs
he_normal = variance_scaling(2.0, "fan_in", "normal")
dense_init = variance_scaling(1.0, "fan_in", "normal")
zeros_init, ones_init = constant(0.0), constant(1.0)


def batch_norm(**kw):
    """nn.BatchNorm (momentum 0.9, eps 1e-5 unless given; statistics in ``batch_stats``)."""
    kw = {"momentum": 0.9, "epsilon": 1e-5, **kw}
    return nn.BatchNorm(scale_init=ones_init, bias_init=zeros_init, **kw)


def dense(features: int, **kw):
    """nn.Dense with N(0, 1/fan_in) kernel and zero bias."""
    return nn.Dense(features, kernel_init=dense_init, bias_init=zeros_init, **kw)
