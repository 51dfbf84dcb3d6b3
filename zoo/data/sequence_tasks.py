"""Generated sequence tasks for the recurrent family, seeded (same arguments, same arrays):
`adding_problem` (Hochreiter & Schmidhuber 1997: carry two marked values over ``T``
steps) and `moving_digits` (Moving-MNIST-like videos of scikit-learn's 8x8 digits: no
download).
"""

from __future__ import annotations

import numpy as np

from zoo.data.base import Dataset
from zoo.nn.checks import check_count, check_fits_memory

DIGIT_SIZE = 8  # scikit-learn's digits are 8x8


def _split_rngs(seed: int, count: int) -> list[np.random.Generator]:
    """``count`` independent generators from ``seed`` (one per split)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(count)]


# --- Adding problem.


def adding_examples(rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` adding-problem sequences: x ``(n, length, 2)`` float32, y ``(n, 1)`` float32.
    Markers at one step of each half (Le et al. 2015, Arjovsky et al. 2016; Hochreiter &
    Schmidhuber put the first among the first ten steps)."""
    values = rng.uniform(0.0, 1.0, (n, length)).astype(np.float32)
    half = length // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, length, n)
    markers = np.zeros((n, length), np.float32)
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values[rows, first] + values[rows, second])[:, None].astype(np.float32)
    return x, y


def adding_problem(
    *, seed: int = 0, length: int = 100, num_examples: int = 10_000, num_test_examples: int = 1_000
) -> Dataset:
    """The adding problem (LSTM paper, experiment 4): x ``(N, length, 2)`` float32, values
    from U(0, 1) and a marker that is 1 at two steps (one per half); y ``(N, 1)`` float32,
    the marked values' sum (regression; predicting the mean scores MSE 1/6)."""
    length = check_count(length, "length (T)", 2, "adding_problem")
    num_examples = check_count(num_examples, "num_examples", 1, "adding_problem")
    num_test_examples = check_count(num_test_examples, "num_test_examples", 1, "adding_problem")
    check_fits_memory("adding_problem", num_examples + num_test_examples, 2 * length + 1)
    train_rng, test_rng = _split_rngs(seed, 2)
    x_train, y_train = adding_examples(train_rng, num_examples, length)
    x_test, y_test = adding_examples(test_rng, num_test_examples, length)
    return Dataset(
        name="adding_problem",
        task="regression",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        description=(
            f"Adding problem (Hochreiter & Schmidhuber 1997): T={length} steps of "
            "(U(0,1) value, marker), two markers (one per half), target the sum of the "
            f"marked values; {num_examples} train / {num_test_examples} test sequences, "
            f"seed {seed}."
        ),
    )


# --- Moving digits.


def _digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits as float32 (N, 8, 8) in [0, 1] (grey levels / 16, as the
    ``digits`` dataset scales them) and their labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int32)


def _trajectories(
    rng: np.random.Generator, n: int, num_digits: int, num_frames: int, room: int, max_speed: float
) -> np.ndarray:
    """Integer top-left corners ``(n, num_digits, num_frames, 2)`` of digits that move in a
    straight line and bounce off the canvas walls (reflection), positions in [0, room]."""
    start = rng.uniform(0, room, (n, num_digits, 2))
    angle = rng.uniform(0, 2 * np.pi, (n, num_digits))
    speed = rng.uniform(max_speed / 2, max_speed, (n, num_digits))
    velocity = np.stack([np.sin(angle), np.cos(angle)], -1) * speed[..., None]
    free = start[:, :, None, :] + velocity[:, :, None, :] * np.arange(num_frames)[None, None, :, None]
    # Reflecting a free path at 0 and at `room` is folding it onto [0, room] with period 2*room.
    folded = np.mod(free, 2 * room)
    folded = np.where(folded > room, 2 * room - folded, folded)
    return np.rint(folded).astype(np.int64)


