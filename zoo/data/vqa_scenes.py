"""Generated visual question answering and captioning: RGB scenes of coloured shapes with
templated questions over a closed answer set, and a caption per scene. Seeds: khanzhina
and duan (VQA: a CNN image encoder, a bag-of-words or LSTM question encoder, fused and
classified over answers), kang-lecture4 (image captioning, CNN + RNN).

Every question is drawn answer first: the question type is uniform over `QUESTION_TYPES`,
its answer uniform over that type's answers, and the scene is then built to give that
answer. So within a type the answer is independent of the question's words: a model that
reads only the question is held to chance per type (about 0.39 overall; `chance_accuracy`),
and only the image can tell the answers apart.

    data = vqa_scenes(seed=0)
    images, questions = data.x_train      # (N, 32, 32, 3) float32, (N, 8) int32 ids
    data.vocabulary.decode(questions[0])  # "what colour is the circle"
    data.class_names[data.y_train[0]]     # "red"
"""

from __future__ import annotations

import dataclasses

import numpy as np

from zoo.data.base import Dataset
from zoo.data.shapes import _shape_masks
from zoo.data.synthetic import split_seeds
from zoo.data.text import Vocabulary, tokenize
from zoo.nn.checks import check_count, check_fits_memory
from zoo.nn.tokens import EOS, SEQ2SEQ_SPECIALS

SHAPES = ("circle", "square", "triangle")  # kind 1, 2, 3 of zoo.data.shapes
COLOURS = ("red", "green", "blue", "yellow")
RGB = np.array([[0.9, 0.15, 0.15], [0.15, 0.8, 0.2], [0.2, 0.3, 0.95], [0.95, 0.9, 0.15]], np.float32)
SIZES = ("small", "large")
COUNTS = ("0", "1", "2", "3")
YES_NO = ("no", "yes")
# The closed answer vocabulary: y is an index into it.
ANSWERS = COLOURS + SHAPES + COUNTS + YES_NO + SIZES

# Type -> its possible answers (each drawn with equal probability).
QUESTION_TYPES = {
    "colour": COLOURS,  # what colour is the circle?
    "shape": SHAPES,  # what shape is the red object?
    "count": COUNTS,  # how many squares are there?
    "exists": YES_NO,  # is there a red triangle?
    "size": SIZES,  # what size is the blue square?
    "left_of": YES_NO,  # is the circle left of the square?
}
# Each type's template starts with its own words: the type of a question is read off them.
_PREFIXES = ("what colour", "what shape", "how many", "is there", "what size", "is the")
QUESTION_LENGTH = 7  # tokens of the longest question, "is the triangle left of the circle"
GRID = 3  # objects sit in distinct cells of a GRID x GRID grid, so they never overlap
# Radius (area of a circle of that radius) as a fraction of a cell's side.
_RADIUS = {"small": 0.22, "large": 0.36}


@dataclasses.dataclass(frozen=True)
class Scenes:
    """One split: ``images`` (N, S, S, 3) float32 in [0, 1]; ``objects`` (N, M, 5) int32
    rows (shape, colour, size, grid row, grid column) indexing `SHAPES`, `COLOURS`,
    `SIZES`, shape -1 for an empty slot; ``questions``, ``answers`` (N,) int32 into
    `ANSWERS`, ``types`` (N,) int32 into `QUESTION_TYPES`, ``captions`` as text."""

    images: np.ndarray
    objects: np.ndarray
    questions: tuple[str, ...]
    answers: np.ndarray
    types: np.ndarray
    captions: tuple[str, ...]


def chance_accuracy() -> float:
    """The best accuracy without the image: per type 1 / (number of answers), types equally
    likely (``(1/4 + 1/3 + 1/4 + 1/2 + 1/2 + 1/2) / 6``)."""
    return float(np.mean([1.0 / len(a) for a in QUESTION_TYPES.values()]))


def question_types(questions) -> np.ndarray:
    """Question texts -> (N,) int32 indices into `QUESTION_TYPES` (from their first words)."""
    out = []
    for text in questions:
        words = " ".join(tokenize(text)[:2])
        if words not in _PREFIXES:
            raise ValueError(f"{text!r} is not a vqa_scenes question (it starts with none of {_PREFIXES})")
        out.append(_PREFIXES.index(words))
    return np.asarray(out, np.int32)


