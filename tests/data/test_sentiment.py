"""zoo.data.sentiment: the generated sentiment task (shapes, determinism, split; labels follow
the sentiment word and its negation)."""

import numpy as np
import pytest

from zoo.data import load_dataset
from zoo.data.sentiment import NEGATIONS, NEGATIVE_WORDS, POSITIVE_WORDS, generate_reviews
from zoo.data.text import tokenize


def test_sentiment_dataset_shapes_determinism_and_split():
    data = load_dataset("sentiment", num_examples=400, num_test_examples=100, max_length=18)
    assert data.x_train.shape == (400, 18) and data.x_test.shape == (100, 18)
    assert data.x_train.dtype == np.int32 and data.y_train.dtype == np.int32
    assert data.num_classes == 2 and data.class_names == ("negative", "positive")
    assert np.bincount(data.y_train).tolist() == [200, 200] and np.bincount(data.y_test).tolist() == [50, 50]
    assert data.model_config == {"vocab_size": len(data.vocabulary)}
    assert data.x_train.max() < len(data.vocabulary)
    texts = {data.vocabulary.decode(row) for row in data.x_train}
    assert len(texts) == 400  # distinct reviews
    assert texts.isdisjoint(data.vocabulary.decode(row) for row in data.x_test)
    again = load_dataset("sentiment", num_examples=400, num_test_examples=100, max_length=18)
    np.testing.assert_array_equal(again.x_test, data.x_test)
    np.testing.assert_array_equal(again.y_train, data.y_train)
    other = load_dataset("sentiment", seed=1, num_examples=400, num_test_examples=100, max_length=18)
    assert not np.array_equal(other.x_train, data.x_train)


def test_sentiment_labels_follow_the_sentiment_word_and_negation():
    for negation_rate in (0.0, 1.0):
        labels = np.arange(300) % 2
        texts = generate_reviews(labels, seed=2, negation_rate=negation_rate)
        for text, label in zip(texts, labels):
            words = tokenize(text)
            assert len(words) <= 18
            positive = sum(w in POSITIVE_WORDS for w in words)
            negative = sum(w in NEGATIVE_WORDS for w in words)
            negated = any(w in NEGATIONS for w in words)
            assert positive + negative == 1 and negated == (negation_rate == 1.0), text
            assert label == ((positive == 1) != negated), text
    with pytest.raises(ValueError, match="negation_rate"):
        load_dataset("sentiment", negation_rate=1.5)
    with pytest.raises(ValueError, match="num_examples"):
        load_dataset("sentiment", num_examples=1)
