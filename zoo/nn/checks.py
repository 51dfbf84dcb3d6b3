"""Validation at public entry points: wrong shapes fail with the expected shape, bad counts
name what they got."""

from __future__ import annotations

import math
import operator
import os

import jax.numpy as jnp


def check_input(x, expected: tuple, *, model: str, dtype_kind: str = "float") -> None:
    """Raise ValueError unless ``x`` is ``(batch..., *expected)`` of the right dtype kind.

    ``expected`` is one example's shape; ``None`` entries match any size. ``dtype_kind`` is
    "float" (any floating dtype) or "int" (token ids).
    """
    expected = tuple(expected)
    shape = tuple(x.shape)
    wanted = "(B, " + ", ".join("*" if d is None else str(d) for d in expected) + ")"
    tail = shape[len(shape) - len(expected) :] if len(shape) >= len(expected) else None
    if tail is None or any(e is not None and e != s for e, s in zip(expected, tail)):
        raise ValueError(f"{model} expects input of shape {wanted}, got {shape}")
    is_float = jnp.issubdtype(x.dtype, jnp.floating)
    if (dtype_kind == "float") != is_float:
        raise ValueError(f"{model} expects {dtype_kind} input of shape {wanted}, got dtype {x.dtype}")


def check_count(value, what: str, minimum: int, owner: str | None = None) -> int:
    """``value`` as an int if it is an integer >= ``minimum``, else ValueError naming
    ``what`` (and the ``owner``, e.g. a dataset, when given)."""
    prefix = f"{owner}: " if owner else ""
    try:
        value = operator.index(value)  # Python and NumPy integers; rejects floats
    except TypeError:
        raise ValueError(f"{prefix}{what} must be an integer >= {minimum}, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{prefix}{what} must be an integer >= {minimum}, got {value}")
    return value


def _kind(value) -> str:
    return "a list" if isinstance(value, list) else f"{type(value).__name__} {value!r}"


def check_like_default(where: str, value, default, *, element: bool = False):
    """``value`` checked against the kind of ``default`` (a config's or an option's): ints
    stay integers, floats take ints (and must be finite), bools and strings must be bools
    and strings, tuples take tuples or lists (to a tuple, each element checked against the
    default's first; ``None`` elements pass, for free axes such as a sequence length). A
    ``None`` default or any other type is left to the owner's own checks. ``where`` names
    the option in the ValueError, e.g. "model 'mlp': hidden_sizes".
    """
    if default is None or (value is None and element):
        return value
    if value is None:
        raise ValueError(f"{where} must be set (default {default!r}), got None")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be True or False, got {_kind(value)}")
        return value
    if isinstance(default, int):
        try:
            return operator.index(value)  # Python and NumPy integers, not floats or bools
        except TypeError:
            raise ValueError(f"{where} must be an integer, got {_kind(value)}") from None
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number, got {_kind(value)}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {_kind(value)}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (tuple, list)):
            raise ValueError(f"{where} must be a tuple like {default!r}, got {_kind(value)}")
        if default and all(isinstance(d, type(default[0])) for d in default):
            return tuple(check_like_default(f"{where}[{i}]", v, default[0], element=True) for i, v in enumerate(value))
        return tuple(value)
    return value


def free_memory_bytes() -> int:
    """Physical memory not in use right now (what an allocation can count on)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_fits_memory(
    what: str, examples: int, values_per_example: int, advice: str = "ask for fewer or smaller examples"
) -> None:
    """ValueError when ``examples`` of ``values_per_example`` float32 values would take more
    than half of the free memory, before anything is allocated: an allocation that large
    fails part way or has the process killed (XLA aborts it), losing what it holds."""
    needed = examples * values_per_example * 4
    available = free_memory_bytes()
    if needed > available // 2:
        raise ValueError(
            f"{what} needs {needed / 2**30:.1f} GiB for its {examples} examples; this machine has "
            f"{available / 2**30:.1f} GiB free: {advice}"
        )
