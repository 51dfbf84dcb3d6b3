"""Run configs read from files: a run's own ``config.json``, YAML, or a Python file in the
ml_collections style of the Flax examples and big_vision.

    config = zoo.train.load_config("runs/a/config.json", epochs=5)   # a rerun, one change
    zoo.fit(config.model, config=config)

A Python config file defines ``get_config()`` returning an ``ml_collections.ConfigDict``
(or a dict, or a `TrainConfig`)::

    import ml_collections

    def get_config():
        config = ml_collections.ConfigDict()
        config.model = "mlp"
        config.model_overrides = {"hidden_sizes": (64,)}
        config.epochs = 5
        return config

Keys are `TrainConfig`'s fields; the keys a work dir's ``config.json`` adds about what was
built (``module``, ``schedule_length``) are read past, since the rerun derives them again.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from typing import Any

from zoo.train.loop import TrainConfig

# What `fit` writes into config.json besides the TrainConfig fields: derived, not settings.
DERIVED_KEYS = ("module", "schedule_length")
# Fields whose values are dicts of options: an override merges into them key by key.
MERGED_FIELDS = ("model_overrides", "dataset_kwargs", "optimizer_kwargs")


def read_config_file(path: str) -> dict[str, Any]:
    """The settings in ``path`` (.json, .yaml/.yml, or .py with ``get_config()``) as a plain
    dict; ValueError in one line when the file cannot be read or holds no mapping."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"config file {path} does not exist")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".json", ".yaml", ".yml", ".py"):
        raise ValueError(f"config file {path}: unknown kind {suffix or '(no suffix)'}; use .json, .yaml or .py")
    try:
        if suffix == ".json":
            with open(path) as f:
                settings = json.load(f)
        elif suffix in (".yaml", ".yml"):
            import yaml

            with open(path) as f:
                settings = yaml.safe_load(f)
        else:
            settings = _python_config(path)
    except _NoGetConfig:
        raise
    except Exception as e:  # a syntax error in any of the three languages, an import error
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"config file {path} cannot be read ({type(e).__name__}: {first})") from e
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        settings = dataclasses.asdict(settings)
    if hasattr(settings, "to_dict"):  # ml_collections.ConfigDict / FrozenConfigDict
        settings = settings.to_dict()
    if not isinstance(settings, dict):
        raise ValueError(f"config file {path} holds a {type(settings).__name__}, not a mapping of settings")
    return settings


class _NoGetConfig(ValueError):
    pass


def _python_config(path: str):
    spec = importlib.util.spec_from_file_location(f"_zoo_config_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    get_config = getattr(module, "get_config", None)
    if not callable(get_config):
        raise _NoGetConfig(f"config file {path} defines no get_config() (the ml_collections convention)")
    return get_config()


def config_from_dict(settings: dict[str, Any], *, source: str = "config", **overrides) -> TrainConfig:
    """A `TrainConfig` from ``settings`` with ``overrides`` applied: a dict-valued field
    (`MERGED_FIELDS`) is updated key by key, any other replaced. Unknown keys raise one
    ValueError line naming ``source``."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    settings = {k: v for k, v in settings.items() if k not in DERIVED_KEYS}
    unknown = sorted(set(settings) - fields) + sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"{source}: unknown setting(s) {', '.join(map(repr, unknown))}; valid: {', '.join(sorted(fields))}"
        )
    for name in MERGED_FIELDS:
        if settings.get(name) is not None and not isinstance(settings[name], dict):
            raise ValueError(f"{source}: {name} must be a mapping, got {settings[name]!r}")
    merged = dict(settings)
    for name, value in overrides.items():
        merged[name] = {**(merged.get(name) or {}), **value} if name in MERGED_FIELDS else value
    # JSON and YAML have no tuples; model configs take tuples for sizes.
    for name in ("model_overrides", "dataset_kwargs"):
        if merged.get(name):
            merged[name] = {k: _tuples(v) for k, v in merged[name].items()}
    try:
        return TrainConfig(**merged)
    except TypeError as e:
        raise ValueError(f"{source}: {e}") from e


def load_config(path: str, **overrides) -> TrainConfig:
    """`read_config_file` then `config_from_dict`: the run ``path`` describes, with
    ``overrides`` (TrainConfig fields) applied."""
    return config_from_dict(read_config_file(path), source=f"config file {os.fspath(path)}", **overrides)


def _tuples(value):
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value
