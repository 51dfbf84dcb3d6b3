r"""Every optimizer of the seeds, built from optax, behind one factory.

    tx = zoo.optim.create("adam", 1e-3, schedule="warmup_cosine",
                          schedule_kwargs={"warmup_steps": 100, "decay_steps": 1000},
                          clip_norm=1.0, l2=1e-2, num_examples=60000)
    print(zoo.optim.describe("nesterov_slide"))   # equation, reference, defaults, notes

Each optimizer is one row of `OPTIMIZERS`: its update equation, paper, defaults and how
it differs from its neighbours are written there once (`describe` prints them;
`list_optimizers` names them). Notation: w the weights, g_t the gradient of the cost at
step t (t = 1, 2, ...), eta_t the learning rate at step t (a float, or a schedule evaluated
at the step count t - 1), every product and square root elementwise. The paper forms are
the defaults; a ``_slide`` name is the form printed in kang-lecture4's "Gradient Descent
Variations" slides, offered only where it differs from the paper (each tested against its
own NumPy reference). Hyper-parameters go to `create` as keywords (``momentum``, ``rho``,
``beta1``, ``beta2``, ``eps``, ``initial_accumulator``, ``weight_decay``; the flags
``centered``, ``eps_in_sqrt``, ``amsgrad``) and are checked against their ranges
(`HYPER_RANGES`); torch.optim's spellings (``lr``, ``betas``, ``alpha``) are refused with
zoo's. ``weight_decay`` of gd/sgd/momentum/nesterov/adam is torch.optim's (g + wd * w, every
array); adamw's is decoupled.

Gradient descent, stochastic and mini-batch ("gd", "sgd") share one update; which of the
three it is depends only on the batch size the trainer is given, not on the optimizer.

Learning-rate schedules: `make_schedule`. Gradient clipping (``clip_value``: each element
into [-c, c]; ``clip_norm``: the global norm to at most c) acts on the incoming gradient.

L1 / L2 regularization, slide "Regularization": the cost is
    Cost = Loss + lambda / (2m) * sum_i |w_i|     (L1)
    Cost = Loss + lambda / (2m) * sum_i w_i^2     (L2)
with m the number of training examples (``num_examples``). The penalties are gradient
transforms that add the penalty's gradient to the raw gradient before the optimizer, so
every optimizer sees the gradient of the whole cost (a penalty in the cost, not
decoupled weight decay as in adamw):
    L2 adds (lambda / m) * w;     L1 adds (lambda / (2m)) * sign(w)   (sign(0) = 0).
By default only arrays with ndim >= 2 (kernels, embedding tables) are penalised, not
biases or normalization scales; ``penalty_mask`` (a pytree of bools or a function of
params returning one, as optax.masked takes) chooses otherwise.

Assembly, for every name: optax.chain(clip_value, clip_norm, L1, L2, optimizer).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import jmp
import optax

from zoo._choices import unknown_name_error

__all__ = [
    "create",
    "describe",
    "list_optimizers",
    "make_schedule",
    "learning_rate_schedule",
    "l1_penalty",
    "l2_penalty",
    "nesterov_slide_weights",
    "SlideMomentumState",
    "SlideNesterovState",
    "AdagradState",
]

LearningRate = float | optax.Schedule


# --------------------------------------------------------------------------- transforms
# The few forms optax does not offer as written.


class SlideMomentumState(NamedTuple):
    """State of momentum_slide: the slide's velocity v (eta already folded in)."""

    count: jax.Array
    velocity: optax.Updates


class SlideNesterovState(NamedTuple):
    """State of nesterov_slide; ``momentum`` is kept so the weights w can be recovered."""

    count: jax.Array
    velocity: optax.Updates
    momentum: jax.Array


class AdagradState(NamedTuple):
    """Duchi et al.'s accumulated squared gradient G."""

    sum_of_squares: optax.Updates


def _learning_rate_at(learning_rate: LearningRate, count: jax.Array):
    return learning_rate(count) if callable(learning_rate) else learning_rate