def _other(rng, count: int, exclude: int) -> int:
    """A value in [0, count) other than ``exclude``."""
    return int((exclude + rng.integers(1, count)) % count)


def _random_object(rng, avoid=lambda s, c: False):
    while True:
        obj = [int(rng.integers(len(SHAPES))), int(rng.integers(len(COLOURS))), int(rng.integers(len(SIZES)))]
        if not avoid(obj[0], obj[1]):
            return obj


def _example(rng, max_objects: int):
    """One (objects [shape, colour, size], question, type index, answer index) built so that
    the question has the drawn answer. Objects get their cells later."""
    type_index = int(rng.integers(len(QUESTION_TYPES)))
    kind = list(QUESTION_TYPES)[type_index]
    answer = int(rng.integers(len(QUESTION_TYPES[kind])))
    extra = lambda low: int(rng.integers(low, max_objects))  # other objects besides the one asked about
    if kind == "colour":  # a unique shape; the others have other shapes
        shape = int(rng.integers(len(SHAPES)))
        objects = [[shape, answer, int(rng.integers(2))]]
        objects += [_random_object(rng, lambda s, c: s == shape) for _ in range(extra(0))]
        question = f"what colour is the {SHAPES[shape]}?"
    elif kind == "shape":  # a unique colour
        colour = int(rng.integers(len(COLOURS)))
        objects = [[answer, colour, int(rng.integers(2))]]
        objects += [_random_object(rng, lambda s, c: c == colour) for _ in range(extra(0))]
        question = f"what shape is the {COLOURS[colour]} object?"
    elif kind == "count":  # `answer` objects of the shape, then others up to max_objects
        shape = int(rng.integers(len(SHAPES)))
        objects = [[shape, int(rng.integers(len(COLOURS))), int(rng.integers(2))] for _ in range(answer)]
        others = int(rng.integers(max(1 - answer, 0), max_objects - answer + 1))
        objects += [_random_object(rng, lambda s, c: s == shape) for _ in range(others)]
        question = f"how many {SHAPES[shape]}s are there?"
    elif kind == "exists":  # "no" scenes hold near misses: the shape or the colour elsewhere
        shape, colour = int(rng.integers(len(SHAPES))), int(rng.integers(len(COLOURS)))
        objects = [[shape, colour, int(rng.integers(2))]] if answer else []
        objects += [_random_object(rng, lambda s, c: s == shape and c == colour) for _ in range(extra(1 - answer))]
        if not answer and rng.random() < 0.75:
            near = [shape, _other(rng, len(COLOURS), colour)] if rng.random() < 0.5 else [_other(rng, 3, shape), colour]
            objects[0] = near + [int(rng.integers(2))]
        question = f"is there a {COLOURS[colour]} {SHAPES[shape]}?"
    elif kind == "size":  # a unique (colour, shape)
        shape, colour = int(rng.integers(len(SHAPES))), int(rng.integers(len(COLOURS)))
        objects = [[shape, colour, answer]]
        objects += [_random_object(rng, lambda s, c: s == shape and c == colour) for _ in range(extra(0))]
        question = f"what size is the {COLOURS[colour]} {SHAPES[shape]}?"
    else:  # left_of: two unique shapes; the cells decide the answer (see _place)
        first = int(rng.integers(len(SHAPES)))
        second = _other(rng, len(SHAPES), first)
        objects = [[first, int(rng.integers(len(COLOURS))), int(rng.integers(2))]]
        objects += [[second, int(rng.integers(len(COLOURS))), int(rng.integers(2))]]
        third = ({0, 1, 2} - {first, second}).pop()
        objects += [[third, *_random_object(rng)[1:]] for _ in range(int(rng.integers(0, max_objects - 1)))]
        question = f"is the {SHAPES[first]} left of the {SHAPES[second]}?"
    return objects, question, type_index, ANSWERS.index(QUESTION_TYPES[kind][answer]), kind, answer


def _place(rng, objects, kind, answer):
    """Distinct grid cells (row, column) for each object; for left_of the first two objects
    sit in different columns, the first to the left exactly when the answer is yes."""
    while True:
        cells = rng.permutation(GRID * GRID)[: len(objects)]
        rows, cols = cells // GRID, cells % GRID
        if kind != "left_of" or (cols[0] != cols[1] and (cols[0] < cols[1]) == bool(answer)):
            return rows, cols


