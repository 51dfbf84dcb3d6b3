"""Fine-tuning: reuse what a network learned on one task to learn another (kang-lecture4,
"Why DNN?"; Oquab et al. 2014).

    # a new 10-class head on variables from elsewhere (e.g. zoo.interop.import_torch_state_dict)
    model, variables = finetune.replace_head(model, variables, num_classes=10)
    # train only the last stage and the head
    tx = finetune.freeze(optax.adam(1e-3), trainable=["layers_3_*", "fc"])
    # or from a zoo run, through the training engine
    python train.py --model resnet18 --init-from runs/pretrain --trainable fc

A parameter's path joins its keys by "/" (``layers_3_0/conv1/kernel``; a variable's path
starts with its collection). A shell-style pattern selects a parameter when it matches the
path or a leading part of it (``fc``, ``layers_3_*``); ``.`` may be written for ``/``.
`freeze` gives frozen parameters zero updates, `frozen_state` holds their batch-norm
statistics; `replace_head` / `init_from_checkpoint` copy every variable except the output
layer (`head_paths`). Both are used by the training engine (`zoo.fit`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.core import unfreeze
from flax.traverse_util import flatten_dict, unflatten_dict

from zoo import registry
from zoo._choices import listing
from zoo.pretrained import check_fits
from zoo.train.checkpoint import read_variables
from zoo.train.state import init_variables

__all__ = [
    "FROZEN",
    "TRAINABLE",
    "freeze",
    "freeze_labels",
    "frozen_state",
    "head_paths",
    "init_from_checkpoint",
    "replace_head",
    "variable_paths",
]

TRAINABLE, FROZEN = "trainable", "frozen"
# Classifier size fields of registered models (registry.adapt_config sets the same ones).
_CLASS_COUNT_FIELDS = ("num_classes", "num_outputs")


# --- Paths and patterns


def _flatten(tree) -> dict[str, Any]:
    """Nested dict of arrays -> {"a/b/c": leaf}."""
    return flatten_dict(unfreeze(tree), sep="/")


def _unflatten(flat: Mapping[str, Any]) -> dict:
    return unflatten_dict(dict(flat), sep="/")


def _key_name(key) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _path_of(keypath) -> str:
    return "/".join(_key_name(k) for k in keypath)


def variable_paths(tree) -> list[str]:
    """Every leaf's path in ``tree``, e.g. ``["bn1/bias", "bn1/scale", "conv1/kernel", ...]``."""
    return [_path_of(kp) for kp, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _parse_patterns(patterns: str | Sequence[str], argument: str) -> dict[str, str]:
    """{pattern as given: pattern with "/" separators}."""
    items = patterns.split(",") if isinstance(patterns, str) else list(patterns)
    parsed = {}
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(
                f"{argument}: expected non-empty path patterns such as 'fc' or 'layers_3_*', got {patterns!r}"
            )
        parsed[item.strip()] = item.strip().replace(".", "/")
    if not parsed:
        raise ValueError(f"{argument}: give at least one path pattern, e.g. 'fc'")
    return parsed


def _matches(path: str, pattern: str) -> bool:
    """True when ``pattern`` matches ``path`` or one of its leading parts."""
    parts = path.split("/")
    return any(fnmatch.fnmatchcase("/".join(parts[:n]), pattern) for n in range(1, len(parts) + 1))


def _top_level(paths: Sequence[str]) -> list[str]:
    return sorted({p.split("/")[0] for p in paths})


# --- Freezing: which parameters an optimizer may move


def _one_of(trainable, frozen) -> tuple[str, dict[str, str]]:
    if (trainable is None) == (frozen is None):
        raise ValueError(
            "give exactly one of trainable= (patterns to train, the rest frozen) "
            "or frozen= (patterns to freeze, the rest trained)"
        )
    if trainable is not None:
        return TRAINABLE, _parse_patterns(trainable, "trainable")
    return FROZEN, _parse_patterns(frozen, "frozen")


def freeze_labels(params, *, trainable: str | Sequence[str] | None = None, frozen: str | Sequence[str] | None = None):
    """A tree like ``params`` of "trainable" / "frozen" leaves, for ``optax.multi_transform``.

    Exactly one of ``trainable`` (patterns to train, e.g. ``["fc"]`` or ``"layers_3_*,fc"``)
    or ``frozen`` (patterns to freeze). ValueError for a pattern matching no parameter and
    when every parameter would be frozen.
    """
    mode, patterns = _one_of(trainable, frozen)
    paths = variable_paths(params)
    unmatched = [given for given, p in patterns.items() if not any(_matches(path, p) for path in paths)]
    if unmatched:
        raise ValueError(
            f"{mode} pattern(s) {', '.join(repr(p) for p in unmatched)} match no parameter. "
            f"Parameter paths look like {paths[0]!r} (a pattern matches a path or a leading part "
            f"of it; '.' may stand for '/'); the top-level modules are: {listing(_top_level(paths))}"
            if paths
            else f"{mode} pattern(s) {unmatched} match no parameter: the model has none"
        )

    def label(keypath, _):
        hit = any(_matches(_path_of(keypath), p) for p in patterns.values())
        return (TRAINABLE if hit else FROZEN) if mode == TRAINABLE else (FROZEN if hit else TRAINABLE)

    labels = jax.tree_util.tree_map_with_path(label, params)
    if TRAINABLE not in jax.tree.leaves(labels):
        raise ValueError(f"frozen={list(patterns)} freezes every parameter: nothing would train")
    return labels


def freeze(
    tx: optax.GradientTransformation,
    *,
    trainable: str | Sequence[str] | None = None,
    frozen: str | Sequence[str] | None = None,
) -> optax.GradientTransformation:
    """``tx`` on the trainable parameters, zero updates on the frozen ones (bit-identical);
    patterns as in `freeze_labels`, matched at ``tx.init(params)``. Only trainable
    parameters hold optimizer state or see penalties inside ``tx``."""
    _one_of(trainable, frozen)  # bad arguments fail here, before any params exist

    def labels(params):
        return freeze_labels(params, trainable=trainable, frozen=frozen)

    return optax.multi_transform({TRAINABLE: tx, FROZEN: optax.set_to_zero()}, labels)


def frozen_state(
    model_state, *, trainable: str | Sequence[str] | None = None, frozen: str | Sequence[str] | None = None
):
    """A tree like ``model_state`` (e.g. ``{"batch_stats": ...}``) of bools, True where the
    variable belongs to a frozen module and keeps its value through a train step (patterns
    as in `freeze_labels`, on the path under the collection)."""
    mode, patterns = _one_of(trainable, frozen)

    def keep(keypath, _):
        hit = any(_matches(_path_of(keypath[1:]), p) for p in patterns.values())  # [1:]: skip collection
        return not hit if mode == TRAINABLE else hit

    return jax.tree_util.tree_map_with_path(keep, model_state)


# --- Heads: the variables that depend on the class count


def _class_count_field(model) -> str | None:
    return next((f for f in _CLASS_COUNT_FIELDS if isinstance(getattr(model, f, None), int)), None)


def _input_shape(model) -> tuple[int, ...]:
    shape = getattr(model, "input_shape", None)
    if shape is None or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(f"{type(model).__name__} has no fixed input_shape ({shape!r}) to initialise it with")
    return tuple(shape)


def _abstract_variables(model) -> dict:
    return jax.eval_shape(lambda key: init_variables(model, _input_shape(model), key), jax.random.PRNGKey(0))


def head_paths(model) -> frozenset[str]:
    """Paths (``"params/fc/kernel"``, ...) of the variables whose shapes depend on
    ``num_classes`` (or ``num_outputs``), found by comparing abstract shapes at K and K + 1
    classes. Empty for a model without a class count."""
    field = _class_count_field(model)
    if field is None:
        return frozenset()
    shapes = {p: v.shape for p, v in _flatten(_abstract_variables(model)).items()}
    wider = {
        p: v.shape for p, v in _flatten(_abstract_variables(model.clone(**{field: getattr(model, field) + 1}))).items()
    }
    return frozenset(p for p in shapes.keys() | wider.keys() if shapes.get(p) != wider.get(p))


def _copy_variables(source, target, keep: frozenset[str], source_name: str, target_name: str) -> dict:
    """``target`` with every variable outside ``keep`` replaced by ``source``'s (cast to
    the target's dtype), after `check_fits`."""
    check_fits(source, target, keep, source_name, target_name)
    src = _flatten(source)
    return _unflatten(
        # A copy (jnp.array): the train step donates its state, which must not free the caller's arrays.
        {p: (leaf if p in keep else jnp.array(src[p], dtype=leaf.dtype)) for p, leaf in _flatten(target).items()}
    )


def replace_head(model, variables, num_classes: int, *, seed: int = 0, **overrides):
    """``(new_model, new_variables)``: ``model`` (a registered name built with ``overrides``,
    or a module they replace fields of) with ``num_classes`` outputs, its head initialised
    from ``seed`` and every other variable copied from ``variables`` (ValueError if they
    do not fit).
    """
    if isinstance(model, str):
        spec = registry.get_spec(model)
        field = next((f for f in _CLASS_COUNT_FIELDS if f in spec.config), None)
        if field is None:
            raise ValueError(f"model {model!r} has no num_classes or num_outputs: no head to replace")
        new_model = registry.create_model(model, **{**overrides, field: num_classes})
        name = model
    else:
        field = _class_count_field(model)
        if field is None:
            raise ValueError(f"{type(model).__name__} has no num_classes or num_outputs: no head to replace")
        new_model = model.clone(**{**overrides, field: num_classes})
        name = type(model).__name__
    head, target = head_paths(new_model), _abstract_variables(new_model)
    check_fits(variables, target, head, "the given variables", f"{name} with {num_classes} classes")
    shape = _input_shape(new_model)

    def fresh_head(key):  # jit keeps only the head's initialisers: seconds less compiling
        flat = _flatten(init_variables(new_model, shape, key))
        return {p: flat[p] for p in head}

    new_head = jax.jit(fresh_head)(jax.random.PRNGKey(seed))
    src = _flatten(variables)
    return new_model, _unflatten(
        {p: new_head[p] if p in head else jnp.array(src[p], dtype=leaf.dtype) for p, leaf in _flatten(target).items()}
    )


def init_from_checkpoint(model, variables, path: str, *, reset_head: bool = False) -> dict:
    """``variables`` (a fresh initialisation of ``model``) with every variable taken from the
    checkpoint at ``path`` (`zoo.train.checkpoint.read_variables`), except the head when its
    class count differs or ``reset_head``. Raises CheckpointError or ValueError (another
    architecture or config)."""
    head = head_paths(model)
    dst = _flatten(variables)

    def kept(source) -> frozenset[str]:  # the head keeps its initialisation when it does not fit
        src = _flatten(source)
        return (
            head
            if reset_head
            else frozenset(p for p in head if p not in src or tuple(np.shape(src[p])) != tuple(dst[p].shape))
        )

    def check(layout, where):  # on the saved shapes, before the checkpoint's arrays are allocated
        check_fits(layout, variables, kept(layout), f"the checkpoint {where}", type(model).__name__)

    source, where = read_variables(path, check=check)
    return _copy_variables(source, variables, kept(source), f"the checkpoint {where}", type(model).__name__)


def init_from_variables(model, variables, source) -> dict:
    """``variables`` (a fresh initialisation of ``model``) with each variable that ``source``
    holds replaced by it; ``source`` may hold a part (pretrained hidden layers, not the
    head). Raises ValueError for a shape mismatch or a variable the model lacks."""
    given = _flatten(source)
    keep = frozenset(p for p in _flatten(variables) if p not in given)
    return _copy_variables(source, variables, keep, "the initial variables", type(model).__name__)