def _slide_velocity(learning_rate: LearningRate, momentum: float, look_ahead: bool) -> optax.GradientTransformation:
    """The slides' momentum (look_ahead=False) and NAG (look_ahead=True) with eta inside v.

    v_t = gamma v_{t-1} + eta_t g_t. Momentum steps w by -v_t. NAG holds the look-ahead
    point u_t = w_t - gamma v_{t-1} as params, so that g_t (taken at the params) is the
    slide's grad J(w_t - gamma v_{t-1}), and steps u by
    -(1 + gamma) v_t + gamma v_{t-1}, computed as -eta_t g_t - gamma v_t (the same
    number without subtracting two nearly equal terms).
    """

    def init_fn(params):
        count = jnp.zeros([], jnp.int32)
        velocity = optax.tree.zeros_like(params)
        if look_ahead:
            return SlideNesterovState(count, velocity, jnp.asarray(momentum, jnp.float32))
        return SlideMomentumState(count, velocity)

    def update_fn(grads, state, params=None):
        del params
        eta = _learning_rate_at(learning_rate, state.count)
        velocity = jax.tree.map(lambda v, g: momentum * v + eta * g, state.velocity, grads)
        if look_ahead:
            updates = jax.tree.map(lambda v, g: -eta * g - momentum * v, velocity, grads)
        else:
            updates = jax.tree.map(jnp.negative, velocity)
        count = optax.safe_increment(state.count)
        if look_ahead:
            return updates, SlideNesterovState(count, velocity, state.momentum)
        return updates, SlideMomentumState(count, velocity)

    return optax.GradientTransformation(init_fn, update_fn)


def _scale_by_adagrad(initial_accumulator: float, eps: float) -> optax.GradientTransformation:
    """g / (sqrt(G) + eps) with G the running sum of g^2 (optax.adagrad puts eps inside)."""

    def init_fn(params):
        return AdagradState(optax.tree.full_like(params, initial_accumulator))

    def update_fn(grads, state, params=None):
        del params
        sum_of_squares = jax.tree.map(lambda s, g: s + g * g, state.sum_of_squares, grads)
        updates = jax.tree.map(lambda g, s: g / (jnp.sqrt(s) + eps), grads, sum_of_squares)
        return updates, AdagradState(sum_of_squares)

    return optax.GradientTransformation(init_fn, update_fn)


def _add_scaled_sign(coefficient: float) -> optax.GradientTransformation:
    """g + coefficient * sign(w): the (sub)gradient of coefficient * sum |w|."""

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError("the L1 penalty needs params: call tx.update(grads, state, params)")
        return jax.tree.map(lambda g, w: g + coefficient * jnp.sign(w), grads, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


class TorchAMSGradState(NamedTuple):
    """Adam's moments m, v and the running maximum of the raw v."""

    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates
    nu_max: optax.Updates


def _scale_by_amsgrad_torch(b1: float, b2: float, eps: float) -> optax.GradientTransformation:
    """m_hat / (sqrt(max_t v_t / (1 - b2^t)) + eps): the maximum of the raw v, then the bias
    correction, as torch.optim.Adam(amsgrad=True) (optax.amsgrad takes the maximum of v_hat)."""

    def init_fn(params):
        zeros = optax.tree.zeros_like(params)
        return TorchAMSGradState(jnp.zeros([], jnp.int32), zeros, zeros, zeros)

    def update_fn(grads, state, params=None):
        del params
        mu = optax.tree.update_moment(grads, state.mu, b1, 1)
        nu = optax.tree.update_moment_per_elem_norm(grads, state.nu, b2, 2)
        nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu)
        count = optax.safe_increment(state.count)
        c1, c2 = 1 - b1 ** count.astype(jnp.float32), 1 - b2 ** count.astype(jnp.float32)
        updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) / jnp.sqrt(c2) + eps) / c1, mu, nu_max)
        return updates, TorchAMSGradState(count, mu, nu, nu_max)

    return optax.GradientTransformation(init_fn, update_fn)


# --------------------------------------------------------------------------- penalties


def _weights_only(params):
    """Default penalty mask: arrays with ndim >= 2 (kernels), not biases or scales."""
    return jax.tree.map(lambda w: jnp.ndim(w) >= 2, params)


