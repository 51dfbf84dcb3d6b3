"""Normalisation layers of the CNN families (NHWC, channels last): local response
normalisation (AlexNet, VGG A-LRN) and batch norm with the zoo's defaults (Flax's layer, to
the bit, in less tracing time)."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

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


class BatchNorm(nn.Module):
    """Batch normalisation (Ioffe & Szegedy 2015) over every axis but the last:
    `flax.linen.BatchNorm`'s variables (params ``scale``, ``bias``; ``batch_stats``
    ``mean``, ``var``) and semantics, its operations in its order: float32 statistics, the
    fast variance ``E[x^2] - E[x]^2`` clipped at 0, running averages updated in training
    but not at initialisation, the output in the promoted dtype of x and the parameters.
    Layer for layer its numbers are Flax's to the bit (inside a larger program XLA may fuse
    the slightly different graph differently, as it may after any change). Without Flax's
    options zoo does not use (masks, ``axis_name``, other axes) it traces in about 30% less
    time (20 layers, forward and backward: 0.11 s against 0.16), which a run pays on every
    start: a ResNet's second `train.py` run is mostly tracing, its programs coming from the
    compilation cache."""

    use_running_average: bool | None = None
    momentum: float = 0.9
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x, use_running_average: bool | None = None):
        """(..., C) -> (..., C); ``use_running_average`` here or as the field."""
        use_running_average = nn.merge_param("use_running_average", self.use_running_average, use_running_average)
        features = (x.shape[-1],)
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, features, jnp.float32)
        ra_var = self.variable("batch_stats", "var", jnp.ones, features, jnp.float32)
        scale = self.param("scale", ones_init, features, jnp.float32)
        bias = self.param("bias", zeros_init, features, jnp.float32)
        if use_running_average:
            mean, var = ra_mean.value, ra_var.value
        else:
            axes = tuple(range(x.ndim - 1))
            x32 = x.astype(jnp.promote_types(x.dtype, jnp.float32))
            squares = lax.square(x32)
            mean = x32.mean(axes)
            var = jnp.maximum(0.0, squares.mean(axes) - lax.square(mean))
            if not self.is_initializing():
                ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
                ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
        # Flax's order (centre, then the scale), so that the gradient's terms add up alike.
        centred = x - mean
        y = centred * (lax.rsqrt(var + self.epsilon) * scale) + bias
        return y.astype(jnp.result_type(x, scale, bias))


def batch_norm(**kw):
    """`BatchNorm` (momentum 0.9, eps 1e-5 unless given; statistics in ``batch_stats``)."""
    return BatchNorm(**kw)
