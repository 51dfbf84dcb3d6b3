"""Process-wide runtime settings for the processes zoo owns: compile once, keep memory.

A library must not change its user's process behind their back, so importing zoo does
none of this. The programs zoo runs as their own process call these at start, each with
an opt-out: ``train.py`` (``--no-compilation-cache``, ``--no-tune-cpu``), ``python -m
zoo.bench`` (the same flags) and the notebooks' first cell. A user's own script may call
them too.

- `enable_compilation_cache`: JAX's persistent compilation cache in
  ``$XDG_CACHE_HOME/zoo/jax`` (default ``~/.cache/zoo/jax``), so a second run of the same
  model and shapes loads its compiled programs instead of compiling them again. Off when
  the environment says ``ZOO_COMPILATION_CACHE=0``; ``ZOO_COMPILATION_CACHE=/some/dir``
  moves it. The cache is trusted code: keep it where only you can write.
- `tune_cpu`: glibc's allocator keeps large freed blocks instead of handing them back
  to the kernel, so XLA:CPU's large per-step temporaries are not mapped and page-faulted
  afresh on every step. Off when the environment says ``ZOO_TUNE_CPU=0``.
- `compile_stats`: compile seconds and persistent-cache hits, as JAX reports them.

`run_once` is not a process setting but belongs with them: it compiles code that runs a
single time (a model's initialisation) as one program, cheaply optimised.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import pathlib
import platform
import sys
from typing import Callable, Iterator, TypeVar

import jax
from jax.experimental.compilation_cache import compilation_cache as _jax_cache

T = TypeVar("T")
_cpu_tuned = False
CACHE_ENV = "ZOO_COMPILATION_CACHE"
TUNE_CPU_ENV = "ZOO_TUNE_CPU"
_OFF = ("0", "false", "off", "no")
# The cache is bounded (least recently used entries go first); a ResNet-18 train step
# is a few MB.
CACHE_MAX_BYTES = 2 * 2**30
# Cache every program, however quick to compile: a run compiles dozens of small ones
# (initialisation, metrics, data movement) whose sum is seconds; each entry is a few KB.
CACHE_MIN_COMPILE_S = 0.0
# XLA options for code that runs once: on CPU, optimising the random number generation of
# ResNet-18's initialisation took 13.6 s of compiling; unoptimised, 1.8 s plus 1 s of
# running. Other backends keep their defaults.
RUN_ONCE_CPU_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def default_cache_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/zoo/jax``, or ``~/.cache/zoo/jax`` when it is unset."""
    root = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(root) / "zoo" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> pathlib.Path | None:
    """Turn on JAX's persistent compilation cache for this process; returns its folder,
    or None when it stays off.

    ``path``: the folder; default ``$ZOO_COMPILATION_CACHE`` when that names one, else
    `default_cache_dir`. ``ZOO_COMPILATION_CACHE=0`` (or false/off/no) keeps the cache off
    whatever ``path`` says. A cache folder already configured for JAX (the
    ``JAX_COMPILATION_CACHE_DIR`` environment variable, ``jax.config``) is kept as it is.

    Every compiled program is cached (no minimum compile time), in at most
    `CACHE_MAX_BYTES`, least recently used entries evicted first. The key covers the
    program, the jax/jaxlib version, the device and the XLA options, so a stale hit is not
    possible; deleting the folder is always safe.
    """
    setting = os.environ.get(CACHE_ENV, "").strip()
    if setting.lower() in _OFF:
        return None
    configured = jax.config.jax_compilation_cache_dir
    if configured:
        folder = pathlib.Path(configured)
    else:
        folder = pathlib.Path(path if path is not None else setting or default_cache_dir()).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_S)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no minimum size
    if jax.config.jax_compilation_cache_max_size == -1:  # unbounded: JAX's default
        jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)
    _jax_cache.reset_cache()  # takes the settings now, also after a first compile
    return folder


def compilation_cache_enabled() -> bool:
    """Whether compiled programs are read from and written to a persistent cache."""
    return bool(jax.config.jax_compilation_cache_dir) and jax.config.jax_enable_compilation_cache


@contextlib.contextmanager
def compilation_cache_bypassed() -> Iterator[None]:
    """Compile without the persistent cache (nothing read, nothing written) inside the
    block: for timing a first compile honestly in a process that has the cache on."""
    if not compilation_cache_enabled():
        yield
        return
    jax.config.update("jax_enable_compilation_cache", False)
    _jax_cache.reset_cache()  # JAX decides once per process whether the cache is used
    try:
        yield
    finally:
        jax.config.update("jax_enable_compilation_cache", True)
        _jax_cache.reset_cache()


@dataclasses.dataclass
class CompileStats:
    """What JAX reported compiling while `compile_stats` was active (every thread).

    ``programs``: XLA compilations requested, ``cache_hits`` of them loaded from the
    persistent cache; ``xla_s``: seconds in XLA's compiler or loading from the cache;
    ``trace_lower_s``: seconds tracing to jaxprs and lowering to StableHLO."""

    programs: int = 0
    cache_hits: int = 0
    xla_s: float = 0.0
    trace_lower_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.xla_s + self.trace_lower_s

    def summary(self) -> str:
        """One line, e.g. ``compile: 1.21 s (XLA 0.43 s for 57 programs, 57 from the
        persistent cache; tracing and lowering 0.78 s)``."""
        cached = f", {self.cache_hits} from the persistent cache" if compilation_cache_enabled() else ""
        return (
            f"compile: {self.total_s:.2f} s (XLA {self.xla_s:.2f} s for {self.programs} programs{cached}; "
            f"tracing and lowering {self.trace_lower_s:.2f} s)"
        )


