"""Model registry: name -> module class, default config and metadata.

A model registers its Linen module class next to the definition; the module's dataclass
fields are the config, declared once::

    @register_model("mlp", family="perceptron", paper="...", task="classification",
                    test_config={"hidden_sizes": (8,)})
    class MLP(nn.Module):
        input_shape: tuple = (8, 8, 1)
        hidden_sizes: tuple = (256,)
        ...

    register_model("dff", MLP, defaults={"hidden_sizes": (256,) * 4, "batch_norm": True}, ...)

``defaults`` overrides field defaults for one registered name (a second name for the same
module is a variant: ``dff`` is an MLP with other defaults). ``create_model(name,
**overrides)`` checks each override against the config (unknown keys, and values of the
wrong kind: a float for an int field, a string for a bool) before building the module, whose
``__post_init__`` checks the values. Every model has an ``input_shape`` field (one example,
no batch axis; ``None`` for a free axis such as sequence length; a tuple of shapes for
inputs of several parts, `zoo.nn.inputs`); classifiers have
``num_classes`` or ``num_outputs``, so the trainer can adapt any model to a dataset with
`adapt_config`.

The package's ``__init__`` imports `zoo.models`, which registers every family: imports run
one way (models -> registry), and the registry never imports a model.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import inspect
import types
from typing import TYPE_CHECKING, Any, Callable, Mapping

from zoo._choices import lookup, unknown_name_error
from zoo.nn.checks import check_like_default
from zoo.nn.precision import with_precision
from zoo.tasks import TASKS

if TYPE_CHECKING:
    import flax.linen as nn

# How a model learns. Anything but "gradient" gets its own contract test instead of the
# gradient test that runs over every registered model.
LEARNING_KINDS = (
    "gradient",  # trained by zoo.fit with an optax optimizer
    "rosenblatt",  # the perceptron's threshold rule (error-driven, no gradient)
    "hand_wired",  # fixed weights given by the seed; nothing to learn
    "hebbian",  # correlation storage (Hopfield, Hamming prototypes)
    "contrastive_divergence",  # RBM: CD-k or persistent CD (a sampling rule)
)

# Tasks whose output head is sized by num_classes/num_outputs: such a model serves
# whatever the data asks (classification or regression), so the dataset picks the task.
# Any other task is fixed by the model itself (e.g. sequence to sequence).
DATA_DEFINED_TASKS = ("classification", "regression")

# Linen's own dataclass fields, not part of any model's config.
_MODULE_FIELDS = ("parent", "name")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything the zoo knows about one registered model."""

    name: str
    module: type  # the Linen module class
    config: Mapping[str, Any]  # the module's fields with this model's defaults
    family: str
    paper: str  # paper and/or seed reference
    task: str
    input_shape: tuple  # one example, without the batch axis (a tuple of shapes: zoo.nn.inputs)
    input_dtype: str | tuple[str, ...] = "float32"  # one per part for multi-part inputs
    learning: str = "gradient"
    # Overrides that make the model small enough for the registry-wide tests.
    test_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # For non-gradient models: ``rule(variables, x, t, **hparams) -> variables``.
    learning_rule: Callable[..., Any] | None = None
    description: str = ""

    @property
    def learns_by_gradient(self) -> bool:
        return self.learning == "gradient"

    def build(self, dtype: str = "float32", param_dtype: str = "float32", **overrides):
        """The module with this model's config updated by checked ``overrides``, computing
        in ``dtype`` with parameters stored in ``param_dtype`` (`zoo.nn.precision`)."""
        _check_keys(self.name, overrides, self.config)
        config = dict(self.config)
        for key, value in overrides.items():
            config[key] = check_like_default(f"model {self.name!r}: {key}", value, self.config[key])
        return with_precision(self.module(**config), dtype, param_dtype)

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


_REGISTRY: dict[str, ModelSpec] = {}


