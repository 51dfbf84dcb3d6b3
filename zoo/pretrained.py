"""Pretrained weights, saved and loaded the way the Hugging Face ecosystem does: a folder with
``model.safetensors`` (every variable under its flattened path, ``params/conv1/kernel``,
``batch_stats/bn1/mean``), ``config.json`` (the registered model name and its full config)
and a generated model card, ``README.md``.

    zoo.save_pretrained(result.variables, "lenet5", result.model, "out/lenet5-fmnist",
                        dataset="fashion_mnist", metrics=result.test_metrics, command="python train.py ...")
    model, variables = zoo.create_model("lenet5", pretrained="out/lenet5-fmnist")     # a folder
    model, variables = zoo.create_model("lenet5", pretrained="fashion_mnist")         # shipped with zoo
    model, variables = zoo.create_model("lenet5", pretrained="user/lenet5-fmnist")    # Hugging Face Hub
    model, variables = zoo.create_model("resnet18", pretrained="torchvision:resnet18")  # torch hub cache

Hub ids go through ``huggingface_hub.hf_hub_download`` (its cache, ``HF_HUB_OFFLINE`` and
``HF_HUB_CACHE`` honoured). ``torchvision:NAME`` reads torchvision's own download of weights
NAME from torch hub's cache (``$TORCH_HOME/hub/checkpoints/NAME-<hash>.pth``, where
``torchvision.models.NAME(weights=...)`` puts it); ``torchvision:PATH`` reads a ``.pth`` /
``.safetensors`` file, both through `zoo.interop.import_torch_state_dict`.
"""

from __future__ import annotations

import glob
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax.core import unfreeze
from flax.traverse_util import flatten_dict, unflatten_dict

from zoo import registry
from zoo._choices import listing, natural_key

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
# Weights shipped inside the package: one folder per run, named MODEL-DATASET.
SHIPPED_DIR = Path(__file__).parent / "weights"
TORCHVISION_PREFIX = "torchvision:"
# "user/repo", optionally "@revision" (a branch, tag or commit).
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(?:@[\w./-]+)?$")
# A free axis (sequence length None) takes this length when the model's variables are
# shaped; parameter shapes do not depend on it.
_FREE_LENGTH = 8
_MODULE_FIELDS = ("parent", "name")

__all__ = ["check_fits", "load_pretrained", "save_pretrained", "shipped_weights"]


# --- Checking variables against a model


def _flatten(tree) -> dict[str, Any]:
    """Nested dict of arrays -> {"params/conv1/kernel": leaf}."""
    return flatten_dict(unfreeze(dict(tree)), sep="/")


def _params_first(path: str):
    return (not path.startswith("params/"), natural_key(path))


def check_fits(source, target, keep: frozenset[str], source_name: str, target_name: str) -> None:
    """ValueError unless ``source`` and ``target`` (arrays or shapes) hold the same variables
    with the same shapes outside ``keep``."""
    src, dst = _flatten(source), _flatten(target)
    missing = sorted((p for p in dst if p not in keep and p not in src), key=_params_first)
    unexpected = sorted((p for p in src if p not in keep and p not in dst), key=_params_first)
    mismatched = sorted(
        (p for p in dst if p not in keep and p in src and tuple(np.shape(src[p])) != tuple(dst[p].shape)),
        key=_params_first,
    )
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} variable(s) the model needs are not in {source_name}: " + listing(missing))
        if unexpected:
            problems.append(
                f"{len(unexpected)} variable(s) of {source_name} have no place in the model: " + listing(unexpected)
            )
        if mismatched:
            problems.append(
                f"{len(mismatched)} shape mismatch(es): "
                + listing(
                    [
                        f"{p} {tuple(np.shape(src[p]))} in {source_name}, {tuple(dst[p].shape)} in the model"
                        for p in mismatched
                    ]
                )
            )
        raise ValueError(
            f"{source_name} cannot be loaded into {target_name}: "
            + "; ".join(problems)
            + ". Was it saved from another architecture or config (depth, width, "
            "input size of a model that flattens its feature map)?"
        )


# --- Saving


