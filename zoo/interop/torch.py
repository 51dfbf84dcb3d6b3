"""PyTorch weights into zoo models: state dicts with torchvision's key names into the
variables of a zoo ResNet, VGG, AlexNet (both variants) or DenseNet, checked strictly.

    state_dict = load_torch_state_dict("resnet18.pth")  # or a .safetensors file
    variables = import_torch_state_dict(model, variables, state_dict)
    # a new head for another class count: zoo.train.finetune.replace_head

torch is imported only to read a weights file (`load_torch_state_dict`); the import
itself takes tensors or NumPy arrays.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from flax.core import unfreeze
from flax.traverse_util import flatten_dict, unflatten_dict

from zoo import registry
from zoo._choices import listing, natural_key
from zoo.models.cnn.alexnet import AlexNet, AlexNetTorchvision
from zoo.models.cnn.densenet import DenseNet
from zoo.models.cnn.resnet import ResNet
from zoo.models.cnn.vgg import VGG
from zoo.nn.pooling import _adaptive_matrix

# torchvision's VGG average-pools the last map to 7x7 before its classifier.
TORCHVISION_VGG_POOL = (7, 7)
# Old torchvision DenseNet checkpoints write "denselayer1.norm.1.weight" for
# "denselayer1.norm1.weight" (torchvision renames them with this pattern on load).
_LEGACY_DENSE_LAYER_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)
_TORCH_LEAF_NAMES = {
    ("params", "kernel"): "weight",
    ("params", "scale"): "weight",
    ("params", "bias"): "bias",
    ("batch_stats", "mean"): "running_mean",
    ("batch_stats", "var"): "running_var",
}


def _flatten(tree) -> dict[str, Any]:
    """Nested dict of arrays -> {"params/conv1/kernel": leaf}."""
    return flatten_dict(unfreeze(tree), sep="/")


def _unflatten(flat: Mapping[str, Any]) -> dict:
    return unflatten_dict(dict(flat), sep="/")


class _Rule(NamedTuple):
    """Where one zoo variable comes from: ``torch_key`` of shape ``torch_shape``,
    turned into the zoo's layout by ``convert``. ``head``: part of the output layer."""

    torch_key: str
    torch_shape: tuple[int, ...]
    convert: Callable[[np.ndarray], np.ndarray]
    head: bool = False


def _layout_rule(torch_key: str, zoo_shape: tuple[int, ...], head: bool = False) -> _Rule:
    """The rule for a variable whose layout differs from torch's only by a transpose."""
    if len(zoo_shape) == 4:
        kh, kw, i, o = zoo_shape
        # (O, I/groups, kh, kw) -> (kh, kw, I/groups, O); grouping is the same
        return _Rule(torch_key, (o, i, kh, kw), lambda x: x.transpose(2, 3, 1, 0), head)
    if len(zoo_shape) == 2:
        return _Rule(torch_key, zoo_shape[::-1], lambda x: x.T, head)
    return _Rule(torch_key, tuple(zoo_shape), lambda x: x, head)


def _torch_leaf(path: str) -> tuple[list[str], str]:
    """ "params/layers_0_0/bn1/scale" -> (["layers_0_0", "bn1"], "weight")."""
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
        rules[path] = _layout_rule(".".join([first, *modules[1:], name]), leaf.shape, head=first == "classifier")
    return rules


def _sequential_modules(tensors: Mapping[str, Any], section: str, ndim: int) -> list[str]:
    """torch module prefixes ``section.N`` whose weight has ``ndim`` axes, in index order."""
    found = []
    for key, value in tensors.items():
        m = re.fullmatch(rf"{section}\.(\d+)\.weight", key)
        if m and len(value.shape) == ndim:
            found.append((int(m[1]), f"{section}.{m[1]}"))
    return [prefix for _, prefix in sorted(found)]


def _flattened_dense_rule(
    torch_key, zoo_shape, channels: int, torch_in: int | None, last_map: tuple[int, int] | None
) -> _Rule:
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
    if last_map is not None and last_map != TORCHVISION_VGG_POOL and torch_in == channels * pool_h * pool_w:
        # The zoo's own AdaptiveAvgPool2d weights.
        rows = _adaptive_matrix(last_map[0], pool_h).astype(np.float64)  # (7, h)
        cols = _adaptive_matrix(last_map[1], pool_w).astype(np.float64)  # (7, w)

        def fold(x):
            w = x.astype(np.float64).reshape(features, channels, pool_h, pool_w)
            return np.einsum("fcab,ai,bj->ijcf", w, rows, cols).reshape(fan_in, features)

        return _Rule(torch_key, (features, channels * pool_h * pool_w), fold)
    return _Rule(torch_key, (features, fan_in), permute)


