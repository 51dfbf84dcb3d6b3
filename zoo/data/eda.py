"""Text augmentation by EDA (Wei & Zou 2019), as the seed defines its four operations
(kang-lecture4, part 05, "Data Augmentation: Text Data"):

- synonym replacement (SR): choose n words that are not stop words, replace each by one of
  its synonyms chosen at random;
- random insertion (RI): a random synonym of a random non-stop word, inserted at a random
  position; n times;
- random swap (RS): swap two random words; n times;
- random deletion (RD): remove each word with probability p.

Synonyms come from WordNet when its database is installed (Debian's ``wordnet-base``
puts it in /usr/share/wordnet; `WORDNET_DIRS`), read directly from its ``data.*`` files,
and from a small built-in table otherwise. Every function takes a
``numpy.random.Generator``: the same seed gives the same sentences.

    augmented = eda("a sad superior human comedy".split(), rng, num_aug=4)
    data = augment_text_dataset(load_dataset("sentiment"), num_aug=4, seed=0)
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Mapping, Sequence

import numpy as np

from zoo.data.base import Dataset

Words = list[str]

WORDNET_DIRS = ("/usr/share/wordnet", "/usr/local/share/wordnet", "/usr/share/wordnet-3.0/dict")

# The English stop words EDA leaves alone (Wei & Zou's list, after NLTK's).
STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his
    himself she her hers herself it its itself they them their theirs themselves what which
    who whom this that these those am is are was were be been being have has had having do
    does did doing a an the and but if or because as until while of at by for with about
    against between into through during before after above below to from up down in out on
    off over under again further then once here there when where why how all any both each
    few more most other some such no nor not only own same so than too very s t can will
    just don should now""".split()
)

# Used when no WordNet database is installed: synonyms of the seed's example and of the
# generated sentiment reviews' words.
BUILTIN_SYNONYMS: Mapping[str, tuple[str, ...]] = {
    "sad": ("lamentable", "deplorable", "sorry", "pitiful"),
    "superior": ("higher-ranking", "excellent", "first-class"),
    "human": ("homo", "man", "mortal"),
    "comedy": ("funniness", "drollery", "clowning"),
    "played": ("acted", "performed"),
    "back": ("backward", "rear"),
    "roads": ("routes",),
    "life": ("living", "existence"),
    "movie": ("film", "picture", "flick"),
    "film": ("movie", "picture", "flick"),
    "story": ("tale", "narrative"),
    "show": ("program", "production"),
    "good": ("fine", "nice", "great"),
    "great": ("excellent", "wonderful"),
    "bad": ("poor", "awful"),
    "boring": ("dull", "tedious"),
    "dull": ("boring", "tedious"),
    "charming": ("delightful", "lovely"),
    "really": ("truly", "genuinely"),
    "very": ("really", "extremely"),
    "seemed": ("appeared",),
    "felt": ("seemed",),
}


def wordnet_dir() -> str | None:
    """The first of `WORDNET_DIRS` holding WordNet's ``data.noun``, or None."""
    return next((d for d in WORDNET_DIRS if os.path.exists(os.path.join(d, "data.noun"))), None)


@functools.lru_cache(maxsize=2)
def read_wordnet(path: str) -> dict[str, tuple[str, ...]]:
    """word -> its synonyms in WordNet at ``path``: every other lemma of every synset that
    contains the word, in file order, lower case, underscores as spaces (the "wndb" data
    file format: offset, lexicographer file, part of speech, hexadecimal word count, then
    word / lex_id pairs)."""
    synonyms: dict[str, dict[str, None]] = {}
    for pos in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(path, f"data.{pos}"), encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(" "):  # the licence header
                    continue
                fields = line.split(" ", 4 + 2 * 256)
                count = int(fields[3], 16)
                # Adjective lemmas may carry a syntactic marker such as "(p)".
                lemmas = [fields[4 + 2 * i].split("(")[0].replace("_", " ").lower() for i in range(count)]
                for word in lemmas:
                    entry = synonyms.setdefault(word, {})
                    entry.update((other, None) for other in lemmas if other != word)
    return {word: tuple(others) for word, others in synonyms.items() if others}


def default_synonyms() -> Mapping[str, tuple[str, ...]]:
    """WordNet's synonyms when installed, else `BUILTIN_SYNONYMS`."""
    path = wordnet_dir()
    return read_wordnet(path) if path else BUILTIN_SYNONYMS


def _candidates(words: Words, synonyms: Mapping[str, Sequence[str]]) -> list[int]:
    return [i for i, w in enumerate(words) if w not in STOP_WORDS and synonyms.get(w)]


