"""zoo's own CPU kernels: XLA FFI custom calls compiled on first use, like a JIT.

What is here: the plain LSTM and the reset-after GRU over a whole sequence, forward and
backward (``rnn_kernels.cc``), which `zoo.nn.recurrence` runs on the CPU for
``impl="auto"`` or ``"native"``; `matmul`; `conv2d`, a stride-1 convolution with its
gradients (``conv_kernels.cc``), which `zoo.nn.fastconv` takes for narrow 2x2 to 5x5
convolutions (a channel count below 32, or a few output channels); and `winograd_conv` with
`winograd_kernel_grad`, a 3x3 stride-1 convolution by Winograd F(2x2, 3x3)
(``winograd_kernels.cc``), which it takes for wider ones. What they share (threads,
buffers, vectors of the CPU's width) is in ``common.h``, the packed register-blocked
product in ``gemm.h``.

The RNNs: the products over the whole sequence are ``sgemm`` calls of OpenBLAS (the
``scipy-openblas32`` wheel, the build NumPy and SciPy ship); the per-step products run on
the recurrent weights packed once per call; the gate math is one vectorised pass per step;
worker threads own slices of the hidden units and meet once per step. The convolution: a
matmul whose left operand is never built (blocks of output pixels read the padded input
tap by tap) against the kernel packed once per call, its work in items that its calling
thread and tasks on XLA's own thread pool claim one by one, so that it shares the cores
with XLA's operations rather than competing with them. The pure-JAX forms stay the
reference the tests compare with and the fallback wherever these cannot run.

Why compiled here rather than at install: the kernels must match the XLA FFI headers of
the jaxlib they are loaded into, and ``-march=native`` code must match the CPU that runs
it. The first use in a process compiles the sources with the system C++ compiler
(``$CXX``, else ``c++``; 10-20 s, once) into ``$XDG_CACHE_HOME/zoo/native/<key>/``
(default ``~/.cache/zoo/native``); the key hashes the sources, the flags, the compiler,
jax's and jaxlib's versions and the CPU's features, so a later process, or another
machine sharing the home folder, loads only what was built for it. ``ZOO_NATIVE=0`` turns
the kernels off and ``ZOO_NATIVE_THREADS=N`` sets the threads (default: the cores this
process may use); `unavailable_reason` says why they are off (no compiler, no OpenBLAS
wheel, a failed build), in one line.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile
import threading
from typing import Iterator

import jax
import jax.numpy as jnp

NATIVE_ENV = "ZOO_NATIVE"
SOURCES = tuple(
    pathlib.Path(__file__).with_name(name) for name in ("rnn_kernels.cc", "conv_kernels.cc", "winograd_kernels.cc")
)
HEADERS = tuple(pathlib.Path(__file__).with_name(name) for name in ("common.h", "gemm.h"))
# -fno-trapping-math lets GCC vectorise the gate math's floor (zoo uses no FP traps);
# -ffp-contract=fast fuses the products' multiply-adds; -march=native because the library
# is built on, and keyed to, the CPU that runs it.
CXX_FLAGS = ("-std=c++17", "-O3", "-march=native", "-fno-trapping-math", "-ffp-contract=fast", "-fPIC", "-shared")
FFI_TARGETS = {
    "zoo_lstm_forward": "ZooLstmForward",
    "zoo_lstm_backward": "ZooLstmBackward",
    "zoo_gru_forward": "ZooGruForward",
    "zoo_gru_backward": "ZooGruBackward",
    "zoo_matmul": "ZooMatmul",
    "zoo_conv_forward": "ZooConvForward",
    "zoo_conv_kernel_grad": "ZooConvKernelGrad",
    "zoo_winograd_forward": "ZooWinogradForward",
    "zoo_winograd_kernel_grad": "ZooWinogradKernelGrad",
}
_OFF = ("0", "false", "off", "no")
_state = threading.local()  # `disabled()` per thread


def cache_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/zoo/native``, or ``~/.cache/zoo/native`` when it is unset."""
    root = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(root) / "zoo" / "native"


def _cpu_features() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "c++"))


def _build_key(compiler: str) -> str:
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
    digest = hashlib.sha256()
    for path in SOURCES + HEADERS:
        digest.update(path.read_bytes())
    for part in (" ".join(CXX_FLAGS).encode(), version.encode(), jax.__version__.encode()):
        digest.update(part)
    import jaxlib

    digest.update(jaxlib.__version__.encode())
    digest.update(_cpu_features().encode())
    digest.update(platform.machine().encode())
    return digest.hexdigest()[:16]


