"""Question-only vs bag-of-words + CNN vs LSTM + CNN on the generated VQA scenes, the
comparison of the khanzhina/duan seeds (LSTM language only 42.51, BOW+CNN 44.30,
LSTM+CNN 47.80 on their data), each model trained with the same budget, mean over seeds.

    python scripts/vqa_experiment.py --seeds 3 --epochs 10

Every model reads the same (image, question) pairs (`zoo.data.vqa_scenes`, a fresh draw
per seed); the image models use the same CNN (``--cnn``, LeNet-5 by default) and the
same fusion (``--fusion``), so the rows differ only in what the question encoder can
read. Prints a Markdown table: test accuracy per seed, the mean and standard deviation,
the mean per question type, and the wall time; ``--quick`` is a seconds-long smoke run.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import zoo
from zoo.data.vqa_scenes import QUESTION_TYPES, chance_accuracy, question_types, vqa_scenes

MODELS = {
    "question only (LSTM)": "vqa_question_lstm",
    "BOW + CNN": "vqa_bow_cnn",
    "LSTM + CNN": "vqa_lstm_cnn",
    "LSTM + CNN + attention": "vqa_attention",  # an extra row: --models "LSTM + CNN + attention"
}
DEFAULT_ROWS = ["question only (LSTM)", "BOW + CNN", "LSTM + CNN"]


def predict(result, x, batch_size: int = 500) -> np.ndarray:
    """Answer indices (N,) of a trained `zoo.fit` result on x = (images, questions)."""
    run = jax.jit(lambda v, xb: result.model.apply(v, xb).argmax(-1))
    images, questions = x
    return np.concatenate(
        [
            np.asarray(run(result.variables, (images[i : i + batch_size], questions[i : i + batch_size])))
            for i in range(0, len(images), batch_size)
        ]
    )


def run(args) -> dict:
    """{row name: {"accuracy": [per seed], "per_type": (seeds, types), "seconds": float}}."""
    rows = {name: {"accuracy": [], "per_type": [], "seconds": 0.0} for name in args.models}
    overrides = {"fusion": args.fusion, "image_config": {"conv_impl": "xla"} if args.cnn == "lenet5" else {}}
    for seed in range(args.seeds):
        data = vqa_scenes(seed=seed, num_examples=args.train, num_test_examples=args.test)
        texts = [data.vocabulary.decode(q) for q in data.x_test[1]]
        types = question_types(texts)
        for name in args.models:
            model = MODELS[name]
            # The question-only model has no image encoder to configure.
            image_overrides = {} if model == "vqa_question_lstm" else {"image_encoder": args.cnn, **overrides}
            t0 = time.perf_counter()
            result = zoo.fit(
                model,
                data,
                seed=seed,
                epochs=args.epochs,
                batch_size=args.batch_size,
                learning_rate=args.lr,
                optimizer="adam",
                progress=False,
                model_overrides=image_overrides,
            )
            rows[name]["seconds"] += time.perf_counter() - t0
            correct = predict(result, data.x_test) == data.y_test
            rows[name]["accuracy"].append(float(correct.mean()))
            rows[name]["per_type"].append([correct[types == t].mean() for t in range(len(QUESTION_TYPES))])
            print(f"seed {seed} {name}: test accuracy {correct.mean():.4f}", flush=True)
    return rows


def table(rows: dict, args) -> str:
    kinds = " | ".join(QUESTION_TYPES)
    lines = [
        f"| model ({args.epochs} epochs, {args.train} train scenes) | test accuracy per seed | mean ± std | {kinds} | wall s |",
        "|---" * (4 + len(QUESTION_TYPES)) + "|",
    ]
    for name, r in rows.items():
        acc = np.asarray(r["accuracy"])
        per_type = " | ".join(f"{a:.2f}" for a in np.mean(r["per_type"], 0))
        lines.append(
            f"| {name} | {', '.join(f'{a:.3f}' for a in acc)} | {acc.mean():.3f} ± {acc.std():.3f} | "
            f"{per_type} | {r['seconds']:.0f} |"
        )
    per_type = " | ".join(f"{1 / len(answers):.2f}" for answers in QUESTION_TYPES.values())
    lines.append(f"| chance without the image (balanced answers) | | {chance_accuracy():.3f} | {per_type} | |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train", type=int, default=6000, help="training scenes per seed")
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--cnn", default="lenet5", help="any registered image CNN")
    parser.add_argument("--fusion", default="concat", choices=("concat", "product"))
    parser.add_argument("--models", nargs="+", default=DEFAULT_ROWS, choices=list(MODELS))
    parser.add_argument("--quick", action="store_true", help="a tiny run (tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.train, args.test = 1, 1, 64, 32
    t0 = time.perf_counter()
    rows = run(args)
    print(table(rows, args))
    print(f"total wall time {time.perf_counter() - t0:.0f} s")
    return rows


if __name__ == "__main__":
    main()
