"""The README's figures, each drawn from a documented run by one function (issue 20).

    python -m zoo.figures --out docs/figures             # every figure, full runs (~10 min on 2 busy cores)
    python -m zoo.figures --quick --only hopfield_recall # tiny runs: a smoke test of the drawing code
    python -m zoo.figures --list

Every function takes ``(out, quick)``, runs its model (or, with ``quick=True``, a tiny
version of the same run), saves small PNGs (Matplotlib's Agg backend, dpi 80) under
``out`` and returns their paths; its docstring names the run. `FIGURES` maps each figure
name to its function and the files it writes; `tests/test_figures.py` checks that every
one is committed under ``docs/figures/`` and referenced by the README. The initialisation,
optimizer and Hopfield-capacity figures are drawn by their study scripts under
``scripts/`` (run from a source checkout).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import re
import runpy
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import zoo

DPI = 80
REPO = pathlib.Path(__file__).resolve().parents[1]
BENCH_RESULTS = REPO / "benchmarks" / "results-cpu.md"

# 10x10 block letters for the Hopfield figure (the associative-memory notebook's patterns).
LETTERS = {
    "H": ["#........#"] * 4 + ["##########"] * 2 + ["#........#"] * 4,
    "T": ["##########"] * 2 + ["....##...."] * 8,
    "L": ["##........"] * 8 + ["##########"] * 2,
    "X": [
        "#........#",
        ".#......#.",
        "..#....#..",
        "...#..#...",
        "....##....",
        "....##....",
        "...#..#...",
        "..#....#..",
        ".#......#.",
        "#........#",
    ],
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: str, name: str) -> str:
    """Write ``fig`` to ``out/name`` at `DPI` and close it; returns the path."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, name)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def _subset(data, n_train: int, n_test: int):
    """The first ``n_train`` training and ``n_test`` test examples of ``data`` (tiny runs)."""
    return dataclasses.replace(
        data,
        x_train=data.x_train[:n_train],
        y_train=data.y_train[:n_train],
        x_test=data.x_test[:n_test],
        y_test=data.y_test[:n_test],
    )


def _script(name: str) -> dict:
    """The globals of ``scripts/<name>.py`` (the study scripts live beside the package, not in it)."""
    path = REPO / "scripts" / f"{name}.py"
    if not path.exists():
        raise ValueError(f"zoo.figures needs {path}: run it from a source checkout of zoo")
    return runpy.run_path(str(path))


# --- Convolutional networks.


def lenet5_features(out: str, quick: bool = False) -> list[str]:
    """LeNet-5's six first-layer 5x5 kernels and the feature maps of both conv layers on one
    test digit. Run: ``zoo.fit("lenet5", load_dataset("digits", image_size=28), epochs=4,
    batch_size=32, optimizer="adamw", learning_rate=2e-3, optimizer_kwargs={"weight_decay":
    0.05, "schedule": "cosine"})`` (the CNN notebook's run, 4 epochs instead of 12; a few
    seconds). Quick: 1 epoch on 64 images."""
    plt = _pyplot()
    digits = zoo.data.load_dataset("digits", image_size=28)
    if quick:
        digits = _subset(digits, 64, 8)
    result = zoo.fit(
        "lenet5",
        digits,
        model_overrides={"conv_impl": "xla"} if quick else {},
        epochs=1 if quick else 4,
        batch_size=32,
        optimizer="adamw",
        learning_rate=2e-3,
        optimizer_kwargs={"weight_decay": 0.05, "schedule": "cosine"},
        validation_fraction=0,
        progress=False,
    )
    kernels = np.asarray(result.variables["params"]["conv1"]["kernel"])  # (5, 5, 1, 6)
    image = digits.x_test[:1]
    _, state = result.model.apply(result.variables, image, capture_intermediates=True)
    maps = {k: np.asarray(v["__call__"][0][0]) for k, v in state["intermediates"].items() if k.startswith("conv")}
    rows = [("conv1 kernels", [kernels[:, :, 0, i] for i in range(kernels.shape[-1])], "gray")]
    rows += [
        (f"{k} maps {m.shape[:2]}", [m[:, :, i] for i in range(min(8, m.shape[-1]))], "viridis")
        for k, m in sorted(maps.items())
    ]
    columns = 1 + max(len(images) for _, images, _ in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(0.9 * columns, 1.0 * len(rows)))
    for r, (title, images, cmap) in enumerate(rows):
        if r:  # the input digit beside its feature maps
            axes[r, 0].imshow(image[0, :, :, 0], cmap="gray")
        for c, img in enumerate(images, start=1):
            axes[r, c].imshow(img, cmap=cmap)
        axes[r, 1].set_title(title, fontsize=7, loc="left")
    for ax in axes.flat:
        ax.axis("off")
    accuracy = result.test_metrics["accuracy"]
    fig.suptitle(f"LeNet-5 on digits 28x28 (test accuracy {accuracy:.3f})", fontsize=8)
    return [_save(fig, out, "lenet5_features.png")]