def _json_value(key: str, value):
    """A config value as JSON (tuples as lists); ValueError for what JSON cannot hold."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_json_value(key, v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    raise ValueError(f"config value {key}={value!r} cannot be written to {CONFIG_FILE} (not a JSON value)")


def _full_config(name: str, config) -> dict[str, Any]:
    """The model's whole config: a module's fields, or the registered defaults updated by a
    mapping of overrides (checked by `zoo.create_model`)."""
    spec = registry.get_spec(name)
    if config is None or isinstance(config, Mapping):
        module = registry.create_model(name, **dict(config or {}))
    elif isinstance(config, spec.module):
        module = config
    else:
        raise ValueError(
            f"config for model {name!r} must be a mapping of config overrides or a {spec.module.__name__} "
            f"module, got {type(config).__name__}"
        )
    return {key: _json_value(key, getattr(module, key)) for key in spec.config}


def _flat_arrays(variables) -> dict[str, np.ndarray]:
    flat = _flatten(variables)
    if not flat:
        raise ValueError("no variables to save")
    return {path: np.ascontiguousarray(jax.device_get(leaf)) for path, leaf in flat.items()}


def _write_atomically(path: Path, write) -> None:
    """``write(tmp_path)``, then rename over ``path``: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's file is private; weights are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_pretrained(
    variables,
    name: str,
    config,
    directory: str | os.PathLike,
    *,
    dataset: str | None = None,
    metrics: Mapping[str, float] | None = None,
    command: str | None = None,
    notes: str | None = None,
) -> Path:
    """Write ``variables`` of registered model ``name`` to ``directory`` (created) as
    ``model.safetensors`` + ``config.json`` + a model card ``README.md``; returns the folder.

    ``config``: the model's module (e.g. ``zoo.fit(...).model``) or a mapping of config
    overrides (``None``: the registered defaults); the full config is saved, so loading does
    not depend on later changes of a default. ``dataset``, ``metrics`` (test metrics),
    ``command`` (how the weights were trained) and ``notes`` go to config.json and the card.
    The folder can be uploaded to the Hugging Face Hub as it is
    (``huggingface_hub.upload_folder``).
    """
    full = _full_config(name, config)
    arrays = _flat_arrays(variables)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    saved = {
        "model": name,
        "config": full,
        "dataset": dataset,
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "command": command,
        "notes": notes,
        "parameters": int(sum(a.size for p, a in arrays.items() if p.startswith("params/"))),
        "format": "zoo.save_pretrained 1",
    }
    from safetensors.numpy import save_file

    _write_atomically(directory / WEIGHTS_FILE, lambda p: save_file(arrays, p, metadata={"model": name}))
    _write_atomically(
        directory / CONFIG_FILE, lambda p: Path(p).write_text(json.dumps(saved, indent=2, sort_keys=False) + "\n")
    )
    _write_atomically(directory / CARD_FILE, lambda p: Path(p).write_text(model_card(saved)))
    return directory


def model_card(saved: Mapping[str, Any]) -> str:
    """The model card (README.md) of a saved model: Hugging Face's YAML header, then the
    paper, parameter count, how to load it, test metrics, the training command and the config."""
    name, dataset = saved["model"], saved.get("dataset")
    info = registry.model_info(name)
    title = f"{name} trained on {dataset}" if dataset else name
    header = ["---", "library_name: zoo", "tags:", "- jax", "- flax", f"- {info['family']}", f"- {info['task']}"]
    if dataset:
        header += ["datasets:", f"- {dataset}"]
    header.append("---")
    summary = (info["description"] or "").strip().split("\n\n")[0].replace("\n", " ")
    config = saved["config"]
    shape = tuple(config.get("input_shape") or info["input_shape"])
    lines = [
        *header,
        "",
        f"# {title}",
        "",
        summary,
        "",
        f"- Paper: {info['paper']}",
        f"- Family: {info['family']}; task: {info['task']}",
        f"- Parameters: {saved['parameters']:,}",
        f"- Input: a batch of {shape} {info['input_dtype']} examples (batch axis first)",
        "",
        "## Use",
        "",
        "```python",
        "import zoo",
        "",
        f'model, variables = zoo.create_model("{name}", pretrained="PATH_OR_HUB_ID")',
        "outputs = model.apply(variables, x)",
        "```",
        "",
    ]
    if saved.get("metrics"):
        lines += ["## Test metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" for k, v in saved["metrics"].items()]
        lines.append("")
    if saved.get("command"):
        lines += ["## Training", "", "```bash", saved["command"], "```", ""]
    if saved.get("notes"):
        lines += [saved["notes"], ""]
    lines += ["## Config", "", "| key | value |", "|---|---|"]
    lines += [f"| `{k}` | `{json.dumps(v)}` |" for k, v in config.items()]
    return "\n".join(lines) + "\n"


