"""Text utilities shared by every text model: tokenizer, vocabulary, word vectors.

    from zoo.data.text import Vocabulary, load_word_vectors, tokenize
    vocab = Vocabulary.build(train_texts, min_count=2, max_size=20_000)
    ids = vocab.encode_batch(train_texts, length=64)      # (N, 64) int32, 0 = padding
    vectors = load_word_vectors("glove.6B.300d.txt", vocab)  # (len(vocab), 300) float32

Token ids: ``PAD = 0`` (padding, past the end of a text) and ``UNK = 1`` (a word the
vocabulary does not hold); the words follow from id 2, most frequent first.
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Iterable, Sequence

import numpy as np

from zoo.nn.checks import check_count
from zoo.nn.tokens import KIM_UNKNOWN_SCALE, PAD, PAD_TOKEN, SPECIAL_TOKENS, UNK, UNK_TOKEN  # noqa: F401

# A word: letters and digits (any script; not "_"), with inner apostrophes kept so that
# "don't" and "it's" stay one token, as in the vocabularies of GloVe and word2vec.
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-cased words, punctuation dropped: ``tokenize("It's NOT good, 10/10!") ==
    ["it's", "not", "good", "10", "10"]``."""
    if not isinstance(text, str):
        raise ValueError(f"tokenize expects a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


def pad_or_truncate(ids: Sequence[int], length: int, *, pad_id: int = PAD) -> np.ndarray:
    """``(length,)`` int32: the first ``length`` ids, padded at the end with ``pad_id``."""
    length = check_count(length, "length", 1)
    out = np.full(length, pad_id, np.int32)
    kept = np.asarray(ids[:length], np.int32)
    out[: len(kept)] = kept
    return out


class Vocabulary:
    """Word <-> id table with ``PAD = 0`` and ``UNK = 1``; words from id 2. Build it from the
    training texts only, so unseen test words map to UNK exactly as new text will."""

    def __init__(self, tokens: Sequence[str]):
        """``tokens[i]`` is the word of id ``i``; ``tokens[:2]`` must be ("<pad>", "<unk>")."""
        tokens = tuple(tokens)
        if tokens[:2] != SPECIAL_TOKENS:
            raise ValueError(f"a vocabulary starts with {SPECIAL_TOKENS}, got {tokens[:2]}")
        index = {}
        for i, token in enumerate(tokens):
            if token in index:
                raise ValueError(f"token {token!r} appears twice in the vocabulary (ids {index[token]} and {i})")
            index[token] = i
        self._tokens = tokens
        self._index = index

    @classmethod
    def build(
        cls, texts: Iterable[str], *, min_count: int = 1, max_size: int | None = None, tokenizer=tokenize
    ) -> Vocabulary:
        """The words of ``texts`` seen at least ``min_count`` times, most frequent first, ties
        alphabetical; ``max_size`` caps ``len(vocabulary)`` (the model's ``vocab_size``)."""
        min_count = check_count(min_count, "min_count", 1)
        if max_size is not None:
            max_size = check_count(max_size, "max_size", len(SPECIAL_TOKENS) + 1)
        counts = collections.Counter()
        for text in texts:
            counts.update(tokenizer(text))
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)  # a literal "<pad>" in a text is just an unknown word
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max_size - len(SPECIAL_TOKENS)]
        return cls(SPECIAL_TOKENS + tuple(words))

    @property
    def tokens(self) -> tuple[str, ...]:
        """Every token, in id order (``Vocabulary(vocab.tokens)`` rebuilds the vocabulary)."""
        return self._tokens

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, word: str) -> bool:
        return word in self._index

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens: {', '.join(self._tokens[2:7])}{', ...' if len(self) > 7 else ''})"

    def token_id(self, word: str) -> int:
        """The id of ``word``, UNK if it is not in the vocabulary."""
        return self._index.get(word, UNK)

    def encode(self, text: str | Sequence[str], length: int | None = None) -> np.ndarray:
        """Token ids of ``text`` (a string, tokenised by `tokenize`, or a list of tokens):
        ``(n_tokens,)`` int32, or ``(length,)`` padded/truncated by `pad_or_truncate`."""
        words = tokenize(text) if isinstance(text, str) else list(text)
        ids = np.fromiter((self._index.get(w, UNK) for w in words), np.int32, len(words))
        return ids if length is None else pad_or_truncate(ids, length)

    def encode_batch(self, texts: Iterable[str | Sequence[str]], length: int) -> np.ndarray:
        """``(N, length)`` int32: every text encoded, padded or truncated to ``length``."""
        length = check_count(length, "length", 1)
        rows = [self.encode(text, length) for text in texts]
        return np.stack(rows) if rows else np.zeros((0, length), np.int32)

    def decode(self, ids: Iterable[int], *, skip_padding: bool = True) -> str:
        """The words of ``ids`` joined by spaces (padding left out unless asked for)."""
        words = []
        for i in np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids).reshape(-1):
            i = int(i)
            if not 0 <= i < len(self._tokens):
                raise ValueError(f"token id {i} is out of range for a vocabulary of {len(self)} tokens")
            if i == PAD and skip_padding:
                continue
            words.append(self._tokens[i])
        return " ".join(words)