def cnn_cam_saliency(out: str, quick: bool = False) -> list[str]:
    """Class activation maps (`zoo.cam`) and gradient saliency (`zoo.saliency`) of the
    predicted class for six test digits. Run: ``zoo.fit("resnet20", load_dataset("digits",
    image_size=16), epochs=4, batch_size=64, learning_rate=3e-3, model_overrides={"width":
    8, "conv_impl": "xla"})`` (the CNN notebook's run, 4 epochs instead of 6; about a minute). Quick: one stage
    block each, width 4, 1 epoch on 64 images."""
    plt = _pyplot()
    digits = zoo.data.load_dataset("digits", image_size=16)
    # XLA's convolutions: the default banded/Winograd programs compile several times longer.
    overrides = {"width": 8, "conv_impl": "xla"}
    if quick:
        digits = _subset(digits, 64, 6)
        overrides = {"width": 4, "stage_sizes": (1, 1, 1), "conv_impl": "xla"}
    result = zoo.fit(
        "resnet20",
        digits,
        epochs=1 if quick else 4,
        batch_size=64,
        learning_rate=3e-3,
        model_overrides=overrides,
        validation_fraction=0,
        progress=False,
    )
    images = digits.x_test[:6]
    cams, logits = zoo.cam(result.model, result.variables, images)  # (6, 10, 16, 16)
    saliency, _ = zoo.saliency(result.model, result.variables, images)  # (6, 10, 16, 16)
    predicted = np.asarray(logits.argmax(-1))
    fig, axes = plt.subplots(3, len(images), figsize=(1.1 * len(images), 3.6))
    for i, c in enumerate(predicted):
        axes[0, i].imshow(images[i, :, :, 0], cmap="gray")
        axes[0, i].set_title(f"predicted {c}", fontsize=7)
        axes[1, i].imshow(images[i, :, :, 0], cmap="gray")
        axes[1, i].imshow(np.asarray(cams[i, c]), cmap="jet", alpha=0.5)
        axes[2, i].imshow(np.asarray(saliency[i, c]), cmap="hot")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, label in zip(axes[:, 0], ("digit", "CAM", "saliency")):
        ax.set_ylabel(label, fontsize=8)
    fig.suptitle(
        f"ResNet-20 (width {overrides['width']}) on digits 16x16, test accuracy {result.test_metrics['accuracy']:.3f}",
        fontsize=8,
    )
    return [_save(fig, out, "cnn_cam_saliency.png")]


# --- Recurrent networks and sequence to sequence.