# --- Finding the files


def shipped_weights(name: str | None = None) -> dict[str, Path]:
    """The weights shipped with zoo, ``{"MODEL-DATASET": folder}`` (for model ``name`` only:
    ``{"DATASET": folder}``)."""
    found = {}
    for folder in sorted(SHIPPED_DIR.glob("*/")):
        model, _, dataset = folder.name.partition("-")
        if (folder / CONFIG_FILE).is_file() and (name is None or model == name):
            found[dataset if name is not None else folder.name] = folder
    return found


def _hub_folder(repo: str) -> Path:
    """The local folder of a Hub repo's files, from huggingface_hub's cache or downloaded into it."""
    try:
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError
    except ImportError:
        raise ValueError(
            f"pretrained={repo!r} is a Hugging Face Hub id, which needs huggingface_hub (pip install huggingface_hub)"
        ) from None
    repo_id, _, revision = repo.partition("@")
    try:
        paths = [hf_hub_download(repo_id, f, revision=revision or None) for f in (CONFIG_FILE, WEIGHTS_FILE)]
    except (EntryNotFoundError, OSError, ValueError) as e:
        where = (
            f" (HF_HUB_OFFLINE is set: only the cache {constants.HF_HUB_CACHE} was read)"
            if constants.HF_HUB_OFFLINE
            else ""
        )
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(
            f"pretrained={repo!r} is neither a local folder nor a weights name shipped with zoo, and the "
            f"Hugging Face Hub gave no {CONFIG_FILE} + {WEIGHTS_FILE} for it{where}: {type(e).__name__}: {first}"
        ) from None
    return Path(paths[0]).parent


def _folder(source: str, name: str | None) -> Path:
    """The folder holding ``source``'s files: a path, a shipped name, or a Hub id."""
    if os.path.isdir(source):
        return Path(source)
    if name is not None and source in shipped_weights(name):
        return shipped_weights(name)[source]
    if _HUB_ID.match(source):
        return _hub_folder(source)
    shipped = list(shipped_weights(name)) if name is not None else list(shipped_weights())
    raise ValueError(
        f"pretrained={source!r} is not a folder, a Hugging Face Hub id (user/repo) or weights shipped with zoo "
        f"(for {name or 'any model'}: {listing(shipped) or 'none'}); "
        f"PyTorch weights are given as {TORCHVISION_PREFIX}NAME_OR_PATH"
    )


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ValueError(f"{folder} has no {CONFIG_FILE} (expected a folder written by zoo.save_pretrained)")
    try:
        saved = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    if not (isinstance(saved, dict) and isinstance(saved.get("model"), str) and isinstance(saved.get("config"), dict)):
        raise ValueError(f"{path} does not name a model and its config (expected zoo.save_pretrained's config.json)")
    return saved


def _read_weights(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"{path.parent} has no {WEIGHTS_FILE} (expected a folder written by zoo.save_pretrained)")
    from safetensors.numpy import load_file

    try:
        flat = load_file(path)
    except Exception as e:  # the Rust reader raises its own types for a damaged file
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"{path} cannot be read as safetensors weights ({type(e).__name__}: {first})") from None
    return unflatten_dict(flat, sep="/")