def moving_digit_videos(
    rng: np.random.Generator,
    images: np.ndarray,
    n: int,
    *,
    num_frames: int,
    canvas_size: int,
    num_digits: int,
    max_speed: float,
) -> np.ndarray:
    """``n`` videos ``(n, num_frames, canvas_size, canvas_size, 1)`` float32 of digits from
    ``images`` ``(M, 8, 8)``; where digits overlap the brighter pixel wins."""
    room = canvas_size - DIGIT_SIZE
    corners = _trajectories(rng, n, num_digits, num_frames, room, max_speed)
    chosen = images[rng.integers(0, len(images), (n, num_digits))]  # (n, D, 8, 8)
    videos = np.zeros((n, num_frames, canvas_size, canvas_size), np.float32)
    offsets = np.arange(DIGIT_SIZE)
    # Paste by fancy indexing, one digit slot at a time (no loop over examples or frames):
    # index arrays broadcast to (n, F, 8, 8).
    rows = corners[..., 0, None, None] + offsets[:, None]  # (n, D, F, 8, 1)
    cols = corners[..., 1, None, None] + offsets[None, :]  # (n, D, F, 1, 8)
    ex = np.arange(n)[:, None, None, None]
    fr = np.arange(num_frames)[None, :, None, None]
    for d in range(num_digits):
        pixels = chosen[:, d, None]  # (n, 1, 8, 8)
        index = (ex, fr, rows[:, d], cols[:, d])
        videos[index] = np.maximum(videos[index], pixels)
    return videos[..., None]


def moving_digits(
    *,
    seed: int = 0,
    input_frames: int = 5,
    output_frames: int = 5,
    canvas_size: int = 24,
    num_digits: int = 2,
    max_speed: float = 2.0,
    num_examples: int = 2_000,
    num_test_examples: int = 200,
) -> Dataset:
    """Moving digits, Moving-MNIST-like next-frame prediction (Srivastava et al. 2015; Shi et
    al. 2015): ``num_digits`` digits at ``max_speed / 2 .. max_speed`` px per frame,
    bouncing in the canvas. x ``(N, input_frames, canvas_size, canvas_size, 1)`` float32 in
    [0, 1], y the ``output_frames`` that follow (regression). Test videos use digit images
    (20%) unseen in training. ``model_config`` gives ``output_frames``.
    """
    task = "moving_digits"
    input_frames = check_count(input_frames, "input_frames", 1, task)
    output_frames = check_count(output_frames, "output_frames", 1, task)
    canvas_size = check_count(canvas_size, "canvas_size", DIGIT_SIZE, task)
    num_digits = check_count(num_digits, "num_digits", 1, task)
    num_examples = check_count(num_examples, "num_examples", 1, task)
    num_test_examples = check_count(num_test_examples, "num_test_examples", 1, task)
    check_fits_memory(task, num_examples + num_test_examples, (input_frames + output_frames) * canvas_size**2)
    if not max_speed >= 0:
        raise ValueError(f"{task}: max_speed must be >= 0 pixels per frame, got {max_speed!r}")
    images, _ = _digit_images()
    split_rng, train_rng, test_rng = _split_rngs(seed, 3)
    order = split_rng.permutation(len(images))
    n_test_images = len(images) // 5
    test_images, train_images = images[order[:n_test_images]], images[order[n_test_images:]]
    frames = input_frames + output_frames
    options = {
        "num_frames": frames,
        "canvas_size": canvas_size,
        "num_digits": num_digits,
        "max_speed": float(max_speed),
    }
    train = moving_digit_videos(train_rng, train_images, num_examples, **options)
    test = moving_digit_videos(test_rng, test_images, num_test_examples, **options)
    return Dataset(
        name=task,
        task="regression",
        x_train=train[:, :input_frames],
        y_train=train[:, input_frames:],
        x_test=test[:, :input_frames],
        y_test=test[:, input_frames:],
        model_config={"output_frames": output_frames},
        description=(
            f"Moving digits: {num_digits} scikit-learn digits bouncing in a {canvas_size}x"
            f"{canvas_size} canvas at up to {max_speed} px/frame; {input_frames} frames in, "
            f"{output_frames} to predict; {num_examples} train / {num_test_examples} test "
            f"videos from disjoint digit images, seed {seed}."
        ),
    )


def copy_last_frame_mse(x: np.ndarray, y: np.ndarray) -> float:
    """The baseline to beat: the MSE of predicting every frame of ``y`` ``(N, T_out, H, W, C)``
    as the last frame of ``x`` ``(N, T_in, H, W, C)``."""
    return float(np.mean((y - x[:, -1:]) ** 2))