def seq2seq_attention(out: str, quick: bool = False) -> list[str]:
    """Bahdanau attention weights while translating one spelled-out test date to ISO 8601.
    Run: ``zoo.fit("seq2seq_bahdanau", load_dataset("dates", num_examples=4000), epochs=4,
    batch_size=64, learning_rate=3e-3)`` (the README's dates run with 4,000 training dates
    and 4 epochs instead of 10,000 and 8; a few minutes). Quick: 64 dates, hidden 16, 1 epoch."""
    plt = _pyplot()
    data = zoo.data.load_dataset("dates", num_examples=64 if quick else 4000, num_test_examples=20)
    result = zoo.fit(
        "seq2seq_bahdanau",
        data,
        model_overrides={"hidden_size": 16, "embed_dim": 8} if quick else {},
        epochs=1 if quick else 4,
        batch_size=64,
        learning_rate=3e-3,
        validation_fraction=0,
        progress=False,
    )
    # The first test date spelled out in words (>= 25 characters), where attention has to read.
    lengths = (np.asarray(data.x_test) != 0).sum(axis=1)
    pick = int(np.argmax(lengths >= 25)) if (lengths >= 25).any() else 0
    source = data.x_test[pick : pick + 1]
    decoded = result.model.apply(result.variables, source)
    tokens = data.vocabulary.tokens
    src = [tokens[i] for i in np.asarray(source[0]) if i != 0]
    from zoo.data.seq2seq_tasks import decode_tokens

    predicted = np.asarray(decoded["predictions"][0])
    out_tokens = decode_tokens(data.vocabulary, predicted)
    rows = min(len(out_tokens) + 1, len(predicted))  # the decoded characters and the end token
    labels = [tokens[i] for i in predicted[:rows]]
    attention = np.asarray(decoded["attention"][0])[:rows, : len(src)]  # (T_out, T_in)
    fig, ax = plt.subplots(figsize=(0.14 * len(src) + 1, 0.25 * attention.shape[0] + 1))
    ax.imshow(attention, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(src)), [t if t != " " else "␣" for t in src], fontsize=6)
    ax.set_yticks(range(rows), labels, fontsize=7)
    ax.set_title(f"Bahdanau attention: '{''.join(src)}' -> {''.join(out_tokens)}", fontsize=8)
    return [_save(fig, out, "seq2seq_attention.png")]


def gradient_through_time(out: str, quick: bool = False) -> list[str]:
    """||dLoss/dh_t|| per time step (`zoo.explain.gradient_norms_through_time`) for Elman,
    LSTM (forget bias 0 and 1) and GRU classifiers at initialisation (hidden 32, 16 random
    sequences of 50 steps, 4 features, a loss on the last step): the README's and the
    recurrent notebook's experiment, no training. Quick: T = 10."""
    plt = _pyplot()
    steps = 10 if quick else 50
    x = jnp.asarray(np.random.default_rng(0).normal(size=(16, steps, 4)).astype(np.float32))
    y = jnp.asarray(np.arange(16) % 2)
    fig, ax = plt.subplots(figsize=(5, 3))
    for name, label, extra in [
        ("rnn", "Elman (tanh)", {}),
        ("lstm", "LSTM", {}),
        ("lstm", "LSTM, forget bias 1", {"forget_bias": 1.0}),
        ("gru", "GRU", {}),
    ]:
        model = zoo.create_model(name, input_shape=(steps, 4), hidden_size=32, num_classes=2, **extra)
        variables = model.init(jax.random.PRNGKey(0), x)
        norms = zoo.explain.gradient_norms_through_time(model, variables, x, y)["encoder/layers_0"]
        ax.semilogy(np.arange(1, steps + 1), np.asarray(norms), label=label)
    ax.set(xlabel="time step t (loss at the last step)", ylabel="||dLoss / dh_t||")
    ax.set_title("Gradient through time at initialisation (hidden 32)", fontsize=9)
    ax.legend(fontsize=7)
    return [_save(fig, out, "gradient_through_time.png")]


# --- Benchmarks.

_RATIO = re.compile(r"^([\d.]+) \(([\d.]+)–([\d.]+)\)$")


