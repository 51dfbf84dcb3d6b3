"""The jit'd steps: one train step and one eval step serve every task kind.

Batches are dicts ``{"x": (B, ...), "y": (B, ...), "mask": (B,) float32}``; rows with
mask 0 are padding and count in neither losses nor metrics. The task says which of them
the model is called with (``task.inputs(batch)``: x, or x and y for teacher forcing).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import optax

from zoo.data.augment import Pipeline, augment_batch
from zoo.optim import loss_scale_of
from zoo.train.state import EVAL_NOISE_SEED, TrainState, step_rngs
from zoo.tasks import Task


def masked_sums(per_example: dict, mask) -> dict:
    """Per-example metrics (B,) -> their mask-weighted sums, plus the example count."""
    sums = {k: jnp.sum(v * mask) for k, v in per_example.items()}
    sums["count"] = jnp.sum(mask)
    return sums


def make_train_step(
    model,
    task: Task,
    tx: optax.GradientTransformation,
    keep_state=None,
    augment: Pipeline = (),
    *,
    ema_decay: float | None = None,
    accumulate: int = 1,
):
    """``step(state, batch) -> (state, sums)``: one gradient step on the masked mean loss.

    ``keep_state``: a tree like the model state of bools (`zoo.train.finetune.frozen_state`);
    variables marked True keep their value (frozen layers' batch-norm statistics).
    ``augment``: a `zoo.data.augment` pipeline applied to the batch's images first.
    ``ema_decay``: keep ``state.ema_params`` <- d * ema + (1 - d) * params after each
    update the optimizer applies (`optax.incremental_update`); with ``accumulate`` = k
    (``tx`` an `optax.MultiSteps` of k micro-batches) that is every k-th step."""

    def train_step(state: TrainState, batch):
        mask = batch["mask"]
        rngs = step_rngs(state.rng, state.step)
        if augment:
            batch = {**batch, "x": augment_batch(rngs.pop("augment"), batch["x"], augment)}
        # float16: the loss is scaled up before differentiating, the optimizer
        # (zoo.optim.dynamic_loss_scale) scales the gradients back down.
        scale = loss_scale_of(state.opt_state)

        def loss_fn(params):
            outputs, new_model_state = model.apply(
                {"params": params, **state.model_state},
                *task.inputs(batch),
                train=True,
                rngs=rngs,
                mutable=state.mutable,
            )
            per_example = task.per_example(outputs, batch)
            loss = jnp.sum(per_example["loss"] * mask) / jnp.maximum(jnp.sum(mask), 1.0)
            return (loss if scale is None else loss * scale), (per_example, new_model_state)

        (_, (per_example, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        if keep_state is not None:
            new_model_state = {
                k: jax.tree.map(lambda keep, old, new: old if keep else new, keep_state[k], state.model_state[k], v)
                if k in keep_state
                else v
                for k, v in new_model_state.items()
            }
        params = optax.apply_updates(state.params, updates)
        ema_params = state.ema_params
        if ema_decay is not None:
            # MultiSteps applies the summed update on the k-th micro-batch, counted from
            # step 0 as state.step is; in between the weights stand still.
            applied = (state.step + 1) % accumulate == 0
            averaged = optax.incremental_update(params, ema_params, step_size=1.0 - ema_decay)
            ema_params = jax.tree.map(lambda new, old: jnp.where(applied, new, old), averaged, ema_params)
        state = state.replace(
            step=state.step + 1,
            params=params,
            model_state={**state.model_state, **new_model_state},
            opt_state=opt_state,
            ema_params=ema_params,
        )
        return state, masked_sums(per_example, mask)

    return jax.jit(train_step, donate_argnums=0)


def rule_arguments(rule, model, key) -> dict:
    """What a learning rule asks for besides (variables, x, y, mask): ``model`` (the
    module, whose config holds the rule's settings) and ``key`` (a sampling rule such as
    contrastive divergence), each only if its signature names it."""
    wants = inspect.signature(rule).parameters
    return {name: value for name, value in (("model", model), ("key", key)) if name in wants}


def make_rule_step(model, task: Task, rule, **hparams):
    """For models that learn by a rule, not a gradient:
    ``rule(variables, x, y, mask=mask, **hparams) -> variables`` (padding rows have mask 0
    and must not move the weights), plus `rule_arguments` (the step's key is folded from
    the state's rng and step number). Metrics are those of the batch before the update, as
    in the gradient step."""

    def rule_step(state: TrainState, batch):
        outputs = model.apply(state.variables, *task.inputs(batch), train=False)
        extra = rule_arguments(rule, model, jax.random.fold_in(state.rng, state.step))
        variables = rule(state.variables, batch["x"], batch["y"], mask=batch["mask"], **extra, **hparams)
        # A rule may carry state besides the weights (e.g. persistent Gibbs chains).
        model_state = {**state.model_state, **{k: v for k, v in variables.items() if k != "params"}}
        state = state.replace(step=state.step + 1, params=variables["params"], model_state=model_state)
        return state, masked_sums(task.per_example(outputs, batch), batch["mask"])

    return jax.jit(rule_step, donate_argnums=0)


def make_eval_step(model, task: Task):
    """``step(variables, batch) -> sums`` in inference mode (running batch-norm statistics,
    no dropout)."""

    def eval_step(variables, batch):
        noise = {"noise": jax.random.PRNGKey(EVAL_NOISE_SEED)}
        outputs = model.apply(variables, *task.inputs(batch), train=False, rngs=noise)
        return masked_sums(task.per_example(outputs, batch), batch["mask"])

    return jax.jit(eval_step)
