"""Generated sequence-to-sequence tasks, seeded (same arguments, same arrays everywhere):
`copy_task` and `reverse_task` (random symbol strings), `dates` (spelled-out dates in
varied formats to ISO 8601) and `long_word` (next character of surf2019-cha's
"Pneumonoultramicroscopicsilicovolcanoconiosis").

One vocabulary for source and target: 0 padding, 1 unknown, 2 BOS, 3 EOS, symbols from 4.
x ``(N, T_in)`` int32 is 0-padded at the end; y ``(N, T_out)`` int32 ends with EOS, then 0.
``model_config`` gives ``vocab_size`` and ``output_length`` (T_out).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence

import numpy as np

from zoo.data.base import Dataset
from zoo.data.text import Vocabulary, tokenize
from zoo.nn.checks import check_count, check_fits_memory
from zoo.nn.tokens import BOS, EOS, PAD, SEQ2SEQ_SPECIALS, strip_ids  # noqa: F401

TASK = "sequence_to_sequence"


def make_vocabulary(symbols: Sequence[str]) -> Vocabulary:
    """A `Vocabulary` with PAD, UNK, BOS, EOS at ids 0-3 and ``symbols`` from id 4."""
    return Vocabulary(SEQ2SEQ_SPECIALS + tuple(symbols))


def encode_targets(vocab: Vocabulary, sequences: Sequence[Sequence[str]], length: int) -> np.ndarray:
    """(N, length) int32: each token sequence's ids, then EOS, then padding."""
    out = np.zeros((len(sequences), length), np.int32)
    for i, tokens in enumerate(sequences):
        ids = [vocab.token_id(t) for t in tokens] + [EOS]
        if len(ids) > length:
            raise ValueError(f"target of {len(ids)} tokens (EOS included) is longer than {length}")
        out[i, : len(ids)] = ids
    return out


def decode_tokens(vocab: Vocabulary, ids) -> list[str]:
    """A decoded row (T,) int -> its tokens up to EOS (see `strip_ids`)."""
    return [vocab.tokens[i] for i in strip_ids(ids)]


# --- Copy and reverse.


def _symbol_task(
    name: str,
    reverse: bool,
    seed: int,
    length: int,
    vocabulary: int,
    min_length: int | None,
    num_examples: int,
    num_test_examples: int,
) -> Dataset:
    length = check_count(length, "length", 1, name)
    vocabulary = check_count(vocabulary, "vocabulary", 2, name)
    min_length = length if min_length is None else check_count(min_length, "min_length", 1, name)
    if min_length > length:
        raise ValueError(f"{name}: min_length ({min_length}) must be at most length ({length})")
    num_examples = check_count(num_examples, "num_examples", 1, name)
    num_test_examples = check_count(num_test_examples, "num_test_examples", 1, name)
    # At the peak: the int64 draw, its int32 copy, the mask and the targets.
    check_fits_memory(name, num_examples + num_test_examples, 5 * length + 1)
    vocab = make_vocabulary([str(i) for i in range(vocabulary)])
    n = num_examples + num_test_examples
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_length, length + 1, n)
    symbols = rng.integers(len(SEQ2SEQ_SPECIALS), len(SEQ2SEQ_SPECIALS) + vocabulary, (n, length)).astype(np.int32)
    valid = np.arange(length)[None, :] < lengths[:, None]
    x = np.where(valid, symbols, PAD).astype(np.int32)
    y = np.zeros((n, length + 1), np.int32)
    for i, k in enumerate(lengths):
        row = x[i, :k][::-1] if reverse else x[i, :k]
        y[i, :k], y[i, k] = row, EOS
    what = "reversed" if reverse else "copied"
    return Dataset(
        name=name,
        task=TASK,
        x_train=x[:num_examples],
        y_train=y[:num_examples],
        x_test=x[num_examples:],
        y_test=y[num_examples:],
        vocabulary=vocab,
        model_config={"vocab_size": len(vocab), "output_length": length + 1},
        description=(
            f"Generated {name} task: strings of {min_length}-{length} symbols drawn uniformly from "
            f"{vocabulary}, {what}, target ending in EOS; {num_examples} train / {num_test_examples} "
            f"test, seed {seed}. x (N, {length}) int32 (0-padded), y (N, {length + 1}) int32."
        ),
    )