def _build(compiler: str) -> pathlib.Path:
    """The compiled library for this source, compiler, jaxlib and CPU: from the cache, or
    compiled now. Concurrent builders each write a temporary file and rename it into place,
    so a reader sees a whole library or none."""
    folder = cache_dir() / _build_key(compiler)
    library = folder / "libzoo_native.so"
    if library.exists():
        return library
    folder.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(suffix=".so", dir=folder)
    os.close(fd)
    command = [compiler, *CXX_FLAGS, "-isystem", jax.ffi.include_dir(), *map(str, SOURCES), "-o", partial]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        os.unlink(partial)
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        names = [path.name for path in SOURCES]
        raise RuntimeError(f"compiling {', '.join(names[:-1])} and {names[-1]} failed ({last})")
    os.replace(partial, library)
    return library


def _openblas_sgemm() -> int:
    """The address of OpenBLAS's ``cblas_sgemm`` (32-bit integers) from scipy-openblas32,
    set to run single-threaded: the kernels share the work among their own threads."""
    import scipy_openblas32

    path = pathlib.Path(scipy_openblas32.get_lib_dir()) / f"lib{scipy_openblas32.get_library()}.so"
    blas = ctypes.CDLL(str(path))
    blas.scipy_openblas_set_num_threads(1)
    return ctypes.cast(blas.scipy_cblas_sgemm, ctypes.c_void_p).value


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str | None]:
    """(library, None) once the kernels are registered with XLA, else (None, why not)."""
    if os.environ.get(NATIVE_ENV, "").strip().lower() in _OFF:
        return None, f"{NATIVE_ENV}=0 turns them off"
    if platform.system() != "Linux":
        return None, f"they are built for Linux only, this is {platform.system()}"
    compiler = _compiler()
    if compiler is None:
        return None, "no C++ compiler ($CXX or c++) was found"
    try:
        sgemm = _openblas_sgemm()
    except (ImportError, OSError, AttributeError) as e:
        return None, f"OpenBLAS could not be loaded from scipy-openblas32 ({type(e).__name__}: {e})"
    try:
        library = ctypes.CDLL(str(_build(compiler)))
    except (RuntimeError, OSError) as e:
        return None, f"the kernels could not be built: {e}"
    library.zoo_native_set_sgemm(ctypes.c_void_p(sgemm))
    for target, symbol in FFI_TARGETS.items():
        jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu")
    return library, None


def unavailable_reason() -> str | None:
    """Why the native kernels cannot run in this process (one line), or None when they
    can. The first call builds or loads them."""
    if getattr(_state, "disabled", False):
        return "they are turned off here (zoo.native.disabled)"
    return _load()[1]


def available() -> bool:
    """Whether the native kernels can run in this process (`unavailable_reason`)."""
    return unavailable_reason() is None


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Trace without the native kernels in this thread: for programs that leave the process
    (`zoo.exporting`), which must hold only XLA's own operations."""
    before = getattr(_state, "disabled", False)
    _state.disabled = True
    try:
        yield
    finally:
        _state.disabled = before


def _require() -> None:
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"zoo's native kernels cannot run: {reason}")


def lstm_forward(xs, kernel, bias, c0, h0):
    """xs (T, B, I), kernel (I+H, 4H), bias (4H,), c0 and h0 (B, H), all float32 ->
    (hs (T+1, B, H), cs (T+1, B, H), acts (T, B, 4H)): the states from step 0 to T and the
    gates i, f, a, o after their nonlinearities."""
    _require()
    T, B, _ = xs.shape
    H = h0.shape[-1]
    f32 = jnp.float32
    shapes = (
        jax.ShapeDtypeStruct((T + 1, B, H), f32),
        jax.ShapeDtypeStruct((T + 1, B, H), f32),
        jax.ShapeDtypeStruct((T, B, 4 * H), f32),
    )
    return jax.ffi.ffi_call("zoo_lstm_forward", shapes, vmap_method="sequential")(xs, kernel, bias, c0, h0)


