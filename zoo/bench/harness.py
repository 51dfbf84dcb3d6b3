"""Measurement: how each contender is built, timed, counted and compared.

A contender is one way of running a benchmark step: "zoo" (the zoo's model through the
training engine's own jit'd train step, or a jit'd inference apply), "flax" (Flax stock
layers through the same engine step) and "torch" (the hand-written PyTorch twin with
the same optimizer and loss). Every contender is reduced to a ``run_step()`` callable that
returns once its step has finished on the device, and every one is timed by the same
function, `time_steps`. Contenders are timed interleaved, round after round, in one
process, because this kind of machine is shared and noisy: a ratio is only meaningful
between numbers taken side by side.

FLOPs come from XLA's cost analysis of the compiled step. XLA counts the body of a loop
once, not once per trip, so `count_step_flops` finds every ``scan`` in the step's jaxpr,
costs its body with XLA on its own and adds the missing trips.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import importlib.util
import os
import statistics
import time
import traceback
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np
import optax

from zoo import registry
from zoo.bench.suite import Entry, Workload
from zoo.train.state import create_train_state, init_variables
from zoo.train.steps import make_train_step
from zoo.tasks import get_task

REFERENCES = ("torch", "flax")
# A ratio to a reference is a median over rounds: at least this many (DESIGN.md).
MIN_RATIO_ROUNDS = 5
# Plain SGD for every contender: the benchmark times the model, not the optimizer.
LEARNING_RATE = 0.01
# Tasks whose targets are class ids on the last output axis (cross-entropy in torch).
CLASS_ID_TASKS = ("classification", "sequence_classification", "sequence_to_sequence")
# Automatic steps per round: enough for each contender's timed block to last about
# AUTO_BLOCK_S (short steps are noisy one by one), within [AUTO_MIN_STEPS, AUTO_MAX_STEPS];
# the floor keeps the 1 s steps of ResNet-18 and VGG-11 on 2 CPU cores within the
# suite's ~5 minute budget (the rounds, not the steps, give the ratio its spread).
AUTO_BLOCK_S, AUTO_MIN_STEPS, AUTO_MAX_STEPS = 0.5, 3, 200


class Unavailable(Exception):
    """A reference cannot run here (no twin, torch missing, a config it cannot copy ...)."""


def visible_cores() -> int:
    """CPU cores this process may run on (what XLA's CPU thread pool uses)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def device_name(device=None) -> str:
    device = device or jax.devices()[0]
    return f"{device.platform} ({device.device_kind})"


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------


def time_steps(run_step: Callable[[], Any], steps: int) -> list[float]:
    """Wall-clock seconds of each of ``steps`` consecutive calls of ``run_step``.

    ``run_step`` must return only once its work is finished on the device (JAX
    contenders end in ``block_until_ready``, torch ones synchronise), so that each sample
    is one whole step. The garbage collector is paused while timing, as ``timeit`` does,
    so that a collection triggered by one contender is not billed to another.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        samples = []
        for _ in range(steps):
            start = time.perf_counter()
            run_step()
            samples.append(time.perf_counter() - start)
        return samples
    finally:
        if gc_was_enabled:
            gc.enable()


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
            median_s=float(median), q1_s=float(q1), q3_s=float(q3),
            min_s=float(pooled.min()), max_s=float(pooled.max()), samples=int(pooled.size),
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


# --------------------------------------------------------------------------------------
# FLOPs, device peak, memory
# --------------------------------------------------------------------------------------


def xla_flops(compiled) -> float | None:
    """FLOPs of a compiled (or lowered) computation by XLA's cost analysis (None if the
    backend gives none). Depending on the JAX version the analysis is a dict or a list."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else None
    if not analysis or "flops" not in analysis:
        return None
    return float(analysis["flops"])


def _jaxpr_body_flops(closed_jaxpr) -> float:
    """XLA's FLOP count of a loop body on its own. The analysis of the lowered body
    (before optimisation) is used where the backend gives one: it matched the compiled
    body's count within 0.5% for an LSTM step, without the cost of compiling it."""
    avals = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype) for v in closed_jaxpr.jaxpr.invars]
    lowered = jax.jit(jex.core.jaxpr_as_fun(closed_jaxpr)).lower(*avals)
    flops = xla_flops(lowered)
    return flops if flops is not None else (xla_flops(lowered.compile()) or 0.0)


