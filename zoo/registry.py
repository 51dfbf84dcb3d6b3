"""Model registry: name -> constructor, default config and metadata.

Every model module registers its constructors next to their definitions::

    @register_model("mlp", family="perceptron", paper="...", task="classification",
                    test_config={"hidden_sizes": (8,)})
    def mlp(*, input_shape=(64,), hidden_sizes=(128,), num_outputs=10, ...):
        return MLP(...)

The keyword arguments of the constructor (all keyword-only, all with defaults) are the
model's config; ``create_model(name, **overrides)`` validates overrides against them.
Every constructor takes ``input_shape`` (one example, no batch axis; ``None`` for a free
axis such as sequence length), and classifiers take ``num_classes`` or ``num_outputs``,
so the trainer can adapt any model to a dataset with `adapt_config`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import inspect
import types
from typing import Any, Callable, Mapping

from zoo._choices import lookup, unknown_name_error

# How a model learns. Anything but "gradient" gets its own contract test instead of the
# gradient test that runs over every registered model.
LEARNING_KINDS = (
    "gradient",  # trained by zoo.fit with an optax optimizer
    "rosenblatt",  # the perceptron's threshold rule (error-driven, no gradient)
    "hand_wired",  # fixed weights given by the seed; nothing to learn
    "hebbian",  # closed-form storage (Hopfield)
    "contrastive_divergence",  # RBM / DBN sampling rule
)

TASKS = (
    "classification",
    "binary_classification",
    "regression",
    "reconstruction",
    "segmentation",
    "sequence_classification",
    "sequence_to_sequence",
    "multi_output",
    "energy",
)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything the zoo knows about one registered model."""

    name: str
    constructor: Callable[..., Any]
    config: Mapping[str, Any]  # default keyword arguments of the constructor
    family: str
    paper: str  # paper and/or seed reference
    task: str
    input_shape: tuple[int, ...]  # one example, without the batch axis
    input_dtype: str = "float32"
    learning: str = "gradient"
    # Overrides that make the model small enough for the registry-wide tests.
    test_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # For non-gradient models: ``rule(variables, x, t, **hparams) -> variables``.
    learning_rule: Callable[..., Any] | None = None
    description: str = ""

    @property
    def learns_by_gradient(self) -> bool:
        return self.learning == "gradient"

    def info(self) -> dict[str, Any]:
        """A plain-dict summary (what `zoo.model_info` returns)."""
        return {
            "name": self.name,
            "family": self.family,
            "paper": self.paper,
            "description": self.description,
            "task": self.task,
            "input_shape": self.input_shape,
            "input_dtype": self.input_dtype,
            "config": dict(self.config),
            "learning": self.learning,
            "learns_by_gradient": self.learns_by_gradient,
        }


# Tasks whose output head is sized by num_classes/num_outputs: such a model serves
# whatever the data asks (classification or regression), so the dataset picks the task.
# Any other task is fixed by the model itself (e.g. reconstruction).
DATA_DEFINED_TASKS = ("classification", "regression")

_REGISTRY: dict[str, ModelSpec] = {}


def _config_of(fn: Callable[..., Any]) -> dict[str, Any]:
    config = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty:
            raise TypeError(
                f"model constructor {fn.__qualname__}: parameter {p.name!r} must be keyword-only "
                "with a default, so that the default config is complete"
            )
        config[p.name] = p.default
    return config


def register_model(
    name: str,
    *,
    family: str,
    paper: str,
    task: str,
    input_dtype: str = "float32",
    learning: str = "gradient",
    test_config: Mapping[str, Any] | None = None,
    learning_rule: Callable[..., Any] | None = None,
):
    """Decorator registering a model constructor under ``name``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if learning not in LEARNING_KINDS:
        raise ValueError(f"unknown learning kind {learning!r}; expected one of {LEARNING_KINDS}")
    if learning != "gradient" and learning not in ("hand_wired",) and learning_rule is None:
        raise ValueError(f"model {name!r} learns by {learning!r} and must give its learning_rule")

    def decorate(fn):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        config = _config_of(fn)
        if "input_shape" not in config:
            raise TypeError(f"model constructor {fn.__qualname__} must take an input_shape keyword")
        _check_keys(name, test_config or {}, config)
        _REGISTRY[name] = ModelSpec(
            name=name,
            constructor=fn,
            config=types.MappingProxyType(config),
            family=family,
            paper=paper,
            task=task,
            input_shape=tuple(config["input_shape"]),
            input_dtype=input_dtype,
            learning=learning,
            test_config=types.MappingProxyType(dict(test_config or {})),
            learning_rule=learning_rule,
            description=inspect.getdoc(fn) or "",
        )
        return fn

    return decorate


def _ensure_loaded() -> None:
    # Importing the model package runs every family's @register_model.
    from zoo import models  # noqa: F401


def _check_keys(name: str, overrides: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    for key in overrides:
        if key not in config:
            raise unknown_name_error("config key", key, config, f" for model {name!r}")


def get_spec(name: str) -> ModelSpec:
    _ensure_loaded()
    return lookup(_REGISTRY, name, "model")


def list_models(pattern: str = "*", *, family: str | None = None) -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (e.g. ``"resnet*"``)."""
    _ensure_loaded()
    return sorted(
        n
        for n, s in _REGISTRY.items()
        if fnmatch.fnmatch(n, pattern) and (family is None or s.family == family)
    )


def model_info(name: str) -> dict[str, Any]:
    """Family, reference, default config, input spec, task and learning kind of a model."""
    return get_spec(name).info()


def create_model(name: str, **overrides):
    """Build registered model ``name`` with its default config updated by ``overrides``.

    Raises:
      ValueError: unknown name, unknown config key, or a value the model rejects.
    """
    spec = get_spec(name)
    _check_keys(name, overrides, spec.config)
    try:
        return spec.constructor(**overrides)
    except (TypeError, ValueError) as e:
        raise ValueError(f"bad config for model {name!r}: {e}") from e


def adapt_config(name: str, input_shape: tuple[int, ...], num_outputs: int | None,
                 data_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Overrides that fit model ``name`` to data of ``input_shape`` with ``num_outputs`` targets.

    ``data_config`` (a dataset's ``model_config``, e.g. ``{"vocab_size": 57}``) holds
    values the data fixes; each applies to the models whose config has that key and is
    ignored by the others, so one dataset serves every family.
    """
    config = get_spec(name).config
    overrides: dict[str, Any] = {"input_shape": tuple(input_shape)}
    for key in ("num_classes", "num_outputs"):
        if key in config and num_outputs is not None:
            overrides[key] = num_outputs
    for key, value in (data_config or {}).items():
        if key in config:
            overrides[key] = value
    return overrides
