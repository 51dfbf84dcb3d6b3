"""Generated VQA scenes (zoo.data.vqa_scenes): every answer re-derived from the scene's
objects by an independent reading of the question, balanced answers per question type
(so the question alone is at chance), the drawing, seeding, captions, and the engine's
batching of a two-part input."""

import re

import numpy as np
import pytest

from zoo.data import iterate_batches, load_dataset
from zoo.data.text import tokenize
from zoo.data.vqa_scenes import (
    ANSWERS,
    COLOURS,
    GRID,
    QUESTION_LENGTH,
    QUESTION_TYPES,
    RGB,
    SHAPES,
    SIZES,
    caption_vocabulary,
    chance_accuracy,
    encode_captions,
    generate_scenes,
)
from zoo.nn.tokens import EOS


def _oracle(question: str, objects: np.ndarray) -> str:
    """The answer read off the objects (rows shape, colour, size, row, col; shape -1 empty)."""
    objs = [o for o in objects.tolist() if o[0] >= 0]
    shape_of, colour_of = {n: i for i, n in enumerate(SHAPES)}, {n: i for i, n in enumerate(COLOURS)}
    only = lambda found: found[0] if len(found) == 1 else pytest.fail(f"{question!r}: {len(found)} referents")
    if m := re.fullmatch(r"what colour is the (\w+)\?", question):
        return COLOURS[only([o for o in objs if o[0] == shape_of[m[1]]])[1]]
    if m := re.fullmatch(r"what shape is the (\w+) object\?", question):
        return SHAPES[only([o for o in objs if o[1] == colour_of[m[1]]])[0]]
    if m := re.fullmatch(r"how many (\w+)s are there\?", question):
        return str(sum(o[0] == shape_of[m[1]] for o in objs))
    if m := re.fullmatch(r"is there a (\w+) (\w+)\?", question):
        return "yes" if any(o[:2] == [shape_of[m[2]], colour_of[m[1]]] for o in objs) else "no"
    if m := re.fullmatch(r"what size is the (\w+) (\w+)\?", question):
        return SIZES[only([o for o in objs if o[:2] == [shape_of[m[2]], colour_of[m[1]]]])[2]]
    if m := re.fullmatch(r"is the (\w+) left of the (\w+)\?", question):
        a = only([o for o in objs if o[0] == shape_of[m[1]]])
        b = only([o for o in objs if o[0] == shape_of[m[2]]])
        assert a[4] != b[4], "left_of needs two columns"
        return "yes" if a[4] < b[4] else "no"
    raise AssertionError(f"unknown question {question!r}")


def test_every_answer_follows_from_the_scene():
    scenes = generate_scenes(3, 600)
    for question, objects, answer in zip(scenes.questions, scenes.objects, scenes.answers):
        assert _oracle(question, objects) == ANSWERS[answer], question
        cells = [(o[3], o[4]) for o in objects.tolist() if o[0] >= 0]
        assert 1 <= len(cells) <= 4 and len(set(cells)) == len(cells)  # distinct grid cells
    assert max(len(tokenize(q)) for q in scenes.questions) == QUESTION_LENGTH  # no question is cut


def test_answers_are_balanced_within_each_type():
    """Each type's answers uniform (chi-square-free check: within 4 sigma of n/k), so a
    question-only model cannot beat chance_accuracy."""
    scenes = generate_scenes(0, 6000)
    for t, (kind, answers) in enumerate(QUESTION_TYPES.items()):
        got = scenes.answers[scenes.types == t]
        counts = np.array([np.sum(got == ANSWERS.index(a)) for a in answers])
        expected = len(got) / len(answers)
        assert counts.sum() == len(got), kind  # no answer from another type's set
        assert np.all(np.abs(counts - expected) < 4 * np.sqrt(expected)), (kind, counts)
    assert chance_accuracy() == pytest.approx((1 / 4 + 1 / 3 + 1 / 4 + 1 / 2 + 1 / 2 + 1 / 2) / 6)