def copy_task(
    *,
    seed: int = 0,
    length: int = 10,
    vocabulary: int = 20,
    min_length: int | None = None,
    num_examples: int = 10_000,
    num_test_examples: int = 1_000,
) -> Dataset:
    """Copy a random string: x = s (``length`` symbols of ``vocabulary``; with
    ``min_length`` each string's length is drawn from [min_length, length] and padded),
    y = s + EOS. Symbols are ids 4 .. 4 + vocabulary - 1 (tokens "0", "1", ...)."""
    return _symbol_task("copy", False, seed, length, vocabulary, min_length, num_examples, num_test_examples)


def reverse_task(
    *,
    seed: int = 0,
    length: int = 10,
    vocabulary: int = 20,
    min_length: int | None = None,
    num_examples: int = 10_000,
    num_test_examples: int = 1_000,
) -> Dataset:
    """Reverse a random string: x = s, y = reversed(s) + EOS (options as `copy_task`)."""
    return _symbol_task("reverse", True, seed, length, vocabulary, min_length, num_examples, num_test_examples)


# --- Dates: spelled-out dates to ISO 8601.

MONTHS = tuple("january february march april may june july august september october november december".split())
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ONES = tuple(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
    " seventeen eighteen nineteen".split()
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_ORDINAL_ONES = tuple(
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth"
    " fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth".split()
)
_ORDINAL_TENS = {20: "twentieth", 30: "thirtieth"}
_COMPOUND = re.compile(r"\b(" + "|".join(_TENS[2:]) + r") (" + "|".join(_ONES[1:10] + _ORDINAL_ONES[1:10]) + r")\b")
FIRST_DATE, LAST_DATE = datetime.date(1900, 1, 1), datetime.date(2099, 12, 31)


def number_words(n: int) -> str:
    """0 <= n < 100 in words: 26 -> "twenty six" (the hyphen is a format choice, below)."""
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])


