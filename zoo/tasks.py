"""Task kinds, the one table: how a model's outputs and a batch become per-example losses
and metrics. The registry checks each model's task against it when the model registers,
and the training engine trains by it; it lives below both so neither imports the other.

A task is data plus two functions: ``inputs(batch) -> tuple`` (the positional arguments
of the model call; ``(batch["x"],)`` for most tasks, ``(batch["x"], batch["y"])`` where
the model needs the target, as a seq2seq decoder does for teacher forcing) and
``per_example(outputs, batch) -> {name: (B,) array}``; the entry ``"loss"`` is what the
train step minimises (its masked mean). The train and eval steps (zoo.train.steps) and
the initialisation (zoo.train.state) are written once against this interface, so a new
family adds a task here, not a training loop.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import jax.numpy as jnp
import optax

from zoo._choices import lookup
from zoo.nn.tokens import PAD

PerExample = Callable[[object, Mapping[str, jnp.ndarray]], dict]
ModelInputs = Callable[[Mapping[str, jnp.ndarray]], tuple]


def x_only(batch) -> tuple:
    """The model sees the input alone: ``model(x)``."""
    return (batch["x"],)


def x_and_y(batch) -> tuple:
    """The model sees the input and the target: ``model(x, y)`` (teacher forcing)."""
    return (batch["x"], batch["y"])


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    per_example: PerExample
    monitor: str  # the validation metric early stopping and "best" use
    mode: str  # "max" or "min" for the monitored metric
    inputs: ModelInputs = x_only  # batch -> positional arguments of the model call


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


def _sequence_to_sequence(outputs, batch):
    """Token-level softmax cross-entropy with padding (id 0) ignored.

    outputs: a dict with ``"logits"`` (B, T, V) — teacher-forced in a seq2seq model — and,
    when the model decoded greedily (inference mode), ``"predictions"`` (B, T) int; or the
    logits array itself. batch["y"]: (B, T) int target ids, 0 = padding.

    Per example: ``loss`` the mean cross-entropy over its non-pad target tokens,
    ``token_accuracy`` the fraction of them the logits' argmax gets right (teacher
    forced), and ``exact_match`` 1 if the whole sequence is right: from the greedy
    ``predictions`` when given (each position, pads included, equal to the target), else
    from the teacher-forced argmax. Both agree whenever the model is right: a decoder
    fed its own correct tokens sees exactly the teacher's inputs. Averages are over
    sequences (each sequence's own token mean), which equals the token mean when the
    targets of a batch have one length, as in every generated task here.
    """
    logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs
    targets = batch["y"].astype(jnp.int32)
    valid = targets != PAD
    tokens = jnp.maximum(jnp.sum(valid, -1), 1)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    argmax = jnp.argmax(logits, -1)
    correct = (argmax == targets) & valid
    metrics = {"loss": jnp.sum(jnp.where(valid, ce, 0.0), -1) / tokens, "token_accuracy": jnp.sum(correct, -1) / tokens}
    predictions = outputs.get("predictions") if isinstance(outputs, Mapping) else None
    if predictions is None:
        metrics["exact_match"] = jnp.all(correct | ~valid, -1).astype(jnp.float32)
    else:
        metrics["exact_match"] = jnp.all(predictions == targets, -1).astype(jnp.float32)
    return metrics


TASKS: dict[str, Task] = {
    "binary_classification": Task("binary_classification", _binary_squared, "accuracy", "max"),
    "classification": Task("classification", _classification, "accuracy", "max"),
    "regression": Task("regression", _regression, "loss", "min"),
    "sequence_to_sequence": Task(
        "sequence_to_sequence", _sequence_to_sequence, "token_accuracy", "max", inputs=x_and_y
    ),
}


def get_task(name: str) -> Task:
    return lookup(TASKS, name, "task")