def caption(objects) -> str:
    """Objects (M, 5) rows -> "a large red circle and a small blue square", in reading order
    (by grid row, then column); empty slots (shape -1) skipped."""
    present = sorted((o for o in np.asarray(objects).tolist() if o[0] >= 0), key=lambda o: (o[3], o[4]))
    return " and ".join(f"a {SIZES[z]} {COLOURS[c]} {SHAPES[s]}" for s, c, z, _, _ in present)


def _draw(rng, objects, size: int, noise: float) -> np.ndarray:
    """objects (N, M, 5) -> images (N, size, size, 3): a dark grey background, each object's
    colour inside its mask (`zoo.data.shapes._shape_masks`), Gaussian noise, clipped."""
    n, m, _ = objects.shape
    cell = size / GRID
    images = rng.uniform(0.0, 0.25, (n, 1, 1, 1)).astype(np.float32) * np.ones((1, size, size, 3), np.float32)
    for slot in range(m):
        shape, colour, big, row, col = objects[:, slot].T
        r = np.where(big == 1, _RADIUS["large"], _RADIUS["small"]).astype(np.float32) * cell
        # Jitter within the cell, the shape kept inside it (the triangle reaches 1.56 r).
        room = np.maximum(cell / 2 - 1.6 * r, 0.0)
        cy = (row + 0.5) * cell + rng.uniform(-1, 1, n).astype(np.float32) * room
        cx = (col + 0.5) * cell + rng.uniform(-1, 1, n).astype(np.float32) * room
        mask = _shape_masks(shape + 1, cy, cx, r, size) & (shape >= 0)[:, None, None]
        images = np.where(mask[..., None], RGB[np.maximum(colour, 0)][:, None, None, :], images)
    images = images + noise * rng.standard_normal(images.shape).astype(np.float32)
    return np.clip(images, 0.0, 1.0)


def generate_scenes(seed: int, num_examples: int, *, size: int = 32, max_objects: int = 4, noise: float = 0.05):
    """`Scenes` of ``num_examples`` examples drawn from ``seed`` (see the module docstring)."""
    num_examples = check_count(num_examples, "num_examples", 1, "vqa_scenes")
    check_count(size, "size", 12, "vqa_scenes")
    check_fits_memory("vqa_scenes", num_examples, 3 * size * size)
    check_count(max_objects, "max_objects", 3, "vqa_scenes")  # left_of's two shapes and a third
    if max_objects > GRID * GRID:
        raise ValueError(
            f"vqa_scenes: max_objects must be at most {GRID * GRID} (one per grid cell), got {max_objects}"
        )
    if not 0 <= noise <= 1:
        raise ValueError(f"vqa_scenes: noise must be in [0, 1], got {noise!r}")
    rng = np.random.default_rng(seed)
    objects = np.full((num_examples, max_objects, 5), -1, np.int32)
    questions, types, answers = [], np.zeros(num_examples, np.int32), np.zeros(num_examples, np.int32)
    for i in range(num_examples):
        items, question, types[i], answers[i], kind, answer = _example(rng, max_objects)
        rows, cols = _place(rng, items, kind, answer)
        order = rng.permutation(len(items))  # the asked-about object is not always slot 0
        for slot, j in enumerate(order):
            objects[i, slot] = [*items[j], rows[j], cols[j]]
        questions.append(question)
    images = _draw(rng, objects, size, noise)
    return Scenes(images, objects, tuple(questions), answers, types, tuple(caption(o) for o in objects))


