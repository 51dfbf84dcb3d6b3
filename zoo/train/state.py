"""The one train state every model family shares."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp

# Random streams every model may draw from during training: dropout masks, sampling
# (VAE reparameterisation, RBM Gibbs steps) and input noise (denoising autoencoders).
RNG_STREAMS = ("dropout", "sample", "noise")
# Collections that exist in ``model_state`` but never change while training.
FROZEN_COLLECTIONS = ("constants",)


@flax.struct.dataclass
class TrainState:
    """step: scalar int32; params: the "params" collection; model_state: every other
    collection (e.g. "batch_stats"); opt_state: the optax state; rng: a PRNG key from
    which each step's randomness is folded in by step number (so a resumed run draws the
    same numbers as an uninterrupted one)."""

    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any
    rng: jax.Array

    @property
    def variables(self) -> dict:
        return {"params": self.params, **self.model_state}

    @property
    def mutable(self) -> list[str]:
        return [k for k in self.model_state if k not in FROZEN_COLLECTIONS]


def step_rngs(rng, step) -> dict:
    """One key per stream for training step ``step``."""
    keys = jax.random.split(jax.random.fold_in(rng, step), len(RNG_STREAMS))
    return dict(zip(RNG_STREAMS, keys))


def init_variables(model, input_shape, key, dtype=jnp.float32) -> dict:
    """Initialise ``model`` on a batch of two zero examples of ``input_shape``."""
    params_key, rest = jax.random.split(key)
    rngs = {"params": params_key, **dict(zip(RNG_STREAMS, jax.random.split(rest, len(RNG_STREAMS))))}
    return model.init(rngs, jnp.zeros((2, *input_shape), dtype))


def create_train_state(model, tx, input_shape, *, seed: int, dtype=jnp.float32) -> TrainState:
    """A fresh state: variables initialised from ``seed``, optimizer state from ``tx``."""
    init_key, train_key = jax.random.split(jax.random.PRNGKey(seed))
    variables = dict(init_variables(model, input_shape, init_key, dtype))
    params = variables.pop("params", {})
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=variables,
        opt_state=tx.init(params),
        rng=train_key,
    )
