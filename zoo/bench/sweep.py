"""Scaling sweeps: how a benchmark's cost grows along one axis (issue 19, lever 4).

    python -m zoo.bench --sweep lstm-seq-len --compare torch    # T = 16 ... 1024
    python -m zoo.bench --sweep all --compare torch             # every sweep, ~15 min on 2 cores

A sweep runs one suite entry (`zoo.bench.suite.SUITE`) at each value of one axis, the
others at the entry's defaults (or the command line's ``--batch-size``, ``--seq-len``,
``--image-size``, ``--set``), each point through `zoo.bench.harness.run_entry`: the same
contenders, interleaved rounds and statistics as every other benchmark. Per point it
reports the step time, the time per unit of work (a token for the LSTM, an image or a
pixel for ResNet: flat when cost grows linearly), the zoo/torch ratio and the compile
time; `write_sweep` keeps one section per sweep in ``benchmarks/sweeps-<platform>.md``
and draws ``benchmarks/sweep-<name>-<platform>.png``.

Compile times are measured cold: the persistent compilation cache is off while a sweep
runs (a cache hit would read ~0 s and hide how compiling grows with the axis).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import math
import pathlib
import re
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from jax.experimental.compilation_cache import compilation_cache

from zoo._choices import unknown_name_error
from zoo.bench.harness import EntryResult, run_entry
from zoo.bench.suite import suite_entry
from zoo.bench.timing import device_name

WORKLOAD_AXES = ("batch_size", "seq_len", "image_size")
# Work units a step's time is divided by: a token (B * T), an image (B), a pixel (B * S²).
UNITS = {
    "token": lambda w: w.batch_size * w.seq_len,
    "image": lambda w: w.batch_size,
    "pixel": lambda w: w.batch_size * w.image_size**2,
}


@dataclasses.dataclass(frozen=True)
class Sweep:
    """Benchmark ``entry`` (a suite entry) at each of ``values`` of ``axis``: a workload
    field (`WORKLOAD_AXES`) or a model config key given as an override (e.g.
    "hidden_size"); step time is also reported per ``unit`` (a key of `UNITS`)."""

    name: str
    entry: str
    axis: str
    values: tuple[int, ...]
    unit: str
    description: str = ""

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError(f"unknown unit {self.unit!r}; expected one of {tuple(UNITS)}")
        if suite_entry(self.entry) is None:
            raise ValueError(f"sweep {self.name!r}: no suite entry {self.entry!r}")


SWEEPS: tuple[Sweep, ...] = (
    Sweep(
        "lstm-seq-len",
        "lstm",
        "seq_len",
        (16, 32, 64, 128, 256, 512, 1024),
        "token",
        "LSTM train step vs sequence length T",
    ),
    Sweep("lstm-batch", "lstm", "batch_size", (8, 16, 32, 64, 128, 256), "token", "LSTM train step vs batch B"),
    Sweep("lstm-hidden", "lstm", "hidden_size", (64, 128, 256, 512), "token", "LSTM train step vs hidden size H"),
    Sweep(
        "resnet18-image-size",
        "resnet18",
        "image_size",
        (32, 64, 128, 224),
        "pixel",
        "ResNet-18 train step vs image side S (S x S x 3)",
    ),
    Sweep("resnet18-batch", "resnet18", "batch_size", (2, 4, 8, 16, 32), "image", "ResNet-18 train step vs batch B"),
)


def get_sweep(name: str) -> Sweep:
    sweep = next((s for s in SWEEPS if s.name == name), None)
    if sweep is None:
        raise unknown_name_error("sweep", name, [s.name for s in SWEEPS])
    return sweep


@dataclasses.dataclass(frozen=True)
class SweepPoint:
    value: int
    units: int  # work units in one step (`Sweep.unit`)
    result: EntryResult


@contextlib.contextmanager
def cold_compiles():
    """The persistent compilation cache off inside the block, on again after if it was.
    JAX decides whether to use the cache at a process's first compile and keeps to it, so
    the switch resets that decision (`reset_cache`) on the way in and out."""
    was = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()
    try:
        yield
    finally:
        jax.config.update("jax_enable_compilation_cache", was)
        compilation_cache.reset_cache()


def run_sweep(
    sweep: Sweep,
    *,
    values: Sequence[int] | None = None,
    batch_size: int | None = None,
    seq_len: int | None = None,
    image_size: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    compare: Sequence[str] = (),
    steps: int | None = None,
    rounds: int = 5,
    warmup: int = 2,
    dtype: str = "float32",
    mode: str = "train",
    progress=None,
) -> list[SweepPoint]:
    """`run_entry` of ``sweep``'s entry at each of ``values`` (default the sweep's) of its
    axis; the other shape options, ``dtype``, ``mode`` and ``overrides`` fix the rest. ``progress(text)`` is
    called before each point. Raises ValueError for an option the axis contradicts."""
    entry = suite_entry(sweep.entry)
    fixed = {"batch_size": batch_size, "seq_len": seq_len, "image_size": image_size}
    if sweep.axis in WORKLOAD_AXES and fixed[sweep.axis] is not None:
        raise ValueError(f"--{sweep.axis.replace('_', '-')} is the axis of sweep {sweep.name!r}: use --values")
    if sweep.axis not in WORKLOAD_AXES and sweep.axis in (overrides or {}):
        raise ValueError(f"{sweep.axis} is the axis of sweep {sweep.name!r}: use --values, not --set")
    values = tuple(values or sweep.values)
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"sweep values must be positive integers, got {values}")
    points = []
    with cold_compiles():
        for i, value in enumerate(values, 1):
            if progress:
                progress(f"[{i}/{len(values)}] {sweep.name}: {sweep.axis}={value} ...")
            shape = {**fixed, sweep.axis: value} if sweep.axis in WORKLOAD_AXES else fixed
            workload = entry.workload(**shape, dtype=dtype, mode=mode)
            given = {**(overrides or {}), **({} if sweep.axis in WORKLOAD_AXES else {sweep.axis: value})}
            result = run_entry(
                entry, workload, overrides=given, compare=compare, steps=steps, rounds=rounds, warmup=warmup
            )
            points.append(SweepPoint(value, UNITS[sweep.unit](workload), result))
    return points


def growth_exponent(values: Sequence[float], times: Sequence[float]) -> float | None:
    """Least-squares slope of log(time) against log(value): 1 for cost linear in the axis
    (None with fewer than two points)."""
    if len(values) < 2:
        return None
    return float(np.polyfit(np.log(values), np.log(times), 1)[0])


def _contender_series(points: Sequence[SweepPoint], name: str) -> tuple[list[int], list[float], list[float]]:
    """(axis values, step seconds, seconds per unit) of contender ``name`` where it ran."""
    rows = [
        (p.value, p.result.contenders[name].step.median_s, p.result.contenders[name].step.median_s / p.units)
        for p in points
        if p.result.status == "ok" and name in p.result.contenders
    ]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def _step_ms(result: EntryResult, name: str) -> str:
    c = result.contenders.get(name)
    if c is None:
        return "–"
    return f"{c.step.median_s * 1e3:.2f} ({c.step.q1_s * 1e3:.2f}–{c.step.q3_s * 1e3:.2f})"


def _per_unit_us(point: SweepPoint, name: str) -> str:
    c = point.result.contenders.get(name)
    return "–" if c is None else f"{c.step.median_s / point.units * 1e6:.3g}"


def sweep_table(sweep: Sweep, points: Sequence[SweepPoint]) -> str:
    """One row per point: zoo and torch step times (median, IQR), both per ``unit``, the
    zoo/torch ratio (median over rounds, min–max), the zoo's compile time, FLOPs, GFLOP/s."""
    header = (
        f"| {sweep.axis} | timed steps | zoo step ms, median (IQR) | torch step ms, median (IQR) | zoo µs/{sweep.unit} "
        f"| torch µs/{sweep.unit} | zoo/torch | zoo compile s | GFLOP/step | zoo GFLOP/s |"
    )
    columns = header.count("|") - 1
    lines = [header, "|" + "---|" * columns]
    for p in points:
        r = p.result
        if r.status != "ok":
            lines.append(f"| {p.value} | **{r.status}**: {r.reason} |" + " – |" * (columns - 2))
            continue
        z = r.zoo
        ratio = r.ratios.get("torch")
        lines.append(
            f"| {p.value} | {r.rounds} x {r.steps} | {_step_ms(r, 'zoo')} | {_step_ms(r, 'torch')} | {_per_unit_us(p, 'zoo')} "
            f"| {_per_unit_us(p, 'torch')} "
            f"| {'–' if ratio is None else f'{ratio.median:.2f} ({ratio.min:.2f}–{ratio.max:.2f})'} "
            f"| {'–' if z.compile_s is None else f'{z.compile_s:.2f}'} "
            f"| {'–' if z.flops_per_step is None else f'{z.flops_per_step / 1e9:.4g}'} "
            f"| {'–' if z.flops_per_s is None else f'{z.flops_per_s / 1e9:.1f}'} |"
        )
    return "\n".join(lines)