_XLA_EVENT = "/jax/core/compile/backend_compile_duration"
_TRACE_LOWER_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration")
_CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"


@contextlib.contextmanager
def compile_stats() -> Iterator[CompileStats]:
    """Collect `CompileStats` from JAX's monitoring events while the block runs."""
    stats = CompileStats()

    def on_duration(event: str, seconds: float, **_) -> None:
        if event == _XLA_EVENT:
            stats.programs += 1
            stats.xla_s += seconds
        elif event in _TRACE_LOWER_EVENTS:
            stats.trace_lower_s += seconds

    def on_event(event: str, **_) -> None:
        if event == _CACHE_HIT_EVENT:
            stats.cache_hits += 1

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    try:
        yield stats
    finally:
        jax.monitoring.unregister_event_duration_listener(on_duration)
        jax.monitoring.unregister_event_listener(on_event)


# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -2, -3, -8
# Blocks below this come from the heap, not a fresh mmap: above XLA:CPU's per-step
# temporaries (ResNet-18's reach ~100 MB). glibc 2.36 accepts up to INT_MAX; older ones
# cap it at 32 MiB, and `tune_cpu` falls back to the cap.
MMAP_THRESHOLD_BYTES = 1 * 2**30
MMAP_THRESHOLD_CAP_BYTES = 32 * 2**20
# Free memory at the top of the heap is kept up to this much (not trimmed back to the
# kernel), and the heap grows in steps of TOP_PAD_BYTES.
TRIM_THRESHOLD_BYTES = 2**31 - 1
TOP_PAD_BYTES = 64 * 2**20


def tune_cpu() -> dict[str, int]:
    """Make glibc's allocator keep large freed blocks for reuse; returns the settings
    applied (``{"M_MMAP_THRESHOLD": ..., "M_TRIM_THRESHOLD": ..., "M_TOP_PAD": ...,
    "M_ARENA_MAX": 1}``, each value one glibc accepted),
    or ``{}`` where it does nothing: not Linux with glibc, or ``ZOO_TUNE_CPU=0`` in the
    environment. Call it before the first JAX computation: the threads XLA starts then
    share the one heap (``M_ARENA_MAX=1``), which a thread that has its own already keeps.

    XLA:CPU allocates an executable's temporaries on each call and frees them after; by
    default glibc serves large blocks (from 128 KiB, the bound rising to at most 32 MiB)
    with a fresh ``mmap`` and unmaps them on free, so every step page-faults them in again (tens of thousands of faults, a few
    microseconds each); a thread's own arena cannot hold blocks over 64 MiB at all, so
    they are mapped whatever the threshold. Here every thread allocates from the main
    heap, blocks below `MMAP_THRESHOLD_BYTES` come from it, and freed heap memory stays
    with the process (`TRIM_THRESHOLD_BYTES`). ResNet-18's train step (128x128, B=16)
    went from ~79,000 minor page faults per step to none.

    Effect on memory: the process keeps its peak heap size instead of returning freed
    memory to the system; the resident size of a training run stays near its peak step's.
    With one arena, threads take turns at the allocator's lock (XLA's threads allocate
    little once a program runs). Applies to the whole process (PyTorch alike) from the
    call on.

    Another option, which only works from the start of a process: glibc 2.35+ can back
    the heap with transparent huge pages, ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python
    train.py ...``, which cut a large convolution's page faults from ~16,000 to ~120 per
    call in a test here.
    """
    if os.environ.get(TUNE_CPU_ENV, "").strip().lower() in _OFF:
        return {}
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return {}
    mallopt = ctypes.CDLL("libc.so.6").mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    applied = {}
    for name, option, values in (
        ("M_MMAP_THRESHOLD", M_MMAP_THRESHOLD, (MMAP_THRESHOLD_BYTES, MMAP_THRESHOLD_CAP_BYTES)),
        ("M_TRIM_THRESHOLD", M_TRIM_THRESHOLD, (TRIM_THRESHOLD_BYTES,)),
        ("M_TOP_PAD", M_TOP_PAD, (TOP_PAD_BYTES,)),
        ("M_ARENA_MAX", M_ARENA_MAX, (1,)),
    ):
        # mallopt returns 1 when it took the value, 0 when it refused it.
        accepted = next((v for v in values if mallopt(option, v) == 1), None)
        if accepted is not None:
            applied[name] = accepted
    global _cpu_tuned
    _cpu_tuned = _cpu_tuned or ("M_ARENA_MAX" in applied and "M_MMAP_THRESHOLD" in applied)
    return applied


def cpu_tuned() -> bool:
    """Whether `tune_cpu` has set up this process's allocator (one heap, no fresh
    ``mmap`` for large blocks). Large temporaries are then cheap, which moves some of
    `zoo.nn.fastconv.choose_conv_impl`'s choices."""
    return _cpu_tuned


def run_once(fn: Callable[[], T]) -> T:
    """``fn()`` as one jit'd program, compiled for a single run (`RUN_ONCE_CPU_OPTIONS`).

    Op by op, a model's initialisation compiles every distinct operation on its own
    (ResNet-18: 11 s on this project's 2-core CPU); as one program, 2.6 s, and the
    persistent cache holds it for the next run. The values are those of the op-by-op
    run up to float rounding (the same random bits; 6e-8 apart for ResNet-18)."""
    options = RUN_ONCE_CPU_OPTIONS if jax.devices()[0].platform == "cpu" else None
    return jax.jit(fn).lower().compile(compiler_options=options)()