def lstm_backward(xs, kernel, bias, hs, cs, acts, dys, dcT, dhT):
    """`lstm_forward`'s inputs and outputs, with the cotangents ``dys`` (T, B, H) of the
    per-step outputs (h_1..h_T; an array of shape (0,) when there are none) and ``dcT``,
    ``dhT`` (B, H) of the final state -> (dkernel, dbias, dxs, dc0, dh0).

    ``dxs`` is a separate call on the gate gradients, which XLA leaves out when the
    inputs' gradient is not used (data rather than an embedding's output)."""
    _require()
    T, B, I = xs.shape
    shapes = tuple(jax.ShapeDtypeStruct(a.shape, jnp.float32) for a in (kernel, bias, acts, dcT, dhT))
    call = jax.ffi.ffi_call("zoo_lstm_backward", shapes, vmap_method="sequential")
    dkernel, dbias, dgates, dc0, dh0 = call(xs, kernel, bias, hs, cs, acts, dys, dcT, dhT)
    dxs = _matmul_call(dgates.reshape(T * B, -1), kernel[:I], transpose_b=True).reshape(T, B, I)
    return dkernel, dbias, dxs, dc0, dh0


def gru_forward(xs, input_kernel, recurrent_kernel, bias, recurrent_bias, h0, *, keep: bool):
    """The reset-after GRU: xs (T, B, I), input_kernel (I, 3H), recurrent_kernel (H, 3H),
    bias (3H,), recurrent_bias (H,), h0 (B, H), all float32; ``keep``: z keeps the old
    state (else it takes the candidate) -> (hs (T+1, B, H), acts (T, B, 4H): r, z, n and
    q = h U_n + b_hn of every step)."""
    _require()
    T, B, _ = xs.shape
    H = h0.shape[-1]
    shapes = (jax.ShapeDtypeStruct((T + 1, B, H), jnp.float32), jax.ShapeDtypeStruct((T, B, 4 * H), jnp.float32))
    call = jax.ffi.ffi_call("zoo_gru_forward", shapes, vmap_method="sequential")
    return call(xs, input_kernel, recurrent_kernel, bias, recurrent_bias, h0, keep=bool(keep))


def gru_backward(xs, input_kernel, recurrent_kernel, hs, acts, dys, dhT, *, keep: bool):
    """`gru_forward`'s inputs and outputs with the cotangents ``dys`` (T, B, H; shape (0,)
    when there are none) and ``dhT`` (B, H) -> (d input_kernel, d recurrent_kernel,
    d bias, d recurrent_bias, dxs, dh0); ``dxs`` a separate call, as in `lstm_backward`."""
    _require()
    T, B, I = xs.shape
    H = dhT.shape[-1]
    f32 = jnp.float32
    shapes = (
        jax.ShapeDtypeStruct(input_kernel.shape, f32),
        jax.ShapeDtypeStruct(recurrent_kernel.shape, f32),
        jax.ShapeDtypeStruct((3 * H,), f32),
        jax.ShapeDtypeStruct((H,), f32),
        jax.ShapeDtypeStruct((T, B, 3 * H), f32),
        jax.ShapeDtypeStruct((B, H), f32),
    )
    call = jax.ffi.ffi_call("zoo_gru_backward", shapes, vmap_method="sequential")
    dwi, dwh, db, dbhn, dgates, dh0 = call(xs, input_kernel, recurrent_kernel, hs, acts, dys, dhT, keep=bool(keep))
    dxs = _matmul_call(dgates.reshape(T * B, -1), input_kernel, transpose_b=True).reshape(T, B, I)
    return dwi, dwh, db, dbhn, dxs, dh0


def _matmul_call(a, b, transpose_a=False, transpose_b=False):
    _require()
    m = a.shape[1] if transpose_a else a.shape[0]
    n = b.shape[0] if transpose_b else b.shape[1]
    call = jax.ffi.ffi_call("zoo_matmul", jax.ShapeDtypeStruct((m, n), jnp.float32), vmap_method="sequential")
    return call(a, b, transpose_a=transpose_a, transpose_b=transpose_b)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def matmul(a, b, transpose_a: bool = False, transpose_b: bool = False):
    """op(a) @ op(b) in float32 through OpenBLAS on the kernels' threads, op transposing
    where asked: a (M, K) or (K, M), b (K, N) or (N, K) -> (M, N). Differentiable: the
    gradients are two more such products."""
    return _matmul_call(a, b, transpose_a, transpose_b)


def _matmul_fwd(a, b, transpose_a, transpose_b):
    return _matmul_call(a, b, transpose_a, transpose_b), (a, b)


def _matmul_bwd(transpose_a, transpose_b, res, g):
    a, b = res
    # With C = op(a) op(b): d op(a) = g op(b)^T and d op(b) = op(a)^T g, each laid out as
    # its operand is stored.
    da = _matmul_call(b, g, transpose_b, True) if transpose_a else _matmul_call(g, b, False, not transpose_b)
    db = _matmul_call(g, a, True, transpose_a) if transpose_b else _matmul_call(a, g, not transpose_a, False)
    return da, db


matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _pad_attributes(pads):
    (top, bottom), (left, right) = pads
    return dict(pad_top=int(top), pad_bottom=int(bottom), pad_left=int(left), pad_right=int(right))


def _conv_call(x, kernel, pads, bias=None, relu=False):
    _require()
    kh, kw, _, o = kernel.shape
    b, h, w, _ = x.shape
    out = (b, h + sum(pads[0]) - kh + 1, w + sum(pads[1]) - kw + 1, o)
    bias = jnp.zeros((0,), jnp.float32) if bias is None else bias  # (0,): none
    call = jax.ffi.ffi_call("zoo_conv_forward", jax.ShapeDtypeStruct(out, jnp.float32), vmap_method="sequential")
    return call(x, kernel, bias, relu=bool(relu), **_pad_attributes(pads))


def conv2d_supports(x_shape, kernel_shape, pads) -> bool:
    """Whether `conv2d` takes this stride-1 convolution: at most 64 kernel taps, every
    padding in [0, kernel size), a non-empty output."""
    (kh, kw), (_, h, w, _) = kernel_shape[:2], x_shape
    (top, bottom), (left, right) = pads
    return (
        kh * kw <= 64
        and 0 <= min(top, bottom) <= max(top, bottom) < kh
        and 0 <= min(left, right) <= max(left, right) < kw
        and h + top + bottom >= kh
        and w + left + right >= kw
    )


def conv2d(x, kernel, pads, bias=None, relu: bool = False):
    """Stride-1 cross-correlation of NHWC ``x`` (float32) with an HWIO ``kernel`` and
    ``pads`` ((top, bottom), (left, right)), each in [0, kernel size), at most 64 taps
    (`conv2d_supports`), as ``lax.conv_general_dilated``; then ``+ bias`` (O,) if given and
    ReLU if ``relu``, added as each output is stored rather than in a pass of their own.
    Differentiable once, by two more calls: the input's gradient (dropped where nothing
    uses it) and the kernel's."""
    bias = jnp.zeros(kernel.shape[-1:], jnp.float32) if bias is None else bias
    return _conv2d(x, kernel, bias, pads, bool(relu))


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _conv2d(x, kernel, bias, pads, relu):
    return _conv_call(x, kernel, pads, bias, relu)


def _conv2d_fwd(x, kernel, bias, pads, relu):
    y = _conv_call(x, kernel, pads, bias, relu)
    return y, (x, kernel, y if relu else None)


def _conv2d_bwd(pads, relu, residuals, dy):
    x, kernel, y = residuals
    if relu:  # ReLU's gradient: 0 where the output is not positive (jax.nn.relu's at 0 too)
        dy = jnp.where(y > 0, dy, 0.0)
    (kh, kw), ((top, bottom), (left, right)) = kernel.shape[:2], pads
    # The input's gradient: the full correlation of dy with the flipped, transposed kernel,
    # padded by k - 1 - p (XLA drops the call where nothing uses it).
    back = ((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right))
    dx = _conv_call(dy, jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2), back)
    out = jax.ShapeDtypeStruct(kernel.shape, jnp.float32)
    call = jax.ffi.ffi_call("zoo_conv_kernel_grad", out, vmap_method="sequential")
    return dx, call(x, dy, **_pad_attributes(pads)), dy.sum((0, 1, 2))


_conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


def winograd_conv(x, kernel, pads, *, transposed: bool = False):
    """Stride-1 3x3 cross-correlation of NHWC ``x`` (float32) with an HWIO ``kernel`` (3, 3,
    C, O) by Winograd F(2x2, 3x3) and ``pads`` ((top, bottom), (left, right)), each in
    [0, 2] -> (B, Ho, Wo, O); with ``transposed``, ``kernel`` is (3, 3, O, C) and the result
    its transposed convolution (by the flipped kernel, channels swapped: the input's
    gradient of a convolution by it). Not differentiable itself:
    `zoo.nn.fastconv.conv2d_winograd` pairs it with `winograd_kernel_grad`."""
    _require()
    b, h, w, _ = x.shape
    o = kernel.shape[2 if transposed else 3]
    out = jax.ShapeDtypeStruct((b, h + sum(pads[0]) - 2, w + sum(pads[1]) - 2, o), jnp.float32)
    call = jax.ffi.ffi_call("zoo_winograd_forward", out, vmap_method="sequential")
    return call(x, kernel, transposed=bool(transposed), **_pad_attributes(pads))


