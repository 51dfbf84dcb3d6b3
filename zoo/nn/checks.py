"""Validation at public entry points: wrong shapes fail with the expected shape, bad counts
name what they got."""

from __future__ import annotations

import operator

import jax.numpy as jnp


def check_input(x, expected: tuple, *, model: str, dtype_kind: str = "float") -> None:
    """Raise ValueError unless ``x`` is ``(batch..., *expected)`` of the right dtype kind.

    ``expected`` is one example's shape; ``None`` entries match any size. ``dtype_kind`` is
    "float" (any floating dtype) or "int" (token ids).
    """
    expected = tuple(expected)
    shape = tuple(x.shape)
    wanted = "(B, " + ", ".join("*" if d is None else str(d) for d in expected) + ")"
    tail = shape[len(shape) - len(expected):] if len(shape) >= len(expected) else None
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
