"""Timing: the one loop that times a step, and the statistics of its samples.

Every benchmark here (the harness's contenders, `zoo.bench.rnn_speed`, the matmul peak)
times its steps with `time_steps`. A step is timed on its own only if it returns once its
work is finished on the device: JAX steps end in ``block_until_ready``, torch ones
synchronise.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import resource
import statistics
import time
from typing import Any, Callable, Sequence

import jax
import numpy as np


def visible_cores() -> int:
    """CPU cores this process may run on (what XLA's CPU thread pool uses)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def minor_page_faults() -> int:
    """Minor page faults of this process so far (memory mapped in afresh, every thread)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def device_name(device=None) -> str:
    device = device or jax.devices()[0]
    return f"{device.platform} ({device.device_kind})"


def timed_steps(run_step: Callable[[], Any], steps: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU seconds of each of ``steps`` calls of ``run_step`` (which
    returns once its work is done). The garbage collector is paused, as ``timeit`` does,
    so one contender's collection is not billed to another; CPU time sums every thread.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        wall, cpu = [], []
        for _ in range(steps):
            cpu_start, start = time.process_time(), time.perf_counter()
            run_step()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
        return wall, cpu
    finally:
        if gc_was_enabled:
            gc.enable()


def time_steps(run_step: Callable[[], Any], steps: int) -> list[float]:
    """Wall-clock seconds of each of ``steps`` consecutive calls of ``run_step`` (see
    `timed_steps`)."""
    return timed_steps(run_step, steps)[0]


@dataclasses.dataclass(frozen=True)
class Timing:
    """Step time statistics over every timed step of every round, in seconds."""

    median_s: float
    q1_s: float
    q3_s: float
    min_s: float
    max_s: float
    samples: int
    round_medians_s: tuple[float, ...]

    @classmethod
    def from_rounds(cls, rounds: Sequence[Sequence[float]]) -> "Timing":
        pooled = np.concatenate([np.asarray(r, np.float64) for r in rounds])
        q1, median, q3 = np.percentile(pooled, [25, 50, 75])
        return cls(
            median_s=float(median),
            q1_s=float(q1),
            q3_s=float(q3),
            min_s=float(pooled.min()),
            max_s=float(pooled.max()),
            samples=int(pooled.size),
            round_medians_s=tuple(float(statistics.median(r)) for r in rounds),
        )


@dataclasses.dataclass(frozen=True)
class Ratio:
    """zoo throughput / reference throughput (> 1: the zoo is faster), computed per round
    from the two contenders' median step times of that round; the median over rounds
    and its min-max spread."""

    reference: str
    median: float
    min: float
    max: float
    per_round: tuple[float, ...]

    @classmethod
    def from_timings(cls, reference: str, zoo: Timing, other: Timing) -> "Ratio":
        per_round = tuple(o / z for z, o in zip(zoo.round_medians_s, other.round_medians_s))
        return cls(reference, float(statistics.median(per_round)), min(per_round), max(per_round), per_round)
