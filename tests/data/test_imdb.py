"""zoo.data.imdb: imdb_reviews through TFDS mock data (no TensorFlow), its HTML clean-up and
its advice when the set is not prepared."""

import sys

import numpy as np
import pytest
from conftest import require_module

from zoo.data import DatasetNotFoundError, imdb, load_dataset
from zoo.data.text import tokenize


def test_imdb_reviews_through_mock_data(tfds, tmp_path):  # noqa: F811
    with tfds.testing.mock_data(policy=tfds.testing.MockPolicy.USE_CODE, num_examples=6):
        data = load_dataset("imdb_reviews", data_dir=tmp_path, max_length=16, min_count=1)
        first = tfds.data_source("imdb_reviews", split="train", download=False)[0]
    assert data.x_train.shape == (6, 16) and data.x_test.shape == (6, 16)
    assert data.x_train.dtype == np.int32 and data.y_train.dtype == np.int32
    assert set(np.unique(data.y_train)) <= {0, 1} and data.num_classes == 2
    assert data.model_config == {"vocab_size": len(data.vocabulary)}
    text = first["text"].decode() if isinstance(first["text"], bytes) else first["text"]
    np.testing.assert_array_equal(data.x_train[0], data.vocabulary.encode(text, 16))
    assert data.vocabulary.decode(data.x_train[0]) == " ".join(tokenize(text)[:16])
    assert "Maas" in data.description
    assert "tensorflow" not in sys.modules


def test_imdb_html_breaks_and_missing_data(tmp_path):
    assert tokenize(imdb._clean(b"Great film.<br /><br />Loved it")) == ["great", "film", "loved", "it"]
    require_module("tensorflow_datasets")
    with pytest.raises(DatasetNotFoundError, match="not prepared.*tfds build imdb_reviews") as err:
        load_dataset("imdb_reviews", data_dir=tmp_path)
    assert "image" not in str(err.value)  # the text set's own advice, not the image sets'
    with pytest.raises(ValueError, match="max_length"):
        load_dataset("imdb_reviews", data_dir=tmp_path, max_length=0)