def _sequential_rules(
    target: dict[str, Any], tensors: Mapping[str, Any], last_map: tuple[int, int] | None
) -> dict[str, _Rule]:
    """VGG and AlexNet: torch's ``features`` / ``classifier`` Sequentials, matched by order.

    The k-th zoo convolution (natural order of names: conv1_1, conv1_2, conv2_1 ...) takes
    the k-th module of ``features`` that has a 4-D weight, whatever its index (ReLU,
    pooling and LRN modules hold no parameters); the k-th dense layer the k-th
    ``classifier`` module with a 2-D weight. This covers torchvision's layouts and other
    Sequential ports (e.g. the paper's AlexNet with LRN modules).
    """

    def zoo_modules(ndim):
        names = {
            p.split("/")[1]
            for p, v in target.items()
            if p.startswith("params/") and p.endswith("/kernel") and len(v.shape) == ndim
        }
        return sorted(names, key=natural_key)

    convs, denses = zoo_modules(4), zoo_modules(2)
    torch_convs = _sequential_modules(tensors, "features", 4)
    torch_denses = _sequential_modules(tensors, "classifier", 2)
    prefixes = {}
    for kind, zoo_names, torch_names, section in (
        ("conv", convs, torch_convs, "features"),
        ("linear", denses, torch_denses, "classifier"),
    ):
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
    if hasattr(value, "detach"):  # a torch.Tensor, read without importing torch
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
    """The zoo variables of ``model`` filled from a PyTorch ``state_dict``, strictly.

    ``model``: a zoo ResNet, VGG, AlexNet or DenseNet module, or its registered name (its
    default config). ``variables``: ``model.init``'s output or its ``jax.eval_shape``.
    ``state_dict``: torchvision's key names -> tensors or arrays (a ``module.`` prefix,
    ``num_batches_tracked`` and DenseNet's old ``norm.1`` names are handled). Kernels are
    transposed to HWIO / (in, out); the first dense layer after a flatten has its rows
    permuted from (C, H, W), with torchvision VGG's 7x7 adaptive pool folded in
    (`_flattened_dense_rule`). Every variable is filled exactly once and every key used,
    else ValueError listing missing, unexpected and mismatched keys.
    """
    module = registry.create_model(model) if isinstance(model, str) else model
    target = _flatten(variables)
    tensors = _normalise_keys(state_dict, legacy_dense_layers=isinstance(module, DenseNet))
    if isinstance(module, ResNet):
        rules = _resnet_rules(target)
    elif isinstance(module, DenseNet):
        rules = _densenet_rules(target)
    elif isinstance(module, (VGG, AlexNet, AlexNetTorchvision)):
        # The zoo's VGG flattens its last map itself: (H/32, W/32) after five 2x2 pools.
        last_map = tuple(int(d) // 32 for d in module.input_shape[:2]) if isinstance(module, VGG) else None
        rules = _sequential_rules(target, tensors, last_map)
    else:
        raise ValueError(
            f"import_torch_state_dict supports the zoo's ResNet, VGG, AlexNet and DenseNet, not {type(module).__name__}"
        )

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
    unexpected = sorted((k for k in tensors if k not in used), key=natural_key)
    if missing or unexpected or mismatched:
        problems = []
        missing, mismatched = sorted(missing, key=natural_key), sorted(mismatched, key=natural_key)
        if missing:
            problems.append(f"{len(missing)} missing key(s): {listing(missing)}")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected key(s): {listing(unexpected)}")
        if mismatched:
            problems.append(f"{len(mismatched)} shape mismatch(es): {listing(mismatched)}")
        if head_mismatch and not missing and not unexpected and len(mismatched) <= 2:
            given_classes, model_classes = head_mismatch
            hint = (
                f"only the classifier differs ({given_classes} classes in the state dict, "
                f"{model_classes} in the model): build the model with num_classes="
                f"{given_classes}, import, then zoo.train.finetune.replace_head(model, variables, "
                f"{model_classes})"
            )
        else:
            hint = (
                "is the state dict from another architecture or config (e.g. resnet34 for "
                "resnet18, vgg11_bn for vgg11, other widths or input size)?"
            )
        raise ValueError(f"cannot import the state dict into {name}: " + "; ".join(problems) + f". Hint: {hint}")
    return _unflatten(converted)


# --- Weights files

TORCH_SUFFIXES = (".pt", ".pth")
SAFETENSORS_SUFFIX = ".safetensors"


def load_torch_state_dict(path: str | os.PathLike) -> dict[str, Any]:
    """The state dict (key -> CPU ``torch.Tensor``) of a ``.pt`` / ``.pth`` file (loaded with
    ``weights_only=True``; a ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is
    unwrapped) or a ``.safetensors`` file. FileNotFoundError, or one-line ValueError."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (*TORCH_SUFFIXES, SAFETENSORS_SUFFIX):
        raise ValueError(
            f"{path}: unknown weights format {suffix!r}; expected a PyTorch file "
            f"({', '.join(TORCH_SUFFIXES)}) or {SAFETENSORS_SUFFIX}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist (expected a PyTorch weights file)")
    try:
        import torch

        if suffix == SAFETENSORS_SUFFIX:
            from safetensors.torch import load_file
    except ImportError as e:
        raise ValueError(
            f"{path}: reading PyTorch weights needs torch and safetensors (pip install torch==2.13.0 safetensors): {e}"
        ) from None
    try:
        loaded = (
            load_file(path, device="cpu")
            if suffix == SAFETENSORS_SUFFIX
            else torch.load(path, map_location="cpu", weights_only=True)
        )
    except Exception as e:  # torch and safetensors raise many types for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"{path} cannot be read as {suffix} weights ({type(e).__name__}: {first})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(wrapper), Mapping):
            loaded = loaded[wrapper]
    if not (
        isinstance(loaded, Mapping)
        and loaded
        and all(isinstance(k, str) and hasattr(v, "shape") for k, v in loaded.items())
    ):
        raise ValueError(f"{path} holds no state dict (a mapping of names to tensors), but {type(loaded).__name__}")
    return dict(loaded)
