"""Export a model with its weights: a serialized StableHLO artefact (``jax.export``) that runs
without zoo's code, and ONNX through jax2onnx where it converts the model.

    zoo.export(model, variables, x[:1], "lenet5.jax")        # the batch axis stays symbolic
    # anywhere with jax (no zoo): what `load_exported` does
    exported = jax.export.deserialize(bytearray(open("lenet5.jax", "rb").read()))
    logits = exported.call(x)                                 # any batch size
    zoo.exporting.export_onnx(model, variables, x[:1], "lenet5.onnx")

    python -m zoo.exporting --model lenet5 --pretrained fashion_mnist --out lenet5.jax [--onnx lenet5.onnx]

The weights are constants inside the artefact, so one file is the whole inference program
(eval mode: batch norm uses its running statistics, dropout is off).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

from zoo import native
from zoo.nn import inputs

__all__ = ["export", "export_onnx", "load_exported"]

# The symbolic batch axis's name, in the artefact and in the ONNX graph's input.
BATCH = "batch"


def _inference_fn(model, variables):
    """``x -> model.apply(variables, x)`` in eval mode (``train=False`` where the model has it)."""
    import inspect

    takes_train = "train" in inspect.signature(type(model).__call__).parameters
    kwargs = {"train": False} if takes_train else {}

    def run(x):
        with native.disabled():  # a program that leaves the process holds XLA's own operations only
            return model.apply(variables, x, **kwargs)

    return run


def _abstract_input(example_input, symbolic_batch: bool):
    """The abstract input of ``example_input`` (an array, or a tuple of parts sharing the
    batch axis): a symbolic batch (one for every part) unless ``symbolic_batch=False``."""
    (batch,) = jax.export.symbolic_shape(BATCH) if symbolic_batch else (None,)

    def abstract(x):
        x = jnp.asarray(x) if not hasattr(x, "shape") else x
        if x.ndim < 1:
            raise ValueError(f"example_input must have a batch axis first, got shape {tuple(x.shape)}")
        return jax.ShapeDtypeStruct((x.shape[0] if batch is None else batch, *x.shape[1:]), x.dtype)

    return inputs.map_parts(abstract, example_input)


def export(
    model,
    variables,
    example_input,
    path: str | os.PathLike,
    *,
    symbolic_batch: bool = True,
    platforms: tuple[str, ...] | None = None,
) -> Path:
    """Write ``model`` with ``variables`` as a serialized ``jax.export.Exported`` to ``path``.

    ``example_input``: an array (or ``jax.ShapeDtypeStruct``) ``(B, *input_shape)``, or a
    tuple of them for a multi-part input (`zoo.nn.inputs`); only shapes past the batch axis
    and dtypes matter: the batch axis is symbolic unless
    ``symbolic_batch=False``. ``platforms``: where the artefact may run (default: this
    machine's backend; e.g. ``("cpu", "cuda", "tpu")`` for all three). Reload with
    `load_exported` or ``jax.export.deserialize``; the call takes ``(B, *input_shape)`` and
    returns what ``model.apply`` returns. With a symbolic batch a model's convolutions are
    XLA's own (``conv_impl="xla"``, the same numbers). ValueError when the model cannot be
    traced with a symbolic batch (a shape computed from the batch size in Python).
    """
    if symbolic_batch and isinstance(getattr(model, "conv_impl", None), str):
        # XLA's own convolution (the same variables and numbers): the CPU matmul forms pick
        # their batch chunking from the batch size, which a symbolic batch does not have.
        model = model.clone(conv_impl="xla")
    fn = jax.jit(_inference_fn(model, variables))
    spec = _abstract_input(example_input, symbolic_batch)
    try:
        exported = jax.export.export(fn, platforms=platforms)(spec)
    except Exception as e:  # shape polymorphism errors come in several types
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(
            f"{type(model).__name__} cannot be exported for input {spec.shape} ({type(e).__name__}: {first})"
            + ("; try symbolic_batch=False" if symbolic_batch else "")
        ) from None
    path = Path(path)
    path.write_bytes(exported.serialize())
    return path


def load_exported(path: str | os.PathLike):
    """The ``jax.export.Exported`` in ``path`` (`export`'s file); call it with ``.call(x)``.
    Needs jax only: this is all a user without zoo writes."""
    return jax.export.deserialize(bytearray(Path(path).read_bytes()))


# jax2onnx plugins left out: its Equinox plugins build and compile dozens of Equinox modules
# when imported (about 25 s on 2 CPU cores), and no zoo model needs them, nor its examples.
_LEFT_OUT_ONNX_PLUGINS = ("equinox/", "examples/")


def _import_onnx_plugins() -> None:
    """Import jax2onnx's plugins except `_LEFT_OUT_ONNX_PLUGINS`, and mark them imported.

    jax2onnx imports every plugin module at its first conversion (``import_all_plugins``);
    this does it first, with one flag of its plugin system (0.17). When the flag is not
    there, jax2onnx imports all its plugins itself, as usual."""
    import importlib

    from jax2onnx.plugins import plugin_system

    if getattr(plugin_system, "_already_imported_plugins", True):
        return
    root = Path(plugin_system.__file__).parent
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if path.name == "__init__.py" or relative.startswith(_LEFT_OUT_ONNX_PLUGINS) or "test" in path.name:
            continue
        importlib.import_module("jax2onnx.plugins." + relative[: -len(".py")].replace("/", "."))
    plugin_system._already_imported_plugins = True


def export_onnx(model, variables, example_input, path: str | os.PathLike, *, opset: int = 21) -> Path:
    """Write ``model`` with ``variables`` as an ONNX graph (jax2onnx; ``pip install -e ".[onnx]"``)
    with a dynamic batch axis. ValueError when jax2onnx is missing or cannot convert an
    operation of the model (see the README for the families it converts)."""
    if isinstance(example_input, tuple):
        raise ValueError("ONNX export takes one input array; a multi-part input exports with zoo.export (StableHLO)")
    try:
        from jax2onnx import to_onnx
    except ImportError:
        raise ValueError('ONNX export needs jax2onnx and onnx (pip install -e ".[onnx]")') from None
    _import_onnx_plugins()
    x = jnp.asarray(example_input) if not hasattr(example_input, "shape") else example_input
    path = Path(path)
    # onnx_ir warns once per shape constant it leaves untyped: noise for a graph that runs.
    serde_log = logging.getLogger("onnx_ir.serde")
    level = serde_log.level
    serde_log.setLevel(logging.ERROR)
    # The model's own implementations first (on CPU its max pools convert only that way);
    # then XLA's convolutions, for a CPU matmul form that chunks by the batch size.
    candidates = [model]
    if isinstance(getattr(model, "conv_impl", None), str) and model.conv_impl != "xla":
        candidates.append(model.clone(conv_impl="xla"))
    errors = []
    try:
        for candidate in candidates:
            try:
                to_onnx(
                    _inference_fn(candidate, variables),
                    [_abstract_input(x, symbolic_batch=True)],
                    model_name=type(model).__name__,
                    opset=opset,
                    return_mode="file",
                    output_path=str(path),
                )
                return path
            except Exception as e:  # noqa: BLE001 - jax2onnx raises many types for an unsupported primitive
                errors.append(e)
    finally:
        serde_log.setLevel(level)
    first = str(errors[0]).strip().splitlines()[0] if str(errors[0]).strip() else ""
    raise ValueError(f"jax2onnx cannot convert {type(model).__name__} ({type(errors[0]).__name__}: {first})")


def main(argv: list[str] | None = None) -> int:
    import zoo

    p = argparse.ArgumentParser(description="Export a zoo model with its weights (StableHLO; ONNX optionally).")
    p.add_argument("--model", required=True, help="registered model name")
    p.add_argument(
        "--pretrained",
        required=True,
        help="weights: a save_pretrained folder, a shipped dataset name, user/repo or torchvision:NAME_OR_PATH",
    )
    p.add_argument("--out", required=True, help="the StableHLO artefact to write (e.g. lenet5.jax)")
    p.add_argument("--onnx", default=None, help="also write an ONNX graph here (needs jax2onnx)")
    p.add_argument("--platforms", default=None, help="comma-separated, e.g. cpu,cuda,tpu (default: this machine's)")
    args = p.parse_args(argv)
    try:
        model, variables = zoo.create_model(args.model, pretrained=args.pretrained)
        spec = zoo.registry.get_spec(args.model)
        shapes = model.input_shape if inputs.is_multipart(model.input_shape) else (model.input_shape,)
        if any(d is None for shape in shapes for d in shape):
            raise ValueError(f"{args.model} has a free input axis {model.input_shape}: export it from Python")
        x = inputs.zeros(1, model.input_shape, spec.input_dtype)  # only its shapes and dtypes matter
        platforms = tuple(args.platforms.split(",")) if args.platforms else None
        print(export(model, variables, x, args.out, platforms=platforms))
        if args.onnx:
            print(export_onnx(model, variables, x, args.onnx))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
