"""Hierarchical auxiliary learning against its baseline, laid out like the seed's table
(surf2019-cha-rnn-hierarchical-b: "MNIST baseline 0.93, Case1 0.43±0.03, ...", test error
in %). Every run has the same budget (epochs, batch size, optimizer, seed); the baseline is
the backbone alone with its own classifier.

    python -m zoo.experiments.hal --dataset digits --cases all --seeds 5
    python -m zoo.experiments.hal --dataset fashion_mnist --backbone lenet5 --cases semantic \
        --seeds 3 --epochs 5 --batch-size 64 --train-subset 10000

(scripts/hal_experiments.py is the same runner.) ``--train-subset N`` trains on N training
examples drawn once (seed 0, the same for every run); the test split stays whole.
``--image-size S`` resizes the images (digits at 28 for ``--backbone lenet5``).

Prints a Markdown table (mean ± std of test error over seeds, and a paired t-test of each
case against the baseline on the same seeds); ``--plot FILE`` saves a bar chart.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

import zoo
from zoo.data.base import Dataset
from zoo.models.hierarchical import SUPERCLASS_CASES


def train_subset(data: Dataset, size: int, seed: int = 0) -> Dataset:
    """``data`` with ``size`` training examples drawn without replacement (original order
    kept); the test split unchanged."""
    if not 0 < size <= data.num_train:
        raise ValueError(f"train subset must be in [1, {data.num_train}], got {size}")
    keep = np.sort(np.random.default_rng(seed).permutation(data.num_train)[:size])
    return dataclasses.replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep])


def run(dataset: str | Dataset, backbone: str, cases: list[str], seeds: int, **fit_kwargs) -> dict[str, list[float]]:
    """Test error (%) per configuration ("baseline" and each case), one entry per seed.
    ``dataset``: a name of `zoo.data.load_dataset` (also the superclass table) or a Dataset."""
    data = zoo.data.load_dataset(dataset) if isinstance(dataset, str) else dataset
    dataset = data.name
    errors: dict[str, list[float]] = {"baseline": [], **{case: [] for case in cases}}
    for seed in range(seeds):
        result = zoo.fit(backbone, data, seed=seed, progress=False, **fit_kwargs)
        errors["baseline"].append(100 * (1 - result.test_metrics["accuracy"]))
        for case in cases:
            overrides = {"backbone": backbone, "superclasses": dataset, "case": case}
            result = zoo.fit("hal", data, model_overrides=overrides, seed=seed, progress=False, **fit_kwargs)
            errors[case].append(100 * (1 - result.test_metrics["accuracy"]))
    return errors


def table(errors: dict[str, list[float]], dataset: str) -> str:
    from scipy.stats import ttest_rel

    names = list(errors)
    means = [f"{np.mean(errors[n]):.2f} ± {np.std(errors[n]):.2f}" for n in names]
    pvalues = ["-"] + [
        "n/a"
        if len(errors[n]) < 2 or np.allclose(errors[n], errors["baseline"])
        else f"{ttest_rel(errors[n], errors['baseline']).pvalue:.3f}"
        for n in names[1:]
    ]
    return "\n".join(
        [
            f"| {dataset} | " + " | ".join(names) + " |",
            "|---|" + "---|" * len(names),
            "| test error % (mean ± std) | " + " | ".join(means) + " |",
            "| paired t-test p vs baseline | " + " | ".join(pvalues) + " |",
        ]
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=sorted(set(SUPERCLASS_CASES) & set(zoo.data.DATASETS)))
    parser.add_argument("--backbone", default="mlp")
    parser.add_argument("--cases", default="all", help="comma-separated cases, or all")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train-subset", type=int, default=None, help="train on this many examples (seed 0)")
    parser.add_argument("--image-size", type=int, default=None, help="resize the images to S x S")
    parser.add_argument("--plot", default=None, help="save a bar chart of the errors here")
    args = parser.parse_args(argv)
    available = sorted(SUPERCLASS_CASES[args.dataset])
    cases = available if args.cases == "all" else args.cases.split(",")
    data = zoo.data.load_dataset(args.dataset, image_size=args.image_size)
    if args.train_subset:
        data = train_subset(data, args.train_subset)
    start = time.perf_counter()
    errors = run(
        data, args.backbone, cases, args.seeds, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr
    )
    print(table(errors, args.dataset))
    print(
        f"\n{args.backbone}, {data.num_train} training examples ({data.num_test} test), {args.epochs} epochs, "
        f"batch {args.batch_size}, Adam {args.lr}, seeds 0-{args.seeds - 1}: {time.perf_counter() - start:.0f} s"
    )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(errors)
        plt.bar(names, [np.mean(errors[n]) for n in names], yerr=[np.std(errors[n]) for n in names], capsize=4)
        plt.ylabel("test error (%)")
        plt.title(f"HAL on {args.dataset} ({args.backbone}, {args.seeds} seeds)")
        plt.savefig(args.plot, dpi=80, bbox_inches="tight")


if __name__ == "__main__":
    main()
