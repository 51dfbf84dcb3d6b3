"""What the energy family's modules share: seed references, bipolar and binary states,
small array helpers."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

KHANZHINA = "khanzhina (Deep nets architectures)"
KANG = "kang-lecture4 (Pilsung Kang, Lecture 4: Neural Networks), Neural Network Zoo"


# --------------------------------------------------------------------------------------
# Bipolar patterns.
# --------------------------------------------------------------------------------------


def to_bipolar(x, threshold: float = 0.5):
    """Pixels or bits ``(..., n)`` -> {-1, +1}: +1 where ``x > threshold``."""
    return jnp.where(jnp.asarray(x) > threshold, 1.0, -1.0).astype(jnp.float32)


def check_bipolar(patterns, what: str = "patterns") -> None:
    """ValueError unless ``patterns`` holds only -1 and +1. Traced arrays (inside jit) are
    not checked: their values are not known yet."""
    if isinstance(patterns, jax.core.Tracer):
        return
    values = np.unique(np.asarray(patterns))
    if not set(values.tolist()) <= {-1.0, 1.0}:
        raise ValueError(f"{what} must be bipolar (-1/+1), got values {values[:5].tolist()}: use to_bipolar(x)")


def _check_patterns(patterns, n: int | None = None, what: str = "patterns"):
    patterns = jnp.asarray(patterns, jnp.float32)
    if patterns.ndim != 2 or (n is not None and patterns.shape[1] != n):
        want = f"(P, {n})" if n is not None else "(P, n)"
        raise ValueError(f"{what} must have shape {want}, got {patterns.shape}")
    check_bipolar(patterns, what)
    return patterns


# --------------------------------------------------------------------------------------
# Binary states, enumeration (exact results for tiny models, used by the tests).
# --------------------------------------------------------------------------------------


def all_binary_states(n: int):
    """Every binary vector of length n: (2^n, n) float32, in counting order."""
    if not 0 < n <= 20:
        raise ValueError(f"enumeration is for tiny models: n must be in 1..20, got {n}")
    return jnp.asarray(list(itertools.product((0.0, 1.0), repeat=n)), jnp.float32)


def _bernoulli(key, p):
    return jax.random.bernoulli(key, p).astype(jnp.float32)


def _flat(x, input_shape):
    """(B, *input_shape) -> (B, n)."""
    return x.reshape(x.shape[: x.ndim - len(input_shape)] + (-1,))


def _size(input_shape) -> int:
    return int(np.prod(input_shape))


def _one_hot(t, num_classes: int):
    return jax.nn.one_hot(jnp.asarray(t).reshape(-1).astype(jnp.int32), num_classes, dtype=jnp.float32)


def _mask(mask, t):
    return (
        jnp.ones(jnp.asarray(t).reshape(-1).shape[0], jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
    )


def _check_classes(num_classes: int, minimum: int):
    if int(num_classes) < minimum:
        raise ValueError(f"num_classes must be at least {minimum}, got {num_classes}")