def sweep_summary(sweep: Sweep, points: Sequence[SweepPoint]) -> list[str]:
    """Lines under the table: each contender's growth exponent of step time along the axis,
    its per-unit spread (max/min) and the compile time's growth; failures' reasons."""
    lines = []
    for name in ("zoo", "torch"):
        values, steps, per_unit = _contender_series(points, name)
        exponent = growth_exponent(values, steps)
        if exponent is not None:
            lines.append(
                f"{name}: step time grows as {sweep.axis}^{exponent:.2f} over {values[0]}–{values[-1]}; "
                f"time per {sweep.unit} varies {max(per_unit) / min(per_unit):.2f}x "
                f"(min {min(per_unit) * 1e6:.3g} µs at {values[int(np.argmin(per_unit))]}, "
                f"max {max(per_unit) * 1e6:.3g} µs at {values[int(np.argmax(per_unit))]})"
            )
    compiles = [(p.value, p.result.zoo.compile_s) for p in points if p.result.status == "ok" and p.result.zoo]
    if len(compiles) >= 2:
        (v0, c0), (v1, c1) = compiles[0], compiles[-1]
        lines.append(f"zoo compile: {c0:.2f} s at {v0}, {c1:.2f} s at {v1} ({c1 / c0:.2f}x)")
    for p in points:
        for reference, reason in p.result.unavailable.items():
            lines.append(f"{sweep.axis}={p.value}: no {reference} figure: {reason}")
    return lines


