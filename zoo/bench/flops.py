"""FLOPs, the device's matmul peak, memory and parameter counts of a benchmark step.

FLOPs come from XLA's cost analysis of the compiled step. XLA counts the body of a loop
once, not once per trip, so `count_step_flops` finds every ``scan`` in the step's jaxpr,
costs its body with XLA on its own and adds the missing trips; and it counts a custom call
as nothing, so zoo's own kernels' FLOPs are added from `zoo.native.call_flops`.
"""

from __future__ import annotations

import functools

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np

from zoo import native
from zoo.bench.timing import time_steps


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


def _live(jaxpr) -> list[bool]:
    """Per equation of ``jaxpr``: whether the outputs need it (XLA drops the others)."""
    needed = {v for v in jaxpr.outvars if isinstance(v, jex.core.Var)}
    live = [False] * len(jaxpr.eqns)
    for k in range(len(jaxpr.eqns) - 1, -1, -1):
        eqn = jaxpr.eqns[k]
        if eqn.effects or any(v in needed for v in eqn.outvars):
            live[k] = True
            needed.update(v for v in eqn.invars if isinstance(v, jex.core.Var))
    return live


def _missing_loop_trips(jaxpr) -> tuple[float, int]:
    """(FLOPs XLA leaves out, number of loops or calls it counts short).

    XLA counts each scan body once: with ``once`` the XLA count of a body that itself
    holds loops counted once, and ``inner`` what that body misses, a scan of ``length``
    trips contributes ``length * (once + inner)``, of which the enclosing count already
    holds ``once``. ``while`` loops of unknown trip count stay counted once. XLA counts a
    custom call as nothing: zoo's own kernels (`zoo.native.call_flops`) are added where
    the outputs need them; any other stays uncounted.
    """
    missing, uncounted = 0.0, 0
    for eqn, live in zip(jaxpr.eqns, _live(jaxpr)):
        if not live:  # XLA drops it, and its FLOPs with it
            continue
        name = eqn.primitive.name
        if name == "scan":
            body = eqn.params["jaxpr"]
            inner, inner_uncounted = _missing_loop_trips(body.jaxpr)
            once = _jaxpr_body_flops(body)
            missing += eqn.params["length"] * (once + inner) - once
            uncounted += inner_uncounted
            continue
        if name == "ffi_call":
            shapes = [v.aval.shape for v in eqn.invars]
            flops = native.call_flops(eqn.params["target_name"], shapes, eqn.params["attributes"])
            if flops is None:
                uncounted += 1
            else:
                missing += flops
            continue
        if name == "while":
            uncounted += 1
        for sub in jex.core.jaxprs_in_params(eqn.params):
            sub_missing, sub_uncounted = _missing_loop_trips(sub)
            missing += sub_missing
            uncounted += sub_uncounted
    return missing, uncounted


def count_step_flops(fn, compiled, *args, jaxpr=None) -> tuple[float | None, str]:
    """(FLOPs of one call of jitted ``fn`` on ``args``, how they were counted).

    ``compiled`` is ``fn.lower(*args).compile()`` (or the lowering alone); ``jaxpr``, fn's
    jaxpr on ``args`` if the caller has traced it already. Its XLA cost analysis is corrected
    for ``scan`` trip counts and zoo's native kernels; ``while`` loops of unknown trip count
    and other custom calls stay undercounted, which the returned description says (give
    such an entry ``analytic_flops``).
    """
    total = xla_flops(compiled)
    if total is None:
        return None, "not reported by this backend"
    missing, uncounted = _missing_loop_trips(jaxpr or jax.make_jaxpr(fn)(*args).jaxpr)
    source = "XLA cost analysis"
    if missing:
        source += ", scan bodies x trip count and zoo.native's kernels"
    if uncounted:
        source += f"; {uncounted} while loop(s) or foreign custom call(s) counted short (undercount)"
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
        analysis.argument_size_in_bytes
        + analysis.output_size_in_bytes
        + analysis.temp_size_in_bytes
        + analysis.generated_code_size_in_bytes
        - analysis.alias_size_in_bytes
    )


def parameter_count(params) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(np.prod(np.shape(leaf), dtype=np.int64) for leaf in jax.tree.leaves(params)))