def _tuples(value):
    """JSON lists back to the tuples every zoo config holds."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


# --- Loading


def without(variables, paths) -> dict:
    """``variables`` less those at ``paths`` (``"params/fc/kernel"``, ...): e.g. an output
    layer to initialise afresh."""
    return unflatten_dict({p: v for p, v in _flatten(variables).items() if p not in set(paths)}, sep="/")


def abstract_variables(name: str, model) -> dict:
    """The shapes and dtypes of the variables of ``model`` (registered as ``name``):
    ``jax.eval_shape`` of its init, no arrays allocated; a free axis of its input shape takes
    a short length."""
    shape = tuple(_FREE_LENGTH if d is None else d for d in model.input_shape)
    x = jax.ShapeDtypeStruct((2, *shape), jnp.dtype(registry.get_spec(name).input_dtype))
    names = ("params", "dropout", "sample", "noise")

    def init(key, x):
        return model.init(dict(zip(names, jax.random.split(key, len(names)))), x)

    return jax.eval_shape(init, jax.random.PRNGKey(0), x)


def _fill(name: str, model, weights, source_name: str) -> dict:
    """``weights`` checked against the model's own variables (keys and shapes) and cast to
    their dtypes."""
    target = abstract_variables(name, model)
    check_fits(weights, target, frozenset(), source_name, f"model {name!r}")
    given = _flatten(weights)
    return unflatten_dict({p: jnp.asarray(given[p], dtype=leaf.dtype) for p, leaf in _flatten(target).items()}, sep="/")


def _torchvision_file(what: str) -> str:
    """A PyTorch weights file: ``what`` itself when it is a path, else torchvision's download
    of weights ``what`` in torch hub's cache."""
    if os.sep in what or what.endswith((".pt", ".pth", ".safetensors")):
        return what
    try:
        import torch.hub
    except ImportError:
        raise ValueError(f"{TORCHVISION_PREFIX}{what} needs torch (pip install torch) to read the weights") from None
    cache = os.path.join(torch.hub.get_dir(), "checkpoints")
    found = sorted(glob.glob(os.path.join(cache, glob.escape(what) + "-*.pth")))
    if not found:
        raise ValueError(
            f"{TORCHVISION_PREFIX}{what}: no {what}-*.pth in torch hub's cache {cache}; download it once with "
            f"torchvision (torchvision.models.{what}(weights='DEFAULT')) or give the file: "
            f"{TORCHVISION_PREFIX}/path/to/{what}.pth"
        )
    return found[-1]


def load_pretrained(source: str | os.PathLike, name: str | None = None, **overrides):
    """``(model, variables)`` from ``source``: a folder written by `save_pretrained`, the
    dataset name of weights shipped with zoo (``"fashion_mnist"`` for ``lenet5``), a Hugging
    Face Hub id ``user/repo[@revision]``, or ``torchvision:NAME_OR_PATH`` (PyTorch weights
    with torchvision's key names; needs ``name``).

    The model is built from the saved config with ``overrides`` on top (e.g. a dropout rate;
    an override that changes a shape fails the shape check). ``name``, when given, must be
    the saved model's. ValueError for a missing or damaged file, another model's weights, or
    variables whose keys or shapes differ from the model's own.
    """
    source = os.fspath(source)
    if source.startswith(TORCHVISION_PREFIX):
        if name is None:
            raise ValueError(f"pretrained={source!r} needs the zoo model's name, e.g. create_model('resnet18', ...)")
        from zoo.interop.torch import import_torch_state_dict, load_torch_state_dict

        path = _torchvision_file(source[len(TORCHVISION_PREFIX) :])
        model = registry.create_model(name, **overrides)
        return model, import_torch_state_dict(model, abstract_variables(name, model), load_torch_state_dict(path))
    folder = _folder(source, name)
    saved = _read_config(folder)
    if name is not None and saved["model"] != name:
        raise ValueError(
            f"{folder / CONFIG_FILE} holds weights of model {saved['model']!r}, not {name!r}: "
            f"create_model({saved['model']!r}, pretrained=...) loads them"
        )
    config = {k: _tuples(v) for k, v in saved["config"].items()}
    model = registry.create_model(saved["model"], **{**config, **overrides})
    weights = _read_weights(folder / WEIGHTS_FILE)
    return model, _fill(saved["model"], model, weights, f"the weights in {folder / WEIGHTS_FILE}")


def saved_config(source: str | os.PathLike, name: str | None = None) -> dict[str, Any]:
    """The config.json of pretrained weights ``source`` (as `load_pretrained` finds them):
    model, config, dataset, test metrics, training command."""
    return _read_config(_folder(os.fspath(source), name))
