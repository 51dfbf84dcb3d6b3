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

import jax
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
    # Epoch means -> reported metrics, for metrics that are not means of per-example values
    # (mean IoU is a ratio of summed counts: see _segmentation).
    summarize: Callable[[dict], dict] = dict


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


def _hierarchical_classification(outputs, batch):
    """Hierarchical auxiliary learning: ``outputs`` holds the final ``logits`` (B, C), the
    auxiliary ``aux_logits`` (B, S), ``superclass_of`` (C,) (each class's superclass) and
    ``aux_weight`` (lambda); batch["y"] (B,) fine labels. Loss ``CE(fine) + lambda *
    CE(superclass)`` plus any ``penalties`` ``{name: (B,)}``; metrics per head: accuracy
    (fine), superclass_accuracy, and each head's cross-entropy."""
    fine = _classification(outputs["logits"], batch)
    coarse = _classification(outputs["aux_logits"], {"y": outputs["superclass_of"][batch["y"].astype(jnp.int32)]})
    metrics = {
        "loss": fine["loss"] + outputs["aux_weight"] * coarse["loss"],
        "accuracy": fine["accuracy"],
        "fine_loss": fine["loss"],
        "superclass_loss": coarse["loss"],
        "superclass_accuracy": coarse["accuracy"],
    }
    for name, penalty in outputs.get("penalties", {}).items():  # e.g. HD-CNN's consistency term
        metrics["loss"] = metrics["loss"] + penalty
        metrics[name] = penalty
    return metrics


def _building_floor(outputs, batch):
    """Building and floor from one fingerprint (Kim, Lee & Huang 2018). batch["y"] (B,) is
    the building-floor class; ``outputs`` holds ``building_of`` and ``floor_of`` (C,) (each
    class's building and floor), ``building_logits`` (B, NB), ``floor_logits`` (B, NB, F)
    (each building's floor scores; a model with one floor classifier repeats it) and
    ``multilabel`` (): True for the paper's multi-label output (sigmoid units, loss the
    binary cross-entropy of the building one-hot plus that of the floor one-hot), False for
    softmax heads (loss CE(building) + CE(the true building's floor head)).

    The prediction reads the building head, then the predicted building's floor scores.
    Metrics: ``building_accuracy``, ``floor_accuracy`` (the floor number right, whatever
    the building) and ``accuracy`` (both right: the building-floor class)."""
    labels = batch["y"].astype(jnp.int32)
    building, floor = outputs["building_of"][labels], outputs["floor_of"][labels]
    building_logits, floor_logits = outputs["building_logits"], outputs["floor_logits"]
    rows = jnp.arange(labels.shape[0])
    true_floor_logits = floor_logits[rows, building]  # (B, F)
    building_hot = jax.nn.one_hot(building, building_logits.shape[-1])
    floor_hot = jax.nn.one_hot(floor, floor_logits.shape[-1])
    multilabel = jnp.sum(optax.sigmoid_binary_cross_entropy(building_logits, building_hot), -1) + jnp.sum(
        optax.sigmoid_binary_cross_entropy(true_floor_logits, floor_hot), -1
    )
    softmax = optax.softmax_cross_entropy(building_logits, building_hot) + optax.softmax_cross_entropy(
        true_floor_logits, floor_hot
    )
    predicted_building = jnp.argmax(building_logits, -1)
    predicted_floor = jnp.argmax(floor_logits[rows, predicted_building], -1)
    building_right, floor_right = predicted_building == building, predicted_floor == floor
    return {
        "loss": jnp.where(outputs["multilabel"], multilabel, softmax),
        "accuracy": (building_right & floor_right).astype(jnp.float32),
        "building_accuracy": building_right.astype(jnp.float32),
        "floor_accuracy": floor_right.astype(jnp.float32),
    }