def _check_penalty(kind: str, strength: float, num_examples: int | None) -> None:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength < math.inf:
        raise ValueError(f"{kind} strength must be a finite number >= 0, got {strength!r}")
    if num_examples is None:
        raise ValueError(
            f"{kind} > 0 needs num_examples (m, the number of training "
            f"examples): the slide's penalty is lambda / (2m) * sum ..."
        )
    if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples < 1:
        raise ValueError(f"num_examples must be a positive integer, got {num_examples!r}")


def l1_penalty(strength: float, num_examples: int, mask: Any = None) -> optax.GradientTransformation:
    """Add (lambda / (2m)) sign(w): the gradient of the slide's lambda / (2m) sum |w|.

    ``mask`` (pytree of bools, or params -> pytree) picks the arrays penalised; default:
    those with ndim >= 2.
    """
    _check_penalty("l1", strength, num_examples)
    inner = _add_scaled_sign(strength / (2.0 * num_examples))
    return optax.masked(inner, _weights_only if mask is None else mask)


def l2_penalty(strength: float, num_examples: int, mask: Any = None) -> optax.GradientTransformation:
    """Add (lambda / m) w: the gradient of the slide's lambda / (2m) sum w^2.

    ``mask`` (pytree of bools, or params -> pytree) picks the arrays penalised; default:
    those with ndim >= 2.
    """
    _check_penalty("l2", strength, num_examples)
    return optax.add_decayed_weights(strength / num_examples, mask=_weights_only if mask is None else mask)


# --------------------------------------------------------------------------- schedules


@dataclasses.dataclass(frozen=True)
class _ScheduleSpec:
    build: Callable[..., optax.Schedule]  # build(learning_rate, **kwargs)
    required: tuple[str, ...]
    optional: dict[str, Any]


def _step_schedule(learning_rate, step_size=None, decay=0.1, boundaries=None):
    if (step_size is None) == (boundaries is None):
        raise ValueError(
            "schedule 'step' takes exactly one of step_size (decay every "
            "step_size steps) or boundaries (decay at each listed step)"
        )
    if boundaries is not None:
        boundaries = [int(b) for b in boundaries]
        if any(b <= 0 for b in boundaries) or len(set(boundaries)) != len(boundaries):
            raise ValueError(f"step boundaries must be distinct positive steps, got {boundaries}")
        return optax.piecewise_constant_schedule(learning_rate, {b: decay for b in boundaries})
    _check_positive_steps(step_size=step_size)
    return optax.exponential_decay(learning_rate, transition_steps=step_size, decay_rate=decay, staircase=True)


def _cosine_schedule(learning_rate, decay_steps, alpha=0.0):
    _check_positive_steps(decay_steps=decay_steps)
    return optax.cosine_decay_schedule(learning_rate, decay_steps=decay_steps, alpha=alpha)


def _warmup_schedule(learning_rate, warmup_steps, init_value=0.0):
    _check_positive_steps(warmup_steps=warmup_steps)
    # linear_schedule holds end_value after transition_steps: warmup, then constant.
    return optax.linear_schedule(init_value, learning_rate, transition_steps=warmup_steps)


def _warmup_cosine_schedule(learning_rate, warmup_steps, decay_steps, init_value=0.0, end_value=0.0):
    _check_positive_steps(warmup_steps=warmup_steps, decay_steps=decay_steps)
    if decay_steps <= warmup_steps:
        raise ValueError(
            f"warmup_cosine: decay_steps (total, warmup included) must exceed "
            f"warmup_steps, got {decay_steps} <= {warmup_steps}"
        )
    return optax.warmup_cosine_decay_schedule(init_value, learning_rate, warmup_steps, decay_steps, end_value)


def _check_positive_steps(**steps) -> None:
    for key, value in steps.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")


_SCHEDULES: dict[str, _ScheduleSpec] = {
    "constant": _ScheduleSpec(lambda lr: optax.constant_schedule(lr), (), {}),
    "step": _ScheduleSpec(_step_schedule, (), {"step_size": None, "decay": 0.1, "boundaries": None}),
    "cosine": _ScheduleSpec(_cosine_schedule, ("decay_steps",), {"alpha": 0.0}),
    "warmup": _ScheduleSpec(_warmup_schedule, ("warmup_steps",), {"init_value": 0.0}),
    "warmup_cosine": _ScheduleSpec(
        _warmup_cosine_schedule, ("warmup_steps", "decay_steps"), {"init_value": 0.0, "end_value": 0.0}
    ),
}


