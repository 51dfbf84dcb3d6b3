"""Loaders of real VQA data (zoo.data.vqa_files) on tiny files written here: the VQA v2
questions/annotations JSON pair, DAQUAR's qa text, images read and resized with Pillow,
the answer vocabulary, and the VQA accuracy metric."""

import json

import numpy as np
import pytest
from PIL import Image as image  # a runtime dependency (pyproject)

from zoo.data.vqa_files import QARecord, image_loader, qa_dataset, read_daquar, read_vqa_v2, vqa_accuracy


def _write_vqa(tmp_path):
    questions = {
        "questions": [
            {"image_id": 7, "question": "What color is the bus?", "question_id": 70},
            {"image_id": 7, "question": "How many dogs?", "question_id": 71},
            {"image_id": 9, "question": "Is it raining?", "question_id": 90},
        ]
    }
    human = lambda *a: [{"answer": x, "answer_confidence": "yes", "answer_id": i} for i, x in enumerate(a)]
    annotations = {
        "annotations": [
            {"question_id": 71, "image_id": 7, "multiple_choice_answer": "2", "answers": human("2", "2", "3")},
            {"question_id": 70, "image_id": 7, "multiple_choice_answer": "red", "answers": human("red", "orange")},
            {"question_id": 90, "image_id": 9, "multiple_choice_answer": "no", "answers": human("no", "no", "no")},
        ]
    }
    (tmp_path / "q.json").write_text(json.dumps(questions))
    (tmp_path / "a.json").write_text(json.dumps(annotations))
    return tmp_path / "q.json", tmp_path / "a.json"


def test_read_vqa_v2_joins_questions_and_annotations(tmp_path):
    records = read_vqa_v2(*_write_vqa(tmp_path))
    assert records == [
        QARecord(7, "What color is the bus?", "red", ("red", "orange")),
        QARecord(7, "How many dogs?", "2", ("2", "2", "3")),
        QARecord(9, "Is it raining?", "no", ("no", "no", "no")),
    ]


def test_read_vqa_v2_errors_name_the_file(tmp_path):
    q, a = _write_vqa(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_vqa_v2(tmp_path / "missing.json", a)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not JSON"):
        read_vqa_v2(q, tmp_path / "bad.json")
    (tmp_path / "few.json").write_text(json.dumps({"annotations": []}))
    with pytest.raises(ValueError, match="no annotation for question_id 70"):
        read_vqa_v2(q, tmp_path / "few.json")


def test_read_daquar_cuts_the_image_id(tmp_path):
    path = tmp_path / "qa.894.raw.train.txt"
    path.write_text(
        "what is on the right side of the black telephone in the image3 ?\ndesk\n"
        "what are the objects on the bed in the image12 ?\npillow, blanket\n"
    )
    assert read_daquar(path) == [
        QARecord("image3", "what is on the right side of the black telephone?", "desk", ("desk",)),
        QARecord("image12", "what are the objects on the bed?", "pillow, blanket", ("pillow", "blanket")),
    ]
    path.write_text("what is this ?\nchair\n")
    with pytest.raises(ValueError, match="names no image"):
        read_daquar(path)
    path.write_text("what is in the image1 ?\n")
    with pytest.raises(ValueError, match="alternates question and answer"):
        read_daquar(path)


def test_qa_dataset_from_files_and_images(tmp_path):
    for image_id, colour in ((7, (255, 0, 0)), (9, (0, 0, 255))):
        image.new("RGB", (20, 10), colour).save(tmp_path / f"COCO_{image_id:012d}.png")
    records = read_vqa_v2(*_write_vqa(tmp_path))
    data = qa_dataset(records, records[1:], image_loader(tmp_path, "COCO_{:012d}.png", size=8), top_answers=2)
    images, questions = data.x_train
    # answers ranked by frequency, ties alphabetical: "2", "no" kept; "red" left out
    assert data.class_names == ("2", "no") and list(data.y_train) == [0, 1]
    assert images.shape == (2, 8, 8, 3) and questions.shape == (2, 14)
    np.testing.assert_allclose(images[0], np.broadcast_to([1.0, 0.0, 0.0], (8, 8, 3)))
    np.testing.assert_allclose(images[1], np.broadcast_to([0.0, 0.0, 1.0], (8, 8, 3)))
    assert data.vocabulary.decode(questions[0]) == "how many dogs"
    assert "2 of 3 train" in data.description and data.model_config == {"vocab_size": len(data.vocabulary)}
    with pytest.raises(FileNotFoundError, match="image 5"):
        image_loader(tmp_path, "COCO_{:012d}.png")(5)


def test_vqa_accuracy_counts_three_humans_as_full_credit():
    humans = [("2",) * 3 + ("3",) * 7, ("red", "orange", "red"), ("no",) * 10]
    assert vqa_accuracy(["2", "orange", "yes"], humans) == pytest.approx((1.0 + 1 / 3 + 0.0) / 3)
    with pytest.raises(ValueError, match="2 predictions for 3 questions"):
        vqa_accuracy(["2", "no"], humans)