def fixed_shape(sweep: Sweep, points: Sequence[SweepPoint]) -> str:
    """What stays fixed along the sweep: the workload's other sizes and dtype, and the
    model overrides (the entry's sizing and the user's ``--set``), the axis left out."""
    result = next((p.result for p in points if p.result.workload), None)
    if result is None:
        return "–"
    w = {k: v for k, v in result.workload.items() if v is not None and k != sweep.axis}
    given = {k: v for k, v in (result.config or {}).items() if k not in ("input_shape", sweep.axis)}
    return ", ".join(f"{k}={v}" for k, v in {**w, **given}.items())


def sweep_section(sweep: Sweep, points: Sequence[SweepPoint], command: str, load: str, plot: str | None) -> str:
    """The Markdown section of one sweep run (title, command, circumstances, table, notes)."""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"## {sweep.name}: {sweep.description}",
        "",
        f"- Command: `{command}`",
        f"- Fixed: {fixed_shape(sweep, points)}",
        f"- Date: {date}; {device_name()}; load average (1, 5, 15 min) before / after: {load}",
        "- Timing: `zoo.bench.harness.run_entry` per point, rounds x K timed steps per contender (K: enough for "
        "~0.5 s, at least 3, unless --steps); step time median (IQR) over all timed steps; zoo/torch per round, "
        "median (min–max); compile cold (no persistent cache).",
        "",
        sweep_table(sweep, points),
        "",
        *[f"- {line}" for line in sweep_summary(sweep, points)],
    ]
    if plot:
        parts += ["", f"![{sweep.name}]({plot})"]
    return "\n".join(parts) + "\n"


