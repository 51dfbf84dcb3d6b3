"""Recurrent-layer speed, side by side: ``python -m zoo.bench.rnn_speed --cell lstm``.

B=64, T=128, I=64, H=256, float32, the gradient of the summed outputs with respect to the
weights, for ``torch`` (``torch.nn.LSTM`` / ``GRU``), ``flax`` (``nn.RNN`` of
``OptimizedLSTMCell`` / ``GRUCell``), ``plain`` (`scan_cell` with ``impl="scan"``),
``fast`` (``impl="fast"``, `zoo.nn.fastrnn`) and ``native`` (``impl="native"``, `zoo.native`'s
kernels), timed interleaved by `zoo.bench.timing`
(``--rounds`` x ``--steps``; ratios are medians over rounds). Also reported: minor page
faults per call, the load average before and after, and with ``--compile`` the compile
time at T=16 and T=1024 (it must not grow with the length). For one core run it under
``taskset -c 0`` with ``--threads 1``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from zoo.bench.timing import minor_page_faults, timed_steps, visible_cores

CONTENDERS = ("torch", "flax", "plain", "fast", "native")
_ZOO_IMPLS = {"plain": "scan", "fast": "fast", "native": "native"}  # contender -> the cell's impl


def _load() -> str:
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def _weights(cell, key, I, H):
    ks = jax.random.split(key, 4)
    bound = 1.0 / H**0.5
    u = lambda k, s: jax.random.uniform(k, s, jnp.float32, -bound, bound)
    if cell == "lstm":
        return {"kernel": u(ks[0], (I + H, 4 * H)), "bias": u(ks[1], (4 * H,))}
    return {
        "input_kernel": u(ks[0], (I, 3 * H)),
        "recurrent_kernel": u(ks[1], (H, 3 * H)),
        "bias": u(ks[2], (3 * H,)),
        "recurrent_bias": u(ks[3], (H,)),
    }


def zoo_losses(cell, B, H) -> dict:
    """Contender name -> loss ``(w, x) -> sum of outputs`` for ``cell`` "lstm" or "gru": the
    zoo's cell with each of its impls (`_ZOO_IMPLS`), on the weights ``w``."""
    from zoo.nn import recurrence

    z = jnp.zeros((B, H), jnp.float32)
    carry = (z, z) if cell == "lstm" else z

    def loss(impl):
        module = recurrence.make_cell(cell, H, impl=impl)
        return lambda w, x: recurrence.scan_cell(module.apply({"params": w}, x.shape[-1]), carry, x)[1].sum()

    return {name: loss(impl) for name, impl in _ZOO_IMPLS.items()}


def _jax_runner(f, *args):
    def run():
        jax.block_until_ready(f(*args))

    return run


def build(cell, names, B, T, I, H, threads):
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (B, T, I), jnp.float32)
    w = _weights(cell, key, I, H)
    losses = zoo_losses(cell, B, H)
    runners = {}
    for name in names:
        if name == "torch":
            import torch

            torch.set_num_threads(threads)
            torch.manual_seed(0)
            layer = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(I, H, batch_first=True)
            xt = torch.from_numpy(jax.device_get(x))

            def run_torch(layer=layer, xt=xt):
                layer.zero_grad(set_to_none=True)
                layer(xt)[0].sum().backward()

            runners[name] = run_torch
        elif name == "flax":
            import flax.linen as nn

            rnn = nn.RNN(nn.OptimizedLSTMCell(H) if cell == "lstm" else nn.GRUCell(H))
            params = rnn.init(key, x)
            runners[name] = _jax_runner(jax.jit(jax.grad(lambda p, x: rnn.apply(p, x).sum())), params, x)
        elif name in losses:
            runners[name] = _jax_runner(jax.jit(jax.grad(losses[name])), w, x)
        else:
            raise ValueError(f"unknown contender {name!r}; expected some of {CONTENDERS}")
    return runners


def interleaved(runners, rounds, steps):
    """Per contender: the lists over rounds of the round's median wall-clock step time and
    median process CPU time per step (s). On one core (taskset, one thread) CPU time is the
    work done, whatever time the process spent descheduled on a busy machine."""
    for run in runners.values():
        run()
        run()
    medians = {name: [] for name in runners}
    cpu = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            run()
            times, cpus = timed_steps(run, steps)
            medians[name].append(statistics.median(times))
            cpu[name].append(statistics.median(cpus))
    return medians, cpu


def faults_per_call(run, calls=3):
    run()
    before = minor_page_faults()
    for _ in range(calls):
        run()
    return (minor_page_faults() - before) / calls


def compile_times(cell, B, I, H, seq_lens=(16, 1024), repeats=3):
    """Median seconds to trace, lower and compile the jitted weight gradient, per zoo
    contender (`zoo_losses`) and sequence length."""
    w = _weights(cell, jax.random.PRNGKey(0), I, H)
    out = {}
    for name, f in zoo_losses(cell, B, H).items():
        for T in seq_lens:
            x = jnp.zeros((B, T, I), jnp.float32)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                jax.jit(jax.grad(f)).lower(w, x).compile()
                times.append(time.perf_counter() - t0)
            out[name, T] = statistics.median(times)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m zoo.bench.rnn_speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--cell", choices=("lstm", "gru"), default="lstm")
    p.add_argument("--contenders", default=",".join(CONTENDERS), help=f"comma-separated, of {CONTENDERS}")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=visible_cores(), help="torch threads")
    p.add_argument("--compile", action="store_true", help="also time compiles at T=16 and T=1024")
    a = p.parse_args(argv)
    names = [n for n in a.contenders.split(",") if n]
    B, T, I, H = a.batch_size, a.seq_len, a.input_size, a.hidden_size

    runners = build(a.cell, names, B, T, I, H, a.threads)
    faults = {name: faults_per_call(run) for name, run in runners.items()}
    load0 = _load()
    med, cpu = interleaved(runners, a.rounds, a.steps)
    load1 = _load()
    print(
        f"# {a.cell}: B={B} T={T} I={I} H={H} float32, grad of summed outputs wrt weights; "
        f"{visible_cores()} cores visible, torch threads {a.threads}; "
        f"{a.rounds} rounds x {a.steps} steps; load average {load0} -> {load1}"
    )
    ref = "fast" if "fast" in med else names[-1]
    print(
        f"| contender | step ms, median (min-max over rounds) | tokens/s | {ref} speedup (min-max) "
        f"| CPU ms/step | {ref} CPU-time speedup (min-max) | faults/call |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in names:
        ms = [1000 * t for t in med[name]]
        ratios = [med[name][k] / med[ref][k] for k in range(a.rounds)]
        cratios = [cpu[name][k] / cpu[ref][k] for k in range(a.rounds)]
        print(
            f"| {name} | {statistics.median(ms):.1f} ({min(ms):.1f}-{max(ms):.1f}) | "
            f"{B * T / statistics.median(med[name]):,.0f} | "
            f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) | "
            f"{1000 * statistics.median(cpu[name]):.1f} | "
            f"{statistics.median(cratios):.2f} ({min(cratios):.2f}-{max(cratios):.2f}) | {faults[name]:,.0f} |"
        )
    if a.compile:
        ct = compile_times(a.cell, B, I, H)
        for name in sorted({name for name, _ in ct}):
            print(
                f"compile {name}: T=16 {ct[name, 16]:.2f} s, T=1024 {ct[name, 1024]:.2f} s, "
                f"ratio {ct[name, 1024] / ct[name, 16]:.2f}"
            )


if __name__ == "__main__":
    main()
