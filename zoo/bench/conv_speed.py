"""Convolution speed per layer, side by side: ``python -m zoo.bench.conv_speed``.

One stride-1 "SAME" convolution, forward plus both gradients (the kernel's only with
``--first``, as for a first layer whose input needs none), float32 NHWC, for each of
`zoo.nn.fastconv`'s ways (``--impls``: "xla", "im2col", "banded", "winograd", "native",
"auto") and ``torch`` (``nn.Conv2d``, channels-last, ``torch.set_num_threads`` to the
visible cores), timed interleaved by `zoo.bench.rnn_speed.interleaved` (``--rounds`` x
``--steps``). Prints per layer and contender the median step time (min-max over rounds) and
its ratio to torch (> 1: faster than torch).

    python -m zoo.bench.conv_speed --layer 64,32,32,16,16 --layer 16,64,64,16,16
    python -m zoo.bench.conv_speed --layer 64,32,32,1,16 --first --impls native,banded
"""

from __future__ import annotations

import argparse
import statistics

import jax

from zoo import runtime
from zoo.bench.rnn_speed import interleaved
from zoo.bench.timing import visible_cores
from zoo.nn import fastconv

IMPLS = fastconv.CONV_IMPLS


def parse_layer(text: str) -> tuple[int, ...]:
    """ "B,H,W,C,O" or "B,H,W,C,O,K" (K, the square kernel's side: 3 by default)."""
    parts = tuple(int(p) for p in text.split(","))
    if len(parts) not in (5, 6) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"--layer wants B,H,W,C,O[,K] of positive ints, got {text!r}")
    return parts if len(parts) == 6 else (*parts, 3)


def build(layer, names, first: bool, threads: int):
    """{contender: a call of one forward and backward pass}."""
    b, h, w, c, o, k = layer
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(keys[0], (b, h, w, c))
    kernel = jax.random.normal(keys[1], (k, k, c, o)) / (k * k * c) ** 0.5
    dy = jax.random.normal(keys[2], (b, h, w, o))
    runners = {}
    for name in names:
        if name == "torch":
            import torch

            torch.set_num_threads(threads)
            conv = torch.nn.Conv2d(c, o, k, padding="same", bias=False).to(memory_format=torch.channels_last)
            xt = torch.randn(b, c, h, w).to(memory_format=torch.channels_last).requires_grad_(not first)
            dyt = torch.randn(b, o, h, w).to(memory_format=torch.channels_last)

            def run_torch(conv=conv, xt=xt, dyt=dyt):
                conv.zero_grad(set_to_none=True)
                xt.grad = None
                conv(xt).backward(dyt)

            runners[name] = run_torch
        elif name in IMPLS:
            forward = lambda x, kernel, impl=name: fastconv.conv2d(x, kernel, 1, "SAME", impl)
            if first:
                step = jax.jit(lambda x, kernel, dy, f=forward: jax.vjp(lambda k: f(x, k), kernel)[1](dy))
            else:
                step = jax.jit(lambda x, kernel, dy, f=forward: jax.vjp(f, x, kernel)[1](dy))
            runners[name] = lambda step=step: jax.block_until_ready(step(x, kernel, dy))
        else:
            raise ValueError(f"unknown contender {name!r}; expected torch or some of {IMPLS}")
    return runners


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m zoo.bench.conv_speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--layer", type=parse_layer, action="append", help="B,H,W,C,O[,K]; repeatable")
    p.add_argument("--impls", default="native,auto,xla", help=f"comma-separated, of {IMPLS}")
    p.add_argument("--no-torch", action="store_true", help="leave torch out")
    p.add_argument("--first", action="store_true", help="no input gradient (a first layer)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=visible_cores(), help="torch threads")
    a = p.parse_args(argv)
    runtime.tune_cpu()  # as the bench: both contenders share the tuned heap
    names = [n for n in a.impls.split(",") if n] + ([] if a.no_torch else ["torch"])
    print(
        f"# stride-1 SAME conv, forward + {'the kernel' if a.first else 'both'} gradient(s), float32; "
        f"{visible_cores()} cores, torch threads {a.threads}; {a.rounds} rounds x {a.steps} steps"
    )
    print("| layer (B, H, W, C -> O, K) | contender | ms, median (min-max over rounds) | vs torch (min-max) |")
    print("|---|---|---|---|")
    for layer in a.layer or [(64, 32, 32, 16, 16, 3)]:
        medians, _ = interleaved(build(layer, names, a.first, a.threads), a.rounds, a.steps)
        b, h, w, c, o, k = layer
        for name in names:
            ms = [1000 * t for t in medians[name]]
            vs = "-"
            if "torch" in medians and name != "torch":
                ratios = [t / s for s, t in zip(medians[name], medians["torch"])]
                vs = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
            print(
                f"| {b}, {h}x{w}, {c} -> {o}, {k}x{k} | {name} | "
                f"{statistics.median(ms):.2f} ({min(ms):.2f}-{max(ms):.2f}) | {vs} |"
            )


if __name__ == "__main__":
    main()
