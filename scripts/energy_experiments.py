"""Experiments with the energy-based networks (zoo.models.energy), printed as Markdown tables.

    python scripts/energy_experiments.py            # all of them, a few minutes on CPU
    python scripts/energy_experiments.py hopfield   # or: capacity, hopfield(_fashion), timing, rbm, dbn
    python scripts/energy_experiments.py --plot docs/figures/hopfield_capacity.png  # N = 100..1000

* capacity: Hopfield recall of random patterns (5% of units flipped) vs stored patterns
  per neuron, N = 100, 200, 400: the knee near 0.138 N.
* --plot PATH [--max-n N]: the capacity curve (exact recall and units wrong vs P / N) for
  N = 100, 200, 400, 1000 (those up to --max-n), 3 seeds x 64 probes, as a small PNG.
* hopfield: the seed's task on binarised digits (n = 64): store P ~ 0.05n..0.15n digit
  images (one per class), recall each from probes with 10/20/30% of pixels flipped;
  Hopfield (synchronous recall; correct = the stored image exactly) and Hamming network
  (MAXNET winner = the probe's source).
* hopfield_fashion: the same on Fashion-MNIST (n = 784), P = 10, 39, 118 (~0.013n, 0.05n,
  0.15n; the stored images nearest each class mean, classes interleaved), 20 probes each.
* timing: synchronous recall of 1,000 probes on N = 784 as one jit'd call.
* rbm: RBM over [pixels, labels] on binarised digits trained by zoo.fit with CD-1, CD-5
  and PCD-1: reconstruction error and the free-energy classifier's accuracy.
* dbn: two RBMs (64-128-64) pre-trained greedily with zoo.fit, copied into the
  registered "mlp" (sigmoid) and fine-tuned, vs the same MLP from random weights, with
  the same optimizer and epochs, on all labels and on 10% of them.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

# Run from a checkout: this checkout's zoo, not another one installed elsewhere.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import zoo  # noqa: E402
from zoo.data import Dataset  # noqa: E402
from zoo.models import energy as E  # noqa: E402
from zoo.train.pretrain import pretrain_layerwise  # noqa: E402


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def capacity():
    rows = []

    @jax.jit  # store, flip 5% of each pattern's units, recall: one program per (P, N)
    def recall_flipped(patterns, key):
        probes = E.flip_bits(patterns, 0.05, key)
        return E.hopfield_recall_batch(E.hebbian_weights(patterns), probes)[0]

    for ratio in (0.05, 0.1, 0.12, 0.138, 0.15, 0.2, 0.3):
        row = [f"{ratio:.3f}"]
        for n in (100, 200, 400):
            p = max(1, int(round(ratio * n)))
            rates = []
            for seed in range(3):
                rng = np.random.default_rng(seed)
                patterns = np.where(rng.random((p, n)) < 0.5, -1.0, 1.0).astype(np.float32)
                states = np.asarray(recall_flipped(patterns, jax.random.PRNGKey(seed)))
                rates.append([np.mean(np.all(states == patterns, axis=1)), np.mean(states != patterns)])
            exact, bits = np.mean(rates, axis=0)
            row.append(f"{exact:.2f} / {bits:.1%}")
        rows.append(row)
    return (
        "Hopfield capacity: stored random patterns recalled exactly from 5% flipped units / "
        "units wrong after recall (3 seeds)\n\n"
    ) + table(["P / N", "N = 100", "N = 200", "N = 400"], rows)


def capacity_curve(n: int, ratios, seeds: int = 3, noise: float = 0.05, probes: int = 64):
    """(exact recall fraction, fraction of units wrong) per ratio P / N: P random bipolar
    patterns stored in N units, ``probes`` of them (drawn with replacement; a fixed count, so
    one compile per N) recalled synchronously from a probe with ``noise`` of its units flipped."""
    recall = jax.jit(lambda w, p: E.hopfield_recall_batch(w, p, max_steps=30)[0])
    exact, wrong = [], []
    for ratio in ratios:
        p = max(1, int(round(ratio * n)))
        rates = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            patterns = np.where(rng.random((p, n)) < 0.5, -1.0, 1.0).astype(np.float32)
            target = patterns[rng.integers(0, p, probes)]
            noisy = E.flip_bits(jnp.asarray(target), noise, jax.random.PRNGKey(seed))
            states = np.asarray(recall(E.hebbian_weights(patterns), noisy))
            rates.append([np.mean(np.all(states == target, axis=1)), np.mean(states != target)])
        e, b = np.mean(rates, axis=0)
        exact.append(e)
        wrong.append(b)
    return np.array(exact), np.array(wrong)


def capacity_plot(path: str, sizes=(100, 200, 400, 1000)):
    """Recall success vs P / N for each N in ``sizes``, written to ``path`` (PNG, dpi 80)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratios = np.round(np.arange(0.02, 0.301, 0.01), 3)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3))
    for n in sizes:
        exact, wrong = capacity_curve(n, ratios)
        ax1.plot(ratios, exact, marker=".", label=f"N = {n}")
        ax2.plot(ratios, 100 * wrong, marker=".", label=f"N = {n}")
    for ax in (ax1, ax2):
        ax.axvline(0.138, color="gray", linestyle="--", linewidth=1)
        ax.set_xlabel("stored patterns per neuron, P / N")
    ax1.set_ylabel("patterns recalled exactly")
    ax2.set_ylabel("units wrong after recall, %")
    ax1.legend(fontsize=8)
    fig.suptitle(
        "Hopfield capacity: Hebbian storage, synchronous recall from 5% flipped units (3 seeds x 64 probes)", fontsize=9
    )
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _binary_digits(name: str = "digits"):
    data = zoo.data.load_dataset(name)
    x = np.where(data.x_train.reshape(len(data.x_train), -1) > 0.5, 1.0, -1.0).astype(np.float32)
    return data, x


