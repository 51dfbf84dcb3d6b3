"""EDA text augmentation (zoo.data.eda): the seed's four operations, WordNet synonyms, and
the enlarged training set used by training."""

import collections

import numpy as np
import pytest

import zoo
from conftest import require
from zoo.data import eda as E

SENTENCE = "a sad superior human comedy played out on the back roads of life".split()  # the seed's example
SYN = E.BUILTIN_SYNONYMS


def rng(seed=0):
    return np.random.default_rng(seed)


def test_synonym_replacement_changes_n_non_stop_words_to_synonyms():
    for seed in range(20):
        out = E.synonym_replacement(SENTENCE, 2, rng(seed), SYN)
        changed = [(a, b) for a, b in zip(SENTENCE, out) if a != b]
        assert len(out) == len(SENTENCE) and len(changed) == 2
        assert all(a not in E.STOP_WORDS and b in SYN[a] for a, b in changed)


def test_random_insertion_inserts_synonyms_of_sentence_words():
    out = E.random_insertion(SENTENCE, 3, rng(1), SYN)
    added = collections.Counter(out) - collections.Counter(SENTENCE)
    assert len(out) == len(SENTENCE) + 3 and sum(added.values()) == 3
    assert all(any(w in SYN.get(s, ()) for s in out) for w in added)
    assert E.random_insertion(["the", "of"], 2, rng(), SYN) == ["the", "of"]  # only stop words: nothing to insert


def test_random_swap_keeps_the_words():
    out = E.random_swap(SENTENCE, 2, rng(2))
    assert sorted(out) == sorted(SENTENCE) and out != SENTENCE
    assert sum(a != b for a, b in zip(out, SENTENCE)) <= 4


def test_random_deletion_probability_and_never_empty():
    assert E.random_deletion(SENTENCE, 0.0, rng()) == SENTENCE
    kept = E.random_deletion(SENTENCE, 1.0, rng())
    assert len(kept) == 1 and kept[0] in SENTENCE
    lengths = [len(E.random_deletion(SENTENCE, 0.3, rng(s))) for s in range(400)]
    assert np.mean(lengths) == pytest.approx(0.7 * len(SENTENCE), rel=0.05)
    with pytest.raises(ValueError, match=r"deletion probability must be in \[0, 1\]"):
        E.random_deletion(SENTENCE, 1.5, rng())


def test_eda_is_deterministic_per_seed_and_cycles_the_operations():
    first = E.eda(SENTENCE, rng(3), num_aug=8, synonyms=SYN)
    assert first == E.eda(SENTENCE, rng(3), num_aug=8, synonyms=SYN)
    assert len(first) == 8 and all(copy != SENTENCE for copy in first[:3])
    assert len(first[1]) == len(SENTENCE) + 1  # RI with n = round(0.1 * 13) = 1
    assert sorted(first[2]) == sorted(SENTENCE)  # RS


def test_wordnet_gives_the_seeds_replacements():
    """The seed's SR example replaces sad -> lamentable and back -> backward; its RI example
    inserts funniness (a synonym of comedy). All three are WordNet synonyms."""
    path = E.wordnet_dir()
    require(path is not None, "WordNet is not installed (Debian: apt-get install wordnet-base)")
    synonyms = E.read_wordnet(path)
    assert "lamentable" in synonyms["sad"] and "backward" in synonyms["back"] and "funniness" in synonyms["comedy"]
    assert "sad" not in synonyms["sad"]


def test_augmented_dataset_grows_training_only_and_trains():
    data = zoo.data.load_dataset("sentiment", num_examples=100, num_test_examples=40)
    bigger = E.augment_text_dataset(data, num_aug=4, seed=0, synonyms=SYN)
    assert len(bigger.x_train) == 5 * len(data.x_train) and len(bigger.x_test) == len(data.x_test)
    np.testing.assert_array_equal(bigger.y_train[::5], data.y_train)
    # Every text reads the same through its own vocabulary; new synonyms got ids.
    for old, new in zip(data.x_test, bigger.x_test):
        assert data.vocabulary.decode(old) == bigger.vocabulary.decode(new)
    assert bigger.model_config["vocab_size"] == len(bigger.vocabulary) >= len(data.vocabulary)
    result = zoo.fit(
        "text_cnn", data, eda=2, epochs=1, progress=False, model_overrides={"num_filters": 4, "embedding_dim": 8}
    )
    assert result.model.vocab_size > len(data.vocabulary) - 1
    with pytest.raises(ValueError, match="EDA applies to text datasets"):
        E.augment_text_dataset(zoo.data.load_dataset("digits"), num_aug=1)
