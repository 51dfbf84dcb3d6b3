"""Mixed precision for any Linen module, as jmp's policies and the Flax examples'
``half_precision`` do it: parameters stored in ``param_dtype`` (float32 master weights, so
the optimizer state is float32 too), cast to the compute ``dtype`` (bfloat16 or float16)
on their way into the model, float inputs cast likewise, and the outputs cast back to
float32, so that losses and metrics are computed in float32.

One mechanism serves every family: `with_precision` wraps a model's methods in
``flax.linen.map_variables`` over the "params" collection, so no layer needs a dtype field
of its own. The variable tree keeps its structure (checkpoints, interop and fine-tuning
see the same names), and the other collections are not cast: batch-norm statistics are
kept and updated in float32 (Flax's BatchNorm reduces in float32), fixed "constants" stay
float32.

float16 has too few exponent bits for small gradients: train it with
`zoo.optim.dynamic_loss_scale` around the optimizer.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

DTYPES = ("float32", "bfloat16", "float16")

# Set while a wrapped method runs: a wrapped method that another one calls (MLP.__call__
# calls self.forward_features) runs as is, inside the outer method's mapped scope.
_INSIDE = contextvars.ContextVar("zoo_precision_inside", default=False)


def check_dtype(what: str, dtype: str) -> str:
    """``dtype`` if it is one of `DTYPES`, else a ValueError naming ``what``."""
    if dtype not in DTYPES:
        raise ValueError(f"{what} must be one of {DTYPES}, got {dtype!r}")
    return dtype


def cast_floats(tree, dtype):
    """Floating-point array leaves of ``tree`` cast to ``dtype``; everything else (integer
    token ids, Python numbers, None) as it is."""

    def cast(a):
        if isinstance(a, (jax.Array, np.ndarray)) and jnp.issubdtype(a.dtype, jnp.floating):
            return a.astype(dtype)
        return a

    return jax.tree.map(cast, tree)


def _own_methods(cls: type) -> list[str]:
    """The public methods ``cls`` defines above nn.Module, plus ``__call__``."""
    fields = {f.name for f in dataclasses.fields(cls)}  # a default may be a function (kernel_init)
    names = {"__call__"}
    for klass in cls.__mro__:
        if klass is nn.Module or not issubclass(klass, nn.Module):
            continue
        for name, value in vars(klass).items():
            # Plain functions only: static and class methods take no module.
            if inspect.isfunction(value) and not name.startswith("_") and name not in fields | {"setup"}:
                names.add(name)
    return sorted(names)


def _mixed(method):
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        if _INSIDE.get() or self.scope is None:  # nested, or a helper of an unbound module
            return method(self, *args, **kwargs)
        compute, stored = jnp.dtype(self.dtype), jnp.dtype(self.param_dtype)

        def inner(module, *args, **kwargs):
            token = _INSIDE.set(True)
            try:
                return method(module, *args, **kwargs)
            finally:
                _INSIDE.reset(token)

        initializing = self.is_initializing()
        mapped = nn.map_variables(
            inner,
            "params",
            trans_in_fn=functools.partial(cast_floats, dtype=compute),
            # Only applies when parameters are written: at init, stored in param_dtype.
            trans_out_fn=functools.partial(cast_floats, dtype=stored),
            init=initializing,
            mutable=initializing,
        )
        return cast_floats(mapped(self, *cast_floats(args, compute), **kwargs), jnp.float32)

    return run


@functools.cache
def precision_class(cls: type) -> type:
    """``cls`` with two more fields, ``dtype`` (compute) and ``param_dtype`` (storage), and
    its methods running under that policy (see the module docstring). Same name, same
    config, same variables."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"mixed precision wraps a Linen module class, got {cls!r}")
    if getattr(cls, "_zoo_precision", False):
        return cls
    namespace = {name: _mixed(getattr(cls, name)) for name in _own_methods(cls)}
    namespace.update(
        __module__=cls.__module__,
        __qualname__=cls.__qualname__,
        __doc__=cls.__doc__,
        __annotations__={"dtype": str, "param_dtype": str},
        dtype="float32",
        param_dtype="float32",
        _zoo_precision=True,
    )
    return type(cls.__name__, (cls,), namespace)


def with_precision(module: nn.Module, dtype: str = "float32", param_dtype: str = "float32") -> nn.Module:
    """``module`` computing in ``dtype`` with parameters stored in ``param_dtype`` (each
    "float32", "bfloat16" or "float16"); ``module`` itself when both are float32 and it
    has no policy yet."""
    check_dtype("dtype", dtype)
    check_dtype("param_dtype", param_dtype)
    if dtype == param_dtype == "float32" and not is_mixed(module):
        return module
    fields = {
        f.name: getattr(module, f.name)
        for f in dataclasses.fields(module)
        if f.init and f.name not in ("parent", "name", "dtype", "param_dtype")
    }
    return precision_class(type(module))(**fields, dtype=dtype, param_dtype=param_dtype)


def is_mixed(module) -> bool:
    return getattr(module, "_zoo_precision", False)
