"""Token conventions shared by the text datasets and the models that read token ids.

Ids: ``PAD = 0`` (padding, after the end of a text), ``UNK = 1`` (a word the vocabulary
does not hold), ``BOS = 2`` and ``EOS = 3`` (start and end of a decoded sequence, in the
vocabularies of sequence-to-sequence tasks); other symbols follow.
"""

from __future__ import annotations

import numpy as np

PAD, UNK, BOS, EOS = 0, 1, 2, 3
PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN)  # every vocabulary starts with these
SEQ2SEQ_SPECIALS = SPECIAL_TOKENS + (BOS_TOKEN, EOS_TOKEN)

# Kim (2014) draws the vectors of words missing from word2vec from U[-a, a] with a = 0.25,
# "so that the randomly initialized vectors have the same variance as the pre-trained ones".
KIM_UNKNOWN_SCALE = 0.25


def strip_ids(ids) -> list[int]:
    """A decoded row (T,) int -> its ids before the first EOS, padding removed."""
    out = []
    for i in np.asarray(ids).reshape(-1).tolist():
        if i == EOS:
            break
        if i != PAD:
            out.append(int(i))
    return out