def parse_bench_results(text: str) -> dict:
    """The committed benchmark document (`zoo.bench.report.report_markdown`) -> ``{"ratios":
    {benchmark: (median, min, max)} of zoo/torch throughput over rounds, "steps":
    {benchmark: {contender: (median, q1, q3)} step ms}}``; benchmarks without a torch
    figure are left out of "ratios"."""
    ratios, steps = {}, {}
    section = None
    for line in text.splitlines():
        if line.startswith("| benchmark |"):
            section = "contenders" if "| contender |" in line else "summary"
            header = [c.strip() for c in line.strip("|").split("|")]
            continue
        if not line.startswith("|"):
            section = None  # a table ends at its first non-table line
        if section is None or not line.startswith("| "):
            continue
        cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
        if section == "summary":
            match = _RATIO.match(cells.get("zoo/torch", ""))
            if match:
                ratios[cells["benchmark"]] = tuple(float(v) for v in match.groups())
        else:
            match = _RATIO.match(cells.get("step ms, median (IQR)", "").replace(",", ""))
            if match:
                steps.setdefault(cells["benchmark"], {})[cells["contender"]] = tuple(float(v) for v in match.groups())
    return {"ratios": ratios, "steps": steps}


def bench_ratios(out: str, quick: bool = False) -> list[str]:
    """zoo/PyTorch throughput per benchmark (median over rounds, whiskers min–max over
    rounds) and each contender's step time (median, whiskers the interquartile range over
    all timed steps), parsed from the committed ``benchmarks/results-cpu.md`` (``python -m
    zoo.bench --all --compare torch,flax``). No run: ``quick`` draws the same figure."""
    plt = _pyplot()
    if not BENCH_RESULTS.exists():
        raise ValueError(f"bench_ratios reads {BENCH_RESULTS}: run it from a source checkout of zoo")
    parsed = parse_bench_results(BENCH_RESULTS.read_text())
    names = list(parsed["ratios"])
    if not names:
        raise ValueError(f"{BENCH_RESULTS} has no zoo/torch ratio to draw")
    median, low, high = np.array([parsed["ratios"][n] for n in names]).T
    labels = [n.replace("`", "") for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    where = np.arange(len(names))
    left.barh(where, median, xerr=[median - low, high - median], capsize=3, color="tab:blue")
    left.axvline(1.0, color="gray", linestyle="--", linewidth=1)
    left.set_yticks(where, labels, fontsize=7)
    left.invert_yaxis()
    left.set_xlabel("zoo / PyTorch throughput (> 1: zoo faster)", fontsize=8)
    left.set_title("median over 5 rounds, whiskers min–max", fontsize=8)
    width = 0.4
    for offset, contender, color in ((-width / 2, "zoo", "tab:blue"), (width / 2, "torch", "tab:orange")):
        stats = np.array([parsed["steps"][n].get(contender, (np.nan,) * 3) for n in names])
        right.barh(
            where + offset,
            stats[:, 0],
            height=width,
            color=color,
            label=contender,
            xerr=[stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]],
            capsize=2,
        )
    right.set_xscale("log")
    right.set_yticks(where, labels, fontsize=7)
    right.invert_yaxis()
    right.set_xlabel("train step, ms (log)", fontsize=8)
    right.set_title("median, whiskers interquartile range", fontsize=8)
    right.legend(fontsize=7)
    fig.suptitle("zoo vs PyTorch on 2 CPU cores (benchmarks/results-cpu.md)", fontsize=9)
    fig.tight_layout()
    return [_save(fig, out, "bench_ratios.png")]


# --- Autoencoders.