def _config_of(module: type, name: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    if not (isinstance(module, type) and dataclasses.is_dataclass(module)):
        raise TypeError(f"model {name!r}: register a Flax Linen module class, got {module!r}")
    config = {}
    for f in dataclasses.fields(module):
        if not f.init or f.name in _MODULE_FIELDS:
            continue
        if f.name in defaults:
            config[f.name] = defaults[f.name]
        elif f.default is not dataclasses.MISSING:
            config[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            config[f.name] = f.default_factory()
        else:
            raise TypeError(
                f"model {name!r}: field {module.__name__}.{f.name} needs a default "
                "(in the class or in defaults=), so that the default config is complete"
            )
    _check_keys(name, defaults, config)
    if "input_shape" not in config:
        raise TypeError(f"model {name!r}: {module.__name__} must have an input_shape field")
    return config


def register_model(
    name: str,
    module: type | None = None,
    *,
    family: str,
    paper: str,
    task: str,
    defaults: Mapping[str, Any] | None = None,
    description: str | None = None,
    input_dtype: str | tuple[str, ...] = "float32",
    learning: str = "gradient",
    test_config: Mapping[str, Any] | None = None,
    learning_rule: Callable[..., Any] | None = None,
):
    """Register Linen module class ``module`` under ``name`` (returns it); without
    ``module``, a class decorator doing the same."""
    if task not in TASKS:
        raise ValueError(f"model {name!r}: unknown task {task!r}; expected one of {tuple(TASKS)}")
    if learning not in LEARNING_KINDS:
        raise ValueError(f"unknown learning kind {learning!r}; expected one of {LEARNING_KINDS}")
    if learning not in ("gradient", "hand_wired") and learning_rule is None:
        raise ValueError(f"model {name!r} learns by {learning!r} and must give its learning_rule")

    def decorate(cls):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        config = _config_of(cls, name, defaults or {})
        _check_keys(name, test_config or {}, config)
        _REGISTRY[name] = ModelSpec(
            name=name,
            module=cls,
            config=types.MappingProxyType(config),
            family=family,
            paper=paper,
            task=task,
            input_shape=tuple(config["input_shape"]),
            input_dtype=input_dtype,
            learning=learning,
            test_config=types.MappingProxyType(dict(test_config or {})),
            learning_rule=learning_rule,
            description=description or inspect.getdoc(cls) or "",
        )
        return cls

    return decorate if module is None else decorate(module)


def _check_keys(name: str, overrides: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    for key in overrides:
        if key not in config:
            raise unknown_name_error("config key", key, config, f" for model {name!r}")


def get_spec(name: str) -> ModelSpec:
    return lookup(_REGISTRY, name, "model")


def list_models(pattern: str = "*", *, family: str | None = None) -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (e.g. ``"resnet*"``)."""
    return sorted(
        n for n, s in _REGISTRY.items() if fnmatch.fnmatch(n, pattern) and (family is None or s.family == family)
    )


def model_info(name: str) -> dict[str, Any]:
    """Family, reference, default config, input spec, task and learning kind of a model."""
    return get_spec(name).info()


def create_model(name: str, *, pretrained: str | None = None, **overrides: Any) -> nn.Module | tuple[nn.Module, dict]:
    """Build registered model ``name`` with its default config updated by ``overrides``.

    Two more keywords apply to every model (`zoo.nn.precision`): ``dtype``, the compute
    dtype ("float32", "bfloat16", "float16"), and ``param_dtype``, the parameters' storage
    dtype (default "float32": master weights, as the Flax examples' ``half_precision``).

    With ``pretrained`` (a folder written by `zoo.save_pretrained`, the dataset name of
    weights shipped with zoo, a Hugging Face Hub id ``user/repo`` or
    ``torchvision:NAME_OR_PATH``), return ``(model, variables)``: the model built from the
    saved config with ``overrides`` on top, and its loaded variables (see
    `zoo.pretrained.load_pretrained`).

    Raises:
      ValueError: unknown name, unknown config key, or a value the model rejects; with
        ``pretrained``, missing or damaged files, another model's weights, or variables
        whose keys or shapes differ from the model's.
    """
    if pretrained is not None:
        from zoo.pretrained import load_pretrained  # loads safetensors, torch or the Hub on demand

        return load_pretrained(pretrained, name, **overrides)
    spec = get_spec(name)
    try:
        return spec.build(**overrides)
    except (TypeError, ValueError) as e:
        message = str(e)
        raise ValueError(
            message
            if message.startswith(("model ", "unknown config key"))
            else f"bad config for model {name!r}: {message}"
        ) from e


def adapt_config(
    name: str, input_shape: tuple[int, ...], num_outputs: int | None, data_config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
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