def make_schedule(kind: str, learning_rate: float, **kwargs) -> optax.Schedule:
    """A learning-rate schedule peaking at (or starting from) ``learning_rate``.

    t counts the updates already made: the first update uses the value at t = 0.
    kinds and their keyword arguments:
      constant                                   eta
      step        step_size, decay=0.1           eta * decay^floor(t / step_size)
                  or boundaries=[...], decay     eta * decay^k once t >= the k-th boundary
      cosine      decay_steps, alpha=0.0         cosine from eta to alpha * eta
      warmup      warmup_steps, init_value=0.0   linear init_value -> eta, then eta
      warmup_cosine  warmup_steps, decay_steps, init_value=0.0, end_value=0.0
                  linear warmup, then cosine to end_value at step decay_steps (total)
    Unknown kinds or keywords, and missing or non-positive step counts, raise ValueError.
    """
    spec = _SCHEDULES.get(kind)
    if spec is None:
        raise unknown_name_error("schedule", kind, _SCHEDULES)
    valid = (*spec.required, *spec.optional)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(
            f"schedule {kind!r} got unknown keyword(s) {', '.join(unknown)}; valid: {', '.join(valid) or '(none)'}"
        )
    missing = [k for k in spec.required if k not in kwargs]
    if missing:
        raise ValueError(f"schedule {kind!r} needs {', '.join(missing)}")
    for key, value in kwargs.items():
        if (
            key != "boundaries"
            and value is not None
            and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value))
        ):
            raise ValueError(f"schedule {kind!r}: {key} must be a finite number, got {value!r}")
    if kwargs.get("boundaries") is not None and (
        not isinstance(kwargs["boundaries"], (list, tuple))
        or not all(isinstance(b, int) and not isinstance(b, bool) for b in kwargs["boundaries"])
    ):
        raise ValueError(f"schedule {kind!r}: boundaries must be a list of step numbers, got {kwargs['boundaries']!r}")
    return spec.build(learning_rate, **kwargs)


# --------------------------------------------------------------------------- optimizers


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """One row of the table: how to build it, its defaults, and where it comes from."""

    build: Callable[..., optax.GradientTransformation]  # build(learning_rate, **hyper)
    defaults: dict[str, float]
    equation: str
    reference: str
    note: str = ""


def _decayed(tx, weight_decay):
    # torch.optim's coupled weight_decay: g + weight_decay * w on every array, before the update.
    return optax.chain(optax.add_decayed_weights(weight_decay), tx) if weight_decay else tx


def _sgd(lr, weight_decay):
    return _decayed(optax.sgd(lr), weight_decay)


def _momentum(lr, momentum, weight_decay):
    return _decayed(optax.sgd(lr, momentum=momentum), weight_decay)


def _nesterov(lr, momentum, weight_decay):
    return _decayed(optax.sgd(lr, momentum=momentum, nesterov=True), weight_decay)


def _momentum_slide(lr, momentum):
    return _slide_velocity(lr, momentum, look_ahead=False)


def _nesterov_slide(lr, momentum):
    return _slide_velocity(lr, momentum, look_ahead=True)


def _adagrad(lr, eps, initial_accumulator):
    return optax.chain(_scale_by_adagrad(initial_accumulator, eps), optax.scale_by_learning_rate(lr))


def _adagrad_slide(lr, eps, initial_accumulator):
    # optax.adagrad is exactly the slide's form once G_0 is the slide's 0.
    return optax.adagrad(lr, initial_accumulator_value=initial_accumulator, eps=eps)


def _adadelta(lr, rho, eps):
    return optax.adadelta(lr, rho=rho, eps=eps)


def _rmsprop(lr, rho, eps, momentum, centered, eps_in_sqrt):
    return optax.rmsprop(lr, decay=rho, eps=eps, eps_in_sqrt=eps_in_sqrt, centered=centered, momentum=momentum or None)


