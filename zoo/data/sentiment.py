"""A generated sentiment task: short reviews from templates, seeded, needing no files.

Each sentence carries its polarity in one sentiment word (optionally negated) among
neutral words, so a text classifier can learn it in seconds and its word-level
localisation can be checked against the word that decides the label.
"""

from __future__ import annotations

import numpy as np

from zoo.data.base import Dataset
from zoo.nn.checks import check_count, check_fits_memory
from zoo.data.text import Vocabulary

POSITIVE_WORDS = (
    "good",
    "great",
    "excellent",
    "wonderful",
    "brilliant",
    "enjoyable",
    "superb",
    "delightful",
    "fantastic",
    "charming",
)
NEGATIVE_WORDS = (
    "bad",
    "terrible",
    "awful",
    "boring",
    "dull",
    "horrible",
    "poor",
    "dreadful",
    "disappointing",
    "mediocre",
)
NEGATIONS = ("not", "never")
SUBJECTS = (
    "the movie",
    "this film",
    "the plot",
    "the acting",
    "the story",
    "the ending",
    "the script",
    "the cast",
    "the direction",
    "this show",
)
NOUNS = ("movie", "film", "story", "show", "performance", "script")
VERBS = ("was", "is", "seemed", "felt")
INTENSIFIERS = ("really", "very", "quite", "truly", "so", "rather")
# Neutral clauses: adjectives with no polarity, so a model must find the one word that
# carries the sentiment rather than "any adjective".
NEUTRAL_SUBJECTS = (
    "the soundtrack",
    "the runtime",
    "the theater",
    "the poster",
    "the sequel",
    "the trailer",
    "the popcorn",
    "the screen",
)
NEUTRAL_ADJECTIVES = ("long", "short", "loud", "quiet", "new", "old", "red", "late", "early", "big")
CONJUNCTIONS = ("and", "but", "while", "although")
PREFIXES = ("honestly", "overall", "i think", "to be honest", "in my opinion", "i guess", "well")
SUFFIXES = ("to me", "in the end", "for sure", "i would say", "this time", "if you ask me")

CLASS_NAMES = ("negative", "positive")
# The longest sentence: prefix (3) + core (2 + 1 + 1 + 1 + 1) + conjunction (1) + neutral
# clause (2 + 1 + 1) + suffix (4) = 18 tokens.
LONGEST_SENTENCE = 18


def _sentence(rng: np.random.Generator, positive: bool, negated: bool) -> str:
    """One review whose label is ``positive`` (the sentiment word's polarity flipped by a
    negation when ``negated``)."""

    def pick(words):
        return words[rng.integers(len(words))]

    word_is_positive = positive != negated
    sentiment = pick(POSITIVE_WORDS if word_is_positive else NEGATIVE_WORDS)
    negation = [pick(NEGATIONS)] if negated else []
    intensifier = [pick(INTENSIFIERS)] if rng.random() < 0.5 else []
    if rng.random() < 0.7:  # "the plot was (not) (really) dull"
        core = [pick(SUBJECTS), pick(VERBS), *negation, *intensifier, sentiment]
    else:  # "(not) a (really) dull film"
        core = [*negation, "a", *intensifier, sentiment, pick(NOUNS)]
    clauses = [" ".join(core)]
    if rng.random() < 0.6:
        clauses.append(f"{pick(NEUTRAL_SUBJECTS)} was {pick(NEUTRAL_ADJECTIVES)}")
        if rng.random() < 0.5:
            clauses.reverse()  # the sentiment word comes early or late
        clauses.insert(1, pick(CONJUNCTIONS))
    if rng.random() < 0.4:
        clauses.insert(0, pick(PREFIXES))
    if rng.random() < 0.4:
        clauses.append(pick(SUFFIXES))
    return " ".join(clauses)


def generate_reviews(labels, *, seed: int = 0, negation_rate: float = 0.25) -> list[str]:
    """One distinct generated review per label of ``labels`` (0 negative, 1 positive).
    The same arguments give the same reviews on every machine."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.isin(labels, (0, 1)).all():
        raise ValueError("sentiment: labels must be a 1-d sequence of 0 (negative) and 1 (positive)")
    if not 0.0 <= negation_rate <= 1.0:
        raise ValueError(f"sentiment: negation_rate must be in [0, 1], got {negation_rate!r}")
    rng = np.random.default_rng(seed)
    texts, seen = [], set()
    for label in labels:
        for _ in range(1000):  # distinct sentences, so no test review is a training review
            text = _sentence(rng, bool(label), rng.random() < negation_rate)
            if text not in seen:
                break
        else:
            raise ValueError(f"sentiment: cannot draw {len(labels)} distinct reviews from the templates; ask for fewer")
        seen.add(text)
        texts.append(text)
    return texts


def sentiment(
    *,
    seed: int = 0,
    num_examples: int = 2000,
    num_test_examples: int = 500,
    negation_rate: float = 0.25,
    max_length: int = 20,
) -> Dataset:
    """Generated movie-review sentiment (kang-lecture4's text CNN task, learnable in seconds).

    Each review has one sentiment adjective in a template ("the plot was really dull"),
    perhaps with a neutral clause, prefix and suffix; with probability ``negation_rate`` it
    is negated and the label flips (0 negative, 1 positive, balanced). x ``(N, max_length)``
    int32 token ids (0-padded, at most 18 tokens), y ``(N,)`` int32; the vocabulary is the
    training reviews'. Train and test are disjoint sets of distinct reviews from ``seed``.
    """
    num_examples = check_count(num_examples, "num_examples", 2, "sentiment")
    num_test_examples = check_count(num_test_examples, "num_test_examples", 2, "sentiment")
    max_length = check_count(max_length, "max_length", 1, "sentiment")
    check_fits_memory("sentiment", num_examples + num_test_examples, max_length)
    # Each split balanced (up to one), in a seeded order; the reviews drawn together so
    # that train and test share none.
    label_rng = np.random.default_rng([seed, 1])
    labels = np.concatenate(
        [label_rng.permutation(np.arange(n) % 2) for n in (num_examples, num_test_examples)]
    ).astype(np.int32)
    texts = generate_reviews(labels, seed=seed, negation_rate=negation_rate)
    train_texts, test_texts = texts[:num_examples], texts[num_examples:]
    vocab = Vocabulary.build(train_texts)
    return Dataset(
        name="sentiment",
        task="classification",
        x_train=vocab.encode_batch(train_texts, max_length),
        y_train=labels[:num_examples],
        x_test=vocab.encode_batch(test_texts, max_length),
        y_test=labels[num_examples:],
        num_classes=2,
        class_names=CLASS_NAMES,
        vocabulary=vocab,
        model_config={"vocab_size": len(vocab)},
        description=(
            f"Generated sentiment reviews (templates with one sentiment word, negation rate "
            f"{negation_rate}): {num_examples} train / {num_test_examples} test distinct "
            f"reviews, seed {seed}; vocabulary of {len(vocab)} tokens from the training "
            f"reviews; padded/truncated to {max_length} tokens."
        ),
    )
