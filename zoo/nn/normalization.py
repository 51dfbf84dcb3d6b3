"""Normalisation layers of the CNN families (NHWC, channels last): local response
normalisation (AlexNet, VGG A-LRN) and batch norm with the zoo's defaults."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from zoo.nn.initializers import ones_init, zeros_init


def local_response_norm(x, *, size: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75):
    """Local response normalisation across channels (Krizhevsky et al. 2012, 3.3), x (..., C):
    ``b_i = a_i / (k + alpha * sum_{j in window(i)} a_j^2) ** beta``, the window channels
    ``i - size//2 .. i + (size-1)//2``, clipped. Equals ``torch.nn.LocalResponseNorm`` with
    ``alpha_t = alpha * size`` (torch divides its alpha by ``size``).
    """
    if size < 1:
        raise ValueError(f"LRN size must be >= 1, got {size}")
    channels = x.shape[-1]
    # A sum of `size` shifted slices of the zero-padded squares (differentiable and jit-able
    # everywhere, unlike a generic reduce_window).
    padded = jnp.pad(jnp.square(x), [(0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2)])
    summed = sum(padded[..., i : i + channels] for i in range(size))
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


def batch_norm(**kw):
    """nn.BatchNorm (momentum 0.9, eps 1e-5 unless given; statistics in ``batch_stats``)."""
    kw = {"momentum": 0.9, "epsilon": 1e-5, **kw}
    return nn.BatchNorm(scale_init=ones_init, bias_init=zeros_init, **kw)
