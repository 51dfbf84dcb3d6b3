"""The seed's gradient-descent variations side by side (kang-lecture4, "Gradient Descent
Variations"): every optimizer of `zoo.optim` on one task and one budget, as Markdown
tables, with the loss curves and the trajectories on a 2-D test function.

    python scripts/optimizer_study.py --plots plots   # the documented run (2,000 updates, 5 seeds)
    python scripts/optimizer_study.py --quick         # a smoke run (what the tests execute)

1. Two circles (`zoo.data.synthetic.circles`), the [2, 10, 5, 1] ReLU net of the
   initialisation study from He-initialised weights: the same number of updates for each
   optimizer; gradient descent uses every example per update, SGD one, mini-batch 32. The
   final full-training-set loss and accuracies are means over seeds (one vmap per optimizer).
2. Rosenbrock's function from (-1.2, 1): the value reached and the path (plotted).
Learning rates are each optimizer's usual order of magnitude, not tuned; they are listed.
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from zoo import optim
from zoo.data.synthetic import circles
from zoo.studies import mlp_params, rosenbrock, train_mlp, trajectory

# label: (zoo.optim name, learning rate, hyper-parameters, batch size or None for full batch)
OPTIMIZERS = {
    "GD (full batch)": ("gd", 0.1, {}, None),
    "SGD (1 example)": ("sgd", 0.01, {}, 1),
    "mini-batch SGD (32)": ("sgd", 0.1, {}, 32),
    "momentum 0.9": ("momentum", 0.1, {}, None),
    "Nesterov 0.9": ("nesterov", 0.1, {}, None),
    "Adagrad": ("adagrad", 0.1, {}, None),
    "Adadelta": ("adadelta", 1.0, {}, None),
    "RMSProp": ("rmsprop", 0.01, {}, None),
    "Adam": ("adam", 0.01, {}, None),
}
# On Rosenbrock (gradients in the hundreds): smaller steps for the unnormalised methods.
ROSENBROCK = {
    "GD": ("gd", 1e-3, {}),
    "momentum 0.9": ("momentum", 1e-4, {}),
    "Nesterov 0.9": ("nesterov", 1e-4, {}),
    "Adagrad": ("adagrad", 0.5, {}),
    "Adadelta": ("adadelta", 1.0, {}),
    "RMSProp": ("rmsprop", 0.01, {}),
    "Adam": ("adam", 0.05, {}),
}
START = (-1.2, 1.0)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows])


def circles_study(steps: int, seeds: int, labels=tuple(OPTIMIZERS)) -> dict:
    """{label: train_mlp outputs with a leading seeds axis}."""
    data = circles()
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    params = jax.vmap(lambda k: mlp_params(k, (2, 10, 5, 1), "he_normal"))(keys)
    x, y, xt, yt = (jnp.asarray(a) for a in (data.x_train, data.y_train, data.x_test, data.y_test))
    results = {}
    for label in labels:
        name, lr, hyper, batch = OPTIMIZERS[label]
        tx = optim.create(name, lr, **hyper)

        def one(p, k, tx=tx, batch=batch):
            out = train_mlp(p, x, y, tx=tx, steps=steps, batch_size=batch, key=k, x_test=xt, y_test=yt)
            del out["params"]
            return out

        results[label] = jax.jit(jax.vmap(one))(params, jax.random.split(jax.random.PRNGKey(1), seeds))
    return results


def circles_table(results: dict) -> str:
    rows = []
    for label, out in results.items():
        name, lr, _, batch = OPTIMIZERS[label]
        loss = np.asarray(out["final_loss"])
        rows.append(
            [
                label,
                f"`{name}`",
                f"{lr:g}",
                "all" if batch is None else batch,
                f"{loss.mean():.3f} ± {loss.std():.3f}",
                f"{np.mean(out['train_accuracy']):.1%}",
                f"{np.mean(out['test_accuracy']):.1%}",
            ]
        )
    return table(["optimizer", "zoo.optim", "lr", "batch", "final loss (mean ± std)", "train acc", "test acc"], rows)


def rosenbrock_paths(steps: int, labels=tuple(ROSENBROCK)) -> dict:
    txs = {label: optim.create(n, lr, **h) for label, (n, lr, h) in ROSENBROCK.items() if label in labels}
    return {
        label: np.asarray(jax.jit(lambda tx=tx: trajectory(rosenbrock, START, tx, steps))())
        for label, tx in txs.items()
    }


def rosenbrock_table(paths: dict) -> str:
    rows = []
    for label, path in paths.items():
        name, lr, _ = ROSENBROCK[label]
        end = path[-1]
        value = float(rosenbrock(jnp.asarray(end)))
        rows.append([label, f"{lr:g}", f"({end[0]:.3f}, {end[1]:.3f})", f"{value:.2e}"])
    return table(["optimizer", "lr", "end point (minimum at (1, 1))", "f(end)"], rows)


def plot(results: dict, paths: dict, directory: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, out in results.items():
        ax.plot(np.asarray(out["loss"]).mean(0), label=label, lw=1)
    ax.set(xlabel="update", ylabel="training loss (mean over seeds)", yscale="log", title="two circles")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out_paths = [os.path.join(directory, "optimizer_loss.png")]
    fig.savefig(out_paths[-1], dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 5))
    a, b = np.meshgrid(np.linspace(-2, 2, 200), np.linspace(-1, 3, 200))
    f = (1 - a) ** 2 + 100 * (b - a**2) ** 2
    ax.contour(a, b, np.log10(f + 1e-3), levels=20, cmap="Greys", linewidths=0.5)
    for label, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], lw=1, label=label)
    ax.plot(*START, "ko")
    ax.plot(1, 1, "r*", ms=12)
    ax.set(xlim=(-2, 2), ylim=(-1, 3), title="Rosenbrock", xlabel="w1", ylabel="w2")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out_paths.append(os.path.join(directory, "optimizer_rosenbrock.png"))
    fig.savefig(out_paths[-1], dpi=80)
    plt.close(fig)
    return out_paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (200 updates, 2 seeds, 3 optimizers)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--plots", help="directory for optimizer_loss.png and optimizer_rosenbrock.png")
    args = parser.parse_args(argv)
    steps, seeds = (200, 2) if args.quick else (args.steps, args.seeds)

    quick = ("GD (full batch)", "mini-batch SGD (32)", "Adam")
    results = circles_study(steps, seeds, quick if args.quick else tuple(OPTIMIZERS))
    print(f"### Optimizers on two circles ({steps} updates, {seeds} seeds)\n")
    print(circles_table(results))
    paths = rosenbrock_paths(steps, ("GD", "Adam") if args.quick else tuple(ROSENBROCK))
    print(f"\n### Optimizers on Rosenbrock's function from {START} ({steps} updates)\n")
    print(rosenbrock_table(paths))
    if args.plots:
        for path in plot(results, paths, args.plots):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
