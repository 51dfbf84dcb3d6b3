"""Synthetic datasets, generated from a seed: the same arguments give the same arrays."""

from __future__ import annotations

import numpy as np

from zoo.data.base import Dataset

_XOR_CORNERS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
_XOR_LABELS = np.array([0, 1, 1, 0], np.int32)  # x1 XOR x2


def split_seeds(seed: int, count: int) -> list[int]:
    """``count`` independent integer seeds derived from ``seed`` (one per split)."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(count)]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def xor(*, seed: int = 0, num_examples: int = 4, noise: float = 0.0) -> Dataset:
    """The XOR problem (kang-lecture4): x ``(num_examples, 2)`` float32 in {0, 1}^2, y
    ``x1 XOR x2`` int32. Defaults: the truth table, for training and testing. More examples
    cycle through the corners; ``noise`` adds Gaussian noise, keeping the labels.
    """
    _check(
        isinstance(num_examples, (int, np.integer)) and num_examples >= 4,
        f"xor: num_examples must be an integer >= 4 (every corner once), got {num_examples!r}",
    )
    _check(noise >= 0, f"xor: noise must be >= 0, got {noise!r}")
    corner = np.arange(num_examples) % 4

    def draw(split_seed):
        rng = np.random.default_rng(split_seed)
        x = _XOR_CORNERS[corner] + noise * rng.standard_normal((num_examples, 2))
        return x.astype(np.float32), _XOR_LABELS[corner]

    (x_train, y_train), (x_test, y_test) = (draw(s) for s in split_seeds(seed, 2))
    return Dataset(
        name="xor",
        task="classification",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=2,
        class_names=("0", "1"),
        description=(
            f"XOR: {num_examples} points cycling over the corners of {{0,1}}^2, label "
            f"x1 XOR x2, Gaussian noise std {noise}; train and test drawn with seed {seed}."
        ),
    )


def circles(
    *, seed: int = 0, num_examples: int = 300, num_test_examples: int = 100, noise: float = 0.05, factor: float = 0.8
) -> Dataset:
    """Two concentric circles (``make_circles``), the seed's weight-initialisation study
    (defaults from the deeplearning.ai exercise it follows): x ``(N, 2)`` float32, y ``(N,)``
    int32, 0 outer (radius 1), 1 inner (radius ``factor``); Gaussian ``noise``.
    """
    from sklearn.datasets import make_circles

    for key, value, minimum in (("num_examples", num_examples, 2), ("num_test_examples", num_test_examples, 2)):
        _check(
            isinstance(value, (int, np.integer)) and value >= minimum,
            f"circles: {key} must be an integer >= {minimum}, got {value!r}",
        )
    _check(noise >= 0, f"circles: noise must be >= 0, got {noise!r}")
    _check(0 < factor < 1, f"circles: factor (inner radius / outer radius) must be in (0, 1), got {factor!r}")
    train_seed, test_seed = split_seeds(seed, 2)

    def draw(n, split_seed):
        x, y = make_circles(n_samples=n, noise=noise, factor=factor, random_state=split_seed)
        return x.astype(np.float32), y.astype(np.int32)

    x_train, y_train = draw(num_examples, train_seed)
    x_test, y_test = draw(num_test_examples, test_seed)
    return Dataset(
        name="circles",
        task="classification",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=2,
        class_names=("outer", "inner"),
        description=(
            f"Concentric circles (sklearn make_circles): {num_examples} train / "
            f"{num_test_examples} test points, noise {noise}, factor {factor}, seed {seed}."
        ),
    )