def _missing_loop_trips(jaxpr) -> tuple[float, int]:
    """(FLOPs XLA leaves out by counting each scan body once, number of while loops
    whose trip count is unknown and so stay counted once).

    With ``once`` the XLA count of a body that itself holds loops counted once, and
    ``inner`` what that body misses, a scan of ``length`` trips contributes
    ``length * (once + inner)``, of which the enclosing count already holds ``once``.
    """
    missing, uncounted = 0.0, 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "scan":
            body = eqn.params["jaxpr"]
            inner, inner_uncounted = _missing_loop_trips(body.jaxpr)
            once = _jaxpr_body_flops(body)
            missing += eqn.params["length"] * (once + inner) - once
            uncounted += inner_uncounted
            continue
        if name == "while":
            uncounted += 1
        for sub in jex.core.jaxprs_in_params(eqn.params):
            sub_missing, sub_uncounted = _missing_loop_trips(sub)
            missing += sub_missing
            uncounted += sub_uncounted
    return missing, uncounted


def count_step_flops(fn, compiled, *args) -> tuple[float | None, str]:
    """(FLOPs of one call of jitted ``fn`` on ``args``, how they were counted).

    ``compiled`` is ``fn.lower(*args).compile()``. Its XLA cost analysis is corrected
    for ``scan`` trip counts; ``while`` loops of unknown trip count stay counted once,
    which the returned description says (give such an entry ``analytic_flops``).
    """
    total = xla_flops(compiled)
    if total is None:
        return None, "not reported by this backend"
    missing, uncounted = _missing_loop_trips(jax.make_jaxpr(fn)(*args).jaxpr)
    source = "XLA cost analysis"
    if missing:
        source += ", scan bodies x trip count"
    if uncounted:
        source += f"; {uncounted} while loop(s) counted once (undercount)"
    return total + missing, source


@functools.lru_cache(maxsize=None)
def matmul_peak(dtype: str = "float32", size: int | None = None, repeats: int = 10) -> float:
    """The default device's dense-matmul rate in FLOP/s: the best of ``repeats`` timed
    ``size``³ products (2048 on CPU, 8192 on accelerators, where a smaller product is
    launch-bound), measured once per process and dtype."""
    device = jax.devices()[0]
    n = size or (2048 if device.platform == "cpu" else 8192)
    key_a, key_b = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(key_a, (n, n), jnp.float32).astype(dtype)
    b = jax.random.normal(key_b, (n, n), jnp.float32).astype(dtype)
    matmul = jax.jit(jnp.matmul).lower(a, b).compile()
    run = lambda: matmul(a, b).block_until_ready()  # noqa: E731
    run()
    return 2.0 * n**3 / min(time_steps(run, repeats))


def device_peak_bytes(device=None) -> int | None:
    """Peak bytes in use on the device so far in this process (None where the backend
    keeps no statistics, e.g. CPU)."""
    stats = (device or jax.devices()[0]).memory_stats()
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def compiled_memory_bytes(compiled) -> int | None:
    """Bytes a compiled executable needs: arguments + outputs + temporaries + code, less
    the outputs that reuse (donated) argument buffers."""
    analysis = compiled.memory_analysis()
    if analysis is None:
        return None
    return int(
        analysis.argument_size_in_bytes + analysis.output_size_in_bytes + analysis.temp_size_in_bytes
        + analysis.generated_code_size_in_bytes - analysis.alias_size_in_bytes
    )


def parameter_count(params) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(np.prod(np.shape(leaf), dtype=np.int64) for leaf in jax.tree.leaves(params)))


# --------------------------------------------------------------------------------------
# Contenders
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Contender:
    """One way of running the benchmark step; ``run_step()`` returns when it is done."""

    name: str
    run_step: Callable[[], None]
    params: int
    compile_s: float | None = None
    flops: float | None = None
    flops_source: str = ""
    memory_bytes: int | None = None


def make_host_batch(model, task: str, example_shape, workload: Workload, input_vocab: int | None) -> dict:
    """A random batch as NumPy arrays: ``x`` (float32 normal, or token ids below
    ``input_vocab``), targets ``y`` shaped after the model's output for ``task``, and a
    ``mask`` of ones. The same batch feeds every contender."""
    rng = np.random.default_rng(0)
    shape = (workload.batch_size, *example_shape)
    if input_vocab:
        x = rng.integers(0, input_vocab, shape, dtype=np.int32)
    else:
        x = rng.standard_normal(shape, dtype=np.float32)
    rngs = {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}
    out = jax.eval_shape(lambda: model.init_with_output(rngs, jnp.asarray(x))[0]).shape
    if task in CLASS_ID_TASKS:
        y = rng.integers(0, out[-1], out[:-1], dtype=np.int32)
    elif task == "binary_classification":
        y = rng.integers(0, 2, (workload.batch_size,), dtype=np.int32)
    elif task == "regression":
        y = rng.standard_normal(out, dtype=np.float32)
    else:
        raise ValueError(f"the benchmark does not make targets for task {task!r} yet")
    return {"x": x, "y": y, "mask": np.ones((workload.batch_size,), np.float32)}


