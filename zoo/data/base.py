"""The in-memory dataset every loader returns and the training engine consumes."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import numpy as np

from zoo.nn.checks import check_fits_memory
from zoo.nn.inputs import example_shape, num_rows, parts, take_rows


# Tasks whose targets are class labels in [0, num_classes): one per example, or one per pixel.
_LABELLED = ("classification", "segmentation")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not on this machine; the message says how to get them."""


# eq=False: the fields are arrays, for which the generated field-by-field ``==`` would be
# ambiguous; two datasets compare equal only when they are the same object.
# repr=False: the generated repr would print every array.
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A dataset in memory as NumPy arrays, split into train / test (and maybe val).

    x_*: ``(N, *input_shape)`` (images float32 in [0, 1], NHWC; text int32 token ids, 0 =
    padding, with their ``vocabulary``), or a tuple of such arrays for examples of several
    parts (`zoo.nn.inputs`: a VQA set's images and questions); y_*: ``(N,)`` int32 labels, ``(N, H, W)`` int32
    per-pixel labels (segmentation) or ``(N, k)`` float32 targets (``target_mean`` /
    ``target_std`` when standardised: `unscale_targets`).
    ``model_config``: config values the data fixes (``{"vocab_size": 57}``), applied by
    `zoo.registry.adapt_config` to every model that has them.
    """

    name: str
    task: str  # "classification", "regression", later "reconstruction", ...
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int | None = None  # None for regression
    class_names: tuple[str, ...] | None = None
    description: str = ""  # source, split, preprocessing, citation
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    target_mean: np.ndarray | None = None
    target_std: np.ndarray | None = None
    vocabulary: Any = None  # zoo.data.text.Vocabulary for text sets
    model_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for split, x, y in (
            ("train", self.x_train, self.y_train),
            ("test", self.x_test, self.y_test),
            ("val", self.x_val, self.y_val),
        ):
            if (x is None) != (y is None):
                raise ValueError(f"dataset {self.name!r}: x_{split} and y_{split} must be given together")
            if x is not None and num_rows(x) != len(y):
                raise ValueError(
                    f"dataset {self.name!r}: x_{split} has {num_rows(x)} examples but y_{split} has {len(y)}"
                )
        if self.task in _LABELLED and self.num_classes is None:
            raise ValueError(f"dataset {self.name!r}: a {self.task} dataset needs num_classes")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"dataset {self.name!r}: {len(self.class_names)} class names for {self.num_classes} classes"
            )
        self.check_values()

    def splits(self):
        """``(split name, x, y)`` for every split present: train, val, test."""
        return [
            (split, x, y)
            for split, x, y in (
                ("train", self.x_train, self.y_train),
                ("val", self.x_val, self.y_val),
                ("test", self.x_test, self.y_test),
            )
            if x is not None
        ]

    def check_values(self) -> None:
        """Raise ValueError unless every split's values fit the dataset: finite inputs and
        targets, and for classification and segmentation integer labels in ``[0, num_classes)``.

        Runs when a dataset is built and again when `zoo.fit` receives one (arrays can be
        changed in place after construction): a NaN pixel or a label 10 of 10 classes would
        otherwise train to a result that looks right and is not.
        """
        for split, x, y in self.splits():
            named = (
                [(f"x_{split}[{i}]", p) for i, p in enumerate(parts(x))]
                if isinstance(x, tuple)
                else [(f"x_{split}", x)]
            )
            for what, a in (*named, (f"y_{split}", y)):
                a = np.asarray(a)
                if np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating):
                    bad = ~np.isfinite(a)
                    if bad.any():
                        first = int(np.argwhere(bad)[0][0])
                        raise ValueError(
                            f"dataset {self.name!r}: {what} holds {int(bad.sum())} non-finite "
                            f"value(s) (NaN or inf), the first in example {first}"
                        )
                elif not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
                    raise ValueError(f"dataset {self.name!r}: {what} must hold numbers, got dtype {a.dtype}")
            if self.task in _LABELLED:
                self._check_labels(f"y_{split}", np.asarray(y))

    def _check_labels(self, what: str, y: np.ndarray) -> None:
        if y.size == 0:
            return
        if np.issubdtype(y.dtype, np.floating) and not np.all(y == np.round(y)):
            raise ValueError(
                f"dataset {self.name!r}: {what} must be integer class labels, got "
                f"non-integer values such as {y[y != np.round(y)].flat[0]!r}"
            )
        low, high = y.min(), y.max()
        if low < 0 or high >= self.num_classes:
            raise ValueError(
                f"dataset {self.name!r}: {what} labels must be in [0, {self.num_classes}) "
                f"(num_classes={self.num_classes}), got labels from {low} to {high}"
            )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, without the batch axis, e.g. ``(8, 8, 1)`` (a tuple of
        shapes for examples of several parts)."""
        return example_shape(self.x_train)

    @property
    def num_outputs(self) -> int:
        """Width of the model's output: ``num_classes``, else the size of one target."""
        if self.num_classes is not None:
            return self.num_classes
        return math.prod(self.y_train.shape[1:])

    @property
    def num_train(self) -> int:
        return num_rows(self.x_train)

    @property
    def num_test(self) -> int:
        return num_rows(self.x_test)

    @property
    def num_val(self) -> int:
        return 0 if self.x_val is None else num_rows(self.x_val)

    def unscale_targets(self, y: np.ndarray) -> np.ndarray:
        """Map standardised targets or predictions ``(N, k)`` back to the original units."""
        if self.target_mean is None:
            return np.asarray(y)
        return np.asarray(y) * self.target_std + self.target_mean

    def with_validation(self, fraction: float, seed: int) -> Dataset:
        """A copy with ``ceil(fraction * num_train)`` training examples moved to x_val/y_val.

        The examples are chosen by ``np.random.default_rng(seed).permutation`` (the same
        seed gives the same split on every machine); both parts keep their original order.
        Raises ValueError if ``fraction`` is not in (0, 1), if either part would be empty,
        or if the dataset already has a validation split.
        """
        if self.x_val is not None:
            raise ValueError(f"dataset {self.name!r} already has a validation split ({self.num_val} examples)")
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
        n = self.num_train
        # ceil, as scikit-learn's train_test_split does: any fraction > 0 gives at least one.
        n_val = math.ceil(fraction * n)
        if n_val >= n:
            raise ValueError(
                f"a validation fraction of {fraction} of the {n} training examples of "
                f"{self.name!r} leaves no training examples"
            )
        order = np.random.default_rng(seed).permutation(n)
        val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
        note = f" Validation: {n_val} of the {n} training examples, drawn with seed {seed}."
        return dataclasses.replace(
            self,
            x_train=take_rows(self.x_train, train),
            y_train=self.y_train[train],
            x_val=take_rows(self.x_train, val),
            y_val=self.y_train[val],
            description=self.description + note,
        )

    def whitened(self, method: str = "zca", epsilon: float = 1e-2) -> Dataset:
        """A copy whose inputs are whitened with statistics of the training split alone:
        ``x' = (x - mean) @ W`` on the flattened inputs, shape kept. With the training
        covariance ``C = U diag(s) U^T``: ``"pca"`` W = U diag(1/sqrt(s + epsilon)) (rotated
        onto the principal axes), ``"zca"`` W = U diag(1/sqrt(s + epsilon)) U^T (the rotation
        undone, so images still look like images). ``epsilon`` keeps near-constant directions
        (e.g. digits' always-blank border pixels) from being blown up.

        This is batch norm's motivating baseline in kang-lecture4 ("Initial solution:
        Whitening"): decorrelated, unit-variance inputs, paid for with a D x D eigendecomposition.
        """
        if method not in ("pca", "zca"):
            raise ValueError(f"whitening method must be 'pca' or 'zca', got {method!r}")
        if not epsilon > 0:
            raise ValueError(f"whitening epsilon must be > 0, got {epsilon}")
        if not np.issubdtype(np.asarray(self.x_train).dtype, np.floating):
            raise ValueError(f"dataset {self.name!r} has non-float inputs (token ids?): it cannot be whitened")
        flat = np.asarray(self.x_train, np.float64).reshape(self.num_train, -1)
        mean = flat.mean(0)
        variances, axes = np.linalg.eigh(np.cov(flat - mean, rowvar=False, bias=True))
        w = axes / np.sqrt(np.maximum(variances, 0.0) + epsilon)
        if method == "zca":
            w = w @ axes.T

        def apply(x):
            if x is None:
                return None
            return ((np.asarray(x, np.float64).reshape(len(x), -1) - mean) @ w).reshape(x.shape).astype(np.float32)

        note = f" Inputs {method.upper()}-whitened (epsilon {epsilon}) with training-split statistics."
        return dataclasses.replace(
            self,
            x_train=apply(self.x_train),
            x_val=apply(self.x_val),
            x_test=apply(self.x_test),
            description=self.description + note,
        )

    def resized(self, height: int, width: int) -> Dataset:
        """A copy with every image split resized to ``(height, width)`` by bilinear
        interpolation (antialiased when shrinking), e.g. digits' 8x8 to LeNet-5's 28x28.
        Images stay float32 NHWC; labels are unchanged, but per-pixel labels
        (segmentation) take their nearest source pixel's class. Raises ValueError for a dataset
        whose examples are not images ``(H, W, C)`` or for a non-positive size."""
        if len(self.input_shape) != 3:
            raise ValueError(
                f"dataset {self.name!r} has examples of shape {self.input_shape}, "
                "not images (H, W, C): it cannot be resized"
            )
        if int(height) <= 0 or int(width) <= 0:
            raise ValueError(f"image size must be positive, got {height}x{width}")
        check_fits_memory(
            f"resizing {self.name!r} to {int(height)}x{int(width)}",
            sum(len(x) for _, x, _ in self.splits()),
            int(height) * int(width) * self.input_shape[-1],
            "choose a smaller image size",
        )
        import jax  # only resizing needs it; the data package stays light to import

        def resize(x):
            if x is None:
                return None
            out = jax.image.resize(x, (len(x), int(height), int(width), x.shape[-1]), "bilinear")
            return np.asarray(out, dtype=np.float32)

        def nearest(y):
            if y is None or self.task != "segmentation":
                return y
            rows = (np.arange(int(height)) + 0.5) * y.shape[1] // int(height)
            cols = (np.arange(int(width)) + 0.5) * y.shape[2] // int(width)
            return y[:, rows.astype(int)][:, :, cols.astype(int)]

        note = f" Resized to {int(height)}x{int(width)} (bilinear)."
        return dataclasses.replace(
            self,
            x_train=resize(self.x_train),
            x_test=resize(self.x_test),
            x_val=resize(self.x_val),
            y_train=nearest(self.y_train),
            y_test=nearest(self.y_test),
            y_val=nearest(self.y_val),
            description=self.description + note,
        )

    def __repr__(self) -> str:
        splits = ", ".join(
            f"{split}={num_rows(x)}"
            for split, x in (("train", self.x_train), ("val", self.x_val), ("test", self.x_test))
            if x is not None
        )
        return (
            f"Dataset(name={self.name!r}, task={self.task!r}, input_shape={self.input_shape}, "
            f"num_outputs={self.num_outputs}, {splits})"
        )
