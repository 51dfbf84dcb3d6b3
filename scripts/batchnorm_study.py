"""The seed's batch-norm table, scaled down (kang-lecture4, "Batch Normalization: Effect",
after Ioffe & Szegedy 2015, Figure 2's table): steps to reach the baseline's best validation
accuracy and the best accuracy reached, without and with batch norm, at 5x and 30x the
learning rate, and with sigmoid units; plus the seed's "initial solution", whitening.

    python scripts/batchnorm_study.py --seeds 3 --epochs 30   # the documented run
    python scripts/batchnorm_study.py --quick                 # a smoke run (what the tests execute)

A 4 x 64 fully connected net on digits (the Inception of the paper scaled to this CPU),
plain SGD at base learning rate 0.01, batch 32, every row the same number of epochs and
seeds; batch norm sits before the non-linearity, as the seed draws it. As in the paper,
the target is the baseline's best validation accuracy (mean over seeds), and a run's steps
are counted at the end of the first epoch whose validation accuracy reaches it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import zoo

BASE_LR = 0.01
# label: (model overrides, learning-rate multiple, TrainConfig overrides)
ROWS = {
    "baseline (no BN)": ({}, 1, {}),
    "whitened inputs (ZCA), no BN": ({}, 1, {"whiten": "zca"}),
    "no BN, x5": ({}, 5, {}),
    "BN-Baseline": ({"batch_norm": True}, 1, {}),
    "BN-x5": ({"batch_norm": True}, 5, {}),
    "BN-x30": ({"batch_norm": True}, 30, {}),
    "BN-x5-Sigmoid": ({"batch_norm": True, "activation": "sigmoid"}, 5, {}),
    "no BN, x5, sigmoid": ({"activation": "sigmoid"}, 5, {}),
}
NET = {"hidden_sizes": (64, 64, 64, 64), "kernel_init": "he_normal"}


def run(label: str, seeds: int, epochs: int, data) -> list[list[dict]]:
    """The per-epoch histories of one row, one list per seed."""
    model, multiple, train = ROWS[label]
    return [
        zoo.fit(
            "mlp",
            data,
            model_overrides={**NET, **model},
            optimizer="sgd",
            learning_rate=BASE_LR * multiple,
            epochs=epochs,
            seed=seed,
            progress=False,
            **train,
        ).history
        for seed in range(seeds)
    ]


def steps_to(history: list[dict], target: float) -> int | None:
    return next((r["step"] for r in history if r["val_accuracy"] >= target - 1e-9), None)


def table(histories: dict[str, list[list[dict]]]) -> str:
    best = {label: [max(r["val_accuracy"] for r in h) for h in runs] for label, runs in histories.items()}
    target = float(np.mean(best["baseline (no BN)"]))
    lines = [
        f"| model (target: the baseline's best, {target:.4f}) | steps to target, per seed | mean of those reaching it "
        "| best validation accuracy (mean ± std) |",
        "|---|---|---|---|",
    ]
    for label, runs in histories.items():
        steps = [steps_to(h, target) for h in runs]
        reached = [s for s in steps if s is not None]
        mean = f"{np.mean(reached):.0f} ({len(reached)}/{len(steps)})" if reached else "never"
        per_seed = ", ".join("—" if s is None else str(s) for s in steps)
        lines.append(f"| {label} | {per_seed} | {mean} | {np.mean(best[label]):.4f} ± {np.std(best[label]):.4f} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="1 epoch, 1 seed, 2 rows")
    args = parser.parse_args(argv)
    labels = list(ROWS)
    if args.quick:
        args.seeds, args.epochs, labels = 1, 1, ["baseline (no BN)", "BN-x5"]
    data = zoo.data.load_dataset("digits").with_validation(0.1, seed=0)
    start = time.perf_counter()
    histories = {label: run(label, args.seeds, args.epochs, data) for label in labels}
    print(table(histories))
    print(
        f"\n{len(labels)} rows x {args.seeds} seeds x {args.epochs} epochs "
        f"({histories[labels[0]][0][0]['step']} steps each) in {time.perf_counter() - start:.0f} s"
    )
    return histories


if __name__ == "__main__":
    main()
