"""Weight initializers selectable by name (seed kang-lecture4, "Weight Initialization").

  zeros           0 (every unit identical: the seed's Strategy 1)
  normal          N(0, scale^2) (Strategy 2);  uniform  U[-scale, scale]
  xavier_normal   N(0, 2 / (fan_in + fan_out))      Glorot & Bengio 2010 ("both paths")
  xavier_uniform  U[+-sqrt(6 / (fan_in + fan_out))]
  he_normal       N(0, 2 / fan_in)                  He et al. 2015
  he_uniform      U[+-sqrt(6 / fan_in)]
  lecun_normal    N(0, 1 / fan_in)                  LeCun et al. 1998 ("forward path only")
  lecun_uniform   U[+-sqrt(3 / fan_in)]

Normals are untruncated. Each compiles once per power-of-two size bucket (one jitted draw,
then a slice), not once per shape as jax's own do when ``init`` runs eagerly (minutes for a
deep CNN on a small CPU); under tracing they are ordinary jax code, jax's distributions.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from zoo._choices import unknown_name_error

Initializer = jax.nn.initializers.Initializer
_STD_TRUNCATED = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]


@functools.partial(jax.jit, static_argnums=(1, 2))
def _draws(key, n: int, distribution: str):
    if distribution == "normal":
        return jax.random.normal(key, (n,), jnp.float32)
    if distribution == "truncated_normal":
        return jax.random.truncated_normal(key, -2.0, 2.0, (n,), jnp.float32) / _STD_TRUNCATED
    return jax.random.uniform(key, (n,), jnp.float32, -1.0, 1.0)


def _sample(key, shape, dtype, distribution: str, scale: float):
    """``scale`` times unit draws (std 1 for the normals, U[-1, 1] for uniform), bucketed."""
    shape = tuple(int(d) for d in shape)
    size = int(np.prod(shape))
    z = _draws(key, 1 << max(size - 1, 1).bit_length(), distribution)
    if isinstance(key, jax.core.Tracer):
        return (z[:size].reshape(shape) * scale).astype(dtype)
    return jnp.asarray((np.asarray(z)[:size].reshape(shape) * scale).astype(dtype))


def fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a kernel: (in, out) for Dense, (*window, in, out) for Conv."""
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in = shape[-2] * receptive if len(shape) > 1 else shape[-1]
    return fan_in, shape[-1] * receptive


def variance_scaling(scale: float, mode: str = "fan_in", distribution: str = "normal") -> Initializer:
    """Variance ``scale / fan`` (fan: "fan_in", "fan_out" or "fan_avg"), from a normal,
    a normal truncated at two standard deviations (rescaled to keep the variance) or a
    uniform distribution — ``jax.nn.initializers.variance_scaling``'s definition."""
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"mode must be fan_in, fan_out or fan_avg, got {mode!r}")
    if distribution not in ("normal", "truncated_normal", "uniform"):
        raise ValueError(f"distribution must be normal, truncated_normal or uniform, got {distribution!r}")

    def init(key, shape, dtype=jnp.float32):
        fan_in, fan_out = fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        std = float(np.sqrt(scale / fan))
        return _sample(key, shape, dtype, distribution, std * np.sqrt(3.0) if distribution == "uniform" else std)

    return init


def constant(value: float) -> Initializer:
    """Every entry ``value`` (built in numpy: no compilation)."""

    def init(key, shape, dtype=jnp.float32):
        return jnp.asarray(np.full(tuple(shape), value, dtype=np.dtype(dtype)))

    return init


def _normal(scale: float = 0.01) -> Initializer:
    return lambda key, shape, dtype=jnp.float32: _sample(key, shape, dtype, "normal", scale)


def _uniform(scale: float = 0.05) -> Initializer:
    # Symmetric around zero, as the seed's (jax's uniform draws from [0, scale)).
    return lambda key, shape, dtype=jnp.float32: _sample(key, shape, dtype, "uniform", scale)


_INITIALIZERS = {
    "zeros": lambda: constant(0.0),
    "normal": _normal,
    "uniform": _uniform,
    "xavier_normal": lambda: variance_scaling(1.0, "fan_avg", "normal"),
    "xavier_uniform": lambda: variance_scaling(1.0, "fan_avg", "uniform"),
    "he_normal": lambda: variance_scaling(2.0, "fan_in", "normal"),
    "he_uniform": lambda: variance_scaling(2.0, "fan_in", "uniform"),
    "lecun_normal": lambda: variance_scaling(1.0, "fan_in", "normal"),
    "lecun_uniform": lambda: variance_scaling(1.0, "fan_in", "uniform"),
}
# Common spellings.
_ALIASES = {
    "glorot_normal": "xavier_normal",
    "glorot_uniform": "xavier_uniform",
    "kaiming_normal": "he_normal",
    "kaiming_uniform": "he_uniform",
    "lecun": "lecun_normal",
    "xavier": "xavier_normal",
    "he": "he_normal",
}


def list_initializers() -> list[str]:
    return sorted(_INITIALIZERS) + sorted(_ALIASES)


def get_initializer(name: str, scale: float | None = None) -> Initializer:
    """The initializer called ``name``; ``scale`` is the std (normal) or bound (uniform)."""
    canonical = _ALIASES.get(name, name)
    if canonical not in _INITIALIZERS:
        raise unknown_name_error("initializer", name, list_initializers())
    if scale is not None:
        if canonical not in ("normal", "uniform"):
            raise ValueError(f"initializer {name!r} takes no scale (only 'normal' and 'uniform' do)")
        return _INITIALIZERS[canonical](scale)
    return _INITIALIZERS[canonical]()


# Compile-cheap initializers shared by the CNN families, as ready-made functions.
lecun_normal = variance_scaling(1.0, "fan_in", "truncated_normal")  # Flax's default kernel init
he_normal_fan_out = variance_scaling(2.0, "fan_out", "normal")  # torchvision's ResNet convs
he_normal = variance_scaling(2.0, "fan_in", "normal")
dense_init = variance_scaling(1.0, "fan_in", "normal")
zeros_init, ones_init = constant(0.0), constant(1.0)