def _float_dtype(workload: Workload):
    return jnp.bfloat16 if workload.dtype == "bfloat16" else jnp.float32


def _cast_floats(tree, dtype):
    """Floating leaves of ``tree`` cast to ``dtype`` (the bf16 path casts parameters)."""
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def device_batch(host_batch: dict, workload: Workload) -> dict:
    """The host batch on the default device, float inputs in the workload's dtype."""
    x = host_batch["x"]
    if np.issubdtype(x.dtype, np.floating):
        x = jnp.asarray(x, _float_dtype(workload))
    return jax.device_put({**host_batch, "x": x})


# XLA options for code that runs once (initialisation): on CPU, optimising the random
# number generation of ResNet-18's init took 13.6 s of compiling; unoptimised, 1.8 s plus
# 1 s of running. Other backends keep their defaults.
_RUN_ONCE_CPU_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _run_once(fn: Callable[[], Any]):
    """``fn()`` as one jit'd computation (one compile rather than one per operation),
    compiled for a single run."""
    options = _RUN_ONCE_CPU_OPTIONS if jax.devices()[0].platform == "cpu" else None
    return jax.jit(fn).lower().compile(compiler_options=options)()


def _forward(model, variables, x):
    return model.apply(variables, x, train=False)


def jax_contender(name: str, model, task_name: str, batch: dict, example_shape, workload: Workload,
                  analytic_flops: float | None = None) -> Contender:
    """``model`` through the zoo's engine: in train mode its jit'd train step with SGD
    (the state is donated each step and the returned one fed back), in forward mode a
    jit'd ``model.apply(variables, x, train=False)``. Compiled ahead of time so that the
    compile time is measured on its own; the timed calls run the same executable."""
    init_dtype = batch["x"].dtype if jnp.issubdtype(batch["x"].dtype, jnp.integer) else jnp.float32
    dtype = _float_dtype(workload)
    if workload.mode == "train":
        tx = optax.sgd(LEARNING_RATE)
        state = _run_once(lambda: create_train_state(model, tx, tuple(example_shape), seed=0, dtype=init_dtype))
        params = _cast_floats(state.params, dtype)
        state = state.replace(params=params, opt_state=tx.init(params))
        fn = make_train_step(model, get_task(task_name), tx)
        args = (state, batch)
    else:
        variables = dict(_run_once(lambda: init_variables(model, tuple(example_shape), jax.random.PRNGKey(0),
                                                          init_dtype)))
        variables["params"] = params = _cast_floats(variables["params"], dtype)
        fn = jax.jit(functools.partial(_forward, model))
        args = (variables, batch["x"])

    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - start
    flops, flops_source = count_step_flops(fn, compiled, *args)
    if analytic_flops is not None:
        flops, flops_source = float(analytic_flops), "analytic (entry)"

    if workload.mode == "train":
        carried = [args[0]]

        def run_step():
            carried[0], sums = compiled(carried[0], batch)
            jax.block_until_ready((carried[0], sums))

    else:

        def run_step():
            jax.block_until_ready(compiled(*args))

    return Contender(name, run_step, parameter_count(params), compile_s, flops, flops_source,
                     compiled_memory_bytes(compiled))


