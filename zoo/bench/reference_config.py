"""Reading a zoo model config for a reference (torch twin or Flax stock) model."""

from __future__ import annotations

from typing import Mapping

from zoo.nn.tokens import BOS


def require(config: Mapping, key: str, allowed, what: str):
    """``config[key]`` when it is one of ``allowed`` (absent: the first); otherwise the
    reference cannot replicate the zoo model and the comparison is reported unavailable."""
    value = config.get(key, allowed[0])
    if value not in allowed:
        raise ValueError(f"the reference {what} replicates {key} in {tuple(allowed)} only, got {value!r}")
    return value


def num_classes(config: Mapping) -> int:
    return int(config.get("num_classes", config.get("num_outputs", 10)))


def bahdanau_args(config: Mapping) -> tuple:
    """``(vocab, target vocab, embedding, hidden, attention units, bos id)`` of a
    ``seq2seq_bahdanau`` config, for the twins that replicate its one form: a one-layer
    bidirectional PyTorch-form GRU encoder, no dropout, Bahdanau attention."""
    what = "Bahdanau seq2seq"
    for key, allowed in (
        ("cell", ("gru",)),
        ("num_layers", (1,)),
        ("bidirectional", (True,)),
        ("attention", ("bahdanau",)),
        ("dropout_rate", (0.0, 0)),
        ("reset_after", (True,)),
        ("update_convention", ("keep",)),
        ("use_bias", (True,)),
        ("input_feeding", (False,)),
    ):
        require(config, key, allowed, what)
    vocab = int(config["vocab_size"])
    return (
        vocab,
        int(config.get("target_vocab_size") or vocab),
        int(config["embed_dim"]),
        int(config["hidden_size"]),
        config.get("attention_units"),
        int(config.get("bos_id", BOS)),
    )