def synonym_replacement(words: Words, n: int, rng: np.random.Generator, synonyms=None) -> Words:
    """SR: up to ``n`` distinct non-stop words (those with a synonym) replaced by a random synonym."""
    synonyms = default_synonyms() if synonyms is None else synonyms
    out = list(words)
    positions = _candidates(words, synonyms)
    for i in rng.permutation(positions)[:n]:
        choices = synonyms[words[i]]
        out[i] = choices[rng.integers(len(choices))]
    return out


def random_insertion(words: Words, n: int, rng: np.random.Generator, synonyms=None) -> Words:
    """RI: ``n`` times, a random synonym of a random non-stop word inserted at a random position."""
    synonyms = default_synonyms() if synonyms is None else synonyms
    out = list(words)
    for _ in range(n):
        positions = _candidates(out, synonyms)
        if not positions:
            break
        choices = synonyms[out[positions[rng.integers(len(positions))]]]
        out.insert(int(rng.integers(len(out) + 1)), choices[rng.integers(len(choices))])
    return out


def random_swap(words: Words, n: int, rng: np.random.Generator) -> Words:
    """RS: ``n`` times, two random positions swapped."""
    out = list(words)
    if len(out) < 2:
        return out
    for _ in range(n):
        i, j = rng.choice(len(out), 2, replace=False)
        out[i], out[j] = out[j], out[i]
    return out


def random_deletion(words: Words, p: float, rng: np.random.Generator) -> Words:
    """RD: each word removed with probability ``p``; one random word is kept if all would go
    (Wei & Zou's rule: a sentence never becomes empty)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"deletion probability must be in [0, 1], got {p}")
    kept = [w for w in words if rng.random() >= p]
    return kept if kept or not words else [words[rng.integers(len(words))]]


def eda(
    words: Words,
    rng: np.random.Generator,
    *,
    num_aug: int = 4,
    alpha_sr: float = 0.1,
    alpha_ri: float = 0.1,
    alpha_rs: float = 0.1,
    p_rd: float = 0.1,
    synonyms=None,
) -> list[Words]:
    """``num_aug`` augmented copies of ``words``, each by one operation, the four taking turns
    (SR, RI, RS, RD, SR, ...; Wei & Zou's code splits them evenly the same way); SR, RI and
    RS change ``n = max(1, round(alpha * len(words)))`` words."""
    synonyms = default_synonyms() if synonyms is None else synonyms
    length = len(words)

    def n(alpha):
        return max(1, int(round(alpha * length)))

    operations = (
        lambda: synonym_replacement(words, n(alpha_sr), rng, synonyms),
        lambda: random_insertion(words, n(alpha_ri), rng, synonyms),
        lambda: random_swap(words, n(alpha_rs), rng),
        lambda: random_deletion(words, p_rd, rng),
    )
    return [operations[k % 4]() for k in range(int(num_aug))]


def augment_text_dataset(data: Dataset, *, num_aug: int = 4, seed: int = 0, synonyms=None, **eda_options) -> Dataset:
    """A token-id dataset whose training split gains ``num_aug`` EDA copies of each review
    (the label kept), as Wei & Zou augment the training set before training. The
    vocabulary is rebuilt on the enlarged training texts (new synonyms get ids) and every
    split is re-encoded with it; validation and test texts are not augmented."""
    from zoo.data.text import Vocabulary

    if data.vocabulary is None:
        raise ValueError(f"dataset {data.name!r} holds no text (no vocabulary): EDA applies to text datasets")
    rng = np.random.default_rng(seed)
    length = data.x_train.shape[1]
    texts, labels = [], []
    for ids, label in zip(data.x_train, data.y_train):
        words = data.vocabulary.decode(ids).split()
        texts.append(words)
        labels.append(label)
        for copy in eda(words, rng, num_aug=num_aug, synonyms=synonyms, **eda_options):
            texts.append(copy)
            labels.append(label)
    vocabulary = Vocabulary.build([" ".join(t) for t in texts], tokenizer=str.split)

    def recode(x):
        return vocabulary.encode_batch((data.vocabulary.decode(ids).split() for ids in x), length)

    splits = {f"x_{s}": recode(x) for s, x, _ in data.splits() if s != "train"}
    return dataclasses.replace(
        data,
        name=f"{data.name}+eda",
        x_train=vocabulary.encode_batch(texts, length),
        y_train=np.asarray(labels, data.y_train.dtype),
        vocabulary=vocabulary,
        model_config={**data.model_config, "vocab_size": len(vocabulary)},
        **splits,
    )