def _adam(lr, beta1, beta2, eps, weight_decay, amsgrad):
    if amsgrad:
        tx = optax.chain(_scale_by_amsgrad_torch(beta1, beta2, eps), optax.scale_by_learning_rate(lr))
    else:
        tx = optax.adam(lr, b1=beta1, b2=beta2, eps=eps)
    return _decayed(tx, weight_decay)


def _adam_slide(lr, beta1, beta2, eps):
    # optax.adam divides by sqrt(v_hat + eps_root) + eps.
    return optax.adam(lr, b1=beta1, b2=beta2, eps=0.0, eps_root=eps)


def _adamw(lr, beta1, beta2, eps, weight_decay):
    return optax.adamw(lr, b1=beta1, b2=beta2, eps=eps, weight_decay=weight_decay)


_GD = OptimizerSpec(
    _sgd,
    {"weight_decay": 0.0},
    "w <- w - eta g",
    "Cauchy 1847; slide 'Gradient Descent revisited' (batch, stochastic, mini-batch)",
    "gd and sgd are one update: full-batch, stochastic or mini-batch is the trainer's "
    "batch size (N, 1 or n examples), not the optimizer.",
)
_RMSPROP = OptimizerSpec(
    _rmsprop,
    {"rho": 0.9, "eps": 1e-8, "momentum": 0.0, "centered": False, "eps_in_sqrt": True},
    "E = rho E + (1 - rho) g^2; w <- w - eta g / sqrt(E + eps)",
    "Hinton, Srivastava & Swersky 2012, Neural Networks for ML lecture 6e (optax.rmsprop, eps inside the root)",
    "the slide's 'RMSProp' and 'Adadelta' equations are this form; PyTorch and Keras put "
    "eps outside the root, Hinton's lecture has none. torch.optim.RMSprop: eps_in_sqrt=False "
    "(g / (sqrt(E) + eps)), rho = its alpha (0.99); centered=True divides by sqrt(E - mean(g)^2); "
    "momentum > 0 steps by eta T, T = momentum T + g / sqrt(...)",
)

