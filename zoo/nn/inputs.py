"""Multi-part inputs: one example made of several arrays, such as a visual question
answering model's (image, question tokens).

A plain input is one array ``x (N, *shape)``; a multi-part input is a tuple of arrays
``(x_0 (N, *shape_0), x_1 (N, *shape_1), ...)`` that share the leading example axis. Its
``input_shape`` is the tuple of the parts' shapes, e.g. ``((32, 32, 3), (7,))``, and its
dtype the tuple of theirs, e.g. ``("float32", "int32")``. Data, batching, initialisation
and the registry tests go through these few functions, so each handles both kinds once.
"""

from __future__ import annotations

import numpy as np


def is_multipart(shape) -> bool:
    """True for a tuple of shapes (``((32, 32, 3), (7,))``), False for one shape."""
    return isinstance(shape, (tuple, list)) and len(shape) > 0 and all(isinstance(s, (tuple, list)) for s in shape)


def parts(x) -> tuple:
    """The arrays of ``x``: its parts, or ``(x,)`` for a plain array."""
    return tuple(x) if isinstance(x, tuple) else (x,)


def num_rows(x) -> int:
    """Examples in ``x`` (the length of the leading axis, shared by every part)."""
    lengths = {len(p) for p in parts(x)}
    if len(lengths) != 1:
        raise ValueError(f"the parts of a multi-part input hold different numbers of examples: {sorted(lengths)}")
    return lengths.pop()


def take_rows(x, index):
    """``x[index]`` for every part (an index array or a slice along the example axis)."""
    return tuple(p[index] for p in x) if isinstance(x, tuple) else x[index]


def map_parts(fn, x):
    """``fn`` applied to each part, the structure kept."""
    return tuple(fn(p) for p in x) if isinstance(x, tuple) else fn(x)


def example_shape(x) -> tuple:
    """One example's shape: ``x.shape[1:]``, or the tuple of the parts' shapes."""
    return tuple(tuple(p.shape[1:]) for p in x) if isinstance(x, tuple) else tuple(x.shape[1:])


def example_dtype(x):
    """The dtype of ``x``, or the tuple of the parts' dtypes."""
    return tuple(np.dtype(p.dtype) for p in x) if isinstance(x, tuple) else np.dtype(x.dtype)


def zeros(batch: int, shape, dtype, xp=np):
    """Zeros ``(batch, *shape)`` of ``dtype`` (``xp`` the array module, NumPy or jax.numpy);
    a tuple of them for a multi-part ``shape`` (``dtype`` one per part, or one for all)."""
    if not is_multipart(shape):
        return xp.zeros((batch, *shape), dtype)
    dtypes = dtype if isinstance(dtype, (tuple, list)) else (dtype,) * len(shape)
    if len(dtypes) != len(shape):
        raise ValueError(f"{len(shape)} input parts {tuple(shape)} but {len(dtypes)} dtypes {tuple(dtypes)}")
    return tuple(xp.zeros((batch, *s), d) for s, d in zip(shape, dtypes))
