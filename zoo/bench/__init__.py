"""Benchmark harness: ``python -m zoo.bench --model NAME`` or ``--all`` (see __main__).

Times the zoo's real steps (the engine's jit'd train step or a jit'd apply): parameters,
XLA FLOPs, compile and step time, throughput, MFU against a matmul peak measured in the
same run, memory; optionally interleaved with a PyTorch twin and a Flax stock-layer version.

    entry = bench.resolve_entry("mlp")
    result = bench.run_entry(entry, entry.workload(batch_size=64), compare=("torch",))
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from zoo import registry
from zoo._choices import unknown_name_error
from zoo.bench.flops import count_step_flops, matmul_peak, parameter_count, xla_flops
from zoo.bench.harness import REFERENCES, ContenderResult, EntryResult, run_entry
from zoo.bench.report import report_json, report_markdown, run_metadata, summary_table
from zoo.bench.suite import SUITE, Entry, Workload, registry_entry, suite_entry
from zoo.bench.timing import Ratio, Timing, time_steps


def benchmark_names() -> list[str]:
    """Every name ``--model`` accepts: the suite's entries and every registered model."""
    return sorted({e.name for e in SUITE} | set(registry.list_models()))


def resolve_entry(name: str) -> Entry:
    """The suite entry ``name``, else a default entry for registered model ``name``.

    Raises ValueError naming the valid choices (and near matches) for any other name.
    """
    entry = suite_entry(name)
    if entry is not None:
        return entry
    if name in registry.list_models():
        return registry_entry(name, registry.get_spec(name))
    raise unknown_name_error("model", name, benchmark_names())


def run_suite(
    entries: Sequence[Entry] = SUITE,
    *,
    batch_size: int | None = None,
    seq_len: int | None = None,
    image_size: int | None = None,
    dtype: str = "float32",
    mode: str = "train",
    overrides: Mapping[str, Any] | None = None,
    compare: Sequence[str] = (),
    steps: int | None = None,
    rounds: int = 5,
    warmup: int = 2,
) -> list[EntryResult]:
    """`run_entry` over ``entries``; shape options apply to the entries they fit."""
    return [
        run_entry(
            entry,
            entry.workload(
                batch_size=batch_size, seq_len=seq_len, image_size=image_size, dtype=dtype, mode=mode, strict=False
            ),
            overrides=overrides,
            compare=compare,
            steps=steps,
            rounds=rounds,
            warmup=warmup,
        )
        for entry in entries
    ]


__all__ = [
    "REFERENCES",
    "SUITE",
    "ContenderResult",
    "Entry",
    "EntryResult",
    "Ratio",
    "Timing",
    "Workload",
    "benchmark_names",
    "count_step_flops",
    "matmul_peak",
    "parameter_count",
    "registry_entry",
    "report_json",
    "report_markdown",
    "resolve_entry",
    "run_entry",
    "run_metadata",
    "run_suite",
    "suite_entry",
    "summary_table",
    "time_steps",
    "xla_flops",
]
