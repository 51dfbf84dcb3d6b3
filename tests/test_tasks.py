"""The one task table (zoo.tasks): the reconstruction and segmentation losses and metrics
against NumPy, and mean IoU formed from summed counts as the engine does."""

import jax.numpy as jnp
import numpy as np
import pytest

from zoo.tasks import get_task
from zoo.train.loop import _epoch_metrics
from zoo.train.steps import masked_sums


def _numpy_mean_iou(predicted, labels, classes):
    ious = []
    for c in range(classes):
        union = np.sum((predicted == c) | (labels == c))
        if union:
            ious.append(np.sum((predicted == c) & (labels == c)) / union)
    return np.mean(ious)


def test_segmentation_metrics_equal_numpy_over_batches_with_padding():
    rng = np.random.default_rng(0)
    task = get_task("segmentation")
    logits = rng.normal(size=(6, 5, 4, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=(6, 5, 4))
    labels[:, 0] = 1  # some agreement, some not
    mask = np.array([1, 1, 1, 1, 1, 0], np.float32)  # the last row is padding
    sums = [
        masked_sums(task.per_example(jnp.asarray(logits[s]), {"y": jnp.asarray(labels[s])}), jnp.asarray(mask[s]))
        for s in (slice(0, 3), slice(3, 6))
    ]
    metrics = _epoch_metrics(sums, task, "test_")
    predicted, kept = logits.argmax(-1)[:5], labels[:5]
    assert set(metrics) == {"test_loss", "test_pixel_accuracy", "test_mean_iou"}
    np.testing.assert_allclose(metrics["test_pixel_accuracy"], np.mean(predicted == kept), rtol=1e-6)
    np.testing.assert_allclose(metrics["test_mean_iou"], _numpy_mean_iou(predicted, kept, 3), rtol=1e-6)
    log_p = logits[:5] - np.log(np.exp(logits[:5]).sum(-1, keepdims=True))
    ce = -np.take_along_axis(log_p, kept[..., None], -1).mean()
    np.testing.assert_allclose(metrics["test_loss"], ce, rtol=1e-5)


def test_mean_iou_skips_classes_absent_from_labels_and_predictions():
    task = get_task("segmentation")
    logits = jnp.asarray(np.eye(3, dtype=np.float32)[[[0, 0], [1, 1]]][None])  # predicts 0 and 1, never 2
    labels = jnp.asarray([[[0, 1], [1, 1]]])
    # class 0: I=1, U=2; class 1: I=2, U=3; class 2 absent
    metrics = task.summarize({k: float(v[0]) for k, v in task.per_example(logits, {"y": labels}).items()})
    assert metrics["mean_iou"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_reconstruction_loss_kinds():
    task = get_task("reconstruction")
    x = np.array([[0.0, 1.0, 0.25]], np.float32)
    values = np.array([[0.5, 0.5, 0.5]], np.float32)
    squared = task.per_example(jnp.asarray(values), {"x": jnp.asarray(x)})
    np.testing.assert_allclose(squared["loss"], [0.5 * np.sum((values - x) ** 2)], rtol=1e-6)
    np.testing.assert_allclose(squared["reconstruction_error"], [np.mean((values - x) ** 2)], rtol=1e-6)
    logits = np.array([[-2.0, 3.0, 0.0]], np.float32)
    out = {"reconstruction_logits": jnp.asarray(logits), "penalties": {"kl": jnp.asarray([0.7])}}
    bce = task.per_example(out, {"x": jnp.asarray(x)})
    p = 1 / (1 + np.exp(-logits))
    expected = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p)) + 0.7
    np.testing.assert_allclose(bce["loss"], [expected], rtol=1e-5)
    np.testing.assert_allclose(bce["kl"], [0.7])
    np.testing.assert_allclose(bce["reconstruction_error"], [np.mean((p - x) ** 2)], rtol=1e-5)