# --- Pre-trained word vectors (GloVe / word2vec text format)


def _parse_floats(fields: Sequence[str], where: str) -> np.ndarray:
    try:
        vector = np.asarray([float(f) for f in fields], np.float64)
    except ValueError:
        bad = next(f for f in fields if not _is_number(f))
        raise ValueError(f"{where}: {bad!r} is not a number") from None
    fits = np.isfinite(vector) & (np.abs(vector) <= np.finfo(np.float32).max)
    if not fits.all():
        bad = fields[int(np.flatnonzero(~fits)[0])]
        raise ValueError(f"{where}: {bad!r} is not a finite number (NaN, inf, or beyond float32)")
    return vector.astype(np.float32)


def _is_number(field: str) -> bool:
    try:
        float(field)
        return True
    except ValueError:
        return False


def load_word_vectors(
    path: str | os.PathLike,
    vocab: Vocabulary,
    *,
    dim: int | None = None,
    unknown: str = "random",
    scale: float = KIM_UNKNOWN_SCALE,
    seed: int = 0,
    encoding: str = "utf-8",
) -> np.ndarray:
    """A GloVe / word2vec text file (a word and D numbers a line, optional header
    ``"<count> <D>"``) as a ``(len(vocab), D)`` float32 matrix, row i for ``vocab.tokens[i]``.

    Exact spelling wins, else the file's first case-insensitive match (GoogleNews vectors
    are not lower-cased); a word with spaces is the fields before the last D. Words not in
    the file: U[-scale, scale] from ``seed`` (Kim 2014) or, ``unknown="zero"``, zero; PAD is
    zero. ValueError, naming file and line, for a malformed line, a wrong header or
    ``dim``, binary or empty files.
    """
    path = os.fspath(path)
    if unknown not in ("random", "zero"):
        raise ValueError(f"unknown must be 'random' or 'zero', got {unknown!r}")
    if not scale >= 0:
        raise ValueError(f"scale must be >= 0, got {scale!r}")
    if dim is not None:
        dim = check_count(dim, "dim", 1)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"word-vector file {path!r} does not exist")

    exact, lowered = {}, {}  # vocabulary id -> vector, by exact and by lower-case match
    lower_ids = collections.defaultdict(list)
    for i, token in enumerate(vocab.tokens):
        lower_ids[token.lower()].append(i)
    header_count, file_dim, num_vectors, first_line = None, None, 0, None
    with open(path, "rb") as f:
        for line_number, raw in enumerate(f, start=1):
            where = f"{path}, line {line_number}"
            if b"\0" in raw:
                raise ValueError(
                    f"{where}: binary data; expected the word2vec/GloVe text format "
                    "(convert a .bin file, e.g. with gensim's save_word2vec_format(binary=False))"
                )
            try:
                line = raw.decode(encoding)
            except UnicodeDecodeError as err:
                raise ValueError(f"{where}: not {encoding} text ({err.reason})") from None
            fields = line.split()
            if not fields:
                continue  # blank lines (a trailing newline) carry nothing
            if first_line is None:
                first_line = line_number
                if len(fields) == 2 and all(f.isdigit() for f in fields):
                    header_count, file_dim = int(fields[0]), int(fields[1])
                    if file_dim == 0:
                        raise ValueError(f"{where}: the word2vec header gives dimension 0")
                    continue
            if file_dim is None:
                file_dim = len(fields) - 1
                if file_dim == 0:
                    raise ValueError(f"{where}: a word without a vector")
            if len(fields) < file_dim + 1:
                raise ValueError(f"{where}: expected a word and {file_dim} numbers, found {len(fields)} fields")
            word_fields, value_fields = fields[:-file_dim], fields[-file_dim:]
            if len(word_fields) > 1 and all(_is_number(f) for f in word_fields[1:]):
                raise ValueError(f"{where}: {len(fields) - 1} numbers after the word, expected {file_dim}")
            vector = _parse_floats(value_fields, where)
            num_vectors += 1
            word = " ".join(word_fields)
            if word in vocab:
                exact.setdefault(vocab.token_id(word), vector)
            for i in lower_ids.get(word.lower(), ()):
                lowered.setdefault(i, vector)
    if file_dim is None:
        raise ValueError(f"{path}: no word vectors in the file")
    if header_count is not None and header_count != num_vectors:
        raise ValueError(
            f"{path}: the header announces {header_count} vectors but the file holds {num_vectors} (truncated file?)"
        )
    if dim is not None and file_dim != dim:
        raise ValueError(f"{path} holds {file_dim}-dimensional vectors, expected dim={dim}")

    if unknown == "random":
        rng = np.random.default_rng(seed)
        matrix = rng.uniform(-scale, scale, (len(vocab), file_dim)).astype(np.float32)
    else:
        matrix = np.zeros((len(vocab), file_dim), np.float32)
    for i, vector in {**lowered, **exact}.items():  # exact spelling wins over a case-folded match
        matrix[i] = vector
    matrix[PAD] = 0.0
    return matrix
