"""Task kinds: how a model's outputs and a batch become per-example losses and metrics.

A task is data plus one function, ``per_example(outputs, batch) -> {name: (B,) array}``;
the entry ``"loss"`` is what the train step minimises (its masked mean). The train and
eval steps (zoo.train.steps) are written once against this interface, so a new family
adds a task here, not a training loop. Task kinds expected over the project:
classification, regression, reconstruction (incl. VAE's ELBO, sparsity penalties),
segmentation, sequence classification, sequence-to-sequence, multi-output.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import jax.numpy as jnp
import optax

from zoo._choices import lookup

PerExample = Callable[[object, Mapping[str, jnp.ndarray]], dict]


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    per_example: PerExample
    monitor: str  # the validation metric early stopping and "best" use
    mode: str  # "max" or "min" for the monitored metric


def _classification(logits, batch):
    """logits (B, C), batch["y"] (B,) int -> softmax cross-entropy and 0/1 accuracy."""
    labels = batch["y"].astype(jnp.int32)
    return {
        "loss": optax.softmax_cross_entropy_with_integer_labels(logits, labels),
        "accuracy": (jnp.argmax(logits, -1) == labels).astype(jnp.float32),
    }


def _regression(outputs, batch):
    """outputs (B, K), batch["y"] (B, K) -> the seed's loss (t - y)^2 / 2 summed over K,
    and the mean squared error over K."""
    err = outputs.reshape(outputs.shape[0], -1) - batch["y"].reshape(outputs.shape[0], -1)
    return {"loss": 0.5 * jnp.sum(err**2, -1), "mse": jnp.mean(err**2, -1)}


def _binary_squared(outputs, batch):
    """outputs (B, 1) in [0, 1] (a sigmoid or threshold unit), batch["y"] (B,) in {0, 1} ->
    the seed's perceptron loss (t - y)^2 / 2 and accuracy of the 0.5 threshold."""
    y = outputs.reshape(outputs.shape[0])
    t = batch["y"].reshape(outputs.shape[0]).astype(y.dtype)
    return {"loss": 0.5 * (t - y) ** 2, "accuracy": ((y >= 0.5) == (t >= 0.5)).astype(jnp.float32)}


TASKS: dict[str, Task] = {
    "binary_classification": Task("binary_classification", _binary_squared, "accuracy", "max"),
    "classification": Task("classification", _classification, "accuracy", "max"),
    "regression": Task("regression", _regression, "loss", "min"),
}


def get_task(name: str) -> Task:
    return lookup(TASKS, name, "task")
