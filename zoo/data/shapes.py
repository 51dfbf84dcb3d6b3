"""Generated image-segmentation scenes: shapes on noise (per-pixel classes) and salient
objects on clutter (an object mask). Seeded: the same arguments give the same arrays."""

from __future__ import annotations

import numpy as np

from zoo.data.base import Dataset
from zoo.data.synthetic import split_seeds
from zoo.nn.checks import check_count, check_fits_memory

SHAPE_NAMES = ("background", "circle", "square", "triangle")

# Half side of a square and circumradius of an equilateral triangle with the area of a
# circle of radius r: the three kinds differ in form, not in size.
_SQUARE_HALF = float(np.sqrt(np.pi) / 2)
_TRIANGLE_R = float(np.sqrt(4 * np.pi / (3 * np.sqrt(3))))


def _shape_masks(kind, cy, cx, r, size: int) -> np.ndarray:
    """(N, size, size) bool: the pixels (centres at +0.5) inside shape ``kind`` (N,) in
    {1 circle, 2 square, 3 triangle} centred at (cy, cx) with area pi r^2 (all (N,))."""
    grid = np.arange(size, dtype=np.float32) + 0.5
    dy = grid[None, :, None] - cy[:, None, None]
    dx = grid[None, None, :] - cx[:, None, None]
    r = r[:, None, None]
    circle = dy**2 + dx**2 <= r**2
    square = (np.abs(dy) <= _SQUARE_HALF * r) & (np.abs(dx) <= _SQUARE_HALF * r)
    # Upright equilateral triangle of circumradius R: below the two upper edges, above the base.
    big_r = _TRIANGLE_R * r
    s3 = np.float32(np.sqrt(3))
    triangle = (dy <= big_r / 2) & (s3 * dx - dy <= big_r) & (-s3 * dx - dy <= big_r)
    k = kind[:, None, None]
    return np.where(k == 1, circle, np.where(k == 2, square, triangle))


def _draw_shapes(rng, n: int, size: int, count, radius, intensity, canvas, labels=None):
    """Paint ``count`` (N,) shapes per image onto ``canvas`` (N, size, size), later ones
    over earlier ones; ``radius`` and ``intensity`` are (low, high) ranges. Writes each
    shape's class into ``labels`` (N, size, size) where given. Returns the last painted
    shape's mask per image (N, size, size) bool (all False where ``count`` is 0)."""
    last = np.zeros((n, size, size), bool)
    for slot in range(int(count.max(initial=0))):
        kind = rng.integers(1, 4, n)
        r = rng.uniform(*radius, n).astype(np.float32) * size
        cy, cx = (rng.uniform(r, size - r).astype(np.float32) for _ in range(2))
        value = rng.uniform(*intensity, n).astype(np.float32)
        mask = _shape_masks(kind, cy, cx, r, size) & (slot < count)[:, None, None]
        canvas[mask] = np.broadcast_to(value[:, None, None], mask.shape)[mask]
        if labels is not None:
            labels[mask] = np.broadcast_to(kind[:, None, None], mask.shape)[mask]
        last = np.where((slot < count)[:, None, None], mask, last)
    return last


def _check_common(name, num_examples, num_test_examples, size, noise, minimum_size=8):
    check_count(num_examples, "num_examples", 1, name)
    check_count(num_test_examples, "num_test_examples", 1, name)
    check_count(size, "size", minimum_size, name)
    check_fits_memory(name, num_examples + num_test_examples, 4 * size * size)  # image and label map
    if not 0 <= noise <= 1:
        raise ValueError(f"{name}: noise must be in [0, 1], got {noise!r}")


def _shapes_split(rng, n, size, max_shapes, noise):
    canvas = rng.uniform(0.0, 0.3, (n, 1, 1)).astype(np.float32) * np.ones((1, size, size), np.float32)
    labels = np.zeros((n, size, size), np.int32)
    count = rng.integers(1, max_shapes + 1, n)
    _draw_shapes(rng, n, size, count, (0.1, 0.22), (0.55, 1.0), canvas, labels)
    canvas += noise * rng.standard_normal(canvas.shape).astype(np.float32)
    return np.clip(canvas, 0.0, 1.0)[..., None], labels


