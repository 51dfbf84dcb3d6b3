"""Hierarchical auxiliary learning against its baseline, laid out like the seed's table
(surf2019-cha-rnn-hierarchical-b: "MNIST baseline 0.93, Case1 0.43±0.03, ...", test error
in %). Every run has the same budget (epochs, batch size, optimizer, seed); the baseline is
the backbone alone with its own classifier.

    python scripts/hal_experiments.py --dataset digits --cases all --seeds 5
    python scripts/hal_experiments.py --dataset fashion_mnist --cases semantic --seeds 3 --epochs 10 --batch-size 128

Prints a Markdown table (mean ± std of test error over seeds, and a paired t-test of each
case against the baseline on the same seeds); ``--plot FILE`` saves a bar chart.
"""

from __future__ import annotations

import argparse

import numpy as np

import zoo
from zoo.models.hierarchical import SUPERCLASS_CASES


def run(dataset: str, backbone: str, cases: list[str], seeds: int, **fit_kwargs) -> dict[str, list[float]]:
    """Test error (%) per configuration ("baseline" and each case), one entry per seed."""
    data = zoo.data.load_dataset(dataset)
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
    parser.add_argument("--plot", default=None, help="save a bar chart of the errors here")
    args = parser.parse_args(argv)
    available = sorted(SUPERCLASS_CASES[args.dataset])
    cases = available if args.cases == "all" else args.cases.split(",")
    errors = run(
        args.dataset,
        args.backbone,
        cases,
        args.seeds,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
    )
    print(table(errors, args.dataset))
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
