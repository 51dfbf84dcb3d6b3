"""Benchmark results as Markdown tables, a results document and JSON."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import os
import platform
from typing import Sequence

import jax

from zoo.bench.flops import matmul_peak
from zoo.bench.harness import AUTO_BLOCK_S, AUTO_MIN_STEPS, EntryResult
from zoo.bench.timing import device_name, visible_cores

DASH = "–"


def _fmt(value, spec: str, scale: float = 1.0) -> str:
    return DASH if value is None else format(value * scale, spec)


def _ratio(result: EntryResult, reference: str) -> str:
    ratio = result.ratios.get(reference)
    if ratio is not None:
        return f"{ratio.median:.2f} ({ratio.min:.2f}–{ratio.max:.2f})"
    return "n/a" if reference in result.unavailable else DASH


def _step(timing) -> str:
    return f"{timing.median_s * 1e3:.2f} ({timing.q1_s * 1e3:.2f}–{timing.q3_s * 1e3:.2f})"


def summary_table(results: Sequence[EntryResult]) -> str:
    """One row per benchmark: the zoo's figures and its throughput ratio to each reference."""
    header = (
        "| benchmark | mode | dtype | batch | params | GFLOP/step | compile s | step ms, median (IQR) "
        "| examples/s | tokens/s | GFLOP/s | MFU | memory MB | zoo/torch | zoo/flax |"
    )
    columns = header.count("|") - 1
    lines = [header, "|" + "---|" * columns]
    for r in results:
        if r.status != "ok":
            lines.append(f"| {r.entry} | **{r.status}**: {r.reason} |" + f" {DASH} |" * (columns - 2))
            continue
        z, w = r.zoo, r.workload
        lines.append(
            f"| {r.entry} | {w['mode']} | {w['dtype']} | {w['batch_size']} | {z.params:,} "
            f"| {_fmt(z.flops_per_step, '.4g', 1e-9)} | {_fmt(z.compile_s, '.2f')} | {_step(z.step)} "
            f"| {z.examples_per_s:,.0f} | {_fmt(z.tokens_per_s, ',.0f')} | {_fmt(z.flops_per_s, '.2f', 1e-9)} "
            f"| {_fmt(z.mfu, '.3f')} | {_fmt(z.memory_bytes, '.1f', 2**-20)} "
            f"| {_ratio(r, 'torch')} | {_ratio(r, 'flax')} |"
        )
    return "\n".join(lines)


