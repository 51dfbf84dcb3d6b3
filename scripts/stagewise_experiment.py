"""Stage-wise training over resolution against training at full resolution, the same number
of steps (surf2019-cha-rnn-hierarchical-b: "give subsampling image step by step").

    python scripts/stagewise_experiment.py --seeds 2 --epochs 3

ResNet-20 (global pooling, so one set of weights serves every size) on digits resized to
32x32: stage-wise trains ``--epochs`` epochs at 8x8, then 16x16, then 32x32; the baseline
trains 3 x ``--epochs`` epochs at 32x32. Prints test accuracy per seed and the wall time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import zoo
from zoo.train.stagewise import train_stagewise


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per stage")
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args(argv)
    data = zoo.data.load_dataset("digits", image_size=args.size)
    common = {"progress": False, "learning_rate": 3e-3, "model_overrides": {"conv_impl": "xla"}}
    rows = {"stage-wise 1/4, 1/2, full": [], "full resolution": []}
    seconds = {name: 0.0 for name in rows}
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        stages = train_stagewise(args.model, data, factors=(4, 2, 1), epochs=args.epochs, seed=seed, **common)
        seconds["stage-wise 1/4, 1/2, full"] += time.perf_counter() - t0
        rows["stage-wise 1/4, 1/2, full"].append(stages[-1].test_metrics["accuracy"])
        t0 = time.perf_counter()
        full = zoo.fit(args.model, data, epochs=3 * args.epochs, seed=seed, **common)
        seconds["full resolution"] += time.perf_counter() - t0
        rows["full resolution"].append(full.test_metrics["accuracy"])
    print(
        f"| {args.model} on digits {args.size}x{args.size}, {3 * args.epochs} epochs in all | test accuracy per seed | mean | wall s |"
    )
    print("|---|---|---|---|")
    for name, accuracies in rows.items():
        print(
            f"| {name} | {', '.join(f'{a:.4f}' for a in accuracies)} | {np.mean(accuracies):.4f} | {seconds[name]:.0f} |"
        )


if __name__ == "__main__":
    main()
