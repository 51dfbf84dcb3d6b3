"""The runner: one benchmark, its contenders compiled, warmed up and timed interleaved
(`zoo.bench.timing.time_steps`, in one process: on a shared, noisy machine a ratio only
means something between numbers taken side by side); FLOPs, peak and memory from
`zoo.bench.flops`.
"""

from __future__ import annotations

import dataclasses
import traceback
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from zoo import registry
from zoo.bench.contenders import Contender, Unavailable, device_batch, jax_contender, make_host_batch, torch_contender
from zoo.bench.flops import device_peak_bytes, matmul_peak
from zoo.bench.suite import Entry, Workload
from zoo.bench.timing import Ratio, Timing, device_name, minor_page_faults, time_steps
from zoo.train.loop import PROFILE_STEPS

REFERENCES = ("torch", "flax", "sklearn")
# A ratio to a reference is a median over rounds: at least this many (DESIGN.md).
MIN_RATIO_ROUNDS = 5
# Automatic steps per round: enough for each contender's timed block to last about
# AUTO_BLOCK_S (short steps are noisy one by one), within [AUTO_MIN_STEPS, AUTO_MAX_STEPS];
# the floor keeps the 1 s steps of ResNet-18 and VGG-11 on 2 CPU cores within the
# suite's ~5 minute budget (the rounds, not the steps, give the ratio its spread).
AUTO_BLOCK_S, AUTO_MIN_STEPS, AUTO_MAX_STEPS = 0.5, 3, 200


@dataclasses.dataclass(frozen=True)
class ContenderResult:
    name: str
    params: int
    step: Timing
    examples_per_s: float
    tokens_per_s: float | None
    compile_s: float | None
    flops_per_step: float | None
    flops_source: str
    flops_per_s: float | None
    mfu: float | None  # achieved FLOP/s / measured dense-matmul peak of the dtype
    memory_bytes: int | None
    memory_source: str
    faults_per_step: float | None = None  # minor page faults per timed step, whole process


@dataclasses.dataclass(frozen=True)
class EntryResult:
    """Everything measured for one benchmark. status: "ok", "absent" (model not
    registered) or "failed" (reason and traceback say why)."""

    entry: str
    model: str
    status: str
    device: str
    reason: str = ""
    workload: dict | None = None
    config: dict | None = None
    steps: int = 0
    rounds: int = 0
    peak_flops_per_s: float | None = None
    contenders: dict = dataclasses.field(default_factory=dict)  # name -> ContenderResult
    ratios: dict = dataclasses.field(default_factory=dict)  # reference -> Ratio
    unavailable: dict = dataclasses.field(default_factory=dict)  # reference -> reason
    traceback: str | None = None

    @property
    def zoo(self) -> ContenderResult | None:
        return self.contenders.get("zoo")


def model_config(entry: Entry, workload: Workload, overrides: Mapping[str, Any] | None = None) -> tuple[dict, dict]:
    """(overrides given to ``create_model``, the model's full config): the entry's sizing
    for this workload, updated by the user's ``overrides``."""
    given = {**entry.config(workload), **(overrides or {})}
    return given, {**registry.get_spec(entry.model).config, **given}


def example_shape_of(config: Mapping[str, Any], workload: Workload) -> tuple[int, ...]:
    """One example's shape: the model's ``input_shape``, a free (None) axis taking the
    workload's sequence length."""
    shape = tuple(config["input_shape"])
    if any(d is None for d in shape) and workload.seq_len is None:
        raise ValueError(f"input shape {shape} has a free axis: give a sequence length")
    return tuple(workload.seq_len if d is None else int(d) for d in shape)


def auto_steps(step_estimate_s: float) -> int:
    """Timed steps per round for a step of about ``step_estimate_s`` seconds."""
    return int(min(AUTO_MAX_STEPS, max(AUTO_MIN_STEPS, np.ceil(AUTO_BLOCK_S / max(step_estimate_s, 1e-9)))))


