"""Sequence metrics on decoded outputs, on the host: corpus BLEU (Papineni et al. 2002;
``corpus_bleu([[ref_tokens]], [hyp_tokens])``, nltk's form) and exact match, over lists of
hashable tokens. The engine's per-batch metrics live in zoo.tasks.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Hashable, Sequence

Tokens = Sequence[Hashable]


def ngrams(tokens: Tokens, n: int) -> collections.Counter:
    """Counts of the n-grams (tuples) of ``tokens``."""
    tokens = tuple(tokens)
    return collections.Counter(tokens[i : i + n] for i in range(len(tokens) - n + 1))


def modified_precision(references: Sequence[Tokens], hypothesis: Tokens, n: int) -> tuple[int, int]:
    """Papineni et al.'s clipped n-gram matches and the hypothesis's n-gram count: each
    n-gram counts at most as often as it occurs in any one reference."""
    counts = ngrams(hypothesis, n)
    max_ref = collections.Counter()
    for ref in references:
        for gram, c in ngrams(ref, n).items():
            max_ref[gram] = max(max_ref[gram], c)
    return sum(min(c, max_ref[g]) for g, c in counts.items()), sum(counts.values())


def _closest_length(references: Sequence[Tokens], hyp_len: int) -> int:
    # The reference length closest to the hypothesis's, the shorter on a tie (as nltk).
    return min((len(r) for r in references), key=lambda r: (abs(r - hyp_len), r))


def corpus_bleu(
    list_of_references: Sequence[Sequence[Tokens]],
    hypotheses: Sequence[Tokens],
    *,
    max_n: int = 4,
    weights: Sequence[float] | None = None,
) -> float:
    """Corpus BLEU in [0, 1], as nltk's corpus_bleu without smoothing: BP * exp(sum_n w_n
    log p_n), p_n the clipped n-gram precision over the whole corpus, BP = min(1, exp(1 -
    r / c)), r summing each hypothesis's closest reference length. ``list_of_references[i]``
    holds the references (token lists) of ``hypotheses[i]``.
    """
    if len(list_of_references) != len(hypotheses):
        raise ValueError(f"{len(list_of_references)} reference sets for {len(hypotheses)} hypotheses")
    if int(max_n) < 1:
        raise ValueError(f"max_n must be at least 1, got {max_n}")
    weights = [1.0 / max_n] * max_n if weights is None else list(weights)
    if len(weights) != max_n:
        raise ValueError(f"{len(weights)} weights for max_n={max_n}")
    matches, totals = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for refs, hyp in zip(list_of_references, hypotheses):
        if not refs:
            raise ValueError("every hypothesis needs at least one reference")
        for n in range(1, max_n + 1):
            m, t = modified_precision(refs, hyp, n)
            matches[n - 1] += m
            totals[n - 1] += t
        hyp_len += len(hyp)
        ref_len += _closest_length(refs, len(hyp))
    if hyp_len == 0 or any(m == 0 for m, w in zip(matches, weights) if w > 0):
        return 0.0
    log_p = sum(w * math.log(m / t) for w, m, t in zip(weights, matches, totals) if w > 0)
    brevity = 1.0 if hyp_len > ref_len else math.exp(1.0 - ref_len / hyp_len)
    return brevity * math.exp(log_p)


def exact_match(references: Sequence[Tokens], hypotheses: Sequence[Tokens]) -> float:
    """Fraction of hypotheses equal to their (single) reference, token for token."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references for {len(hypotheses)} hypotheses")
    if not hypotheses:
        raise ValueError("exact_match of an empty corpus")
    return sum(tuple(r) == tuple(h) for r, h in zip(references, hypotheses)) / len(hypotheses)
