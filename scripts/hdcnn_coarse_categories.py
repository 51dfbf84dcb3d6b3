"""HD-CNN's coarse categories from a confusion matrix (Yan et al. 2015) against the seed's
Case4 (circle / curve / straight line), on digits.

    python scripts/hdcnn_coarse_categories.py --seeds 3 --epochs 30

A baseline MLP is trained on digits with 20% of the training split held out; its mean
predicted distribution per true class on the held-out part (a soft confusion matrix: the
hard counts are a handful of errors here, too sparse to cluster) is clustered into three
groups by `coarse_categories` (spectral clustering of the symmetrised matrix); `hdcnn`
then trains with those groups and with Case4, the same budget, the held-out part unused.
Prints the groups and the test accuracy per seed.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

import zoo
from zoo.models.hierarchical import coarse_categories, superclass_of


def soft_confusion(result, x: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C): row c is the model's mean predicted distribution over the examples of class c."""
    probs = np.asarray(jax.nn.softmax(result.model.apply(result.variables, x)))
    return np.stack([probs[y == c].mean(0) for c in range(num_classes)])


def groups(mapping: np.ndarray) -> list[list[int]]:
    return [np.flatnonzero(mapping == g).tolist() for g in range(mapping.max() + 1)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    data = zoo.data.load_dataset("digits").with_validation(0.2, seed=0)
    baseline = zoo.fit("mlp", data, epochs=args.epochs, progress=False)
    confusion = soft_confusion(baseline, data.x_val, data.y_val, data.num_classes)
    coarse = {"spectral (3 groups)": coarse_categories(confusion, 3), "case4": superclass_of("digits", "case4")}
    print("| coarse categories | groups | test accuracy per seed | mean |")
    print("|---|---|---|---|")
    for name, mapping in coarse.items():
        overrides = {"superclass_map": tuple(int(m) for m in mapping)}
        accuracies = [
            zoo.fit(
                "hdcnn", data, model_overrides=overrides, epochs=args.epochs, seed=seed, progress=False
            ).test_metrics["accuracy"]
            for seed in range(args.seeds)
        ]
        print(
            f"| {name} | {groups(mapping)} | {', '.join(f'{a:.4f}' for a in accuracies)} | {np.mean(accuracies):.4f} |"
        )


if __name__ == "__main__":
    main()
