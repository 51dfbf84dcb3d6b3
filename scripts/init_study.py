"""The seed's weight-initialisation study (kang-lecture4, "Weight Initialization"), as a
Markdown table beside the seed's numbers, and its two figures.

    python scripts/init_study.py --plots plots      # the documented run: 4 inits x 5 seeds x 15,000 steps
    python scripts/init_study.py --quick            # a smoke run (what the tests execute)

A [2, 10, 5, 1] ReLU net (sigmoid output) on two circles (`zoo.data.synthetic.circles`: 300
training, 100 test points, noise 0.05), trained full-batch by gradient descent (lr 0.01)
on the cross-entropy of its logits, from zero, N(0, 10^2), Xavier (Glorot normal) and He
(normal) kernels with zero biases. Every initialisation and seed runs in one jit'd, vmapped
call (`zoo.studies.init_study`); its wall time, compilation included, is printed.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

from zoo.data.synthetic import circles
from zoo.studies import init_study

INITIALIZERS = {
    "zero": ("zeros", None),
    "random N(0, 10^2)": ("normal", 10.0),
    "Xavier (Glorot normal)": ("xavier_normal", None),
    "He (normal)": ("he_normal", None),
}
# kang-lecture4 "Weight Initialization": loss and accuracy after 15,000 iterations (the
# He row is the one its text gives; its loss-curve panel labels that curve Xavier).
SEED_NUMBERS = {"zero": "0.693 / 50%", "random N(0, 10^2)": "0.383 / 86%", "He (normal)": "0.074 / 96%"}


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows])


def results_table(out: dict) -> str:
    rows = []
    for i, label in enumerate(INITIALIZERS):
        loss, train, test = (np.asarray(out[k][i]) for k in ("final_loss", "train_accuracy", "test_accuracy"))
        rows.append(
            [
                label,
                f"{loss.mean():.3f} ± {loss.std():.3f}",
                f"{train.mean():.1%}",
                f"{test.mean():.1%}",
                SEED_NUMBERS.get(label, "—"),
            ]
        )
    return table(["initialisation", "loss (mean ± std over seeds)", "train acc", "test acc", "seed: loss / acc"], rows)


def plot(out: dict, directory: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    loss = np.asarray(out["loss"])  # (I, S, steps)
    grad = np.asarray(out["grad_mean"])  # (I, S, steps, L)
    fig, axes = plt.subplots(1, len(INITIALIZERS), figsize=(4 * len(INITIALIZERS), 3), sharey=True)
    for ax, (i, label) in zip(axes, enumerate(INITIALIZERS)):
        ax.plot(loss[i].T, lw=0.8, alpha=0.6)
        ax.plot(loss[i].mean(0), "k", lw=1.5, label="mean")
        ax.set(title=label, xlabel="iteration", ylim=(0, max(1.0, float(np.nanmax(loss[i].mean(0))))))
    axes[0].set_ylabel("training loss")
    axes[0].legend()
    fig.tight_layout()
    paths = [os.path.join(directory, "init_loss.png")]
    fig.savefig(paths[-1], dpi=80)
    plt.close(fig)

    layers = grad.shape[-1]
    fig, axes = plt.subplots(1, layers, figsize=(4 * layers, 3), sharey=True)
    for layer, ax in enumerate(axes):
        for i, label in enumerate(INITIALIZERS):
            # zero init has exactly zero kernel gradients in the hidden layers: floor them for the log axis.
            ax.plot(np.maximum(grad[i, :, :, layer].mean(0), 1e-12), label=label)
        ax.set(title=f"layer {layer + 1}", xlabel="iteration", yscale="log")
    axes[0].set_ylabel("mean |dLoss/dW|")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    paths.append(os.path.join(directory, "init_gradients.png"))
    fig.savefig(paths[-1], dpi=80)
    plt.close(fig)
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (300 steps, 2 seeds)")
    parser.add_argument("--steps", type=int, default=15_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--plots", help="directory for init_loss.png and init_gradients.png")
    args = parser.parse_args(argv)
    steps, seeds = (300, 2) if args.quick else (args.steps, args.seeds)

    data = circles()
    start, cpu_start = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(init_study(data, INITIALIZERS, seeds=seeds, steps=steps))
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"### Weight initialisation ({len(INITIALIZERS)} inits x {seeds} seeds x {steps} full-batch steps)\n")
    print(results_table(out))
    # On a shared machine the wall time depends on the load; the CPU time (all threads) less so.
    print(f"\none jit'd call, compilation included: {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU")
    if args.plots:
        for path in plot(out, args.plots):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
