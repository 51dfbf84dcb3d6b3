"""Image captioning on the generated scenes: CNN + LSTM decoder with and without soft
visual attention (Show and Tell vs Show, Attend and Tell; kang-lecture4), greedy and beam
decoding, scored by exact match and corpus BLEU-4 on the test scenes.

    python scripts/caption_experiment.py --epochs 8 --train 4000 --test 500

Both models are trained by `zoo.fit` with teacher forcing on `caption_scenes` (captions
such as "a large red circle and a small blue square", objects in reading order) with the
same budget; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import zoo
from zoo.data.vqa_scenes import caption_scenes
from zoo.models.seq2seq import score_translations

MODELS = {
    "CNN + LSTM (Show and Tell)": "captioner",
    "CNN + LSTM + attention (Show, Attend and Tell)": "captioner_attention",
}


def decode(result, x, beam_size: int, batch_size: int = 250) -> np.ndarray:
    """(N, T) caption ids: greedy (beam_size 1) or beam search."""
    model = result.model
    if beam_size == 1:
        run = jax.jit(lambda v, xb: model.apply(v, xb)["predictions"])
    else:
        run = jax.jit(lambda v, xb: model.apply(v, xb, beam_size, method=model.beam_search)["predictions"])
    return np.concatenate(
        [np.asarray(run(result.variables, x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--beam-size", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny run (tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.train, args.test = 1, 64, 16
    data = caption_scenes(seed=args.seed, num_examples=args.train, num_test_examples=args.test)
    results = {}
    print(f"| model ({args.epochs} epochs, {args.train} train scenes) | decoding | exact match | BLEU-4 | train s |")
    print("|---|---|---|---|---|")
    for name, model in MODELS.items():
        t0 = time.perf_counter()
        result = zoo.fit(
            model,
            data,
            seed=args.seed,
            epochs=args.epochs,
            batch_size=64,
            learning_rate=args.lr,
            optimizer="adam",
            progress=False,
            model_overrides={"image_config": {"conv_impl": "xla"}},
        )
        seconds = time.perf_counter() - t0
        for beam in (1, args.beam_size):
            scores = score_translations(decode(result, data.x_test, beam), data.y_test)
            label = "greedy" if beam == 1 else f"beam {beam}"
            results[(name, label)] = scores
            print(
                f"| {name} | {label} | {scores['exact_match']:.3f} | {scores['bleu']:.3f} | {seconds:.0f} |", flush=True
            )
    return results


if __name__ == "__main__":
    main()
