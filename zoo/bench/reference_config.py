"""Reading a zoo model config for a reference (torch twin or Flax stock) model."""

from __future__ import annotations

from typing import Mapping


def require(config: Mapping, key: str, allowed, what: str):
    """``config[key]`` when it is one of ``allowed`` (absent: the first); otherwise the
    reference cannot replicate the zoo model and the comparison is reported unavailable."""
    value = config.get(key, allowed[0])
    if value not in allowed:
        raise ValueError(f"the reference {what} replicates {key} in {tuple(allowed)} only, got {value!r}")
    return value


def num_classes(config: Mapping) -> int:
    return int(config.get("num_classes", config.get("num_outputs", 10)))
