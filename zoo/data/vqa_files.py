"""Real visual question answering data, for users who have the files (nothing is
downloaded): the VQA v2 format (Goyal et al. 2017; questions and annotations JSON, COCO
images) and DAQUAR (Malinowski & Fritz 2014; the qa text files of duan's examples, NYU
depth images).

    train = read_vqa_v2("v2_OpenEnded_mscoco_train2014_questions.json",
                        "v2_mscoco_train2014_annotations.json")
    test = read_vqa_v2(..._val2014_questions.json, ..._val2014_annotations.json)
    data = qa_dataset(train, test, image_loader(coco_dir, "COCO_train2014_{:012d}.jpg"), ...)

    data = qa_dataset(read_daquar("qa.894.raw.train.txt"), read_daquar("qa.894.raw.test.txt"),
                      image_loader(nyu_dir, "{}.png"))

The result is the `Dataset` of `zoo.data.vqa_scenes` (x a pair of images and question
ids, y an answer index), so every VQA model of `zoo.models.vqa` trains on it unchanged.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import re
from typing import Callable, Sequence

import numpy as np

from zoo.data.base import Dataset
from zoo.data.text import Vocabulary
from zoo.nn.checks import check_count


@dataclasses.dataclass(frozen=True)
class QARecord:
    """One question: its image's id, the question text, the answer trained on, and every
    human answer (VQA v2 has ten per question; DAQUAR one)."""

    image_id: int | str
    question: str
    answer: str
    answers: tuple[str, ...]


def _load_json(path, what: str) -> dict:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"VQA {what} file {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not JSON ({err.msg}, line {err.lineno})") from None


def read_vqa_v2(questions_path, annotations_path) -> list[QARecord]:
    """The VQA v2 (and v1) JSON pair: ``{"questions": [{"question_id", "image_id",
    "question"}]}`` and ``{"annotations": [{"question_id", "multiple_choice_answer",
    "answers": [{"answer"}, ...]}]}``, joined on question_id, in the questions' order. The
    answer trained on is ``multiple_choice_answer`` (the most common human answer)."""
    questions = _load_json(questions_path, "questions").get("questions")
    annotations = _load_json(annotations_path, "annotations").get("annotations")
    if not isinstance(questions, list) or not isinstance(annotations, list):
        raise ValueError(
            f"{questions_path} must hold a 'questions' list and {annotations_path} an 'annotations' list (VQA format)"
        )
    by_id = {a["question_id"]: a for a in annotations}
    records = []
    for q in questions:
        a = by_id.get(q["question_id"])
        if a is None:
            raise ValueError(f"{annotations_path}: no annotation for question_id {q['question_id']}")
        answers = tuple(x["answer"] for x in a.get("answers", ())) or (a["multiple_choice_answer"],)
        records.append(QARecord(q["image_id"], q["question"], a["multiple_choice_answer"], answers))
    return records


# DAQUAR names its image at the end of the question: "... in the image3 ?"
_DAQUAR_IMAGE = re.compile(r"\s*(?:in|of|on)?\s*(?:the\s+)?(image\d+)\s*\??\s*$")


def read_daquar(path) -> list[QARecord]:
    """DAQUAR's qa text (``qa.894.raw.train.txt`` etc.): a question line ending "in the
    image<N> ?", then its answer line (a word, or several joined by ", "). The image id
    is "image<N>" and is cut from the question."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"DAQUAR file {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    if len(lines) % 2:
        raise ValueError(f"{path}: {len(lines)} non-empty lines; DAQUAR alternates question and answer lines")
    records = []
    for i in range(0, len(lines), 2):
        question, answer = lines[i], lines[i + 1]
        match = _DAQUAR_IMAGE.search(question)
        if match is None:
            raise ValueError(f"{path}, line {i + 1}: the question names no image (… in the image<N> ?): {question!r}")
        text = question[: match.start()].strip() + "?"
        answers = tuple(a.strip() for a in answer.split(","))
        records.append(QARecord(match.group(1), text, answer, answers))
    return records


def image_loader(directory, pattern: str, size: int = 32) -> Callable[[object], np.ndarray]:
    """image id -> (size, size, 3) float32 in [0, 1], read from ``directory /
    pattern.format(image_id)`` with Pillow, resized (bilinear, aspect ratio not kept)."""
    size = check_count(size, "size", 1)

    def load(image_id) -> np.ndarray:
        from PIL import Image  # only real-data users need it

        path = os.path.join(os.fspath(directory), pattern.format(image_id))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"image {image_id!r}: {path!r} does not exist")
        with Image.open(path) as image:
            image = image.convert("RGB").resize((size, size), Image.BILINEAR)
            return np.asarray(image, np.float32) / 255.0

    return load


def qa_dataset(
    train: Sequence[QARecord],
    test: Sequence[QARecord],
    load_image: Callable[[object], np.ndarray],
    *,
    name: str = "vqa",
    top_answers: int = 1000,
    question_length: int = 14,
) -> Dataset:
    """Records -> the `Dataset` of the VQA models: x = (images (N, S, S, 3), question ids
    (N, question_length)), y the index of the answer among the ``top_answers`` most
    frequent training answers (ties alphabetical; the usual VQA classifier setup).
    Questions whose answer is not among them are left out of both splits (the
    description says how many). Each image is loaded once."""
    top_answers = check_count(top_answers, "top_answers", 2)
    counts = collections.Counter(r.answer for r in train)
    answers = tuple(sorted(counts, key=lambda a: (-counts[a], a))[:top_answers])
    index = {a: i for i, a in enumerate(answers)}
    vocab = Vocabulary.build(r.question for r in train)
    cache: dict = {}

    def split(records):
        kept = [r for r in records if r.answer in index]
        if not kept:
            raise ValueError(f"{name}: no question of a split has one of the {len(answers)} kept answers")
        images = np.stack([cache.setdefault(r.image_id, load_image(r.image_id)) for r in kept])
        questions = vocab.encode_batch([r.question for r in kept], question_length)
        return (images.astype(np.float32), questions), np.asarray([index[r.answer] for r in kept], np.int32), kept

    x_train, y_train, kept_train = split(train)
    x_test, y_test, kept_test = split(test)
    return Dataset(
        name=name,
        task="classification",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=len(answers),
        class_names=answers,
        vocabulary=vocab,
        model_config={"vocab_size": len(vocab)},
        description=(
            f"{name}: {len(kept_train)} of {len(train)} train and {len(kept_test)} of {len(test)} test "
            f"questions (those answered by one of the {len(answers)} most frequent training answers)."
        ),
    )


def vqa_accuracy(predicted: Sequence[str], human_answers: Sequence[Sequence[str]]) -> float:
    """The VQA metric (Antol et al. 2015): per question min(#humans who gave the predicted
    answer / 3, 1), averaged (the official evaluation also averages over 10-choose-9
    subsets of the humans and normalises punctuation; this is the common simple form)."""
    if len(predicted) != len(human_answers):
        raise ValueError(f"{len(predicted)} predictions for {len(human_answers)} questions")
    if not predicted:
        raise ValueError("vqa_accuracy needs at least one question")
    return float(np.mean([min(list(h).count(p) / 3.0, 1.0) for p, h in zip(predicted, human_answers)]))