def vqa_scenes(
    *,
    seed: int = 0,
    num_examples: int = 6000,
    num_test_examples: int = 1000,
    size: int = 32,
    max_objects: int = 4,
    noise: float = 0.05,
) -> Dataset:
    """Visual question answering on generated scenes (khanzhina, duan): x a pair (images
    ``(N, size, size, 3)`` float32 in [0, 1], questions ``(N, 7)`` int32 token ids of
    ``vocabulary``, 0-padded), y ``(N,)`` int32 answers indexing `ANSWERS` (15 classes).

    A scene holds 1..``max_objects`` circles, squares and triangles, each red, green, blue
    or yellow, small or large, in distinct cells of a 3x3 grid (jittered inside the cell),
    on a dark grey background with Gaussian noise ``noise``. Six question types, equally
    likely: "what colour is the circle?", "what shape is the red object?", "how many
    squares are there?", "is there a red triangle?", "what size is the blue square?", "is
    the circle left of the square?"; within a type the answer is uniform (module
    docstring), so the question alone gives at most `chance_accuracy` (0.389). Train and
    test are independent draws from ``seed``; the vocabulary is built from the training
    questions (`zoo.data.text.Vocabulary`), ``model_config`` sets ``vocab_size``.
    """
    train_seed, test_seed = split_seeds(seed, 2)
    train = generate_scenes(train_seed, num_examples, size=size, max_objects=max_objects, noise=noise)
    test = generate_scenes(test_seed, num_test_examples, size=size, max_objects=max_objects, noise=noise)
    vocab = Vocabulary.build(train.questions)
    encode = lambda s: vocab.encode_batch(s.questions, QUESTION_LENGTH)
    return Dataset(
        name="vqa_scenes",
        task="classification",
        x_train=(train.images, encode(train)),
        y_train=train.answers,
        x_test=(test.images, encode(test)),
        y_test=test.answers,
        num_classes=len(ANSWERS),
        class_names=ANSWERS,
        vocabulary=vocab,
        model_config={"vocab_size": len(vocab)},
        description=(
            f"Generated VQA scenes: {num_examples} train / {num_test_examples} test {size}x{size} RGB "
            f"scenes of 1-{max_objects} shapes, six balanced question types, noise {noise}, seed {seed}."
        ),
    )


def caption_vocabulary() -> Vocabulary:
    """The captions' words after PAD, UNK, BOS, EOS (`zoo.nn.tokens`): every word a caption
    can hold, so that no test caption meets an unknown word."""
    words = ("a", "and", *SIZES, *COLOURS, *SHAPES)
    return Vocabulary(SEQ2SEQ_SPECIALS + words)


def encode_captions(captions, vocab: Vocabulary, length: int) -> np.ndarray:
    """Captions -> (N, length) int32: each caption's ids then EOS, 0-padded (the seq2seq
    target convention of `zoo.models.seq2seq`)."""
    rows = [list(vocab.encode(tokenize(c))) + [EOS] for c in captions]
    if max(len(r) for r in rows) > length:
        raise ValueError(f"a caption needs {max(len(r) for r in rows)} tokens with EOS; length is {length}")
    out = np.zeros((len(rows), length), np.int32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def caption_scenes(
    *,
    seed: int = 0,
    num_examples: int = 6000,
    num_test_examples: int = 1000,
    size: int = 32,
    max_objects: int = 4,
    noise: float = 0.05,
) -> Dataset:
    """Image captioning (kang-lecture4; Show and Tell, Show, Attend and Tell) on the scenes
    of `vqa_scenes`: x ``(N, size, size, 3)`` float32, y ``(N, 20)`` int32 caption ids of
    `caption_vocabulary` (the `caption` of the scene, e.g. "a large red circle and a small
    blue square", objects in reading order), then EOS, 0-padded; task
    "sequence_to_sequence". Train and test are independent draws from ``seed``."""
    train_seed, test_seed = split_seeds(seed, 2)
    train = generate_scenes(train_seed, num_examples, size=size, max_objects=max_objects, noise=noise)
    test = generate_scenes(test_seed, num_test_examples, size=size, max_objects=max_objects, noise=noise)
    vocab = caption_vocabulary()
    length = 5 * max_objects  # four words an object, "and" between, EOS
    return Dataset(
        name="caption_scenes",
        task="sequence_to_sequence",
        x_train=train.images,
        y_train=encode_captions(train.captions, vocab, length),
        x_test=test.images,
        y_test=encode_captions(test.captions, vocab, length),
        vocabulary=vocab,
        model_config={"vocab_size": len(vocab), "output_length": length},
        description=(
            f"Generated captioning scenes: {num_examples} train / {num_test_examples} test {size}x{size} RGB "
            f"scenes of 1-{max_objects} shapes, captions of up to {length - 1} words, noise {noise}, seed {seed}."
        ),
    )