def ordinal_words(n: int) -> str:
    """1 <= n <= 31 as an ordinal: 23 -> "twenty third"."""
    if n < 20:
        return _ORDINAL_ONES[n]
    if n in _ORDINAL_TENS:
        return _ORDINAL_TENS[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + " " + _ORDINAL_ONES[ones]


def ordinal_suffix(n: int) -> str:
    """23 -> "23rd", 11 -> "11th"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def year_words(year: int, rng: np.random.Generator) -> str:
    """1900-2099 in words, in one of the ways people say them: 1999 "nineteen ninety nine",
    1905 "nineteen oh five", 2005 "two thousand (and) five", 2026 "two thousand twenty six"
    or "twenty twenty six"."""
    century, rest = divmod(year, 100)
    if century == 19:
        return "nineteen hundred" if rest == 0 else f"nineteen {'oh ' if rest < 10 else ''}{number_words(rest)}"
    if rest == 0:
        return "two thousand"
    if rest < 10 or rng.random() < 0.5:
        return f"two thousand {'and ' if rng.random() < 0.3 else ''}{number_words(rest)}"
    return f"twenty {number_words(rest)}"


def spell_date(date: datetime.date, rng: np.random.Generator) -> str:
    """One human way of writing ``date`` (format, capitalisation and hyphens drawn from rng)."""
    day, month, year = date.day, MONTHS[date.month - 1], date.year
    words = year_words(year, rng)
    form = int(rng.integers(8))
    if form == 0:
        text = f"the {ordinal_words(day)} of {month} {words}"
    elif form == 1:
        text = f"{month} {ordinal_words(day)}, {words}"
    elif form == 2:
        text = f"{WEEKDAYS[date.weekday()]}, {month} {ordinal_suffix(day)}, {year}"
    elif form == 3:
        text = f"{day} {month[:3]} {year}"
    elif form == 4:
        text = f"{date.month}/{day}/{year}"
    elif form == 5:
        text = f"{ordinal_suffix(day)} of {month} {year}"
    elif form == 6:
        text = f"{WEEKDAYS[date.weekday()]} the {ordinal_words(day)} of {month}, {words}"
    else:
        text = f"{month} {day} {year}"
    if rng.random() < 0.5:  # "twenty-third", "twenty-six" as often as "twenty third"
        text = _COMPOUND.sub(r"\1-\2", text)
    if rng.random() < 0.3:
        text = text.title()
    return text


def dates(
    *,
    seed: int = 0,
    num_examples: int = 10_000,
    num_test_examples: int = 1_000,
    level: str = "char",
    max_length: int | None = None,
) -> Dataset:
    """Spelled-out dates to ISO 8601: x "the twenty-third of november two thousand twenty
    six", "Monday, November 23rd, 2026", "11/23/2026", ... (8 formats) -> y "2026-11-23"
    (10 characters + EOS), dates uniform in 1900-2099, train and test sources distinct.

    ``level`` "char": x is the lower-cased characters; "word": `zoo.data.text.tokenize`'s
    tokens (numbers unseen in training become UNK). The vocabulary holds the training
    sources' tokens and the target characters. ``max_length``: default the longest source.
    """
    num_examples = check_count(num_examples, "num_examples", 1, "dates")
    num_test_examples = check_count(num_test_examples, "num_test_examples", 1, "dates")
    if level not in ("char", "word"):
        raise ValueError(f"dates: unknown level {level!r}; expected one of ('char', 'word')")
    rng = np.random.default_rng(seed)
    span = (LAST_DATE - FIRST_DATE).days + 1
    sources, targets, seen = [], [], set()
    while len(sources) < num_examples + num_test_examples:
        date = FIRST_DATE + datetime.timedelta(days=int(rng.integers(span)))
        text = spell_date(date, rng)
        if text in seen:
            continue
        seen.add(text)
        sources.append(text)
        targets.append(date.isoformat())
    split = (lambda s: list(s.lower())) if level == "char" else tokenize
    source_tokens = [split(s) for s in sources]
    train_tokens = sorted({t for tokens in source_tokens[:num_examples] for t in tokens})
    target_chars = sorted(set("0123456789-"))
    vocab = make_vocabulary(target_chars + [t for t in train_tokens if t not in target_chars])
    longest = max(len(t) for t in source_tokens)
    length = longest if max_length is None else check_count(max_length, "max_length", 1, "dates")
    check_fits_memory("dates", num_examples + num_test_examples, length + 11)
    x = vocab.encode_batch(source_tokens, length)
    y = encode_targets(vocab, [list(t) for t in targets], 11)
    n = num_examples
    return Dataset(
        name="dates",
        task=TASK,
        x_train=x[:n],
        y_train=y[:n],
        x_test=x[n:],
        y_test=y[n:],
        vocabulary=vocab,
        model_config={"vocab_size": len(vocab), "output_length": 11},
        description=(
            f"Generated dates translation ({level} level): {num_examples} train / {num_test_examples} "
            f"test distinct spelled-out dates (8 formats) -> ISO 8601, seed {seed}; vocabulary of "
            f"{len(vocab)} tokens; x padded to {length} tokens, y 10 characters + EOS."
        ),
    )


# --- The seed's long word.

LONG_WORD = "pneumonoultramicroscopicsilicovolcanoconiosis"


def long_word(*, words: Sequence[str] = (LONG_WORD,), copies: int = 64) -> Dataset:
    """Next-character prediction on long words: x a word's characters (N, T) int32
    (0-padded), y = x shifted left, ending in EOS. A memorisation task: train holds
    ``copies`` of each word, test one; words start with distinct letters (the first letter
    is all greedy generation is given).
    """
    words = tuple(w.lower() for w in ([words] if isinstance(words, str) else words))
    if not words or any(len(w) < 2 or not w.isalpha() for w in words):
        raise ValueError(f"long_word: words must be letters only, at least 2 each, got {words!r}")
    if len({w[0] for w in words}) != len(words):
        raise ValueError(f"long_word: words must start with distinct letters, got {words!r}")
    copies = check_count(copies, "copies", 1, "long_word")
    vocab = make_vocabulary(sorted({c for w in words for c in w}))
    length = max(len(w) for w in words)
    x = vocab.encode_batch([list(w) for w in words], length)
    y = encode_targets(vocab, [list(w[1:]) for w in words], length)
    return Dataset(
        name="long_word",
        task=TASK,
        x_train=np.repeat(x, copies, 0),
        y_train=np.repeat(y, copies, 0),
        x_test=x,
        y_test=y,
        vocabulary=vocab,
        model_config={"vocab_size": len(vocab), "output_length": length},
        description=(
            f"Next-character prediction on {len(words)} long word(s) ({', '.join(words)}); train "
            f"{copies} copies each, test one; x (N, {length}) int32, y = x shifted left + EOS."
        ),
    )