def contenders_table(results: Sequence[EntryResult]) -> str:
    """One row per contender of every measured benchmark: what the ratios are made of."""
    lines = [
        "| benchmark | contender | params | compile s | timed steps | step ms, median (IQR) | step ms, min–max "
        "| examples/s | GFLOP/s | MFU | page faults/step |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for c in r.contenders.values():
            lines.append(
                f"| {r.entry} | {c.name} | {c.params:,} | {_fmt(c.compile_s, '.2f')} "
                f"| {r.rounds} x {r.steps} | {_step(c.step)} "
                f"| {c.step.min_s * 1e3:.2f}–{c.step.max_s * 1e3:.2f} | {c.examples_per_s:,.0f} "
                f"| {_fmt(c.flops_per_s, '.2f', 1e-9)} | {_fmt(c.mfu, '.3f')} | {_fmt(c.faults_per_step, ',.0f')} |"
            )
    return "\n".join(lines)


def notes(results: Sequence[EntryResult]) -> list[str]:
    """Why a reference is missing, how FLOPs and memory were obtained."""
    lines = []
    for r in results:
        for reference, reason in r.unavailable.items():
            lines.append(f"{r.entry}: no {reference} figure: {reason}")
        lines += [f"{r.entry}: zoo/{ref} = {_ratio(r, ref)}" for ref in r.ratios if ref not in ("torch", "flax")]
        if r.zoo is not None:
            lines.append(f"{r.entry}: FLOPs by {r.zoo.flops_source}; memory from {r.zoo.memory_source or 'n/a'}")
    return lines


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def run_metadata(
    command: str,
    *,
    compare: Sequence[str],
    steps: int | None,
    rounds: int,
    warmup: int,
    dtypes: Sequence[str] = ("float32",),
    runtime: str = "",
) -> dict:
    """The circumstances of a run: command, date, device, versions, threads, timing plan,
    the device's measured dense-matmul peak for each dtype used, the load average and the
    process settings (``runtime``: `zoo.runtime`'s allocator and compilation cache)."""
    return {
        "command": command,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "device": device_name(),
        "device_count": jax.device_count(),
        "cores_visible": visible_cores(),
        "torch_threads": visible_cores() if "torch" in compare else None,
        "versions": {
            "python": platform.python_version(),
            **{p: _version(p) for p in ("jax", "jaxlib", "flax", "optax", "numpy", "torch")},
        },
        "compare": list(compare),
        "warmup_steps": warmup,
        "steps_per_round": steps if steps else "auto",
        "rounds": rounds,
        "matmul_peak_flops_per_s": {d: matmul_peak(d) for d in dtypes},
        "load_average": _load_average(),
        "runtime": runtime,
    }


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (a shared machine slows every contender)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def report_markdown(results: Sequence[EntryResult], metadata: dict) -> str:
    """The tables, notes and the circumstances of the run: what stdout shows and what
    ``--all`` writes to ``benchmarks/results-<device>.md``."""
    m = metadata
    peaks = ", ".join(f"{d} {v / 1e9:.1f} GFLOP/s" for d, v in m["matmul_peak_flops_per_s"].items())
    threads = f"; torch threads {m['torch_threads']}" if m["torch_threads"] else ""
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    k_text = (
        m["steps_per_round"]
        if m["steps_per_round"] != "auto"
        else (
            f"per benchmark, enough for about {AUTO_BLOCK_S} s and at least {AUTO_MIN_STEPS}; "
            "the contenders table gives rounds x K"
        )
    )
    parts = [
        f"# zoo benchmark results: {m['device']}",
        "",
        f"- Command: `{m['command']}`",
        f"- Date: {m['date_utc']}",
        f"- Device: {m['device']} x{m['device_count']}; {m['cores_visible']} CPU cores visible{threads}",
        f"- Versions: {versions}",
        *([f"- Process: {m['runtime']}"] if m.get("runtime") else []),
        *(
            [f"- Load average (1, 5, 15 min) at the end: {', '.join(map(str, m['load_average']))}"]
            if m.get("load_average")
            else []
        ),
        f"- Dense-matmul peak measured in this run (denominator of MFU): {peaks}",
        f"- Timing: {m['warmup_steps']} warm-up steps per contender, then {m['rounds']} rounds; in each round "
        f"every contender in turn runs 1 untimed and K timed steps (K: {k_text}), each ending when the device "
        "is done (`block_until_ready`). Step time: median (interquartile range) over all timed steps.",
        "- zoo/ref = zoo throughput / reference throughput, per round from the round's median step times; "
        "shown as the median over rounds (min–max). > 1 means the zoo is faster. Train mode: SGD, "
        "cross-entropy, the zoo engine's jit'd train step for zoo and flax.",
        "- FLOPs: XLA cost analysis of the compiled step, each scan body multiplied by its trip count. "
        "MFU = achieved FLOP/s / measured matmul peak. Compile time includes tracing and lowering.",
        "",
        summary_table(results),
    ]
    if any(r.contenders for r in results):
        parts += ["", "## Contenders", "", contenders_table(results)]
    extra = notes(results)
    if extra:
        parts += ["", "## Notes", "", *[f"- {line}" for line in extra]]
    return "\n".join(parts) + "\n"


def report_json(results: Sequence[EntryResult], metadata: dict) -> dict:
    return {"metadata": metadata, "results": [dataclasses.asdict(r) for r in results]}
