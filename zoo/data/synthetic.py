"""Synthetic datasets, generated from a seed: the same arguments give the same arrays."""

from __future__ import annotations

import numpy as np

from zoo.data.base import Dataset

_XOR_CORNERS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
_XOR_LABELS = np.array([0, 1, 1, 0], np.int32)  # x1 XOR x2


def _split_seeds(seed: int, count: int) -> list[int]:
    """``count`` independent integer seeds derived from ``seed`` (one per split)."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(count)]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def xor(*, seed: int = 0, num_examples: int = 4, noise: float = 0.0) -> Dataset:
    """The XOR problem (kang-lecture4, "XOR problem revisited"): inputs in {0, 1}^2,
    label ``x1 XOR x2``; not linearly separable, so a single perceptron fails and one
    hidden layer suffices.

    x: ``(num_examples, 2)`` float32; y: ``(num_examples,)`` int32 in {0, 1}.
    Defaults give the truth table itself: the 4 corners, for training and for testing
    (the classic task is to fit the table, so there is nothing to hold out).
    ``num_examples`` (>= 4) cycles through the corners (each appears num_examples/4
    times, up to one), and ``noise`` adds Gaussian noise of that standard deviation to
    every point, keeping the corner's label. Train and test are independent draws from
    ``seed``; with ``noise=0`` they are the same points.
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

    (x_train, y_train), (x_test, y_test) = (draw(s) for s in _split_seeds(seed, 2))
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
    """Two concentric circles (scikit-learn's ``make_circles``): the dataset of the
    seed's weight-initialisation study (kang-lecture4, "Weight Initialization": zero
    initialisation stays at loss 0.693 / 50% accuracy). The defaults, 300 training and
    100 test points with noise 0.05, follow the deeplearning.ai initialisation exercise
    those figures come from.

    x: ``(N, 2)`` float32; y: ``(N,)`` int32, 0 = outer circle (radius 1), 1 = inner
    circle (radius ``factor``, in (0, 1)); ``noise``: standard deviation of the Gaussian
    noise added to the points. Train and test are independent draws from ``seed``.
    """
    from sklearn.datasets import make_circles

    for key, value, minimum in (("num_examples", num_examples, 2), ("num_test_examples", num_test_examples, 2)):
        _check(
            isinstance(value, (int, np.integer)) and value >= minimum,
            f"circles: {key} must be an integer >= {minimum}, got {value!r}",
        )
    _check(noise >= 0, f"circles: noise must be >= 0, got {noise!r}")
    _check(0 < factor < 1, f"circles: factor (inner radius / outer radius) must be in (0, 1), got {factor!r}")
    train_seed, test_seed = _split_seeds(seed, 2)

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
