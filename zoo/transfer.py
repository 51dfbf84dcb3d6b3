"""Transfer learning: reuse what a network learned on one task to learn another (seed
kang-lecture4, "Why DNN?": "utilize learned knowledge in one domain to learn another
domain"; Oquab, Bottou, Laptev & Sivic 2014 reuse ImageNet-trained layers and train new
ones on top).

    # weights from PyTorch (torchvision key names), then a new 10-class head
    variables = zoo.transfer.import_torch_state_dict(model, variables, torch_net.state_dict())
    model, variables = zoo.transfer.replace_head(model, variables, num_classes=10)
    # train only the last stage and the head
    tx = zoo.transfer.freeze(optax.adam(1e-3), trainable=["layers_3_*", "fc"])
    # or from a zoo run, through the training engine
    python train.py --model resnet18 --init-from runs/pretrain --trainable fc

Variables are addressed by their path in the variables tree, components joined by "/":
``params/layers_3_0/conv1/kernel``; a parameter path omits the collection
(``layers_3_0/conv1/kernel``). A pattern (shell-style: ``*``, ``?``, ``[...]``) selects a
parameter when it matches the whole path or a leading part of it, so ``fc`` selects
``fc/kernel`` and ``fc/bias`` and ``layers_3_*`` all of the last ResNet stage; ``.`` may be
written for ``/``.

Three mechanisms, each in one place:

* `import_torch_state_dict`: a PyTorch state dict with torchvision's key names into the
  variables of a zoo ResNet, VGG, AlexNet (both variants) or DenseNet, checked strictly.
* `freeze` / `freeze_labels`: zero updates for the frozen parameters
  (``optax.multi_transform`` with ``optax.set_to_zero``), the rest trained by ``tx``.
* `replace_head` / `init_from_checkpoint`: copy every variable except the output layer
  (the variables whose shapes depend on the class count, found by `head_paths`), from
  other variables or from a checkpoint the training engine wrote.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.core import unfreeze
from flax.traverse_util import flatten_dict, unflatten_dict

from zoo import registry

TRAINABLE, FROZEN = "trainable", "frozen"
# Classifier size fields of registered models (registry.adapt_config sets the same ones).
_CLASS_COUNT_FIELDS = ("num_classes", "num_outputs")
# How many names an error message lists before it says "... and N more".
_LISTED = 12

# --------------------------------------------------------------------------------------
# Paths and patterns
# --------------------------------------------------------------------------------------


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
            raise ValueError(f"{argument}: expected non-empty path patterns such as 'fc' or "
                             f"'layers_3_*', got {patterns!r}")
        parsed[item.strip()] = item.strip().replace(".", "/")
    if not parsed:
        raise ValueError(f"{argument}: give at least one path pattern, e.g. 'fc'")
    return parsed


def _matches(path: str, pattern: str) -> bool:
    """True when ``pattern`` matches ``path`` or one of its leading parts."""
    parts = path.split("/")
    return any(fnmatch.fnmatchcase("/".join(parts[:n]), pattern) for n in range(1, len(parts) + 1))


def _listing(names: Sequence[str]) -> str:
    names = list(names)
    shown = ", ".join(names[:_LISTED])
    return shown + (f", ... and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def _top_level(paths: Sequence[str]) -> list[str]:
    return sorted({p.split("/")[0] for p in paths})


# --------------------------------------------------------------------------------------
# Freezing: which parameters an optimizer may move
# --------------------------------------------------------------------------------------


def _one_of(trainable, frozen) -> tuple[str, dict[str, str]]:
    if (trainable is None) == (frozen is None):
        raise ValueError("give exactly one of trainable= (patterns to train, the rest frozen) "
                         "or frozen= (patterns to freeze, the rest trained)")
    if trainable is not None:
        return TRAINABLE, _parse_patterns(trainable, "trainable")
    return FROZEN, _parse_patterns(frozen, "frozen")


def freeze_labels(params, *, trainable: str | Sequence[str] | None = None,
                  frozen: str | Sequence[str] | None = None):
    """A tree like ``params`` whose leaves are "trainable" or "frozen", for
    ``optax.multi_transform``.

    ``trainable``: patterns of the parameters to train (everything else frozen), e.g.
    ``["fc"]`` or ``"layers_3_*,fc"``; or ``frozen``: patterns of the parameters to freeze
    (everything else trained). Give exactly one. Raises ValueError for a pattern that
    matches no parameter (the message lists the top-level modules) and when every
    parameter would be frozen.
    """
    mode, patterns = _one_of(trainable, frozen)
    paths = variable_paths(params)
    unmatched = [given for given, p in patterns.items() if not any(_matches(path, p) for path in paths)]
    if unmatched:
        raise ValueError(
            f"{mode} pattern(s) {', '.join(repr(p) for p in unmatched)} match no parameter. "
            f"Parameter paths look like {paths[0]!r} (a pattern matches a path or a leading part "
            f"of it; '.' may stand for '/'); the top-level modules are: {_listing(_top_level(paths))}"
            if paths else f"{mode} pattern(s) {unmatched} match no parameter: the model has none")

    def label(keypath, _):
        hit = any(_matches(_path_of(keypath), p) for p in patterns.values())
        return (TRAINABLE if hit else FROZEN) if mode == TRAINABLE else (FROZEN if hit else TRAINABLE)

    labels = jax.tree_util.tree_map_with_path(label, params)
    if TRAINABLE not in jax.tree.leaves(labels):
        raise ValueError(f"frozen={list(patterns)} freezes every parameter: nothing would train")
    return labels


def freeze(tx: optax.GradientTransformation, *, trainable: str | Sequence[str] | None = None,
           frozen: str | Sequence[str] | None = None) -> optax.GradientTransformation:
    """``tx`` on the trainable parameters, zero updates (``optax.set_to_zero``) on the frozen
    ones, which therefore stay bit-identical; patterns as in `freeze_labels`.

    The labels are computed from the parameter tree when the optimizer is initialised, so
    a pattern that matches nothing raises ValueError at ``tx.init(params)``. Only the
    trainable parameters hold optimizer state (Adam's moments), and weight decay or L1/L2
    penalties inside ``tx`` touch only them. Batch-norm running statistics are not
    parameters: `frozen_state` says which to hold fixed (`zoo.fit` does both).
    """
    _one_of(trainable, frozen)  # bad arguments fail here, before any params exist

    def labels(params):
        return freeze_labels(params, trainable=trainable, frozen=frozen)

    return optax.multi_transform({TRAINABLE: tx, FROZEN: optax.set_to_zero()}, labels)


def frozen_state(model_state, *, trainable: str | Sequence[str] | None = None,
                 frozen: str | Sequence[str] | None = None):
    """A tree like ``model_state`` (e.g. ``{"batch_stats": ...}``) of bools: True where the
    variable belongs to a frozen module and must keep its value through a train step.

    Patterns as in `freeze_labels`, matched against the path under the collection, so
    ``trainable="fc"`` freezes the running statistics of every batch norm outside ``fc``.
    Frozen batch norms still normalise by the batch's statistics in training mode; only
    their running averages (what evaluation uses) stay as loaded.
    """
    mode, patterns = _one_of(trainable, frozen)

    def keep(keypath, _):
        hit = any(_matches(_path_of(keypath[1:]), p) for p in patterns.values())  # [1:]: skip collection
        return not hit if mode == TRAINABLE else hit

    return jax.tree_util.tree_map_with_path(keep, model_state)


# --------------------------------------------------------------------------------------
# Heads: the variables that depend on the class count
# --------------------------------------------------------------------------------------


def _class_count_field(model) -> str | None:
    return next((f for f in _CLASS_COUNT_FIELDS if isinstance(getattr(model, f, None), int)), None)


def _input_shape(model) -> tuple[int, ...]:
    shape = getattr(model, "input_shape", None)
    if shape is None or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(f"{type(model).__name__} has no fixed input_shape ({shape!r}) to "
                         "initialise it with")
    return tuple(shape)


def _abstract_variables(model) -> dict:
    # One initialisation for the engine and transfer (imported late: zoo.train imports this module).
    from zoo.train.state import init_variables

    return jax.eval_shape(lambda key: init_variables(model, _input_shape(model), key),
                          jax.random.PRNGKey(0))


def head_paths(model) -> frozenset[str]:
    """Paths (``"params/fc/kernel"``, ...) of the variables whose shapes depend on the
    model's ``num_classes`` (or ``num_outputs``): its output layer. Found by comparing the
    variable shapes at K and K + 1 classes (abstract evaluation, nothing allocated), so it
    holds for every registered classifier: ResNet ``fc``, DenseNet ``classifier``, VGG and
    AlexNet ``fc3``. Empty for a model without a class count."""
    field = _class_count_field(model)
    if field is None:
        return frozenset()
    shapes = {p: v.shape for p, v in _flatten(_abstract_variables(model)).items()}
    wider = {p: v.shape for p, v in _flatten(
        _abstract_variables(model.clone(**{field: getattr(model, field) + 1}))).items()}
    return frozenset(p for p in shapes.keys() | wider.keys() if shapes.get(p) != wider.get(p))


def _params_first(path: str):
    return (not path.startswith("params/"), _natural_key(path))


def _check_fits(source, target, keep: frozenset[str], source_name: str, target_name: str) -> None:
    """Raise ValueError unless every variable of ``target`` (arrays or their
    ``jax.eval_shape``) outside ``keep`` is in ``source`` with the same shape and
    ``source`` holds nothing else outside ``keep``."""
    src, dst = _flatten(source), _flatten(target)
    missing = sorted((p for p in dst if p not in keep and p not in src), key=_params_first)
    unexpected = sorted((p for p in src if p not in keep and p not in dst), key=_params_first)
    mismatched = sorted((p for p in dst if p not in keep and p in src
                         and tuple(np.shape(src[p])) != tuple(dst[p].shape)), key=_params_first)
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} variable(s) the model needs are not in {source_name}: "
                            + _listing(missing))
        if unexpected:
            problems.append(f"{len(unexpected)} variable(s) of {source_name} have no place in the "
                            "model: " + _listing(unexpected))
        if mismatched:
            problems.append(f"{len(mismatched)} shape mismatch(es): " + _listing(
                [f"{p} {tuple(np.shape(src[p]))} in {source_name}, {tuple(dst[p].shape)} in the model"
                 for p in mismatched]))
        raise ValueError(f"{source_name} cannot be loaded into {target_name}: " + "; ".join(problems)
                         + ". Was it saved from another architecture or config (depth, width, "
                           "input size of a model that flattens its feature map)?")


def _copy_variables(source, target, keep: frozenset[str], source_name: str, target_name: str) -> dict:
    """``target`` with every variable outside ``keep`` replaced by ``source``'s (cast to
    the target's dtype), after `_check_fits`."""
    _check_fits(source, target, keep, source_name, target_name)
    src = _flatten(source)
    return _unflatten({p: (leaf if p in keep else jnp.asarray(src[p], dtype=leaf.dtype))
                       for p, leaf in _flatten(target).items()})


def replace_head(model, variables, num_classes: int, *, seed: int = 0, **overrides):
    """A copy of ``model`` with ``num_classes`` outputs and its variables: the output layer
    (`head_paths`) freshly initialised from ``seed``, every other variable (backbone
    params and batch-norm statistics) copied from ``variables``.

    ``model``: a registered name (built with ``overrides``, which must describe the model
    ``variables`` belong to, e.g. ``stage_sizes``) or a flax module (``overrides`` replace
    its fields). Returns ``(new_model, new_variables)``. Raises ValueError when
    ``variables`` do not fit the model outside its head.
    """
    from zoo.train.state import init_variables

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
    _check_fits(variables, target, head, "the given variables", f"{name} with {num_classes} classes")
    shape = _input_shape(new_model)

    def fresh_head(key):  # jit keeps only the head's initialisers: seconds less compiling
        flat = _flatten(init_variables(new_model, shape, key))
        return {p: flat[p] for p in head}

    new_head = jax.jit(fresh_head)(jax.random.PRNGKey(seed))
    src = _flatten(variables)
    return new_model, _unflatten({p: new_head[p] if p in head else jnp.asarray(src[p], dtype=leaf.dtype)
                                  for p, leaf in _flatten(target).items()})


def load_checkpoint_variables(path: str) -> dict:
    """The variables ``{"params": ..., "batch_stats": ...}`` (NumPy arrays) a training run
    saved: ``path`` is its work dir (latest epoch), the ``checkpoints`` folder in it, or
    one epoch's ``checkpoints/N``. Raises `zoo.train.CheckpointError` for a missing path,
    no checkpoint, or one that cannot be read (left untouched)."""
    from zoo.train.checkpoint import read_variables

    return read_variables(path)[0]


def init_from_checkpoint(model, variables, path: str, *, reset_head: bool = False) -> dict:
    """``variables`` (a fresh initialisation of ``model``) with every variable taken from
    the checkpoint at ``path`` (see `load_checkpoint_variables`), except the output layer
    when its class count differs from the checkpoint's or ``reset_head`` is set: that
    stays as initialised. Optimizer state and step are not carried over.

    Raises CheckpointError (missing or unreadable checkpoint) or ValueError (the
    checkpoint holds another architecture or config)."""
    from zoo.train.checkpoint import read_variables

    source, where = read_variables(path)
    head = head_paths(model)
    src, dst = _flatten(source), _flatten(variables)
    keep = head if reset_head else frozenset(
        p for p in head if p not in src or tuple(np.shape(src[p])) != tuple(dst[p].shape))
    return _copy_variables(source, variables, keep, f"the checkpoint {where}", type(model).__name__)


# --------------------------------------------------------------------------------------
# PyTorch state dicts (torchvision key names)
# --------------------------------------------------------------------------------------

# torchvision's VGG average-pools the last map to 7x7 before its classifier.
TORCHVISION_VGG_POOL = (7, 7)
# Old torchvision DenseNet checkpoints write "denselayer1.norm.1.weight" for
# "denselayer1.norm1.weight" (torchvision renames them with this pattern on load).
_LEGACY_DENSE_LAYER_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
_TORCH_LEAF_NAMES = {("params", "kernel"): "weight", ("params", "scale"): "weight",
                     ("params", "bias"): "bias", ("batch_stats", "mean"): "running_mean",
                     ("batch_stats", "var"): "running_var"}


class _Rule(NamedTuple):
    """Where one zoo variable comes from: ``torch_key`` of shape ``torch_shape``,
    turned into the zoo's layout by ``convert``. ``head``: part of the output layer."""

    torch_key: str
    torch_shape: tuple[int, ...]
    convert: Callable[[np.ndarray], np.ndarray]
    head: bool = False


def _identity(x):
    return x


def _conv_kernel(x):  # (O, I/groups, kh, kw) -> (kh, kw, I/groups, O); grouping is the same
    return x.transpose(2, 3, 1, 0)


def _dense_kernel(x):  # (out, in) -> (in, out)
    return x.T


def _layout_rule(torch_key: str, zoo_shape: tuple[int, ...], head: bool = False) -> _Rule:
    """The rule for a variable whose layout differs from torch's only by a transpose."""
    if len(zoo_shape) == 4:
        kh, kw, i, o = zoo_shape
        return _Rule(torch_key, (o, i, kh, kw), _conv_kernel, head)
    if len(zoo_shape) == 2:
        return _Rule(torch_key, zoo_shape[::-1], _dense_kernel, head)
    return _Rule(torch_key, tuple(zoo_shape), _identity, head)


def _torch_leaf(path: str) -> tuple[list[str], str]:
    """"params/layers_0_0/bn1/scale" -> (["layers_0_0", "bn1"], "weight")."""
    collection, *modules, leaf = path.split("/")
    try:
        return modules, _TORCH_LEAF_NAMES[(collection, leaf)]
    except KeyError:
        raise ValueError(f"variable {path} has no PyTorch counterpart") from None


def _resnet_rules(target: dict[str, Any]) -> dict[str, _Rule]:
    # layers_i_j is torchvision's layer{i+1}.{j}; the projection shortcut its downsample.0/1.
    renames = {"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}
    rules = {}
    for path, leaf in target.items():
        modules, name = _torch_leaf(path)
        stage = re.fullmatch(r"layers_(\d+)_(\d+)", modules[0])
        if stage:
            modules = [f"layer{int(stage[1]) + 1}.{stage[2]}", *modules[1:]]
        key = ".".join([renames.get(m, m) for m in modules] + [name])
        rules[path] = _layout_rule(key, leaf.shape, head=modules[0] == "fc")
    return rules


def _densenet_rules(target: dict[str, Any]) -> dict[str, _Rule]:
    # blocks_i_j is torchvision's features.denseblock{i+1}.denselayer{j+1}, transitions_i its
    # features.transition{i+1}; the final norm is always "norm5" there.
    rules = {}
    for path, leaf in target.items():
        modules, name = _torch_leaf(path)
        first = modules[0]
        block = re.fullmatch(r"blocks_(\d+)_(\d+)", first)
        transition = re.fullmatch(r"transitions_(\d+)", first)
        if block:
            first = f"features.denseblock{int(block[1]) + 1}.denselayer{int(block[2]) + 1}"
        elif transition:
            first = f"features.transition{int(transition[1]) + 1}"
        elif first == "norm_final":
            first = "features.norm5"
        elif first != "classifier":
            first = f"features.{first}"
        rules[path] = _layout_rule(".".join([first, *modules[1:], name]), leaf.shape,
                                   head=first == "classifier")
    return rules


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _sequential_modules(tensors: Mapping[str, Any], section: str, ndim: int) -> list[str]:
    """torch module prefixes ``section.N`` whose weight has ``ndim`` axes, in index order."""
    found = []
    for key, value in tensors.items():
        m = re.fullmatch(rf"{section}\.(\d+)\.weight", key)
        if m and len(value.shape) == ndim:
            found.append((int(m[1]), f"{section}.{m[1]}"))
    return [prefix for _, prefix in sorted(found)]


def _flattened_dense_rule(torch_key, zoo_shape, channels: int, torch_in: int | None,
                          last_map: tuple[int, int] | None) -> _Rule:
    """The first dense layer after a flatten: torch flattens (C, H, W), the zoo (H, W, C).

    zoo kernel (H*W*C, F) <- torch weight (F, C*H*W), rows permuted. With ``last_map``
    (h, w) and a torch weight of (F, C*7*7) (torchvision's VGG pools to 7x7 first), the
    adaptive average pool, being linear, is folded into the kernel: W_eff[i, j, c, f] =
    sum_ab W[f, c, a, b] P_h[a, i] P_w[b, j], so the zoo model computes exactly what
    torchvision computes at the zoo model's input size.
    """
    fan_in, features = zoo_shape
    positions = fan_in // channels  # h * w of the zoo's last map

    def permute(x):
        return x.reshape(features, channels, positions).transpose(2, 1, 0).reshape(fan_in, features)

    pool_h, pool_w = TORCHVISION_VGG_POOL
    if (last_map is not None and last_map != TORCHVISION_VGG_POOL
            and torch_in == channels * pool_h * pool_w):
        # The zoo's own AdaptiveAvgPool2d weights.
        from zoo.nn.pooling import _adaptive_matrix

        rows = _adaptive_matrix(last_map[0], pool_h).astype(np.float64)  # (7, h)
        cols = _adaptive_matrix(last_map[1], pool_w).astype(np.float64)  # (7, w)

        def fold(x):
            w = x.astype(np.float64).reshape(features, channels, pool_h, pool_w)
            return np.einsum("fcab,ai,bj->ijcf", w, rows, cols).reshape(fan_in, features)

        return _Rule(torch_key, (features, channels * pool_h * pool_w), fold)
    return _Rule(torch_key, (features, fan_in), permute)


def _sequential_rules(target: dict[str, Any], tensors: Mapping[str, Any],
                      last_map: tuple[int, int] | None) -> dict[str, _Rule]:
    """VGG and AlexNet: torch's ``features`` / ``classifier`` Sequentials, matched by order.

    The k-th zoo convolution (natural order of names: conv1_1, conv1_2, conv2_1 ...) takes
    the k-th module of ``features`` that has a 4-D weight, whatever its index (ReLU,
    pooling and LRN modules hold no parameters); the k-th dense layer the k-th
    ``classifier`` module with a 2-D weight. This covers torchvision's layouts and other
    Sequential ports (e.g. the paper's AlexNet with LRN modules).
    """
    def zoo_modules(ndim):
        names = {p.split("/")[1] for p, v in target.items()
                 if p.startswith("params/") and p.endswith("/kernel") and len(v.shape) == ndim}
        return sorted(names, key=_natural_key)

    convs, denses = zoo_modules(4), zoo_modules(2)
    torch_convs = _sequential_modules(tensors, "features", 4)
    torch_denses = _sequential_modules(tensors, "classifier", 2)
    prefixes = {}
    for kind, zoo_names, torch_names, section in (("conv", convs, torch_convs, "features"),
                                                  ("linear", denses, torch_denses, "classifier")):
        for k, name in enumerate(zoo_names):
            # Beyond the state dict's modules: a readable stand-in for the missing key.
            prefixes[name] = torch_names[k] if k < len(torch_names) else f"{section}.<{kind} {k + 1}>"
    channels = target[f"params/{convs[-1]}/kernel"].shape[-1]
    rules = {}
    for path, leaf in target.items():
        modules, name = _torch_leaf(path)
        key = f"{prefixes[modules[0]]}.{name}"
        if modules[0] == denses[0] and name == "weight":
            given = tensors.get(key)
            torch_in = int(given.shape[1]) if given is not None and len(given.shape) == 2 else None
            rules[path] = _flattened_dense_rule(key, leaf.shape, channels, torch_in, last_map)
        else:
            rules[path] = _layout_rule(key, leaf.shape, head=modules[0] == denses[-1])
    return rules


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch.Tensor; torch itself is never imported here
        value = value.detach().cpu()
        value = value.float() if value.is_floating_point() else value
        value = value.numpy()
    return np.asarray(value)


def _normalise_keys(state_dict: Mapping[str, Any], legacy_dense_layers: bool) -> dict[str, Any]:
    keys = list(state_dict)
    # nn.DataParallel / DistributedDataParallel save every key under "module.".
    strip = len("module.") if keys and all(k.startswith("module.") for k in keys) else 0
    out = {}
    for key, value in state_dict.items():
        key = key[strip:]
        if key.endswith("num_batches_tracked"):  # a BN step counter; the zoo has no such state
            continue
        if legacy_dense_layers:
            m = _LEGACY_DENSE_LAYER_KEY.match(key)
            key = m[1] + m[2] if m else key
        out[key] = value
    return out


def import_torch_state_dict(model, variables, state_dict: Mapping[str, Any]) -> dict:
    """The zoo variables of ``model`` filled from a PyTorch ``state_dict``.

    ``model``: a zoo ResNet (18/34/50/101/152 and the CIFAR layouts), VGG (A-E),
    AlexNet (paper, either grouping, or ``alexnet_torchvision``) or DenseNet module, or
    its registered name (its default config; pass the module for a VGG built for another
    input size, whose last map the import must know). ``variables``: ``model.init``'s output or its
    ``jax.eval_shape`` (only paths, shapes and dtypes are read). ``state_dict``: key ->
    ``torch.Tensor`` or NumPy array, with torchvision's names: ``conv1.weight``,
    ``bn1.running_mean``, ``layer2.0.downsample.0.weight``, ``fc.weight`` (ResNet);
    ``features.N.weight``, ``classifier.N.weight`` (VGG, AlexNet); ``features.conv0.weight``,
    ``features.denseblock1.denselayer1.norm1.weight``, ``features.transition1.conv.weight``,
    ``features.norm5.weight``, ``classifier.weight`` (DenseNet; the old ``norm.1`` names
    are accepted). A common ``module.`` prefix is dropped; ``num_batches_tracked`` is ignored.

    Layouts: conv weights (O, I/groups, kh, kw) -> kernels (kh, kw, I/groups, O); linear
    (out, in) -> (in, out); batch norm weight, bias, running_mean, running_var -> params
    scale, bias and batch_stats mean, var. Before VGG's and AlexNet's first dense layer
    torch flattens (C, H, W) and the zoo (H, W, C): that kernel's rows are permuted. A
    torchvision VGG classifier sized for its 7x7 adaptive pool is folded to the zoo
    model's own last map when the input is not 224x224 (see `_flattened_dense_rule`).

    Strict: every zoo variable is filled exactly once and every key is used. Returns new
    variables (jax arrays, the zoo's dtypes); raises ValueError listing the missing and
    unexpected keys and the shape mismatches (wrong architecture, wrong ``num_classes``).
    """
    from zoo.models.cnn.alexnet import AlexNet, AlexNetTorchvision
    from zoo.models.cnn.densenet import DenseNet
    from zoo.models.cnn.resnet import ResNet
    from zoo.models.cnn.vgg import VGG

    module = registry.create_model(model) if isinstance(model, str) else model
    target = _flatten(variables)
    tensors = _normalise_keys(state_dict, legacy_dense_layers=isinstance(module, DenseNet))
    if isinstance(module, ResNet):
        rules = _resnet_rules(target)
    elif isinstance(module, DenseNet):
        rules = _densenet_rules(target)
    elif isinstance(module, (VGG, AlexNet, AlexNetTorchvision)):
        # The zoo's VGG flattens its last map itself: (H/32, W/32) after five 2x2 pools.
        last_map = (tuple(int(d) // 32 for d in module.input_shape[:2]) if isinstance(module, VGG)
                    else None)
        rules = _sequential_rules(target, tensors, last_map)
    else:
        raise ValueError(f"import_torch_state_dict supports the zoo's ResNet, VGG, AlexNet and "
                         f"DenseNet, not {type(module).__name__}")

    name = type(module).__name__
    converted, missing, mismatched, head_mismatch = {}, [], [], None
    for path, leaf in target.items():
        rule = rules[path]
        given = tensors.get(rule.torch_key)
        if given is None:
            missing.append(rule.torch_key)
        elif tuple(given.shape) != rule.torch_shape:
            mismatched.append(f"{rule.torch_key} is {tuple(given.shape)}, the model needs {rule.torch_shape}")
            if rule.head and len(given.shape) == len(rule.torch_shape):
                head_mismatch = (int(given.shape[0]), rule.torch_shape[0])
        else:
            value = rule.convert(_to_numpy(given))
            assert value.shape == tuple(leaf.shape), (path, value.shape, leaf.shape)
            converted[path] = jnp.asarray(value, dtype=leaf.dtype)
    used = {rules[p].torch_key for p in target}
    unexpected = sorted((k for k in tensors if k not in used), key=_natural_key)
    if missing or unexpected or mismatched:
        problems = []
        missing, mismatched = sorted(missing, key=_natural_key), sorted(mismatched, key=_natural_key)
        if missing:
            problems.append(f"{len(missing)} missing key(s): {_listing(missing)}")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected key(s): {_listing(unexpected)}")
        if mismatched:
            problems.append(f"{len(mismatched)} shape mismatch(es): {_listing(mismatched)}")
        if head_mismatch and not missing and not unexpected and len(mismatched) <= 2:
            given_classes, model_classes = head_mismatch
            hint = (f"only the classifier differs ({given_classes} classes in the state dict, "
                    f"{model_classes} in the model): build the model with num_classes="
                    f"{given_classes}, import, then zoo.transfer.replace_head(model, variables, "
                    f"{model_classes})")
        else:
            hint = ("is the state dict from another architecture or config (e.g. resnet34 for "
                    "resnet18, vgg11_bn for vgg11, other widths or input size)?")
        raise ValueError(f"cannot import the state dict into {name}: " + "; ".join(problems)
                         + f". Hint: {hint}")
    return _unflatten(converted)