def winograd_kernel_grad(x, dy, pads):
    """The kernel gradient of `winograd_conv`: x (B, H, W, C) and the output gradient dy
    (B, Ho, Wo, O) -> (3, 3, C, O), summed over the 2x2 output tiles in the Winograd
    domain (V_k^T dM_k, V = B^T d B of the input's tiles, dM = A dY A^T of dy's) and taken
    back as G^T dU G."""
    _require()
    out = jax.ShapeDtypeStruct((3, 3, x.shape[-1], dy.shape[-1]), jnp.float32)
    call = jax.ffi.ffi_call("zoo_winograd_kernel_grad", out, vmap_method="sequential")
    return call(x, dy, **_pad_attributes(pads))


def _valid_taps(size, out_size, kernel_size, pad_before) -> int:
    """(output position, tap) pairs along one axis whose input position lies inside it."""
    return sum(max(0, min(out_size, size + pad_before - k) - max(0, pad_before - k)) for k in range(kernel_size))


def call_flops(target: str, operand_shapes, attributes=()) -> float | None:
    """The matmul FLOPs of one call of FFI target ``target`` on operands of
    ``operand_shapes`` with ``attributes`` (name, value) pairs (XLA's cost analysis counts
    a custom call as none), or None for a target that is not zoo's. The gate math (a few
    dozen FLOPs per unit and step) is left out, as it is small beside the matmuls; a
    convolution counts the multiply-adds of its taps that fall inside the input, as XLA's
    cost analysis does (padding's are not counted)."""
    if target == "zoo_lstm_forward":  # xs, kernel, ...: [x_t, h] @ [W; U] per step
        (T, B, _), (rows, gates) = operand_shapes[0], operand_shapes[1]
        return 2.0 * T * B * rows * gates
    if target == "zoo_lstm_backward":  # dh = dg @ U^T per step, then d[W; U] = [x, h]^T dg
        (T, B, _), (rows, gates), H = operand_shapes[0], operand_shapes[1], operand_shapes[-1][-1]
        return 2.0 * T * B * gates * (H + rows)
    if target == "zoo_gru_forward":  # x_t @ W and h @ U per step
        (T, B, I), (_, gates), (H, _) = operand_shapes[0], operand_shapes[1], operand_shapes[2]
        return 2.0 * T * B * (I + H) * gates
    if target == "zoo_gru_backward":  # dgh @ U^T per step, then x^T dgx and h^T dgh
        (T, B, I), (_, gates), (H, _) = operand_shapes[0], operand_shapes[1], operand_shapes[2]
        return 2.0 * T * B * gates * (H + I + H)
    if target in ("zoo_conv_forward", "zoo_conv_kernel_grad"):
        options = dict(attributes)
        (batch, h, w, c), second = operand_shapes[0], operand_shapes[1]
        pads = ((options["pad_top"], options["pad_bottom"]), (options["pad_left"], options["pad_right"]))
        if target == "zoo_conv_forward":  # x, kernel
            (kh, kw, _, o) = second
            ho, wo = h + sum(pads[0]) - kh + 1, w + sum(pads[1]) - kw + 1
        else:  # x, dy: the kernel's size from the output gradient's
            (_, ho, wo, o) = second
            kh, kw = h + sum(pads[0]) - ho + 1, w + sum(pads[1]) - wo + 1
        return 2.0 * batch * o * c * _valid_taps(h, ho, kh, pads[0][0]) * _valid_taps(w, wo, kw, pads[1][0])
    if target in ("zoo_winograd_forward", "zoo_winograd_kernel_grad"):  # 16 products per 2x2 tile
        options = dict(attributes)
        (batch, h, w, c), second = operand_shapes[0], operand_shapes[1]
        if target == "zoo_winograd_forward":  # x, kernel
            o = second[2] if options.get("transposed") else second[3]
        else:  # x, dy
            o = second[3]
        ho = h + options["pad_top"] + options["pad_bottom"] - 2
        wo = w + options["pad_left"] + options["pad_right"] - 2
        return 2.0 * 16 * batch * -(-ho // 2) * -(-wo // 2) * c * o
    if target == "zoo_matmul":
        options = dict(attributes)
        (p, q), (r, s) = operand_shapes[0], operand_shapes[1]
        m, k = (q, p) if options.get("transpose_a") else (p, q)
        n = r if options.get("transpose_b") else s
        return 2.0 * m * n * k
    return None
