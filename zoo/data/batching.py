"""Mini-batches of in-memory arrays, in an order fixed by (seed, epoch)."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from zoo.nn.checks import check_count
from zoo.nn.inputs import map_parts, num_rows, take_rows


def num_batches(num_examples: int, batch_size: int, drop_remainder: bool = False) -> int:
    """How many batches `iterate_batches` yields per epoch.

    ``batch_size >= num_examples`` gives one batch (full-batch gradient descent), even
    with ``drop_remainder``.
    """
    num_examples = check_count(num_examples, "num_examples", 0)
    batch_size = check_count(batch_size, "batch_size", 1)
    if num_examples == 0:
        return 0
    if batch_size >= num_examples:
        return 1
    if drop_remainder:
        return num_examples // batch_size
    return -(-num_examples // batch_size)


def epoch_order(num_examples: int, *, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The example order of one epoch: ``(num_examples,)`` int64 indices.

    A pure function of (seed, epoch), so a run resumed at any epoch sees the same data
    order as one that never stopped.
    """
    num_examples = check_count(num_examples, "num_examples", 0)
    if not shuffle:
        return np.arange(num_examples)
    seed = check_count(seed, "seed", 0)
    epoch = check_count(epoch, "epoch", 0)
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def iterate_batches(
    x: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    drop_remainder: bool = False,
    pad: bool = False,
    fill: bool = False,
) -> Iterator[dict[str, np.ndarray]]:
    """Yield ``{"x": (b, ...), "y": (b, ...), "mask": (b,) float32}`` batches for one epoch
    (no "y" when ``y`` is None; "x" a tuple when ``x`` is a tuple of arrays, examples of
    several parts); ``batch_size >= N`` gives one full batch. Order:
    ``np.random.default_rng([seed, epoch]).permutation(N)``, or as given without
    ``shuffle``. ``pad`` fills every batch to ``batch_size`` rows of zeros with mask 0 (one
    shape, one compiled step); ``fill`` does so with the epoch's first examples instead,
    for training: with mask 0 they count in no loss or metric, and a layer that looks
    across the batch (batch norm's statistics) sees real examples, not zeros. ``mask`` is
    1.0 for the examples a batch is for.
    """
    x = map_parts(np.asarray, x)
    y = None if y is None else np.asarray(y)
    n = num_rows(x)
    if y is not None and len(y) != n:
        raise ValueError(f"x has {n} examples but y has {len(y)}")
    batch_size = check_count(batch_size, "batch_size", 1)
    order = epoch_order(n, seed=seed, epoch=epoch, shuffle=shuffle)
    if n == 0:
        return
    step = min(batch_size, n)  # batch_size >= N: one full batch, never dropped
    for start in range(0, num_batches(n, batch_size, drop_remainder) * step, step):
        size = min(step, n - start)
        if fill and size < step:
            index = np.concatenate([order[start:], order[: step - size]])
        else:  # unshuffled batches are slices: views, no copy
            index = order[start : start + step] if shuffle else slice(start, start + size)
        batch = {"x": take_rows(x, index)}
        if y is not None:
            batch["y"] = y[index]
        batch["mask"] = (np.arange(num_rows(batch["x"])) < size).astype(np.float32)
        if pad and size < batch_size:
            batch = {key: map_parts(lambda a: _pad_rows(a, batch_size), value) for key, value in batch.items()}
        yield batch


def _pad_rows(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` with zero rows appended up to ``size`` rows (same dtype)."""
    padding = np.zeros((size - len(array), *array.shape[1:]), array.dtype)
    return np.concatenate([array, padding])
