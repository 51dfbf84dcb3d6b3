"""Weight initializers selectable by name (seed kang-lecture4, "Weight Initialization").

=================  =============================================  ====================
name               distribution                                   reference
=================  =============================================  ====================
zeros              0 (every unit identical: the seed's Strategy 1)
normal             N(0, scale^2), scale given (Strategy 2)
uniform            U[-scale, scale]
xavier_normal      N(0, 2 / (fan_in + fan_out))                   Glorot & Bengio 2010
xavier_uniform     U[-sqrt(6/(fan_in+fan_out)), +sqrt(...)]
he_normal          N(0, 2 / fan_in)                               He et al. 2015
he_uniform         U[-sqrt(6/fan_in), +sqrt(6/fan_in)]
lecun_normal       N(0, 1 / fan_in) (the seed's "forward path only")  LeCun et al. 1998
lecun_uniform      U[-sqrt(3/fan_in), +sqrt(3/fan_in)]
=================  =============================================  ====================

The seed's forward-only Xavier variance 1/size^(L-1) is LeCun's; its "both paths" form is
Glorot's. Normal variants are untruncated, so the variance is exactly the one above.
"""

from __future__ import annotations

import jax
from jax.nn import initializers as jinit

from zoo._choices import unknown_name_error

Initializer = jax.nn.initializers.Initializer


def _normal(scale: float = 0.01) -> Initializer:
    return jinit.normal(stddev=scale)


def _uniform(scale: float = 0.05) -> Initializer:
    # jax's uniform draws from [0, scale); the seed's is symmetric around zero.
    def init(key, shape, dtype=jax.numpy.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


_INITIALIZERS = {
    "zeros": lambda: jinit.zeros,
    "normal": _normal,
    "uniform": _uniform,
    "xavier_normal": lambda: jinit.variance_scaling(1.0, "fan_avg", "normal"),
    "xavier_uniform": lambda: jinit.variance_scaling(1.0, "fan_avg", "uniform"),
    "he_normal": lambda: jinit.variance_scaling(2.0, "fan_in", "normal"),
    "he_uniform": lambda: jinit.variance_scaling(2.0, "fan_in", "uniform"),
    "lecun_normal": lambda: jinit.variance_scaling(1.0, "fan_in", "normal"),
    "lecun_uniform": lambda: jinit.variance_scaling(1.0, "fan_in", "uniform"),
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