def shapes(
    *,
    seed: int = 0,
    num_examples: int = 2000,
    num_test_examples: int = 500,
    size: int = 32,
    max_shapes: int = 3,
    noise: float = 0.1,
) -> Dataset:
    """Shapes segmentation (the U-Net and SegNet task of the autoencoder family): random
    circles, squares and upright equilateral triangles on a noisy background, with a class
    per pixel.

    x: ``(N, size, size, 1)`` float32 in [0, 1]; y: ``(N, size, size)`` int32, 0
    background, 1 circle, 2 square, 3 triangle (``num_classes`` 4). Each image has a flat
    background of grey level U(0, 0.3) and 1..``max_shapes`` shapes (uniform count), each
    of kind, centre (wholly inside the image) and grey level U(0.55, 1) drawn at random;
    every shape has the area of a circle of radius U(0.1, 0.22) * size, so form, not size,
    tells the kinds apart. Later shapes cover earlier ones (the mask shows what is
    visible). Gaussian pixel noise of standard deviation ``noise`` is added and the image
    clipped to [0, 1]. Train (``num_examples``) and test (``num_test_examples``) are
    independent draws from ``seed``.
    """
    _check_common("shapes", num_examples, num_test_examples, size, noise)
    check_count(max_shapes, "max_shapes", 1, "shapes")
    train_rng, test_rng = (np.random.default_rng(s) for s in split_seeds(seed, 2))
    x_train, y_train = _shapes_split(train_rng, num_examples, size, max_shapes, noise)
    x_test, y_test = _shapes_split(test_rng, num_test_examples, size, max_shapes, noise)
    return Dataset(
        name="shapes",
        task="segmentation",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=4,
        class_names=SHAPE_NAMES,
        description=(
            f"Generated shapes segmentation: {num_examples} train / {num_test_examples} test "
            f"{size}x{size} images, 1-{max_shapes} shapes each, noise {noise}, seed {seed}."
        ),
    )


def _salient_split(rng, n, size, clutter, noise):
    canvas = rng.uniform(0.1, 0.4, (n, 1, 1)).astype(np.float32) * np.ones((1, size, size), np.float32)
    # Clutter: many small low-contrast shapes, then one large high-contrast object on top.
    _draw_shapes(rng, n, size, np.full(n, clutter), (0.04, 0.09), (0.3, 0.95), canvas)
    obj = _draw_shapes(rng, n, size, np.ones(n, int), (0.15, 0.3), (0.85, 1.0), canvas)
    canvas += noise * rng.standard_normal(canvas.shape).astype(np.float32)
    return np.clip(canvas, 0.0, 1.0)[..., None], obj.astype(np.int32)


def salient_scenes(
    *,
    seed: int = 0,
    num_examples: int = 2000,
    num_test_examples: int = 500,
    size: int = 32,
    clutter: int = 12,
    noise: float = 0.05,
) -> Dataset:
    """Saliency detection scenes (seed kang-lecture4, "Convolutional Auto-Encoder: saliency
    detection": input an image, output its most important area): one large bright object
    on a cluttered background, the target its mask.

    x: ``(N, size, size, 1)`` float32 in [0, 1]; y: ``(N, size, size)`` int32, 1 on the
    salient object, 0 elsewhere (``num_classes`` 2, task "segmentation"). Background grey
    U(0.1, 0.4); ``clutter`` small distractors (circles, squares, triangles with the area
    of a circle of radius U(0.04, 0.09) * size, grey U(0.3, 0.95), as bright as the object can be: size tells them
    apart); then the object, of a
    random kind, radius U(0.15, 0.3) * size and grey U(0.85, 1), drawn over them. Gaussian
    noise of standard deviation ``noise``, clipped to [0, 1]. Train and test are
    independent draws from ``seed``.
    """
    _check_common("salient_scenes", num_examples, num_test_examples, size, noise)
    check_count(clutter, "clutter", 0, "salient_scenes")
    train_rng, test_rng = (np.random.default_rng(s) for s in split_seeds(seed, 2))
    x_train, y_train = _salient_split(train_rng, num_examples, size, clutter, noise)
    x_test, y_test = _salient_split(test_rng, num_test_examples, size, clutter, noise)
    return Dataset(
        name="salient_scenes",
        task="segmentation",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=2,
        class_names=("background", "salient"),
        description=(
            f"Generated saliency scenes: {num_examples} train / {num_test_examples} test "
            f"{size}x{size} images, {clutter} distractors, noise {noise}, seed {seed}."
        ),
    )