OPTIMIZERS: dict[str, OptimizerSpec] = {
    "gd": _GD,
    "sgd": _GD,
    "momentum": OptimizerSpec(
        _momentum,
        {"momentum": 0.9, "weight_decay": 0.0},
        "T = gamma T + g; w <- w - eta T",
        "Polyak 1964, heavy ball (optax.sgd(momentum=gamma))",
        "equals momentum_slide under a constant eta (v = eta T); under a schedule optax "
        "scales the whole trace by today's eta_t, the slide folds each step's eta into v",
    ),
    "momentum_slide": OptimizerSpec(
        _momentum_slide,
        {"momentum": 0.9},
        "v = gamma v + eta g; w <- w - v",
        "kang-lecture4 slide 'Momentum' (its 'w_t = w_{t+1} - v_t' read as w_{t+1} = w_t - v_t)",
        "eta inside v: each step's eta is fixed into v when its gradient arrives",
    ),
    "nesterov": OptimizerSpec(
        _nesterov,
        {"momentum": 0.9, "weight_decay": 0.0},
        "T = gamma T + g; w <- w - eta (g + gamma T)",
        "Sutskever, Martens, Dahl & Hinton 2013 (optax.sgd(momentum, nesterov=True))",
        "its iterates are the slide's look-ahead points u = w - gamma v under a constant eta",
    ),
    "nesterov_slide": OptimizerSpec(
        _nesterov_slide,
        {"momentum": 0.9},
        "v = gamma v + eta grad J(w - gamma v); w <- w - v; held as u = w - gamma v, "
        "u <- u - (1 + gamma) v_t + gamma v_{t-1}",
        "Nesterov 1983; kang-lecture4 slide 'Nesterov Accelerated Gradient (NAG)'",
        "params are the look-ahead points u; nesterov_slide_weights(params, state) gives w",
    ),
    "adagrad": OptimizerSpec(
        _adagrad,
        {"eps": 1e-8, "initial_accumulator": 0.0},
        "G = G + g^2; w <- w - eta g / (sqrt(G) + eps)",
        "Duchi, Hazan & Singer 2011 (eps is their delta, outside the root)",
        "G_0 = 0 as in the paper and the slide (optax.adagrad's own default G_0 is 0.1)",
    ),
    "adagrad_slide": OptimizerSpec(
        _adagrad_slide,
        {"eps": 1e-8, "initial_accumulator": 0.0},
        "G = G + g^2; w <- w - eta g / sqrt(G + eps)",
        "kang-lecture4 slide 'Adagrad' (optax.adagrad with G_0 = 0)",
        "eps inside the root; the slide's look-ahead gradient is a typo for grad J(w_t)",
    ),
    "adadelta": OptimizerSpec(
        _adadelta,
        {"rho": 0.95, "eps": 1e-6},
        "E_g = rho E_g + (1 - rho) g^2; d = -sqrt(E_d + eps) / sqrt(E_g + eps) g; "
        "E_d = rho E_d + (1 - rho) d^2; w <- w + eta d",
        "Zeiler 2012 (optax.adadelta)",
        "the paper has no learning rate: pass learning_rate=1.0 to reproduce it (with another "
        "eta, E_d still tracks the unscaled step d, optax's choice)",
    ),
    "rmsprop": _RMSPROP,
    "rmsprop_slide": dataclasses.replace(
        _RMSPROP,
        reference="kang-lecture4 slide 'RMSProp'",
        note="alias of rmsprop: the slide's form is the same (its eta / sqrt(RMS[g] + eps) "
        "line means eta / RMS[g], RMS[g] = sqrt(E[g^2] + eps))",
    ),
    "adadelta_slide": dataclasses.replace(
        _RMSPROP,
        reference="kang-lecture4 slide 'Adadelta'",
        note="alias of rmsprop: the slide's 'Adadelta' equation is RMSProp (gamma = rho); "
        "Zeiler's Adadelta is 'adadelta'",
    ),
    "adam": OptimizerSpec(
        _adam,
        {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False},
        "m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; w <- w - eta m_hat / (sqrt(v_hat) + eps)",
        "Kingma & Ba 2015 (optax.adam); amsgrad: Reddi, Kale & Kumar 2018",
        "amsgrad=True divides by sqrt(max_t v_t / (1 - b2^t)) + eps, torch.optim.Adam's form",
    ),
    "adam_slide": OptimizerSpec(
        _adam_slide,
        {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
        "as adam, w <- w - eta m_hat / sqrt(v_hat + eps)",
        "kang-lecture4 slide 'Adam' (optax.adam(eps=0, eps_root=eps))",
        "eps inside the root",
    ),
    "adamw": OptimizerSpec(
        _adamw,
        {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-4},
        "as adam, w <- w - eta (m_hat / (sqrt(v_hat) + eps) + weight_decay w)",
        "Loshchilov & Hutter 2019 (optax.adamw; decay scaled by eta as in PyTorch)",
        "decay acts on every array; the paper's lambda is eta * weight_decay at constant eta",
    ),
}


# Each hyper-parameter's valid range: (low, high, low included, high included).
HYPER_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "momentum": (0.0, 1.0, True, False),
    "rho": (0.0, 1.0, True, False),
    "beta1": (0.0, 1.0, True, False),
    "beta2": (0.0, 1.0, True, False),
    "eps": (0.0, float("inf"), False, False),
    "initial_accumulator": (0.0, float("inf"), True, False),
    "weight_decay": (0.0, float("inf"), True, False),
}
_FLAGS = ("centered", "eps_in_sqrt", "amsgrad")  # hyper-parameters that are True or False
# torch.optim's spellings -> zoo's.
_TORCH_NAMES = {"lr": "learning_rate", "betas": "beta1, beta2", "alpha": "rho"}


def _range_text(low, high, low_in, high_in) -> str:
    if high == float("inf"):
        return f"{'>=' if low_in else '>'} {low:g}"
    return f"in {'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"


