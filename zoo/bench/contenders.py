"""Contenders: the ways of running one benchmark step, each reduced to a ``run_step()``
callable that returns once its step has finished on the device.

"zoo" is the zoo's model through the training engine's own jit'd train step (or a jit'd
inference apply), "flax" Flax stock layers through the same engine step, "torch" the
hand-written PyTorch twin (`zoo.bench.torch_models`) with the same optimizer and loss.
The model is called as its task says (`zoo.tasks.Task.inputs`): ``model(x)``, or
``model(x, y)`` for a sequence-to-sequence model's teacher forcing.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from zoo.bench.flops import compiled_memory_bytes, count_step_flops, parameter_count
from zoo.bench.suite import Workload
from zoo.bench.timing import visible_cores
from zoo.nn.precision import with_precision
from zoo.runtime import compilation_cache_bypassed, run_once
from zoo.tasks import get_task
from zoo.train.state import create_train_state, example_inputs, init_variables
from zoo.train.steps import make_train_step

# Plain SGD for every contender: the benchmark times the model, not the optimizer.
LEARNING_RATE = 0.01
# Tasks whose targets are class ids on the last output axis (cross-entropy in torch).
CLASS_ID_TASKS = ("classification", "sequence_classification", "sequence_to_sequence", "segmentation")


class Unavailable(Exception):
    """A reference cannot run here (no twin, torch missing, a config it cannot copy ...)."""


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
    ``input_vocab``), targets ``y`` shaped after the model's output for ``task`` (the
    model called on ``x`` alone; of a dict output, its ``"logits"``: a sequence-to-sequence
    model's greedy decoding gives the target length), and a ``mask`` of ones. The same
    batch feeds every contender."""
    rng = np.random.default_rng(0)
    shape = (workload.batch_size, *example_shape)
    if input_vocab:
        x = rng.integers(0, input_vocab, shape, dtype=np.int32)
    else:
        x = rng.standard_normal(shape, dtype=np.float32)
    if task == "reconstruction":  # the target is the input itself
        return {"x": x, "y": x, "mask": np.ones((workload.batch_size,), np.float32)}
    rngs = {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}
    out = jax.eval_shape(lambda: model.init_with_output(rngs, jnp.asarray(x))[0])
    out = (out["logits"] if isinstance(out, Mapping) else out).shape
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


def device_batch(host_batch: dict, workload: Workload) -> dict:
    """The host batch on the default device, float inputs in the workload's dtype."""
    x = host_batch["x"]
    if np.issubdtype(x.dtype, np.floating):
        x = jnp.asarray(x, _float_dtype(workload))
    return jax.device_put({**host_batch, "x": x})


def _forward(model, variables, *inputs):
    return model.apply(variables, *inputs, train=False)


def jax_contender(
    name: str,
    model,
    task_name: str,
    batch: dict,
    example_shape,
    workload: Workload,
    analytic_flops: float | None = None,
) -> Contender:
    """``model`` through the zoo's engine: in train mode its jit'd train step with SGD
    (the state is donated each step and the returned one fed back), in forward mode a
    jit'd ``model.apply(variables, *inputs, train=False)``, what the engine's evaluation
    computes. Both call the model with the task's ``inputs(batch)``: ``(x,)``, or
    ``(x, y)`` for sequence to sequence. Compiled ahead of time so that the compile time
    is measured on its own (never loaded from the persistent compilation cache); the timed
    calls run the same executable."""
    task = get_task(task_name)
    init_dtype = batch["x"].dtype if jnp.issubdtype(batch["x"].dtype, jnp.integer) else jnp.float32
    init_inputs = example_inputs(task, tuple(example_shape), init_dtype, batch["y"].shape[1:], batch["y"].dtype)
    # bfloat16 as train.py --dtype runs it: bf16 compute on float32 master parameters.
    model = with_precision(model, workload.dtype)
    if workload.mode == "train":
        tx = optax.sgd(LEARNING_RATE)
        state = run_once(
            lambda: create_train_state(model, tx, tuple(example_shape), seed=0, dtype=init_dtype, inputs=init_inputs)
        )
        params = state.params
        fn = make_train_step(model, task, tx)
        args = (state, batch)
    else:
        variables = dict(
            run_once(
                lambda: init_variables(
                    model, tuple(example_shape), jax.random.PRNGKey(0), init_dtype, inputs=init_inputs
                )
            )
        )
        params = variables["params"]
        fn = jax.jit(functools.partial(_forward, model))
        args = (variables, *task.inputs(batch))

    # A first compile, whatever the persistent cache (zoo.runtime) holds: the figure
    # reported is what a new model or shape costs.
    with compilation_cache_bypassed():
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

    return Contender(
        name, run_step, parameter_count(params), compile_s, flops, flops_source, compiled_memory_bytes(compiled)
    )


def torch_contender(
    builder: str | None, config: Mapping[str, Any], task_name: str, host_batch: dict, workload: Workload
) -> Contender:
    """The PyTorch twin ``zoo.bench.torch_models.<builder>(config)`` on the same batch,
    dtype and thread count, called with the task's ``inputs`` as the zoo model is, trained
    with SGD on cross-entropy (or run under ``inference_mode`` in forward mode)."""
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
    elif platform == "gpu":
        raise Unavailable(f"torch {torch.__version__} has no CUDA here (torch.cuda.is_available() is False)")
    else:
        raise Unavailable(f"this torch build cannot run on the JAX device's platform ({platform})")
    if task_name not in (*CLASS_ID_TASKS, "reconstruction"):
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
    y = torch.from_numpy(host_batch["y"]).long().to(device)
    inputs = get_task(task_name).inputs({"x": x, "y": y})
    y = y.reshape(-1)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    if workload.mode == "train":
        module.train()
        optimizer = torch.optim.SGD(module.parameters(), lr=LEARNING_RATE)

        def run_step():
            optimizer.zero_grad(set_to_none=True)
            logits = module(*inputs)
            if task_name == "reconstruction":  # the zoo's loss: BCE summed per example, batch mean
                (F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)).backward()
            else:
                F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y).backward()
            optimizer.step()
            synchronize()

    else:
        module.eval()

        def run_step():
            with torch.inference_mode():
                module(*inputs)
            synchronize()

    params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return Contender("torch", run_step, int(params))