def autoencoder_reconstructions(out: str, quick: bool = False) -> list[str]:
    """Eight test digits, an autoencoder's reconstructions (hidden (16,)), Gaussian noise
    sigma 0.3 and the denoising autoencoder's output. Runs: ``zoo.fit("autoencoder", digits,
    model_overrides={"hidden_sizes": (16,)}, epochs=30, learning_rate=3e-3)`` and
    ``zoo.fit("denoising_autoencoder", digits, epochs=30, learning_rate=3e-3)`` (the
    autoencoder notebook's runs; seconds). Quick: 1 epoch on 64 images."""
    from zoo.models.autoencoders.dense import corrupt

    plt = _pyplot()
    data = zoo.data.load_dataset("digits")
    if quick:
        data = _subset(data, 64, 8)
    epochs = 1 if quick else 30
    ae = zoo.fit(
        "autoencoder", data, model_overrides={"hidden_sizes": (16,)}, epochs=epochs, learning_rate=3e-3, progress=False
    )
    dae = zoo.fit("denoising_autoencoder", data, epochs=epochs, learning_rate=3e-3, progress=False)
    x = data.x_test[:8]
    noisy = np.asarray(corrupt(x, jax.random.PRNGKey(0), "gaussian", 0.3))
    rows = [
        ("input", x),
        ("autoencoder (16 units)", ae.model.apply(ae.variables, x)["reconstruction"]),
        ("noise sigma 0.3", noisy),
        ("denoising autoencoder", dae.model.apply(dae.variables, noisy)["reconstruction"]),
    ]
    fig, axes = plt.subplots(len(rows), len(x), figsize=(0.8 * len(x), 0.95 * len(rows)))
    for r, (title, images) in enumerate(rows):
        for i in range(len(x)):
            axes[r, i].imshow(np.clip(np.asarray(images[i, ..., 0]), 0, 1), cmap="gray", vmin=0, vmax=1)
            axes[r, i].axis("off")
        axes[r, 0].set_title(title, fontsize=7, loc="left")
    return [_save(fig, out, "autoencoder_reconstructions.png")]


# --- Associative memories.


def hopfield_recall(out: str, quick: bool = False) -> list[str]:
    """Synchronous Hopfield recall, step by step: the letters H, T, L, X (10x10, +-1)
    stored with `hebbian_weights`, a probe of H with 35 of 100 pixels flipped
    (`flip_bits`), each `hopfield_step` until a fixed point, and `hopfield_recall`'s answer
    (the associative-memory notebook's run; no training, a second). ``quick`` draws the same."""
    from zoo.models import energy as E

    plt = _pyplot()
    letters = np.array([[1.0 if ch == "#" else -1.0 for ch in "".join(rows)] for rows in LETTERS.values()], np.float32)
    w = E.hebbian_weights(letters)
    probe = E.flip_bits(jnp.asarray(letters[:1]), 0.35, jax.random.PRNGKey(0))[0]
    states = [probe]
    while len(states) < 8:
        following = E.hopfield_step(w, states[-1])
        if bool(jnp.all(following == states[-1])):
            break
        states.append(following)
    recalled, steps, _ = E.hopfield_recall(w, probe)
    images = list(letters) + [None] + states + [recalled]
    titles = [f"stored {k}" for k in LETTERS] + [None, "probe (35% flipped)"]
    titles += [f"step {i}" for i in range(1, len(states))] + [f"recalled ({int(steps)} steps)"]
    fig, axes = plt.subplots(1, len(images), figsize=(0.95 * len(images), 1.3))
    for ax, img, title in zip(axes, images, titles):
        ax.axis("off")
        if img is not None:
            ax.imshow(np.asarray(img).reshape(10, 10), cmap="gray_r", vmin=-1, vmax=1)
            ax.set_title(title, fontsize=6)
    return [_save(fig, out, "hopfield_recall.png")]


def hopfield_capacity(out: str, quick: bool = False) -> list[str]:
    """Hopfield capacity: recall vs P / N for N = 100 to 1000 (``python
    scripts/energy_experiments.py --plot docs/figures/hopfield_capacity.png --max-n 1000``,
    about 30 s). Quick: N = 100 only."""
    script = _script("energy_experiments")
    path = os.path.join(out, "hopfield_capacity.png")
    return [script["capacity_plot"](path, (100,) if quick else (100, 200, 400, 1000))]


# --- Hierarchical auxiliary learning.


def hal_superclasses(out: str, quick: bool = False) -> list[str]:
    """HAL test error per superclass case against the MLP baseline on digits, mean and std
    over seeds (``scripts/hal_experiments.py``'s `run`, the hierarchical notebook's run:
    ``--dataset digits --cases case1,case4 --seeds 2 --epochs 5``; about a minute).
    Quick: case1 only, 1 seed, 1 epoch."""
    plt = _pyplot()
    hal = _script("hal_experiments")
    cases, seeds, epochs = (["case1"], 1, 1) if quick else (["case1", "case4"], 2, 5)
    errors = hal["run"]("digits", "mlp", cases, seeds, epochs=epochs, batch_size=32, learning_rate=1e-3)
    names = list(errors)
    fig, ax = plt.subplots(figsize=(4, 2.8))
    ax.bar(
        names,
        [np.mean(errors[n]) for n in names],
        yerr=[np.std(errors[n]) for n in names],
        capsize=4,
        color=["gray"] + ["tab:green"] * len(cases),
    )
    ax.set_ylabel("test error (%)")
    ax.set_title(f"HAL on digits (MLP backbone, {seeds} seeds x {epochs} epochs)", fontsize=8)
    return [_save(fig, out, "hal_superclasses.png")]