def _check_hyper(name: str, key: str, value) -> float:
    """``value`` as a float within ``HYPER_RANGES[key]`` (a bool for `_FLAGS`), else one ValueError line."""
    if key in _FLAGS:
        if not isinstance(value, bool):
            raise ValueError(f"optimizer {name!r}: {key} must be True or False, got {value!r}")
        return value
    low, high, low_in, high_in = HYPER_RANGES[key]
    where = f"optimizer {name!r}: {key} must be a number {_range_text(low, high, low_in, high_in)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}, got {value!r}")
    value = float(value)
    inside = (value >= low if low_in else value > low) and (value <= high if high_in else value < high)
    if not inside:
        raise ValueError(f"{where}, got {value!r}")
    return value


def _check_learning_rate(learning_rate) -> None:
    if callable(learning_rate):
        return
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
        raise ValueError(f"learning rate must be a positive number or an optax schedule, got {learning_rate!r}")
    if not (0 < learning_rate < float("inf")):
        raise ValueError(f"learning rate must be a positive finite number, got {learning_rate!r}")


def list_optimizers() -> list[str]:
    """Every name `create` accepts, paper forms and their ``_slide`` variants."""
    return list(OPTIMIZERS)


def describe(name: str) -> str:
    """The equation, reference and notes of optimizer ``name``, with its defaults."""
    spec = _lookup(name)
    defaults = ", ".join(f"{k}={v}" for k, v in spec.defaults.items()) or "none"
    lines = [f"{name}: {spec.equation}", f"  reference: {spec.reference}", f"  hyper-parameters (defaults): {defaults}"]
    if spec.note:
        lines.append(f"  note: {spec.note}")
    return "\n".join(lines)


def _lookup(name: str) -> OptimizerSpec:
    spec = OPTIMIZERS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise unknown_name_error("optimizer", name, OPTIMIZERS)
    return spec


def create(
    name: str,
    learning_rate: LearningRate = 1e-3,
    *,
    schedule: str | None = None,
    schedule_kwargs: dict | None = None,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    l1: float = 0.0,
    l2: float = 0.0,
    num_examples: int | None = None,
    penalty_mask: Any = None,
    **hyper,
) -> optax.GradientTransformation:
    """The optax transform for optimizer ``name`` (see `list_optimizers`, `describe`).

    ``learning_rate`` is a float, shaped by ``schedule`` (a `make_schedule` kind, with
    ``schedule_kwargs``; default constant), or an optax schedule itself. ``hyper`` sets
    the optimizer's hyper-parameters (module docstring); unknown ones raise ValueError.
    ``clip_value`` / ``clip_norm`` clip the incoming gradient; ``l1`` / ``l2`` add the
    slide's penalties lambda / (2m) sum |w| / w^2 to the cost, m = ``num_examples``
    (required when either is > 0), on the arrays ``penalty_mask`` picks (default ndim >= 2).
    """
    spec = _lookup(name)
    for key in sorted(set(hyper) & set(_TORCH_NAMES)):
        raise ValueError(f"optimizer {name!r}: {key!r} is PyTorch's name; zoo spells it {_TORCH_NAMES[key]}")
    unknown = sorted(set(hyper) - set(spec.defaults))
    if unknown:
        valid = ", ".join(spec.defaults) or "none"
        raise ValueError(
            f"optimizer {name!r} got unknown hyper-parameter(s) {', '.join(unknown)}; valid for {name!r}: {valid}"
        )
    hyper = {k: _check_hyper(name, k, v) for k, v in hyper.items()}
    _check_learning_rate(learning_rate)
    eta = _resolve_learning_rate(learning_rate, schedule, schedule_kwargs)

    parts = []
    if clip_value is not None:
        _check_clip("clip_value", clip_value)
        parts.append(optax.clip(clip_value))
    if clip_norm is not None:
        _check_clip("clip_norm", clip_norm)
        parts.append(optax.clip_by_global_norm(clip_norm))
    for strength, penalty in ((l1, l1_penalty), (l2, l2_penalty)):
        if strength != 0 or not isinstance(strength, (int, float)):
            parts.append(penalty(strength, num_examples, penalty_mask))
    parts.append(spec.build(eta, **{**spec.defaults, **hyper}))
    return optax.chain(*parts)


