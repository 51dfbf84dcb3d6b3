"""IMDB movie reviews (Maas et al. 2011) from tensorflow-datasets, as token ids.

Read through ``tfds.data_source`` (array_record, random access, no TensorFlow at run
time); tensorflow_datasets is imported only when the loader is called.
"""

from __future__ import annotations

import os

import numpy as np

from zoo.data.base import Dataset, DatasetNotFoundError
from zoo.data.sources import read_tfds_splits
from zoo.data.text import Vocabulary

CITATION = (
    "IMDB Large Movie Review Dataset (Maas, Daly, Pham, Huang, Ng & Potts 2011, "
    "Learning Word Vectors for Sentiment Analysis)"
)
_READ_CHUNK = 1024  # records per batched read
_HOW_TO_GET = (
    "To prepare it, once: `tfds build imdb_reviews --file_format=array_record "
    "[--data_dir DIR]`, which needs network access and TensorFlow (`pip install "
    "tensorflow`; reading the prepared files does not), then pass data_dir=DIR "
    "(train.py: --data-dir DIR)."
)


def _clean(text) -> str:
    """A review as str, its HTML line breaks (``<br />``) made spaces, so that "br" does
    not become the most frequent word."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return str(text).replace("<br />", " ").replace("<br/>", " ")


def _read_text_source(source, name: str) -> tuple[list[str], np.ndarray]:
    """All records of a TFDS text source: reviews (str) and labels ``(N,)`` int32."""
    num_examples = len(source)
    if num_examples == 0:
        raise ValueError(f"the prepared {name!r} split {source.split!r} holds no examples")
    texts, labels = [], np.empty(num_examples, np.int32)
    for start in range(0, num_examples, _READ_CHUNK):
        stop = min(start + _READ_CHUNK, num_examples)
        # Batched reads: array_record fetches a batch's records in parallel.
        examples = source.__getitems__(list(range(start, stop)))
        texts.extend(_clean(example["text"]) for example in examples)
        labels[start:stop] = [example["label"] for example in examples]
    return texts, labels


def load_imdb_reviews(
    *, data_dir: str | None = None, max_length: int = 400, max_vocab_size: int = 20_000, min_count: int = 2
) -> Dataset:
    """IMDB reviews from TFDS's prepared ``imdb_reviews`` (never downloaded), 25,000 /
    25,000, y ``(N,)`` int32 (0 negative, 1 positive). x ``(N, max_length)`` int32: the first
    ``max_length`` words by `zoo.data.text.tokenize`, 0-padded; the vocabulary is the
    training reviews' words seen ``min_count`` times, at most ``max_vocab_size`` in all.
    """
    name = "imdb_reviews"
    if data_dir is not None:
        data_dir = os.fspath(data_dir)
        if "://" not in data_dir and not os.path.isdir(data_dir):
            raise DatasetNotFoundError(f"data_dir {data_dir!r} for dataset {name!r} is not a folder. {_HOW_TO_GET}")
    for key, value, minimum in (
        ("max_length", max_length, 1),
        ("max_vocab_size", max_vocab_size, 3),
        ("min_count", min_count, 1),
    ):
        if not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"imdb_reviews: {key} must be an integer >= {minimum}, got {value!r}")
    splits, info = read_tfds_splits(name, data_dir, _read_text_source, _HOW_TO_GET)
    (train_texts, y_train), (test_texts, y_test) = splits["train"], splits["test"]
    vocab = Vocabulary.build(train_texts, min_count=min_count, max_size=max_vocab_size)
    label_feature = info.features["label"]
    return Dataset(
        name=name,
        task="classification",
        x_train=vocab.encode_batch(train_texts, max_length),
        y_train=y_train,
        x_test=vocab.encode_batch(test_texts, max_length),
        y_test=y_test,
        num_classes=label_feature.num_classes,
        class_names=("negative", "positive"),
        vocabulary=vocab,
        model_config={"vocab_size": len(vocab)},
        description=(
            f"{CITATION}, read from tensorflow-datasets' prepared '{name}' (official "
            f"train/test split); lower-cased words, first {max_length} kept; vocabulary of "
            f"{len(vocab)} tokens from the training reviews (min count {min_count})."
        ),
    )
