"""The README's model table, generated from the registry: every registered model with its
family, task, paper, parameters and FLOPs at its default input, and its best documented
result with the command that produced it.

    python -m zoo.bench.model_table            # print the table
    python -m zoo.bench.model_table --write    # replace it in README.md, between its markers

tests/bench/test_model_table.py fails when the README's table is stale.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import jax.numpy as jnp

from zoo import native, registry
from zoo.bench.flops import count_step_flops, parameter_count
from zoo.nn.inputs import is_multipart

START, END = "<!-- model-table:start -->", "<!-- model-table:end -->"
README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
# The documentation site's models page holds the same table.
DOCS_PAGE = README.parent / "docs" / "models.md"
DOCS_HEADER = """# Every model

Every registered model at its default config: family, task, paper, parameters, forward
FLOPs for one example (XLA's cost analysis, scan bodies times their trip counts, sequence
models at length 16) and its best documented result with the command that produced it.
Generated from the registry by `python -m zoo.bench.model_table --write`, which writes this
page and the README's table.

"""

# The documented runs of the README's results tables: model -> (result, command).
DOCUMENTED = {
    "mlp": ("digits test accuracy 0.9806", "python train.py"),
    "lenet5": (
        "digits (28x28) test accuracy 0.9833",
        "python train.py --model lenet5 --data image_size=28 --epochs 50 --batch-size 32 --optimizer adamw "
        "--opt weight_decay=0.05 --lr 2e-3 --schedule cosine --validation-fraction 0",
    ),
    "building_floor_dnn": (
        "wifi_fingerprints test building-floor accuracy 0.986 (building 1.000)",
        "python train.py --model building_floor_dnn --dataset wifi_fingerprints --epochs 20",
    ),
    "text_cnn": ("sentiment test accuracy 0.978", "python train.py --model text_cnn --dataset sentiment --epochs 5"),
    "attention_lstm": (
        "sentiment test accuracy 1.000",
        "python train.py --model attention_lstm --dataset sentiment --epochs 10 --lr 3e-3",
    ),
    "lstm": (
        "adding problem (T=100) test MSE 0.00042",
        "python train.py --model lstm --dataset adding_problem --epochs 40 --batch-size 50 --lr 2e-3 --clip-norm 1.0",
    ),
    "convlstm": (
        "moving digits test MSE 0.0325",
        "python train.py --model convlstm --dataset moving_digits --epochs 8 --batch-size 16 --lr 3e-3",
    ),
    "seq2seq_bahdanau": (
        "reverse: exact match 0.999; dates: 1.000",
        "python train.py --model seq2seq_bahdanau --dataset reverse --epochs 15 --batch-size 64 --lr 3e-3 --target 0.99",
    ),
    "rnn_autoencoder": (
        "copy: token accuracy 0.909",
        "python train.py --model rnn_autoencoder --dataset copy --epochs 10 --batch-size 64 --lr 3e-3 "
        "--set hidden_size=128",
    ),
    "vae": ("digits test ELBO -25.0 nats (latent size 2)", "python train.py --model vae --epochs 60 --lr 3e-3"),
    "denoising_autoencoder": (
        "digits, noise sigma 0.3: test MSE 0.022 (noisy input 0.091)",
        "python train.py --model denoising_autoencoder --epochs 30 --lr 3e-3",
    ),
    "unet": (
        "shapes test mean IoU 0.934",
        "python train.py --model unet --dataset shapes --epochs 10 --batch-size 32 --lr 3e-3 --schedule cosine "
        "--set batch_norm=True --set conv_impl=xla",
    ),
    "segnet": (
        "shapes test mean IoU 0.919",
        "python train.py --model segnet --dataset shapes --epochs 10 --batch-size 32 --lr 3e-3 --schedule cosine "
        "--set conv_impl=xla",
    ),
    "vqa_question_lstm": (
        "vqa_scenes test accuracy 0.390 (chance 0.389; mean of 3 seeds)",
        "python scripts/vqa_experiment.py --seeds 3 --epochs 10",
    ),
    "vqa_bow_cnn": (
        "vqa_scenes test accuracy 0.545 (mean of 3 seeds)",
        "python scripts/vqa_experiment.py --seeds 3 --epochs 10",
    ),
    "vqa_lstm_cnn": (
        "vqa_scenes test accuracy 0.509 (concatenation fusion; mean of 3 seeds)",
        "python scripts/vqa_experiment.py --seeds 3 --epochs 10",
    ),
    "captioner": (
        "caption_scenes BLEU-4 0.203, exact match 0.006 (greedy)",
        "python scripts/caption_experiment.py --epochs 8 --train 4000 --test 500",
    ),
    "captioner_attention": (
        "caption_scenes BLEU-4 0.560, exact match 0.082 (greedy)",
        "python scripts/caption_experiment.py --epochs 8 --train 4000 --test 500",
    ),
    "char_rnn": (
        "spells the seed's long word (exact match 1.0)",
        "python train.py --model char_rnn --dataset long_word --epochs 40 --batch-size 32 --lr 2e-2 "
        "--validation-fraction 0",
    ),
}

# Free axes (a sequence length of None) are measured at this length.
FREE_LENGTH = 16


def _example_inputs(spec, model) -> tuple:
    """Abstract inputs for one example: x, and y for models that read the target."""
    if is_multipart(spec.input_shape):  # e.g. VQA's (image, question)
        return (tuple(jax.ShapeDtypeStruct((1, *s), jnp.dtype(d)) for s, d in zip(spec.input_shape, spec.input_dtype)),)
    shape = tuple(FREE_LENGTH if d is None else d for d in spec.input_shape)
    x = jax.ShapeDtypeStruct((1, *shape), jnp.dtype(spec.input_dtype))
    if spec.task != "sequence_to_sequence":
        return (x,)
    length = getattr(model, "output_length", None) or shape[0]
    return x, jax.ShapeDtypeStruct((1, length), jnp.int32)


def model_row(name: str) -> dict:
    """One model's figures at its default config (convolutions by XLA's own kernel and no
    native kernels, so FLOPs are the model's, not those of a faster algorithm, and the
    same on every machine)."""
    spec = registry.get_spec(name)
    overrides = {"conv_impl": "xla"} if "conv_impl" in spec.config else {}
    model = registry.create_model(name, **overrides)
    args = _example_inputs(spec, model)
    variables = jax.eval_shape(lambda *a: model.init(jax.random.PRNGKey(0), *a), *args)
    with native.disabled():
        traced = jax.jit(lambda v, *a: model.apply(v, *a)).trace(variables, *args)  # one trace serves both
    flops, _ = count_step_flops(None, traced.lower(), jaxpr=traced.jaxpr.jaxpr)
    result, command = DOCUMENTED.get(name, ("", ""))
    return {
        "name": name,
        "family": spec.family,
        "task": spec.task,
        "paper": _short(spec.paper.split(";")[0]),
        "parameters": parameter_count(variables.get("params", {})),
        "flops": flops,
        "result": result,
        "command": command,
    }


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _flops_text(flops) -> str:
    if flops is None:
        return "–"
    return f"{flops / 1e9:.3g} G" if flops >= 1e8 else f"{flops / 1e6:.3g} M"


def render(rows: list[dict]) -> str:
    lines = [
        START,
        "| model | family | task | paper | parameters | FLOPs (forward, 1 example) | documented result | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        command = f"`{r['command']}`" if r["command"] else ""
        lines.append(
            f"| `{r['name']}` | {r['family']} | {r['task']} | {r['paper']} | {r['parameters']:,} | "
            f"{_flops_text(r['flops'])} | {r['result']} | {command} |"
        )
    lines.append(END)
    return "\n".join(lines)


def table() -> str:
    return render([model_row(name) for name in registry.list_models()])


def readme_table(text: str) -> str:
    """The table between the README's markers (ValueError when they are missing)."""
    if START not in text or END not in text:
        raise ValueError(f"README.md has no {START} ... {END} markers")
    return text[text.index(START) : text.index(END) + len(END)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="replace the table in README.md and docs/models.md")
    args = parser.parse_args(argv)
    new = table()
    if not args.write:
        print(new)
        return 0
    text = README.read_text()
    README.write_text(text.replace(readme_table(text), new))
    DOCS_PAGE.write_text(DOCS_HEADER + new + "\n")
    print(f"wrote the model table ({len(registry.list_models())} models) to {README} and {DOCS_PAGE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
