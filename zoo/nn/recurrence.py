"""Recurrence: the Elman, LSTM (plain and peephole) and GRU cells, the one scan runner
that runs them, the layers built on it (one direction, bidirectional, stacked, variable
lengths) and feed-forward attention pooling over time. Seeds: surf2019-cha-rnn-
hierarchical-a and kang-lecture4 (RNN, LSTM, peephole LSTM, GRU, (deep) bidirectional).

A *cell* is a Linen module owning its weights; ``cell(input_size)`` returns a
`Recurrence`: the pure step ``(carry, x_t (B, I)) -> (carry, y_t (B, H))`` and the cell's
``impl``. A carry is ``h`` (B, H), or ``(c, h)`` for the LSTMs. `scan_cell` runs every cell
(``lax.scan`` over time), with masking for variable lengths, reversal and remat.
``impl``: "scan" runs the step in the scan; "fast" runs `zoo.nn.fastrnn`'s whole-sequence
form (plain LSTM, reset-after GRU: same numbers, hand-written backward) or raises
ValueError; "native" runs the plain LSTM or the reset-after GRU through zoo's own CPU
kernels (`zoo.native`, float32) or raises ValueError; "cudnn" runs the plain LSTM through cuDNN
(`zoo.nn.cudnn_lstm`, CUDA GPUs only) or raises ValueError; "auto" (default) takes cuDNN on
a CUDA GPU where it applies, else the native kernel on the CPU where it applies, else the
fast form where it applies. A step that is not a `Recurrence` always takes the scan.

Weight layout (one fused matmul per step, ``concat([x_t, h]) @ concat([W; U])``, measured
fastest on CPU in DESIGN.md); PyTorch's weights map on by `zoo.interop.torch_rnn`:
  Elman      kernel (I+H, H), bias (H,)
  LSTM       kernel (I+H, 4H), bias (4H,); gate blocks (i, f, a, o) as in PyTorch;
             peephole_i/f/o (H, H) ("full", the seed's C P) or (H,) ("diagonal")
  GRU        reset after: input_kernel (I, 3H), recurrent_kernel (H, 3H), bias (3H,),
             recurrent_bias (H,), blocks (r, z, n); reset before: kernel (I+H, 2H),
             bias (2H,), candidate_kernel (I+H, H), candidate_bias (H,)

Every `RNN` layer can add a zero perturbation to its states (collection `PERTURBATIONS`),
so dLoss/dh_t is one gradient (`zoo.explain.gradient_norms_through_time`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo import native
from zoo.nn import cudnn_lstm, fastrnn
from zoo.nn.activations import get_activation
from zoo.nn.tokens import PAD

UPDATE_CONVENTIONS = ("keep", "take")  # z keeps the old state / z takes the candidate
PEEPHOLES = ("full", "diagonal")
MERGES = ("concat", "sum")
IMPLS = ("auto", "scan", "fast", "native", "cudnn")  # how a cell's recurrence runs over a sequence (`Recurrence`)

Step = Callable[[Any, jax.Array], tuple[Any, jax.Array]]


def torch_uniform(fan_in: int):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's init of its recurrent cells (fan_in =
    H) and default for convolutions (fan_in = k*k*C_in)."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def carry_output(carry):
    """The output (B, H) a carry stands for: ``h`` of ``h`` or ``(c, h)``."""
    return carry[1] if isinstance(carry, tuple) else carry


# --- Step functions: pure, weights as arguments.


def elman_step(w, h, x, *, activation: Callable = jnp.tanh):
    """Elman: s_t = f(W x_t + U s_{t-1} + b); x (B, I), h (B, H) -> (h, h)."""
    h = activation(jnp.concatenate([x, h], -1) @ w["kernel"] + w.get("bias", 0.0))
    return h, h


def lstm_step(w, carry, x, *, peephole: str | None = None):
    """LSTM (seed): gates i, f, o, candidate a; C_t = a*i + f*C_{t-1}; h_t = tanh(C_t)*o.

    With ``peephole`` the forget and input gates also see C_{t-1} and the output gate
    sees C_t, through full matrices (``"full"``, the seed's C P) or element-wise weights
    (``"diagonal"``, Gers & Schmidhuber). carry = (c, h), each (B, H).
    """
    c, h = carry
    gates = jnp.concatenate([x, h], -1) @ w["kernel"] + w.get("bias", 0.0)
    i, f, a, o = jnp.split(gates, 4, axis=-1)
    if peephole == "full":
        i, f = i + c @ w["peephole_i"], f + c @ w["peephole_f"]
    elif peephole == "diagonal":
        i, f = i + c * w["peephole_i"], f + c * w["peephole_f"]
    c = jnp.tanh(a) * jax.nn.sigmoid(i) + jax.nn.sigmoid(f) * c
    if peephole == "full":
        o = o + c @ w["peephole_o"]
    elif peephole == "diagonal":
        o = o + c * w["peephole_o"]
    h = jnp.tanh(c) * jax.nn.sigmoid(o)
    return (c, h), h


def gru_step(w, h, x, *, reset_after: bool = True, update_convention: str = "keep"):
    """GRU. Reset gate before the recurrent product (Cho et al.; both seeds):
    a = tanh(W_a x + U_a (r*h) + b_a); after it (PyTorch/cuDNN):
    n = tanh(W_in x + b_in + r*(W_hn h + b_hn)). Then, with ``update_convention="keep"``
    (surf2019, PyTorch) h' = (1-z)*a + z*h; with ``"take"`` (kang-lecture4)
    h' = (1-z)*h + z*a.
    """
    size = h.shape[-1]
    if reset_after:
        gx = x @ w["input_kernel"] + w.get("bias", 0.0)
        gh = h @ w["recurrent_kernel"]
        r = jax.nn.sigmoid(gx[:, :size] + gh[:, :size])
        z = jax.nn.sigmoid(gx[:, size : 2 * size] + gh[:, size : 2 * size])
        a = jnp.tanh(gx[:, 2 * size :] + r * (gh[:, 2 * size :] + w.get("recurrent_bias", 0.0)))
    else:
        rz = jax.nn.sigmoid(jnp.concatenate([x, h], -1) @ w["kernel"] + w.get("bias", 0.0))
        r, z = rz[:, :size], rz[:, size:]
        a = jnp.tanh(jnp.concatenate([x, r * h], -1) @ w["candidate_kernel"] + w.get("candidate_bias", 0.0))
    h = (1.0 - z) * a + z * h if update_convention == "keep" else (1.0 - z) * h + z * a
    return h, h


# --- What a cell hands to the runner: its step, and how to run it over a sequence.


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: compared by identity, as functions are
class Recurrence:
    """A cell's step with weights bound (called as the step), its ``impl`` (`IMPLS`) and,
    where it has one, its fast form ``sequence(carry, xs (B, T, I), *, reverse,
    return_sequences) -> (carry, ys)`` with the ``weights`` it reads (their dtypes decide
    whether it applies), its native CPU form ``native``, same contract, and its cuDNN form
    ``cudnn(carry, xs, *, reverse, return_sequences, lengths)``."""

    step: Step
    impl: str = "auto"
    sequence: Callable | None = None
    weights: Any = None
    cudnn: Callable | None = None
    native: Callable | None = None

    def __call__(self, carry, x):
        return self.step(carry, x)


def _whole_sequence_blocker(form: str, xs, *, remat, perturbations) -> str | None:
    """What stops any whole-sequence ``form`` ("the fast form", "cuDNN") from running: the
    options only the step-by-step scan has, or inputs not (B, T, I). None if nothing does."""
    if remat:
        return "remat needs the scan"
    if perturbations is not None:
        return "hidden-state perturbations (gradient norms through time) need the scan"
    if xs.ndim != 3:
        return f"{form} takes inputs (B, T, I), got shape {tuple(xs.shape)}"
    return None


def _dtypes(recurrence, carry, xs) -> set:
    return {jnp.result_type(a) for a in jax.tree.leaves((recurrence.weights, carry, xs))}


def _fast_blocker(recurrence, carry, xs, *, lengths, remat, perturbations) -> str | None:
    """Why ``recurrence``'s fast whole-sequence form cannot run these arguments (None if it can)."""
    if recurrence.sequence is None:
        return "this cell has no fast form (only the plain LSTM and the reset-after GRU have one)"
    if lengths is not None:
        return "variable lengths (masking) need the scan"
    blocker = _whole_sequence_blocker("the fast form", xs, remat=remat, perturbations=perturbations)
    if blocker is None and len(dtypes := _dtypes(recurrence, carry, xs)) != 1:
        blocker = f"the fast form needs one dtype for weights, state and inputs, got {sorted(map(str, dtypes))}"
    return blocker


def _native_blocker(recurrence, carry, xs, *, lengths, remat, perturbations) -> str | None:
    """Why ``recurrence``'s native CPU form cannot run these arguments here (None if it can)."""
    if recurrence.native is None:
        return "only the plain LSTM and the reset-after GRU have a native kernel"
    if jax.default_backend() != "cpu":
        return f"the native kernel runs on the CPU, the default backend is {jax.default_backend()}"
    if lengths is not None:
        return "variable lengths (masking) need the scan"
    blocker = _whole_sequence_blocker("the native kernel", xs, remat=remat, perturbations=perturbations)
    if blocker is None and (dtypes := _dtypes(recurrence, carry, xs)) != {jnp.dtype(jnp.float32)}:
        blocker = f"the native kernel runs float32 weights, state and inputs, got {sorted(map(str, dtypes))}"
    if blocker is None and (reason := native.unavailable_reason()) is not None:
        blocker = f"zoo.native cannot run: {reason}"
    return blocker


def _cudnn_blocker(recurrence, carry, xs, *, lengths, reverse, remat, perturbations) -> str | None:
    """Why ``recurrence``'s cuDNN form cannot run these arguments here (None if it can)."""
    if recurrence.cudnn is None:
        return "only the plain LSTM (no peepholes) has a cuDNN form"
    if not cudnn_lstm.on_gpu():
        return f"cuDNN needs a CUDA GPU, the default backend is {jax.default_backend()}"
    if reverse and lengths is not None:
        return "a reversed sequence with lengths needs the scan"
    blocker = _whole_sequence_blocker("cuDNN", xs, remat=remat, perturbations=perturbations)
    # jax.experimental.rnn runs float32 only.
    if blocker is None and (dtypes := _dtypes(recurrence, carry, xs)) != {jnp.dtype(jnp.float32)}:
        blocker = f"cuDNN's LSTM runs float32 weights, state and inputs, got {sorted(map(str, dtypes))}"
    return blocker


def check_impl(impl: str, cell: str, fast_form: bool, cudnn_form: bool = False, native_form: bool = False) -> None:
    """Raise ValueError for an unknown ``impl``, or "fast" ("cudnn", "native") on a cell
    without that form."""
    if impl not in IMPLS:
        raise ValueError(f"{cell}: impl must be one of {IMPLS}, got {impl!r}")
    if impl == "fast" and not fast_form:
        raise ValueError(
            f"{cell} has no fast form (zoo.nn.fastrnn runs the plain LSTM and the "
            "reset-after GRU): use impl='auto' or 'scan'"
        )
    if impl == "cudnn" and not cudnn_form:
        raise ValueError(f"{cell} has no cuDNN form (only the plain LSTM has): use impl='auto' or 'scan'")
    if impl == "native" and not native_form:
        raise ValueError(
            f"{cell} has no native kernel (the plain LSTM and the reset-after GRU have): use impl='auto' or 'scan'"
        )


# --- Cells: Linen modules owning the weights; ``cell(input_size)`` returns its `Recurrence`.


class _Cell(nn.Module):
    """The dense cells' common fields (``use_bias`` False: no bias parameters at all)."""

    hidden_size: int = 32
    use_bias: bool = True
    impl: str = "auto"

    def __post_init__(self):
        if int(self.hidden_size) <= 0:
            raise ValueError(f"hidden_size must be positive, got {self.hidden_size}")
        check_impl(
            self.impl, type(self).__name__, self._has_fast_form(), self._has_cudnn_form(), self._has_native_form()
        )
        super().__post_init__()

    def _has_fast_form(self) -> bool:
        return False

    def _has_cudnn_form(self) -> bool:
        return False

    def _has_native_form(self) -> bool:
        return False

    def initial_carry(self, batch_size: int, dtype=jnp.float32):
        """Zero state: (B, H)."""
        return jnp.zeros((batch_size, self.hidden_size), dtype)

    def _weights(self, shapes: dict[str, tuple], inits: dict | None = None) -> dict[str, jax.Array]:
        init = torch_uniform(self.hidden_size)
        inits = inits or {}
        return {
            name: self.param(
                name, inits.get(name) or (nn.initializers.zeros if name.startswith("peephole") else init), shape
            )
            for name, shape in shapes.items()
            if self.use_bias or not name.endswith("bias")
        }


class ElmanCell(_Cell):
    """Elman cell, s_t = f(W x_t + U s_{t-1} + b); torch.nn.RNN's cell. No fast form."""

    activation: str = "tanh"

    def __post_init__(self):
        get_activation(self.activation)
        super().__post_init__()

    @nn.compact
    def __call__(self, input_size: int) -> Recurrence:
        H = self.hidden_size
        w = self._weights({"kernel": (input_size + H, H), "bias": (H,)})
        return Recurrence(functools.partial(elman_step, w, activation=get_activation(self.activation)), self.impl)


class LSTMCell(_Cell):
    """LSTM cell, optionally with peepholes (None, "full", "diagonal"); fast form without.

    ``forget_bias`` is added to the forget gate's initial bias (0: PyTorch; 1: Gers et al.
    2000, Jozefowicz et al. 2015): with f near 1 the state and its gradient survive longer.
    """

    peephole: str | None = None
    forget_bias: float = 0.0

    def __post_init__(self):
        if self.peephole not in (None, *PEEPHOLES):
            raise ValueError(f"peephole must be None or one of {PEEPHOLES}, got {self.peephole!r}")
        super().__post_init__()

    def _has_fast_form(self) -> bool:
        return self.peephole is None

    def _has_cudnn_form(self) -> bool:
        return self.peephole is None

    def _has_native_form(self) -> bool:
        return self.peephole is None

    def initial_carry(self, batch_size: int, dtype=jnp.float32):
        """Zero state (c, h), each (B, H)."""
        zeros = jnp.zeros((batch_size, self.hidden_size), dtype)
        return zeros, zeros

    @nn.compact
    def __call__(self, input_size: int) -> Recurrence:
        H = self.hidden_size
        shapes = {"kernel": (input_size + H, 4 * H), "bias": (4 * H,)}
        if self.peephole is not None:
            p = (H, H) if self.peephole == "full" else (H,)
            shapes.update(peephole_i=p, peephole_f=p, peephole_o=p)
        inits = {}
        if self.forget_bias:
            base, offset = torch_uniform(H), float(self.forget_bias)

            def bias_init(key, shape, dtype=jnp.float32):  # gate blocks (i, f, a, o)
                return base(key, shape, dtype).at[H : 2 * H].add(offset)

            inits["bias"] = bias_init
        w = self._weights(shapes, inits)
        fast = functools.partial(fastrnn.lstm_sequence, w) if self._has_fast_form() else None
        cudnn = functools.partial(cudnn_lstm.lstm_sequence, w) if self._has_cudnn_form() else None
        kernel = functools.partial(fastrnn.lstm_sequence, w, native=True) if self._has_native_form() else None
        step = functools.partial(lstm_step, w, peephole=self.peephole)
        return Recurrence(step, self.impl, fast, w, cudnn, kernel)


class GRUCell(_Cell):
    """GRU cell (`gru_step`); the reset-after form (PyTorch's) has a fast form and a native kernel."""

    reset_after: bool = True
    update_convention: str = "keep"

    def __post_init__(self):
        if self.update_convention not in UPDATE_CONVENTIONS:
            raise ValueError(f"update_convention must be one of {UPDATE_CONVENTIONS}, got {self.update_convention!r}")
        super().__post_init__()

    def _has_fast_form(self) -> bool:
        return bool(self.reset_after)

    def _has_native_form(self) -> bool:
        return bool(self.reset_after)

    @nn.compact
    def __call__(self, input_size: int) -> Recurrence:
        H = self.hidden_size
        if self.reset_after:
            shapes = {
                "input_kernel": (input_size, 3 * H),
                "recurrent_kernel": (H, 3 * H),
                "bias": (3 * H,),
                "recurrent_bias": (H,),
            }
        else:
            shapes = {
                "kernel": (input_size + H, 2 * H),
                "bias": (2 * H,),
                "candidate_kernel": (input_size + H, H),
                "candidate_bias": (H,),
            }
        w = self._weights(shapes)
        step = functools.partial(gru_step, w, reset_after=self.reset_after, update_convention=self.update_convention)
        if not self.reset_after:
            return Recurrence(step, self.impl, weights=w)
        form = functools.partial(fastrnn.gru_sequence, w, update_convention=self.update_convention)
        return Recurrence(step, self.impl, form, w, native=functools.partial(form, native=True))


CELLS = {"rnn": ElmanCell, "lstm": LSTMCell, "gru": GRUCell}

# The cell options a model can expose as config fields, with the cells' defaults; each
# applies to some cells only (`cell_options`).
CELL_OPTIONS = {
    "activation": ("rnn",),
    "peephole": ("lstm",),
    "forget_bias": ("lstm",),
    "reset_after": ("gru",),
    "update_convention": ("gru",),
    "use_bias": ("rnn", "lstm", "gru"),
    "impl": ("rnn", "lstm", "gru"),
}


def _check_kind(kind: str) -> None:
    if kind not in CELLS:
        raise ValueError(f"unknown cell {kind!r}; expected one of {tuple(CELLS)}")


def cell_options(kind: str, **options) -> dict:
    """The ``options`` (names of `CELL_OPTIONS`) that apply to cell ``kind``, as keyword
    arguments of its class; one set away from its default for another cell raises ValueError."""
    _check_kind(kind)
    out = {}
    for name, value in options.items():
        if name not in CELL_OPTIONS:
            raise ValueError(f"unknown cell option {name!r}; expected one of {tuple(CELL_OPTIONS)}")
        if kind in CELL_OPTIONS[name]:
            out[name] = value
            continue
        default = next(f.default for f in dataclasses.fields(CELLS[CELL_OPTIONS[name][0]]) if f.name == name)
        if value != default:
            raise ValueError(
                f"{name}={value!r} applies to the {' / '.join(CELL_OPTIONS[name])} cell, "
                f"not to {kind!r} (leave it at {default!r})"
            )
    return out


class CellOptions(nn.Module):
    """A recurrent model's cell options as fields, declared once for every family (the
    model declares ``cell``)."""

    activation: str = "tanh"  # Elman
    peephole: str | None = None  # LSTM: None, "full" (the seed's) or "diagonal"
    forget_bias: float = 0.0  # LSTM
    reset_after: bool = True  # GRU: PyTorch's form; False: the seeds' (Cho et al.)
    update_convention: str = "keep"  # GRU: z keeps the old state, or "take"s the candidate
    use_bias: bool = True
    impl: str = "auto"  # "auto", "scan", "fast" (zoo.nn.fastrnn), "native" (zoo.native) or "cudnn"

    def cell_options(self) -> dict:
        return cell_options(self.cell, **{name: getattr(self, name) for name in CELL_OPTIONS})


def make_cell(kind: str, hidden_size: int, **options) -> _Cell:
    """A cell by name ("rnn", "lstm", "gru") with its options (e.g. ``peephole="full"``)."""
    _check_kind(kind)
    return CELLS[kind](hidden_size=int(hidden_size), **options)


def validate_cell(kind: str, hidden_size: int, options: dict | None) -> None:
    """Raise ValueError now for a bad cell config (builds an unbound cell: parent=None keeps
    it from being registered as a child of whatever module is being set up)."""
    _check_kind(kind)
    CELLS[kind](hidden_size=int(hidden_size), parent=None, **(options or {}))


# --- The one scan runner.


def _with_output(carry, h):
    """``carry`` with its output part (h of ``h`` or ``(c, h)``) replaced by ``h``."""
    return (carry[0], h) if isinstance(carry, tuple) else h


def scan_cell(
    step: Step,
    carry,
    xs,
    *,
    lengths=None,
    reverse: bool = False,
    remat: bool = False,
    return_sequences: bool = True,
    perturbations=None,
):
    """Run ``step`` over time: xs (B, T, *I) batch-major -> (final carry, ys (B, T, *H) or None).

    Carry leaves are batch-major: dense cells (x_t (B, I)) or convolutional ones (x_t (B, H,
    W, C)). With ``lengths`` (B,), steps t >= lengths[b] keep b's state and output zero;
    ``reverse`` scans from T-1 to 0, so a reversed sequence starts at its own last valid step
    (as PyTorch's packed sequences). ``remat`` recomputes the step in the backward pass.
    ``perturbations`` (B, T, *H), zeros, are added to each new h_t, so their gradient is
    dLoss/dh_t. A `Recurrence` whose ``impl`` allows it runs its cuDNN form on a CUDA GPU
    (float32, no remat or perturbations, lengths only forwards), else its native kernel on
    the CPU (float32, no lengths, remat or perturbations), else its fast form when there
    are no lengths, remat or perturbations and one dtype (impl="cudnn", "native" or "fast"
    otherwise raises ValueError saying why); everything else runs in the scan.
    """
    impl = step.impl if isinstance(step, Recurrence) else "scan"
    common = dict(lengths=lengths, remat=remat, perturbations=perturbations)
    # The whole-sequence forms, in the order "auto" prefers them: (impl, why not, run).
    forms = (
        (
            "cudnn",
            lambda: _cudnn_blocker(step, carry, xs, reverse=reverse, **common),
            lambda: step.cudnn(carry, xs, reverse=reverse, return_sequences=return_sequences, lengths=lengths),
        ),
        (
            "native",
            lambda: _native_blocker(step, carry, xs, **common),
            lambda: step.native(carry, xs, reverse=reverse, return_sequences=return_sequences),
        ),
        (
            "fast",
            lambda: _fast_blocker(step, carry, xs, **common),
            lambda: step.sequence(carry, xs, reverse=reverse, return_sequences=return_sequences),
        ),
    )
    for name, blocker_of, run in forms:
        if impl not in ("auto", name):
            continue
        blocker = blocker_of()
        if blocker is None:
            return run()
        if impl == name:
            raise ValueError(f"impl={name!r} cannot run this sequence: {blocker}; use impl='auto' or 'scan'")
    xs_t = jnp.swapaxes(xs, 0, 1)  # (T, B, *I): scan runs over the leading axis
    eps_t = None if perturbations is None else jnp.swapaxes(perturbations, 0, 1)
    if lengths is None:
        valid = None
    else:
        valid = jnp.arange(xs.shape[1])[:, None] < jnp.asarray(lengths)[None, :]  # (T, B)

    def body(carry, inputs):
        x_t, valid_t, e_t = inputs
        new, y = step(carry, x_t)
        if e_t is not None:
            new = _with_output(new, carry_output(new) + e_t)
            y = carry_output(new)  # every cell here outputs its state: y_t = h_t
        # Keep the carry's dtype (e.g. bfloat16 inputs with float32 weights promote).
        new = jax.tree.map(lambda n, o: n.astype(o.dtype), new, carry)
        if valid_t is not None:

            def keep(n, o):  # valid_t (B,) broadcast over a leaf (B, ...)
                return jnp.where(valid_t.reshape((-1,) + (1,) * (n.ndim - 1)), n, o)

            new = jax.tree.map(keep, new, carry)
            y = jax.tree.map(lambda a: keep(a, jnp.zeros_like(a)), y)
        return new, (y if return_sequences else None)

    if remat:
        body = jax.checkpoint(body)
    carry, ys = jax.lax.scan(body, carry, (xs_t, valid, eps_t), reverse=reverse)
    return carry, (None if ys is None else jnp.swapaxes(ys, 0, 1))


# The collection `zoo.explain.gradient_norms_through_time` differentiates: one zero (B, T, *H) array
# per recurrent layer, added to its states (see `scan_cell`).
PERTURBATIONS = "perturbations"


def hidden_state_perturbation(module: nn.Module, shape, dtype):
    """Zeros ``shape`` to add to a layer's hidden states when the caller asked for them
    (``mutable=[PERTURBATIONS]`` or that collection passed in), else None. Not at ``init``,
    where ``perturb`` alone would put a batch-shaped array into every model's variables."""
    if module.is_initializing():
        return None
    if not (module.is_mutable_collection(PERTURBATIONS) or module.has_variable(PERTURBATIONS, "hidden_states")):
        return None
    return module.perturb("hidden_states", jnp.zeros(shape, dtype), collection=PERTURBATIONS)


# --- Layers.


class RNN(nn.Module):
    """One recurrent layer, one direction: x (B, T, I) -> (final carry, outputs).

    outputs are (B, T, H) with ``return_sequences``, else the last valid output (B, H)
    (for ``reverse`` the output at t = 0, which has seen the whole sequence).
    ``initial_carry`` defaults to zeros; ``lengths`` (B,) masks as in `scan_cell`.
    """

    cell: _Cell  # any module ``cell(input_size) -> step`` with ``initial_carry(batch_size, dtype)``
    return_sequences: bool = True
    reverse: bool = False
    remat: bool = False

    @nn.compact
    def __call__(self, x, initial_carry=None, lengths=None):
        if x.ndim != 3:
            raise ValueError(f"RNN expects input of shape (B, T, I), got {tuple(x.shape)}")
        step = self.cell(x.shape[-1])
        carry = self.cell.initial_carry(x.shape[0], x.dtype) if initial_carry is None else initial_carry
        eps = hidden_state_perturbation(self, x.shape[:2] + carry_output(carry).shape[1:], carry_output(carry).dtype)
        carry, ys = scan_cell(
            step,
            carry,
            x,
            lengths=lengths,
            reverse=self.reverse,
            remat=self.remat,
            return_sequences=self.return_sequences,
            perturbations=eps,
        )
        return carry, (ys if self.return_sequences else carry_output(carry))


class Bidirectional(nn.Module):
    """Two `RNN` layers, the second reversed; outputs merged by "concat" (forward first,
    as PyTorch) or "sum". Carries are returned and taken as a (forward, backward) pair."""

    forward_rnn: RNN
    backward_rnn: RNN
    merge: str = "concat"

    def __post_init__(self):
        if self.merge not in MERGES:
            raise ValueError(f"merge must be one of {MERGES}, got {self.merge!r}")
        super().__post_init__()

    def __call__(self, x, initial_carry=None, lengths=None):
        c_f, c_b = (None, None) if initial_carry is None else initial_carry
        c_f, y_f = self.forward_rnn(x, c_f, lengths)
        c_b, y_b = self.backward_rnn(x, c_b, lengths)
        y = jnp.concatenate([y_f, y_b], -1) if self.merge == "concat" else y_f + y_b
        return (c_f, c_b), y


class StackedRNN(nn.Module):
    """``num_layers`` layers of ``make_cell(cell, hidden_size, **cell_options)``, each
    optionally bidirectional, dropout between layers in train mode: x (B, T, I) ->
    (carries, one per layer, outputs (B, T, D*H), or (B, D*H) without ``return_sequences``;
    D = 2 for "concat" bidirectional layers, else 1).
    """

    cell: str = "lstm"
    hidden_size: int = 32
    num_layers: int = 1
    bidirectional: bool = False
    merge: str = "concat"
    dropout_rate: float = 0.0
    remat: bool = False
    return_sequences: bool = True
    cell_options: dict | None = None

    def __post_init__(self):
        if int(self.num_layers) < 1:
            raise ValueError(f"num_layers must be at least 1, got {self.num_layers}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")
        if self.merge not in MERGES:
            raise ValueError(f"merge must be one of {MERGES}, got {self.merge!r}")
        validate_cell(self.cell, self.hidden_size, self.cell_options)
        super().__post_init__()

    def setup(self):
        def rnn(i, reverse):
            last = i == self.num_layers - 1
            return RNN(
                make_cell(self.cell, self.hidden_size, **(self.cell_options or {})),
                return_sequences=self.return_sequences or not last,
                reverse=reverse,
                remat=self.remat,
            )

        self.layers = [
            Bidirectional(rnn(i, False), rnn(i, True), merge=self.merge) if self.bidirectional else rnn(i, False)
            for i in range(self.num_layers)
        ]
        self.drop = nn.Dropout(self.dropout_rate)

    def __call__(self, x, initial_carry=None, lengths=None, train: bool = False):
        carries = []
        for i, layer in enumerate(self.layers):
            if i > 0 and self.dropout_rate > 0:
                x = self.drop(x, deterministic=not train)
            carry, x = layer(x, None if initial_carry is None else initial_carry[i], lengths)
            carries.append(carry)
        return carries, x


# --- Pooling over time: feed-forward attention, and lengths from padding.


def masked_softmax(scores, valid=None):
    """Softmax over the last axis of ``scores`` (B, T) restricted to ``valid`` (B, T) bool:
    weights are exactly 0 where invalid and sum to 1 over the valid steps (all 0 for a
    row without any valid step, instead of NaN)."""
    if valid is None:
        return jax.nn.softmax(scores, axis=-1)
    # -inf before exp (not a where after it): exp of an unmasked large padding score could
    # overflow, and inf * 0 in the backward pass is NaN.
    scores = jnp.where(valid, scores, -jnp.inf)
    top = jnp.max(scores, axis=-1, keepdims=True)
    top = jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0.0))  # shift-invariant
    e = jnp.exp(scores - top)
    total = jnp.sum(e, axis=-1, keepdims=True)
    return e / jnp.where(total > 0, total, 1.0)


class AttentionPooling(nn.Module):
    """Feed-forward attention over time (Raffel & Ellis 2015): e_t = v^T tanh(W h_t + b),
    alpha = softmax(e) over the valid steps (exactly 0 on padding), c = sum_t alpha_t h_t.
    hs (B, T, D), valid (B, T) bool or None -> (c (B, D), alpha (B, T)); W is
    ``attention_size`` wide (default D)."""

    attention_size: int | None = None

    @nn.compact
    def __call__(self, hs, valid=None):
        size = self.attention_size or hs.shape[-1]
        energy = nn.Dense(1, use_bias=False, name="score")(jnp.tanh(nn.Dense(size, name="project")(hs)))
        weights = masked_softmax(energy[..., 0], valid)
        return jnp.einsum("bt,btd->bd", weights, hs), weights


def lengths_from_padding(token_ids, pad_id: int = PAD):
    """(B, T) int token ids padded at the end -> (B,) int32 lengths: one past each row's
    last non-padding token (0 for an all-padding row)."""
    t = jnp.arange(1, token_ids.shape[1] + 1, dtype=jnp.int32)
    return jnp.max(jnp.where(token_ids != pad_id, t, 0), axis=1)