# --- Training techniques (drawn by their study scripts).


def init_study(out: str, quick: bool = False) -> list[str]:
    """Loss curves and per-layer gradient sizes per initialisation (``python
    scripts/init_study.py --plots docs/figures``: 15,000 full-batch steps x 5 seeds, about
    15 s of CPU). Quick: ``--quick`` (300 steps, 2 seeds)."""
    _script("init_study")["main"](["--plots", out] + (["--quick"] if quick else []))
    return [os.path.join(out, "init_loss.png"), os.path.join(out, "init_gradients.png")]


def optimizer_study(out: str, quick: bool = False) -> list[str]:
    """Loss per optimizer on two circles and paths on Rosenbrock's function (``python
    scripts/optimizer_study.py --plots docs/figures``: 2,000 updates x 5 seeds). Quick:
    ``--quick`` (200 updates, 2 seeds, 3 optimizers)."""
    _script("optimizer_study")["main"](["--plots", out] + (["--quick"] if quick else []))
    return [os.path.join(out, "optimizer_loss.png"), os.path.join(out, "optimizer_rosenbrock.png")]


FIGURES: dict[str, tuple[Callable[[str, bool], list[str]], tuple[str, ...]]] = {
    "lenet5_features": (lenet5_features, ("lenet5_features.png",)),
    "cnn_cam_saliency": (cnn_cam_saliency, ("cnn_cam_saliency.png",)),
    "seq2seq_attention": (seq2seq_attention, ("seq2seq_attention.png",)),
    "gradient_through_time": (gradient_through_time, ("gradient_through_time.png",)),
    "bench_ratios": (bench_ratios, ("bench_ratios.png",)),
    "autoencoder_reconstructions": (autoencoder_reconstructions, ("autoencoder_reconstructions.png",)),
    "hopfield_recall": (hopfield_recall, ("hopfield_recall.png",)),
    "hopfield_capacity": (hopfield_capacity, ("hopfield_capacity.png",)),
    "hal_superclasses": (hal_superclasses, ("hal_superclasses.png",)),
    "init_study": (init_study, ("init_loss.png", "init_gradients.png")),
    "optimizer_study": (optimizer_study, ("optimizer_loss.png", "optimizer_rosenbrock.png")),
}


def make_figures(out: str = "docs/figures", *, quick: bool = False, only=None) -> list[str]:
    """Draw the figures named in ``only`` (default all of `FIGURES`) under ``out``; returns the paths."""
    names = list(FIGURES) if not only else list(only)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; choose from {list(FIGURES)}")
    paths = []
    for name in names:
        start = time.perf_counter()
        written = FIGURES[name][0](out, quick)
        print(f"{name}: {', '.join(written)} ({time.perf_counter() - start:.0f} s)", flush=True)
        paths += written
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Draw the README's figures from their documented runs.")
    parser.add_argument("--out", default="docs/figures", help="directory for the PNGs (default docs/figures)")
    parser.add_argument("--quick", action="store_true", help="tiny runs: checks the drawing, not the results")
    parser.add_argument("--only", nargs="+", metavar="NAME", help=f"some of: {', '.join(FIGURES)}")
    parser.add_argument("--list", action="store_true", help="print the figure names and their files")
    args = parser.parse_args(argv)
    if args.list:
        for name, (_, files) in FIGURES.items():
            print(f"{name}: {', '.join(files)}")
        return
    make_figures(args.out, quick=args.quick, only=args.only)


if __name__ == "__main__":
    main()