def _typical_images(data, x, per_class: int):
    """(10 * per_class, n): for each class in turn, its ``per_class`` training images nearest
    the class mean, interleaved so that the first P rows hold every class once before any twice."""
    chosen = []
    for c in range(data.num_classes):
        xc = x[data.y_train == c]
        chosen.append(xc[np.argsort(((xc - xc.mean(0)) ** 2).sum(1))[:per_class]])
    return np.stack(chosen, 1).reshape(-1, x.shape[1])


def hopfield(dataset: str = "digits", stored=(3, 6, 10), repeats: int = 100):
    """The seed's task: store P typical images, recall each from probes with 10/20/30% flipped."""
    data, x = _binary_digits(dataset)
    n = x.shape[1]
    stored_all = _typical_images(data, x, -(-max(stored) // data.num_classes))
    recall = jax.jit(lambda w, p: E.hopfield_recall_batch(w, p, max_steps=50)[0])
    rows = []
    for p in stored:
        patterns = stored_all[:p]
        w = E.hebbian_weights(patterns)
        fixed = np.mean(np.all(np.asarray(E.hopfield_step(w, patterns)) == patterns, axis=1))
        for noise in (0.1, 0.2, 0.3):
            source = np.repeat(np.arange(p), repeats)
            probes = E.flip_bits(jnp.asarray(patterns[source]), noise, jax.random.PRNGKey(p * 100 + int(noise * 10)))
            states = np.asarray(recall(w, probes))
            hop = np.mean(np.all(states == patterns[source], axis=1))
            nearest = np.argmin((states[:, None, :] != patterns[None]).sum(-1), axis=1)
            index, _, _ = E.hamming_recall_batch(patterns, probes)
            ham = np.mean(np.asarray(index) == source)
            rows.append(
                [p, f"{p / n:.2f}", f"{fixed:.2f}", f"{noise:.0%}", f"{hop:.2f}", f"{np.mean(nearest == source):.2f}"]
                + [f"{ham:.2f}"]
            )
    title = f"Binarised {dataset} (n = {n}), the stored images nearest their class means, {repeats} noisy probes each"
    return f"{title}\n\n" + table(
        [
            "stored P",
            "P / n",
            "Hopfield: stored images stable",
            "flipped",
            "Hopfield exact recall",
            "Hopfield: nearest stored image is the source",
            "Hamming recall",
        ],
        rows,
    )


def hopfield_fashion():
    """The same on Fashion-MNIST (n = 784, Debian's dataset-fashion-mnist): P up to 0.15 n."""
    return hopfield("fashion_mnist", stored=(10, 39, 118), repeats=20)


def _reconstruction_error(model, variables, x):
    bits = (x.reshape(len(x), -1) > 0.5).astype(np.float32)
    return float(np.mean((np.asarray(model.apply(variables, x, method=model.reconstruct)) - bits) ** 2))


def rbm():
    data = zoo.data.load_dataset("digits")
    rows = []
    for label, overrides in (
        ("CD-1", {}),
        ("CD-5", {"cd_steps": 5}),
        ("PCD-1", {"persistent": True, "num_chains": 64}),
    ):
        start = time.perf_counter()
        result = zoo.fit(
            "rbm",
            data,
            epochs=30,
            batch_size=32,
            learning_rate=0.05,
            model_overrides={"num_hidden": 128, **overrides},
            progress=False,
        )
        seconds = time.perf_counter() - start
        init = result.model.init(jax.random.PRNGKey(0), data.x_test[:2])
        rows.append(
            [
                label,
                f"{_reconstruction_error(result.model, init, data.x_test):.3f}",
                f"{_reconstruction_error(result.model, result.state.variables, data.x_test):.3f}",
                f"{result.test_metrics['accuracy']:.3f}",
                f"{seconds:.0f}",
            ]
        )
    return "RBM on binarised digits (128 hidden, [pixels, label] visible), 30 epochs, lr 0.05, batch 32\n\n" + table(
        ["rule", "recon. MSE at init", "recon. MSE trained", "test accuracy, argmin F(x, c)", "seconds"], rows
    )


def pretrain_dbn(data: Dataset, hidden_sizes=(128, 64), epochs: int = 20, learning_rate: float = 0.05):
    """Greedy layer-wise pre-training (`zoo.train.pretrain.pretrain_layerwise`): each RBM is
    fitted by zoo.fit, by CD-1, on the codes p(h|v) of the one below. Returns the MLP's
    hidden-layer parameters (`dbn_mlp_params`)."""
    layers = [("rbm", {"num_hidden": h, "use_labels": False, "binarize": i == 0}) for i, h in enumerate(hidden_sizes)]
    results = pretrain_layerwise(
        layers, data, epochs=epochs, learning_rate=learning_rate, validation_fraction=0.0, progress=False
    )
    return E.dbn_mlp_params([jax.device_get(r.variables["params"]) for r in results])


def dbn():
    data = zoo.data.load_dataset("digits")
    hidden = (128, 64)
    # The pixels the first RBM sees are binarised; the fine-tuned MLP sees the same bits.
    binary = lambda x: (x > 0.5).astype(np.float32)
    bits = Dataset(
        name="digits-binary",
        task="classification",
        x_train=binary(data.x_train),
        y_train=data.y_train,
        x_test=binary(data.x_test),
        y_test=data.y_test,
        num_classes=10,
    )
    start = time.perf_counter()
    dbn = pretrain_dbn(bits, hidden)
    pretrain_seconds = time.perf_counter() - start
    rows = []
    for fraction in (1.0, 0.1):
        n = int(round(fraction * len(bits.x_train)))
        subset = dataclasses.replace(bits, x_train=bits.x_train[:n], y_train=bits.y_train[:n])
        common = dict(
            epochs=30,
            optimizer="sgd",
            learning_rate=0.5,
            batch_size=32,
            model_overrides={"hidden_sizes": hidden, "activation": "sigmoid"},
            progress=False,
        )
        accuracy = {}
        for label, extra in (("random init", {}), ("DBN pre-trained", {"initial_variables": {"params": dbn}})):
            accuracy[label] = zoo.fit("mlp", subset, **common, **extra).test_metrics["accuracy"]
        rows.append([f"{n}", f"{accuracy['random init']:.3f}", f"{accuracy['DBN pre-trained']:.3f}"])
    return (
        f"DBN 64-128-64 on binarised digits: greedy RBM pre-training (CD-1, 20 epochs per layer, "
        f"{pretrain_seconds:.0f} s, unlabelled training images), then the sigmoid MLP fine-tuned 30 epochs "
        "(SGD, lr 0.5, batch 32) vs the same MLP from random weights\n\n"
        + table(["labelled training images", "test accuracy, random init", "test accuracy, DBN init"], rows)
    )


def timing():
    """Synchronous recall of 1,000 probes on N = 784 (MNIST-sized) as one jit'd call."""
    n, p, probes_count = 784, 78, 1000
    rng = np.random.default_rng(0)
    patterns = np.where(rng.random((p, n)) < 0.5, -1.0, 1.0).astype(np.float32)
    w = E.hebbian_weights(patterns)
    source = rng.integers(0, p, probes_count)
    probes = E.flip_bits(jnp.asarray(patterns[source]), 0.1, jax.random.PRNGKey(0))
    recall = jax.jit(lambda w, x: E.hopfield_recall_batch(w, x)[0])
    start = time.perf_counter()
    states = recall(w, probes).block_until_ready()
    compile_seconds = time.perf_counter() - start
    times = []
    for _ in range(5):
        start = time.perf_counter()
        recall(w, probes).block_until_ready()
        times.append(time.perf_counter() - start)
    exact = np.mean(np.all(np.asarray(states) == patterns[source], axis=1))
    return f"Hopfield recall, one jit'd call on {jax.devices()[0].platform}\n\n" + table(
        [
            "N",
            "stored",
            "probes (10% flipped)",
            "first call (compile + run), s",
            "median of 5 runs, ms",
            "exact recall",
        ],
        [[n, p, probes_count, f"{compile_seconds:.2f}", f"{1000 * np.median(times):.0f}", f"{exact:.3f}"]],
    )


EXPERIMENTS = {
    "capacity": capacity,
    "hopfield": hopfield,
    "hopfield_fashion": hopfield_fashion,
    "timing": timing,
    "rbm": rbm,
    "dbn": dbn,
}


def main(argv):
    if "--plot" in argv:
        i = argv.index("--plot")
        path, argv = argv[i + 1], argv[:i] + argv[i + 2 :]
        max_n = 1000
        if "--max-n" in argv:
            j = argv.index("--max-n")
            max_n, argv = int(argv[j + 1]), argv[:j] + argv[j + 2 :]
        start = time.perf_counter()
        capacity_plot(path, tuple(n for n in (100, 200, 400, 1000) if n <= max_n))
        print(f"wrote {path} ({time.perf_counter() - start:.0f} s)", flush=True)
        if not argv:
            return
    names = argv or list(EXPERIMENTS)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise SystemExit(f"unknown experiment {unknown}; choose from {list(EXPERIMENTS)}")
    for name in names:
        print(EXPERIMENTS[name]() + "\n", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