def _reconstruction(outputs, batch):
    """The target is the input itself, ``batch["x"]`` (B, *shape).

    outputs: an array (B, *shape) of reconstructed values -> loss ``0.5 * sum (x' - x)^2``
    (the seed's squared error); or a dict with ``"reconstruction_logits"`` (B, *shape) ->
    binary cross-entropy on logits summed over features (for data in [0, 1]; the sigmoid
    decoder of the seed, computed stably), or ``"reconstruction"`` (values, squared error),
    and optionally ``"penalties"``: ``{name: (B,)}`` added to the loss and reported (the
    VAE's KL term, so that the loss is the negative ELBO; a sparse code's penalty).
    ``reconstruction_error`` is the mean squared error per feature in data space.
    """
    x = batch["x"].reshape(batch["x"].shape[0], -1).astype(jnp.float32)
    parts = outputs if isinstance(outputs, Mapping) else {"reconstruction": outputs}
    if "reconstruction_logits" in parts:
        logits = parts["reconstruction_logits"].reshape(x.shape)
        loss = jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x), -1)
        values = jax.nn.sigmoid(logits)
    else:
        values = parts["reconstruction"].reshape(x.shape)
        loss = 0.5 * jnp.sum((values - x) ** 2, -1)
    metrics = {"reconstruction_error": jnp.mean((values - x) ** 2, -1)}
    for name, penalty in parts.get("penalties", {}).items():
        loss = loss + penalty
        metrics[name] = penalty
    return {"loss": loss, **metrics}


def _segmentation(logits, batch):
    """logits (B, H, W, C), batch["y"] (B, H, W) int -> per-pixel softmax cross-entropy
    (mean over pixels), pixel accuracy, and per-class intersection and union pixel counts
    from which `_mean_iou` forms the dataset's mean IoU (a ratio of sums over all test
    pixels, not a mean of per-image ratios)."""
    labels = batch["y"].astype(jnp.int32)
    predicted = jnp.argmax(logits, -1)
    axes = tuple(range(1, labels.ndim))
    metrics = {
        "loss": jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels), axes),
        "pixel_accuracy": jnp.mean(predicted == labels, axes),
    }
    for c in range(logits.shape[-1]):
        hit, truth = predicted == c, labels == c
        metrics[f"intersection_{c}"] = jnp.sum(hit & truth, axes).astype(jnp.float32)
        metrics[f"union_{c}"] = jnp.sum(hit | truth, axes).astype(jnp.float32)
    return metrics


def _mean_iou(means: dict) -> dict:
    """Replace the per-class counts by ``mean_iou``: the mean over classes present (in the
    labels or the predictions) of intersection / union."""
    out = {k: v for k, v in means.items() if not k.startswith(("intersection_", "union_"))}
    classes = [k.removeprefix("union_") for k in means if k.startswith("union_")]
    ious = [means[f"intersection_{c}"] / means[f"union_{c}"] for c in classes if means[f"union_{c}"] > 0]
    out["mean_iou"] = float(sum(ious) / len(ious)) if ious else 0.0
    return out


TASKS: dict[str, Task] = {
    "binary_classification": Task("binary_classification", _binary_squared, "accuracy", "max"),
    "classification": Task("classification", _classification, "accuracy", "max"),
    "regression": Task("regression", _regression, "loss", "min"),
    "hierarchical_classification": Task("hierarchical_classification", _hierarchical_classification, "accuracy", "max"),
    "building_floor": Task("building_floor", _building_floor, "accuracy", "max"),
    "reconstruction": Task("reconstruction", _reconstruction, "reconstruction_error", "min"),
    "segmentation": Task("segmentation", _segmentation, "mean_iou", "max", summarize=_mean_iou),
    "sequence_to_sequence": Task(
        "sequence_to_sequence", _sequence_to_sequence, "token_accuracy", "max", inputs=x_and_y
    ),
}


def get_task(name: str) -> Task:
    return lookup(TASKS, name, "task")