def run_entry(
    entry: Entry,
    workload: Workload,
    *,
    overrides: Mapping[str, Any] | None = None,
    compare: Sequence[str] = (),
    steps: int | None = None,
    rounds: int = 5,
    warmup: int = 2,
    profile: str | None = None,
) -> EntryResult:
    """Benchmark ``entry`` on ``workload`` against the references in ``compare``: after
    ``warmup``, each of ``rounds`` rounds runs every contender for one untimed step (its
    predecessor's threads wind down) and ``steps`` timed ones (None: `auto_steps`). An
    unregistered model is "absent", a bad override ValueError, any other failure "failed".
    ``profile``: a folder for a `jax.profiler` trace of the zoo's step, `PROFILE_STEPS`
    steps after the warmup (untimed).
    """
    device = jax.devices()[0]
    base = dict(entry=entry.name, model=entry.model, device=device_name(device))
    if entry.model not in registry.list_models():
        return EntryResult(**base, status="absent", reason=f"model {entry.model!r} is not registered yet")
    unknown = [r for r in compare if r not in REFERENCES]
    if unknown:
        raise ValueError(f"unknown reference(s) {unknown}; expected some of {REFERENCES}")
    if (steps is not None and steps < 1) or rounds < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1, rounds >= 1, warmup >= 0; got {steps}, {rounds}, {warmup}")
    if compare and rounds < MIN_RATIO_ROUNDS:
        raise ValueError(f"a ratio to a reference needs at least {MIN_RATIO_ROUNDS} rounds, got {rounds}")
    given, config = model_config(entry, workload, overrides)
    model = registry.create_model(entry.model, **given)
    spec = registry.get_spec(entry.model)
    if workload.mode == "train" and not spec.learns_by_gradient and entry.contenders is None:
        raise ValueError(f"model {entry.model!r} learns by {spec.learning!r}, not a gradient: use --mode forward")
    example_shape = example_shape_of(config, workload)
    base.update(workload=dataclasses.asdict(workload), config=_jsonable(given), rounds=rounds)

    # The device's peak is process-wide and never falls: an earlier benchmark's can hide this one's.
    peak_before = device_peak_bytes(device)
    try:
        if entry.contenders:  # the entry's own step (a learning rule), its own references
            builders = entry.contenders(config, workload)
            zoo = builders["zoo"]()
        else:
            host_batch = make_host_batch(model, spec.task, example_shape, workload, entry.input_vocab)
            batch = device_batch(host_batch, workload)
            analytic = entry.analytic_flops(config, workload) if entry.analytic_flops else None
            zoo = jax_contender("zoo", model, spec.task, batch, example_shape, workload, analytic)
        warmup_times = time_steps(zoo.run_step, max(warmup, 1 if steps is None else 0))
        if profile is not None:
            with jax.profiler.trace(profile):
                for _ in range(PROFILE_STEPS):
                    zoo.run_step()
        steps = steps or auto_steps(min(warmup_times))
        base["steps"] = steps
        # Read before any reference runs: the device's peak is process-wide.
        device_peak = device_peak_bytes(device)
        peak = matmul_peak(workload.dtype)

        contenders, unavailable = [zoo], {}
        for reference in compare:
            try:
                if entry.contenders:
                    if reference not in builders:
                        raise Unavailable(f"no {reference} contender for this benchmark")
                    contender = builders[reference]()
                else:
                    contender = _reference(
                        reference, entry, config, spec.task, host_batch, batch, example_shape, workload
                    )
                for _ in range(warmup):
                    contender.run_step()
                contenders.append(contender)
            except Unavailable as e:
                unavailable[reference] = str(e)
            except Exception as e:  # a broken reference must not hide the zoo's figures
                unavailable[reference] = f"failed: {type(e).__name__}: {e}"

        samples: dict[str, list[list[float]]] = {c.name: [] for c in contenders}
        faults = {c.name: 0 for c in contenders}
        for _ in range(rounds):
            for contender in contenders:
                contender.run_step()
                before = minor_page_faults()
                samples[contender.name].append(time_steps(contender.run_step, steps))
                faults[contender.name] += minor_page_faults() - before
    except Exception as e:
        return EntryResult(**base, status="failed", reason=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())

    results = {}
    for contender in contenders:
        timing = Timing.from_rounds(samples[contender.name])
        flops_per_s = contender.flops / timing.median_s if contender.flops else None
        memory, memory_source = contender.memory_bytes, "compiled memory_analysis"
        if contender is zoo and device_peak is not None and device_peak > (peak_before or 0):
            memory, memory_source = device_peak, "device memory_stats peak"
        results[contender.name] = ContenderResult(
            name=contender.name,
            params=contender.params,
            step=timing,
            examples_per_s=workload.batch_size / timing.median_s,
            tokens_per_s=workload.batch_size * workload.seq_len / timing.median_s if workload.seq_len else None,
            compile_s=contender.compile_s,
            flops_per_step=contender.flops,
            flops_source=contender.flops_source,
            flops_per_s=flops_per_s,
            mfu=flops_per_s / peak if flops_per_s else None,
            memory_bytes=memory,
            memory_source=memory_source if memory is not None else "",
            faults_per_step=faults[contender.name] / (rounds * steps),
        )
    ratios = {
        name: Ratio.from_timings(name, results["zoo"].step, result.step)
        for name, result in results.items()
        if name != "zoo"
    }
    return EntryResult(
        **base, status="ok", peak_flops_per_s=peak, contenders=results, ratios=ratios, unavailable=unavailable
    )


def _reference(name, entry: Entry, config, task_name, host_batch, batch, example_shape, workload) -> Contender:
    if name == "torch":
        return torch_contender(entry.torch_twin, config, task_name, host_batch, workload)
    if name == "sklearn":
        raise Unavailable("no scikit-learn reference for this benchmark")
    if entry.flax_stock is None:
        raise Unavailable("no Flax stock-layer builder for this benchmark")
    try:
        stock = entry.flax_stock(config)
    except ValueError as e:
        raise Unavailable(str(e)) from None
    return jax_contender("flax", stock, task_name, batch, example_shape, workload)


def _jsonable(value):
    """Config values as JSON-friendly data (tuples become lists, other objects text)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