def test_objects_are_drawn_in_their_colour_and_size_in_their_cell():
    """Without noise each object's cell holds its colour over about its area, pi r^2 with r
    0.22 (small) or 0.36 (large) of a cell's side; empty cells hold none of the colours."""
    scenes = generate_scenes(1, 60, size=36, noise=0.0)
    cell = 36 // GRID
    for image, objects in zip(scenes.images, scenes.objects):
        used = set()
        for shape, colour, big, row, col in objects.tolist():
            if shape < 0:
                continue
            used.add((row, col))
            patch = image[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell]
            area = np.all(np.isclose(patch, RGB[colour]), -1).sum()
            expected = np.pi * ((0.36 if big else 0.22) * cell) ** 2
            assert 0.6 * expected < area < 1.4 * expected, (shape, colour, big, area, expected)
        for row, col in set(np.ndindex(GRID, GRID)) - used:
            patch = image[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell]
            assert not np.any(np.all(np.isclose(patch[..., None, :], RGB), -1))
        assert image.max() <= 1.0 and image.min() >= 0.0


def test_dataset_is_seeded_and_encodes_questions():
    data = load_dataset("vqa_scenes", num_examples=30, num_test_examples=10, seed=5)
    again = load_dataset("vqa_scenes", num_examples=30, num_test_examples=10, seed=5)
    images, questions = data.x_train
    assert images.shape == (30, 32, 32, 3) and images.dtype == np.float32
    assert questions.shape == (30, 7) and questions.dtype == np.int32
    assert data.input_shape == ((32, 32, 3), (7,)) and data.num_outputs == len(ANSWERS) == 15
    np.testing.assert_array_equal(images, again.x_train[0])
    np.testing.assert_array_equal(data.y_test, again.y_test)
    assert not np.array_equal(images[:10], data.x_test[0])
    assert data.model_config == {"vocab_size": len(data.vocabulary)}
    scenes = generate_scenes(np.random.SeedSequence(5).generate_state(2)[0].item(), 30)
    assert data.vocabulary.decode(questions[0]) + "?" == scenes.questions[0]


def test_two_part_inputs_batch_split_and_check_like_arrays():
    data = load_dataset("vqa_scenes", num_examples=10, num_test_examples=3)
    batches = list(iterate_batches(data.x_train, data.y_train, 4, seed=0, epoch=0, pad=True))
    assert [b["mask"].sum() for b in batches] == [4, 4, 2]
    images, questions = batches[-1]["x"]
    assert images.shape == (4, 32, 32, 3) and questions.shape == (4, 7) and not images[2:].any()
    order = np.random.default_rng([0, 0]).permutation(10)
    np.testing.assert_array_equal(batches[0]["x"][1], data.x_train[1][order[:4]])
    split = data.with_validation(0.3, seed=0)
    assert split.num_train == 7 and split.num_val == 3 and split.x_val[1].shape == (3, 7)
    bad = (data.x_train[0].copy(), data.x_train[1])
    bad[0][2, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"x_train\[0\] holds 1 non-finite"):
        type(data)("v", "classification", bad, data.y_train, data.x_test, data.y_test, num_classes=15)


def test_captions_list_objects_in_reading_order():
    objects = np.array([[[2, 1, 0, 1, 2], [0, 0, 1, 0, 1], [-1] * 5, [-1] * 5]], np.int32)
    from zoo.data.vqa_scenes import caption

    assert caption(objects[0]) == "a large red circle and a small green triangle"
    vocab = caption_vocabulary()
    ids = encode_captions(["a large red circle"], vocab, 6)
    assert vocab.decode(ids[0][:4]) == "a large red circle" and ids[0][4] == EOS and ids[0][5] == 0
    with pytest.raises(ValueError, match="needs 5 tokens"):
        encode_captions(["a large red circle"], vocab, 4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_objects": 2}, "max_objects must be an integer >= 3"),
        ({"max_objects": 10}, "at most 9"),
        ({"noise": 2.0}, "noise must be in"),
    ],
)
def test_bad_options_name_the_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_scenes(0, 5, **kwargs)


def test_question_types_are_read_off_the_words():
    from zoo.data.vqa_scenes import question_types

    scenes = generate_scenes(2, 200)
    np.testing.assert_array_equal(question_types(scenes.questions), scenes.types)
    with pytest.raises(ValueError, match="not a vqa_scenes question"):
        question_types(["where is the circle?"])
