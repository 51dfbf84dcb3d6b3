"""Building and floor from Wi-Fi fingerprints (Kim, Lee & Huang 2018): the paper's
multi-label classifier against the hierarchical one (per-building floor branches), both on
a stacked-autoencoder encoder 520-256-128-64 pretrained layer by layer.

    python scripts/localisation_experiment.py --seeds 3
    python scripts/localisation_experiment.py --data-dir UJI_FOLDER   # the real UJIIndoorLoc files

Without ``--data-dir`` the data are generated fingerprints (`zoo.data.ujiindoorloc`:
UJIIndoorLoc's schema and buildings, log-distance path loss). Each seed pretrains the
encoder once (three autoencoders, ReLU codes, linear decoders, squared error) and both
models start from it, with the same budget. Prints a Markdown table of test building,
floor and building-floor accuracy (mean ± std over seeds) and the wall time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import zoo
from zoo.train.pretrain import pretrain_layerwise, stacked_variables

MODELS = {"multi-label (paper)": "building_floor_dnn", "hierarchical": "building_floor_hierarchical"}
METRICS = ("building_accuracy", "floor_accuracy", "accuracy")


def run(data, *, seeds: int, encoder_sizes, hidden_sizes, pretrain_epochs: int, **fit_kwargs) -> dict:
    """``{model label: {metric: [one value per seed]}}`` on ``data``'s test split."""
    results = {label: {m: [] for m in METRICS} for label in MODELS}
    overrides = {"encoder_sizes": tuple(encoder_sizes), "hidden_sizes": tuple(hidden_sizes)}
    for seed in range(seeds):
        init = None
        if pretrain_epochs:
            layers = [
                ("autoencoder", {"hidden_sizes": (n,), "activation": "relu", "decoder_activation": "identity"})
                for n in encoder_sizes
            ]
            fit_pretrain = {k: v for k, v in fit_kwargs.items() if k != "epochs"}
            pretrained = pretrain_layerwise(layers, data, epochs=pretrain_epochs, seed=seed, **fit_pretrain)
            init = stacked_variables(pretrained, {"encoder_0": "encoder_{}"})
        for label, name in MODELS.items():
            result = zoo.fit(name, data, model_overrides=overrides, initial_variables=init, seed=seed, **fit_kwargs)
            for metric in METRICS:
                results[label][metric].append(result.test_metrics[metric])
    return results


def table(results: dict, title: str) -> str:
    rows = [f"| {title} | building accuracy | floor accuracy | building-floor accuracy |", "|---|---|---|---|"]
    for label, metrics in results.items():
        cells = [f"{np.mean(metrics[m]):.4f} ± {np.std(metrics[m]):.4f}" for m in METRICS]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default=None, help="a folder with UJIIndoorLoc's trainingData.csv, validationData.csv"
    )
    parser.add_argument("--num-examples", type=int, default=2000, help="generated training fingerprints")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--pretrain-epochs", type=int, default=5, help="per autoencoder layer; 0: no pretraining")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--quick", action="store_true", help="tiny data and networks, a few epochs (a smoke test)")
    args = parser.parse_args(argv)
    encoder_sizes, hidden_sizes = (256, 128, 64), (128, 128)
    if args.data_dir:
        data = zoo.data.load_dataset("ujiindoorloc", data_dir=args.data_dir)
    elif args.quick:
        data = zoo.data.load_dataset("wifi_fingerprints", num_examples=120, num_test_examples=60)
        encoder_sizes, hidden_sizes = (16,), (16,)
        args.seeds, args.epochs, args.pretrain_epochs = 1, 2, 1
    else:
        data = zoo.data.load_dataset("wifi_fingerprints", num_examples=args.num_examples)
    start = time.perf_counter()
    results = run(
        data,
        seeds=args.seeds,
        encoder_sizes=encoder_sizes,
        hidden_sizes=hidden_sizes,
        pretrain_epochs=args.pretrain_epochs,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        validation_fraction=0.0,
        progress=False,
    )
    print(table(results, f"{data.name}, {data.num_train} / {data.num_test}, {args.seeds} seeds"))
    print(f"\n{time.perf_counter() - start:.0f} s; {data.description}")


if __name__ == "__main__":
    main()