def plot_sweep(sweep: Sweep, points: Sequence[SweepPoint], path: pathlib.Path) -> pathlib.Path:
    """Three log-log panels along the axis: step time and time per unit (zoo, torch), and
    the zoo's compile time; saved as a PNG at ``path``."""
    from zoo.figures import _pyplot, _save

    plt = _pyplot()
    from matplotlib import ticker

    fig, (step_ax, unit_ax, compile_ax) = plt.subplots(1, 3, figsize=(11, 3.2))
    for name, color in (("zoo", "tab:blue"), ("torch", "tab:orange")):
        values, steps, per_unit = _contender_series(points, name)
        if values:
            step_ax.plot(values, np.array(steps) * 1e3, "o-", color=color, label=name)
            unit_ax.plot(values, np.array(per_unit) * 1e6, "o-", color=color, label=name)
    compiles = [(p.value, p.result.zoo.compile_s) for p in points if p.result.status == "ok" and p.result.zoo]
    if compiles:
        compile_ax.plot(*zip(*compiles), "o-", color="tab:blue", label="zoo")
    compile_ax.set_ylim(bottom=0)  # linear from 0: a compile time that grows shows it
    for ax, ylabel in ((step_ax, "train step, ms"), (unit_ax, f"µs per {sweep.unit}"), (compile_ax, "compile, s")):
        ax.set_xscale("log", base=2)
        ax.set_xticks([p.value for p in points], [str(p.value) for p in points])
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        if ax is not compile_ax:
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel(sweep.axis, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    unit_ax.set_ylim(*_flat_band(unit_ax.get_ylim()))
    fig.suptitle(f"{sweep.description} ({device_name()}, median step)", fontsize=9)
    fig.tight_layout()
    return pathlib.Path(_save(fig, str(path.parent), path.name))


def _flat_band(limits: tuple[float, float]) -> tuple[float, float]:
    """Y limits spanning at least 4x, so a flat per-unit line looks flat and not noisy."""
    low, high = limits
    centre = math.sqrt(low * high)
    span = max(high / low, 4.0)
    return centre / math.sqrt(span), centre * math.sqrt(span)


_SECTION = re.compile(r"<!-- sweep:(?P<name>[\w.-]+) -->\n(?P<body>.*?)<!-- /sweep:(?P=name) -->\n", re.S)


def merge_sections(document: str, name: str, section: str, title: str) -> str:
    """``document`` (a sweeps file, or "") with sweep ``name``'s section replaced by
    ``section`` (or added); sections in `SWEEPS` order, then any others by name."""
    sections = {m["name"]: m["body"] for m in _SECTION.finditer(document)}
    sections[name] = section
    order = [s.name for s in SWEEPS if s.name in sections] + sorted(set(sections) - {s.name for s in SWEEPS})
    body = "".join(f"<!-- sweep:{n} -->\n{sections[n]}<!-- /sweep:{n} -->\n" for n in order)
    return f"{title}\n\n{body}"


def write_sweep(
    sweep: Sweep, points: Sequence[SweepPoint], results_dir: str, command: str, load: str
) -> tuple[pathlib.Path, pathlib.Path]:
    """Draw the sweep's PNG and put its section into ``results_dir/sweeps-<platform>.md``;
    returns (document, plot) paths."""
    platform = jax.devices()[0].platform
    folder = pathlib.Path(results_dir)
    plot = plot_sweep(sweep, points, folder / f"sweep-{sweep.name}-{platform}.png")
    document = folder / f"sweeps-{platform}.md"
    title = (
        f"# zoo scaling sweeps: {platform}\n\n"
        "How step time grows along one axis, zoo vs its PyTorch twin (`python -m zoo.bench --sweep NAME "
        "--compare torch`; `--sweep all` runs every one). Per-unit columns divide the median step by the "
        "tokens, images or pixels of a step: a flat column means cost linear in the axis. Each section is "
        "rewritten by its own sweep's run."
    )
    section = sweep_section(sweep, points, command, load, plot.name)
    document.write_text(merge_sections(document.read_text() if document.exists() else "", sweep.name, section, title))
    return document, plot