def _resolve_learning_rate(learning_rate, schedule, schedule_kwargs) -> LearningRate:
    if callable(learning_rate):
        if schedule is not None or schedule_kwargs:
            raise ValueError("learning_rate is already a schedule; drop schedule/schedule_kwargs")
        return learning_rate
    if schedule is None:
        if schedule_kwargs:
            raise ValueError("schedule_kwargs given without a schedule kind")
        # A plain float: optax scales by a constant, with no step counter in the state.
        return learning_rate
    return make_schedule(schedule, learning_rate, **(schedule_kwargs or {}))


def learning_rate_schedule(
    learning_rate: LearningRate, schedule: str | None = None, schedule_kwargs: dict | None = None
) -> optax.Schedule:
    """The learning rate `create` applies, as a function of the update count t (t = 0 for
    the first update): what a trainer logs beside its losses."""
    _check_learning_rate(learning_rate)
    eta = _resolve_learning_rate(learning_rate, schedule, schedule_kwargs)
    return eta if callable(eta) else optax.constant_schedule(eta)


def _check_clip(key: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"{key} must be > 0, got {value!r}")


def nesterov_slide_weights(params, opt_state):
    """The slide's weights w_t = u_t + gamma v_{t-1} from nesterov_slide's look-ahead params.

    ``opt_state`` is the state of a `create("nesterov_slide", ...)` transform (alone or
    inside a chain). Use w, not u, to evaluate or export the model the slide describes.
    """
    states = [
        s
        for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, SlideNesterovState))
        if isinstance(s, SlideNesterovState)
    ]
    if len(states) != 1:
        raise ValueError(f"expected the state of one 'nesterov_slide' optimizer, found {len(states)} in opt_state")
    state = states[0]
    return jax.tree.map(lambda u, v: u + state.momentum.astype(v.dtype) * v, params, state.velocity)


# --- Mixed precision: dynamic loss scaling for float16 (zoo.nn.precision) ---


class LossScaleState(NamedTuple):
    """The current scale (jmp's DynamicLossScale: scale and the count of finite steps
    since it last changed) and the wrapped optimizer's state."""

    loss_scale: jmp.DynamicLossScale
    inner_state: Any


def dynamic_loss_scale(
    inner: optax.GradientTransformation, initial_scale: float = 2.0**15, period: int = 2000, factor: int = 2
) -> optax.GradientTransformation:
    """``inner`` for gradients of a loss multiplied by the current scale (jmp's dynamic
    loss scaling, as an optax transformation). Each update divides the gradients by the
    scale; when any is not finite the step is skipped (zero updates, ``inner``'s state
    kept) and the scale divided by ``factor``; after ``period`` finite steps in a row it is
    multiplied by ``factor``. The train step reads the scale with `loss_scale_of`."""

    def init(params):
        scale = jmp.DynamicLossScale(jnp.asarray(initial_scale, jnp.float32), period=period, factor=factor)
        return LossScaleState(scale, inner.init(params))

    def update(scaled_grads, state, params=None):
        grads = state.loss_scale.unscale(scaled_grads)
        finite = jmp.all_finite(grads)
        # Non-finite gradients would poison inner's moments even when the step is dropped.
        safe = jax.tree.map(lambda g: jnp.where(finite, g, jnp.zeros_like(g)), grads)
        updates, inner_state = inner.update(safe, state.inner_state, params)
        updates = jmp.select_tree(finite, updates, jax.tree.map(jnp.zeros_like, updates))
        inner_state = jmp.select_tree(finite, inner_state, state.inner_state)
        return updates, LossScaleState(state.loss_scale.adjust(finite), inner_state)

    return optax.GradientTransformation(init, update)


def loss_scale_of(opt_state):
    """The scale the loss is multiplied by before differentiating: that of the
    `dynamic_loss_scale` state in ``opt_state`` (outermost, or inside another wrapper such as
    optax.MultiSteps), else None (no scaling)."""
    states = [
        s
        for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, LossScaleState))
        if isinstance(s, LossScaleState)
    ]
    if len(states) > 1:
        raise ValueError(f"expected at most one dynamic_loss_scale in the optimizer, found {len(states)}")
    return states[0].loss_scale.loss_scale if states else None
