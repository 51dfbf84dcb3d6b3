"""The one train state every model family shares."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp

from zoo.nn.inputs import zeros

# Random streams of a training step: "dropout", "noise" for models that corrupt their
# input or sample (denoising autoencoders, the VAE), "augment" for the data augmentation
# of the batch (zoo.data.augment). Evaluation draws "noise" from EVAL_NOISE_SEED, so a
# test metric is a fixed number.
RNG_STREAMS = ("dropout", "noise", "augment")
EVAL_NOISE_SEED = 0
# Collections that exist in ``model_state`` but never change while training.
FROZEN_COLLECTIONS = ("constants",)


@flax.struct.dataclass
class TrainState:
    """step: scalar int32; params: the "params" collection; model_state: every other
    collection (e.g. "batch_stats"); opt_state: the optax state; rng: a PRNG key from
    which each step's randomness is folded in by step number (so a resumed run draws the
    same numbers as an uninterrupted one); ema_params: the exponential moving average of
    params when the run keeps one (``fit(ema=...)``), else None."""

    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any
    rng: jax.Array
    ema_params: Any = None

    @property
    def variables(self) -> dict:
        return {"params": self.params, **self.model_state}

    @property
    def inference_variables(self) -> dict:
        """The variables to evaluate and export: the moving average of the weights when
        the run keeps one (with the live model state, e.g. batch-norm statistics)."""
        return {"params": self.params if self.ema_params is None else self.ema_params, **self.model_state}

    @property
    def mutable(self) -> list[str]:
        return [k for k in self.model_state if k not in FROZEN_COLLECTIONS]


def step_rngs(rng, step) -> dict:
    """One key per stream for training step ``step``. "dropout" keeps the key it had when it
    was the only stream (a one-way split), so earlier runs reproduce; each later stream
    folds in its index."""
    step_key = jax.random.fold_in(rng, step)
    (dropout,) = jax.random.split(step_key, 1)
    return {"dropout": dropout, **{s: jax.random.fold_in(step_key, i) for i, s in enumerate(RNG_STREAMS) if i}}


def init_variables(model, input_shape, key, dtype=jnp.float32, *, inputs: tuple | None = None) -> dict:
    """Initialise ``model`` on a batch of two zero examples of ``input_shape``, or on
    ``inputs``, the model call's positional arguments (e.g. a seq2seq model's
    ``(x, y)``; `example_inputs` builds them from a dataset and a task)."""
    params_key, rest = jax.random.split(key)
    rngs = {"params": params_key, **step_rngs(rest, 0)}
    if inputs is None:
        inputs = (jnp.zeros((2, *input_shape), dtype),)
    return model.init(rngs, *inputs)


def example_inputs(task, x_shape, x_dtype, y_shape=None, y_dtype=None) -> tuple:
    """The model call's arguments for two zero examples: ``task.inputs`` of a batch with
    x ``(2, *x_shape)`` (a tuple of such arrays for a multi-part ``x_shape``, `zoo.nn.inputs`)
    and, when given, y ``(2, *y_shape)``."""
    batch = {"x": zeros(2, x_shape, x_dtype, jnp)}
    if y_shape is not None:
        batch["y"] = jnp.zeros((2, *y_shape), y_dtype)
    return task.inputs(batch)


def create_train_state(
    model, tx, input_shape, *, seed: int, dtype=jnp.float32, inputs: tuple | None = None
) -> TrainState:
    """A fresh state: variables initialised from ``seed`` (on ``inputs`` when given, see
    `init_variables`), optimizer state from ``tx``."""
    init_key, train_key = jax.random.split(jax.random.PRNGKey(seed))
    variables = dict(init_variables(model, input_shape, init_key, dtype, inputs=inputs))
    params = variables.pop("params", {})
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params, model_state=variables, opt_state=tx.init(params), rng=train_key
    )
