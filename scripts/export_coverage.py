"""Which registered models export: StableHLO with a symbolic batch (jax.export) and ONNX
(jax2onnx, run by onnxruntime), each checked against model.apply at two batch sizes.

python scripts/export_coverage.py > export_coverage.md   # the README's export table

Every model at its registry test_config (tiny), random weights, eval mode, with the
implementations its defaults choose on this machine (on CPU: matmul convolutions and
reshape-and-max pooling).
"""

from __future__ import annotations

import sys
import tempfile
import traceback
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import zoo
from zoo import exporting, registry
from zoo.nn import inputs

BATCHES = (1, 3)


def _inputs(spec, model, batch, seed):
    """Random inputs (batch, *input_shape): token ids in [0, 5) for integer parts."""
    rng = np.random.default_rng(seed)
    multipart = inputs.is_multipart(model.input_shape)
    shapes, dtypes = (model.input_shape, spec.input_dtype) if multipart else ((model.input_shape,), (spec.input_dtype,))
    parts = tuple(
        rng.integers(0, 5, (batch, *shape)).astype(dtype)
        if str(dtype).startswith("int")
        else rng.uniform(size=(batch, *shape)).astype(np.float32)
        for shape, dtype in zip(shapes, dtypes)
    )
    return parts if multipart else parts[0]


def _close(got, expected) -> float:
    """The largest |difference| over the outputs' leaves, relative to the largest |value|."""
    got, expected = jax.tree.leaves(got), jax.tree.leaves(expected)
    assert len(got) == len(expected), (len(got), len(expected))
    scale = max(float(np.abs(np.asarray(e, np.float64)).max()) for e in expected) or 1.0
    return (
        max(float(np.abs(np.asarray(g, np.float64) - np.asarray(e, np.float64)).max()) for g, e in zip(got, expected))
        / scale
    )


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:110].replace("|", "/")


def check(name: str, folder: Path) -> tuple[str, str]:
    spec = registry.get_spec(name)
    model = zoo.create_model(name, **spec.test_config)  # the default implementations for this machine
    x = _inputs(spec, model, 2, 0)
    names = ("params", "dropout", "sample", "noise")
    variables = model.init(
        dict(zip(names, jax.random.split(jax.random.PRNGKey(0), 4))), inputs.map_parts(jnp.asarray, x)
    )
    forward = exporting._inference_fn(model, variables)
    try:
        exporting.export(model, variables, x, folder / f"{name}.jax")
        exported = exporting.load_exported(folder / f"{name}.jax")
        error = max(_close(exported.call(xb), forward(xb)) for b in BATCHES for xb in [_inputs(spec, model, b, b)])
        stablehlo = "yes" if error < 1e-5 else f"differs ({error:.1e})"
    except Exception as e:  # noqa: BLE001 - a report, not a program
        stablehlo = f"no: {_first_line(e)}"
    try:
        import onnxruntime

        exporting.export_onnx(model, variables, x, folder / f"{name}.onnx")
        session = onnxruntime.InferenceSession(str(folder / f"{name}.onnx"))
        error = 0.0
        for b in BATCHES:
            xb = _inputs(spec, model, b, b)
            got = session.run(None, {session.get_inputs()[0].name: xb})
            error = max(error, _close(got, forward(xb)))
        onnx = "yes" if error < 1e-4 else f"differs ({error:.1e})"
    except Exception as e:  # noqa: BLE001
        onnx = f"no: {_first_line(e)}"
    return stablehlo, onnx


def main() -> int:
    names = sys.argv[1:] or zoo.list_models()
    print("| model | family | StableHLO (jax.export, symbolic batch) | ONNX (jax2onnx + onnxruntime) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            try:
                stablehlo, onnx = check(name, Path(tmp))
            except Exception:  # noqa: BLE001
                traceback.print_exc()
                stablehlo = onnx = "no: could not build"
            print(f"| `{name}` | {registry.get_spec(name).family} | {stablehlo} | {onnx} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