def torch_contender(builder: str | None, config: Mapping[str, Any], task_name: str, host_batch: dict,
                    workload: Workload) -> Contender:
    """The PyTorch twin ``zoo.bench.torch_models.<builder>(config)`` on the same batch,
    dtype and thread count, trained with SGD on cross-entropy (or run under
    ``inference_mode`` in forward mode)."""
    if builder is None:
        raise Unavailable("no PyTorch twin for this benchmark")
    if importlib.util.find_spec("torch") is None:
        raise Unavailable("torch is not installed (pip install torch==2.13.0)")
    import torch
    from torch.nn import functional as F

    from zoo.bench import torch_models

    platform = jax.devices()[0].platform
    if platform == "cpu":
        device = torch.device("cpu")
    elif platform == "gpu" and torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        raise Unavailable(f"this torch build cannot run on the JAX device's platform ({platform})")
    if task_name not in CLASS_ID_TASKS:
        raise Unavailable(f"the torch contender has no loss for task {task_name!r}")
    torch.set_num_threads(visible_cores())
    torch.manual_seed(0)
    try:
        module = getattr(torch_models, builder)(config)
    except ValueError as e:
        raise Unavailable(str(e)) from None
    dtype = torch.bfloat16 if workload.dtype == "bfloat16" else torch.float32
    module = module.to(device=device, dtype=dtype)

    x = torch.from_numpy(host_batch["x"])
    if getattr(module, "input_layout", None) == "NCHW":
        x = x.permute(0, 3, 1, 2)
    x = x.contiguous().to(device)
    x = x.to(dtype) if x.is_floating_point() else x.long()
    y = torch.from_numpy(host_batch["y"]).long().to(device).reshape(-1)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    if workload.mode == "train":
        module.train()
        optimizer = torch.optim.SGD(module.parameters(), lr=LEARNING_RATE)

        def run_step():
            optimizer.zero_grad(set_to_none=True)
            logits = module(x)
            F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y).backward()
            optimizer.step()
            synchronize()

    else:
        module.eval()

        def run_step():
            with torch.inference_mode():
                module(x)
            synchronize()

    params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return Contender("torch", run_step, int(params))


# --------------------------------------------------------------------------------------
# One benchmark
# --------------------------------------------------------------------------------------


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


def run_entry(entry: Entry, workload: Workload, *, overrides: Mapping[str, Any] | None = None,
              compare: Sequence[str] = (), steps: int | None = None, rounds: int = 5,
              warmup: int = 2) -> EntryResult:
    """Benchmark ``entry`` on ``workload`` against the references in ``compare``.

    Each contender is compiled and warmed up (``warmup`` untimed steps); then for each of
    ``rounds`` rounds every contender in turn runs one untimed step (so that it does not
    pay for the previous contender's threads winding down) and ``steps`` timed steps
    (None: `auto_steps` of the zoo's fastest warm-up step).
    A model that is not registered gives an "absent" result; a bad override raises
    ValueError; any other failure gives a "failed" result with its traceback.
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
    if workload.mode == "train" and not spec.learns_by_gradient:
        raise ValueError(f"model {entry.model!r} learns by {spec.learning!r}, not a gradient: use --mode forward")
    example_shape = example_shape_of(config, workload)
    base.update(workload=dataclasses.asdict(workload), config=_jsonable(given), rounds=rounds)

    try:
        host_batch = make_host_batch(model, spec.task, example_shape, workload, entry.input_vocab)
        batch = device_batch(host_batch, workload)
        analytic = entry.analytic_flops(config, workload) if entry.analytic_flops else None
        zoo = jax_contender("zoo", model, spec.task, batch, example_shape, workload, analytic)
        warmup_times = time_steps(zoo.run_step, max(warmup, 1 if steps is None else 0))
        steps = steps or auto_steps(min(warmup_times))
        base["steps"] = steps
        # Read before any reference runs: the device's peak is process-wide.
        device_peak = device_peak_bytes(device)
        peak = matmul_peak(workload.dtype)

        contenders, unavailable = [zoo], {}
        for reference in compare:
            try:
                contender = _reference(reference, entry, config, spec.task, host_batch, batch, example_shape, workload)
                for _ in range(warmup):
                    contender.run_step()
                contenders.append(contender)
            except Unavailable as e:
                unavailable[reference] = str(e)
            except Exception as e:  # a broken reference must not hide the zoo's figures
                unavailable[reference] = f"failed: {type(e).__name__}: {e}"

        samples: dict[str, list[list[float]]] = {c.name: [] for c in contenders}
        for _ in range(rounds):
            for contender in contenders:
                contender.run_step()
                samples[contender.name].append(time_steps(contender.run_step, steps))
    except Exception as e:
        return EntryResult(**base, status="failed", reason=f"{type(e).__name__}: {e}",
                           traceback=traceback.format_exc())

    results = {}
    for contender in contenders:
        timing = Timing.from_rounds(samples[contender.name])
        flops_per_s = contender.flops / timing.median_s if contender.flops else None
        memory, memory_source = contender.memory_bytes, "compiled memory_analysis"
        if contender is zoo and device_peak is not None:
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
        )
    ratios = {
        name: Ratio.from_timings(name, results["zoo"].step, result.step)
        for name, result in results.items() if name != "zoo"
    }
    return EntryResult(**base, status="ok", peak_flops_per_s=peak, contenders=results, ratios=ratios,
                       unavailable=unavailable)


def _reference(name, entry: Entry, config, task_name, host_batch, batch, example_shape, workload) -> Contender:
    if name == "torch":
        return torch_contender(entry.torch_twin, config, task_name, host_batch, workload)
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
