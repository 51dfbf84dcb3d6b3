"""Explanations: where a classifier looks and how the gradient flows back through time.

* `cam`: class activation maps (Zhou et al. 2016; kang-lecture4 "Class Activation Map").
  For a net ending in global average pooling and one dense layer, with feature maps
  ``f_k(i, j)`` and dense kernel ``w_k^c``: M_c(i, j) = sum_k w_k^c f_k(i, j) and
  S_c = mean_{i,j} M_c(i, j) + b_c (the seed's GAP is a sum: h*w times ``S_c - b_c``).
  Supported: models whose class names its dense layer in ``cam_classifier`` and provides
  ``feature_maps`` with ``forward_features = GAP(feature_maps)`` (ResNet, DenseNet, GoogLeNet).
* `saliency`: gradient saliency (Simonyan et al. 2014) for any image classifier.
* `attention_weights`: the step weights of an attention-pooling recurrent classifier.
* `gradient_norms_through_time`: ||dLoss/dh_t|| per step and recurrent layer.

`cam` and `saliency` run in evaluation mode, so they jit with the model, ``classes`` and
``upsample`` static: ``jax.jit(lambda v, x: zoo.cam(model, v, x, classes=(3,)))(variables, x)``.
Re-exported from beside its model: `zoo.models.cnn.textcnn.word_importance`.
"""

from __future__ import annotations

from collections.abc import Sequence

import functools
import re

import jax
import jax.numpy as jnp

from zoo.nn.recurrence import PERTURBATIONS
from zoo.tasks import get_task

__all__ = ["cam", "saliency", "attention_weights", "gradient_norms_through_time", "gradient_norms_per_layer"]


def _classifier_name(model) -> str | None:
    """The params key of ``model``'s final dense layer if it is a GAP model, else None."""
    return getattr(type(model), "cam_classifier", None)


def _cam_model_names() -> list[str]:
    """Registered models that support CAM (for error messages)."""
    from zoo.registry import create_model, list_models

    return [n for n in list_models() if _classifier_name(create_model(n)) is not None]


def _model_label(model) -> str:
    return getattr(model, "name_", None) or type(model).__name__


def _check_images(x, what: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{what} expects images of shape (B, H, W, C), got shape {tuple(x.shape)}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{what} needs floating-point images (B, H, W, C), got dtype {x.dtype}")


def _class_indices(classes, num_classes: int) -> tuple[int, ...]:
    """None -> every class; an int or a sequence of ints -> those, checked to be in range."""
    if classes is None:
        return tuple(range(num_classes))
    ids = (classes,) if isinstance(classes, int) else tuple(classes)
    if not ids or any(not isinstance(c, int) or isinstance(c, bool) for c in ids):
        raise ValueError(f"classes must be None, an int or a non-empty sequence of ints, got {classes!r}")
    bad = [c for c in ids if not 0 <= c < num_classes]
    if bad:
        raise ValueError(
            f"class indices {bad} out of range for a model with {num_classes} classes (0..{num_classes - 1})"
        )
    return ids


def cam(model, variables, x, classes: int | Sequence[int] | None = None, *, upsample: bool = True):
    """Class activation maps of a GAP classifier: x (B, H, W, C) float -> (maps (B, C_sel,
    H, W) float32, (B, C_sel, h, w) without ``upsample``; logits (B, num_classes)).

    ``classes``: None (all), an index or a sequence of them. Before upsampling,
    ``maps.mean(axis=(2, 3)) + bias[classes] == logits[:, classes]``. A model without
    GAP and one dense layer raises ValueError naming those that have them.
    """
    classifier = _classifier_name(model)
    if classifier is None:
        raise ValueError(
            f"cam needs a model that ends in global average pooling and one dense layer; "
            f"{_model_label(model)} ({type(model).__name__}) does not (use zoo.saliency for any classifier). "
            f"Models that support CAM: {', '.join(_cam_model_names())}"
        )
    x = jnp.asarray(x)
    _check_images(x, "cam")
    params = variables.get("params", {})
    if classifier not in params or "kernel" not in params[classifier]:
        raise ValueError(
            f"cam: variables['params'] has no dense layer {classifier!r} "
            f"(the classifier of {_model_label(model)}); pass the model's own variables"
        )
    kernel = params[classifier]["kernel"]  # (K, num_classes)
    class_ids = jnp.asarray(_class_indices(classes, kernel.shape[-1]))

    features = model.apply(variables, x, method=model.feature_maps)  # (B, h, w, K)
    logits = model.apply(variables, features.mean(axis=(1, 2)), method=model.head)  # = model(x)
    # HIGHEST: on accelerators a TF32 product would break the GAP identity beyond fp32 tolerance.
    maps = jnp.einsum("bhwk,kc->bchw", features, kernel[:, class_ids], precision=jax.lax.Precision.HIGHEST)
    if upsample:
        maps = jax.image.resize(maps, (*maps.shape[:2], *x.shape[1:3]), method="bilinear")
    return maps, logits


def saliency(model, variables, x, classes: int | Sequence[int] | None = None):
    """Gradient saliency maps: x (B, H, W, C) float -> (maps (B, C_sel, H, W), logits
    (B, num_classes)), ``maps[b, i] = max_c |d logits[b, classes[i]] / d x[b, :, :, c]|``.

    Each example's own Jacobian (vmapped), so maps do not depend on the rest of the batch;
    ``classes`` as in `cam` (None: one backward pass per class and example).
    """
    x = jnp.asarray(x)
    _check_images(x, "saliency")
    # The class count from an abstract evaluation (a trace, no arithmetic), so that a bad
    # index fails before any work.
    num_classes = jax.eval_shape(lambda v, x: model.apply(v, x), variables, x[:1]).shape[-1]
    class_ids = jnp.asarray(_class_indices(classes, num_classes))

    def selected_logits(image):  # (H, W, C) -> ((C_sel,), (num_classes,))
        logits = model.apply(variables, image[None])[0]
        return logits[class_ids], logits

    def one_example(image):  # (H, W, C) -> ((C_sel, H, W), (num_classes,))
        jacobian, logits = jax.jacrev(selected_logits, has_aux=True)(image)  # (C_sel, H, W, C)
        return jnp.abs(jacobian).max(axis=-1), logits

    return jax.vmap(one_example)(x)


def attention_weights(model, variables, x, lengths=None) -> jax.Array:
    """Step weights (B, T) float32 of an attention-pooling `SequenceClassifier`: x token ids
    (B, T) int (lengths from the padding) or (B, T, *F) float; each row sums to 1 over the
    valid steps, 0 on padding: the largest mark the words that decided the class.
    """
    if not callable(getattr(model, "attention_weights", None)):
        raise ValueError(
            f"attention_weights needs a recurrent classifier with attention pooling "
            f"(zoo.models.recurrent.SequenceClassifier); got {type(model).__name__}"
        )
    return model.apply(variables, x, lengths, method="attention_weights")


def _mean_loss(loss):
    """``(outputs, x, y) -> scalar`` for ``loss``: a `zoo.tasks` name (its mean per-example
    loss over the batch) or a callable ``(outputs, y) -> scalar``."""
    if not isinstance(loss, str):
        return lambda outputs, x, y: loss(outputs, y)
    per_example = get_task(loss).per_example
    return lambda outputs, x, y: jnp.mean(per_example(outputs, {"x": x, "y": y})["loss"])


def gradient_norms_through_time(model, variables, x, y, *, loss="classification", lengths=None) -> dict[str, jax.Array]:
    """||dLoss/dh_t|| for every step t of every recurrent layer (`RNN` or ConvLSTM) of
    ``model`` on a batch: kang-lecture4's vanishing/exploding gradient picture.

    Each layer adds a zero ``eps_t`` to h_t inside the scan; d loss / d eps_t is dLoss/dh_t
    through every later step. ``loss``: a `zoo.tasks` name (mean per-example loss) or
    ``(outputs, y) -> scalar``. Returns ``{layer path: (T,) float32}`` sorted by path (e.g.
    ``"encoder/layers_0/forward_rnn"``), the norm over the batch; inference mode.
    """
    loss_fn = _mean_loss(loss)
    extra = {} if lengths is None else {"lengths": lengths}
    variables = {k: v for k, v in variables.items() if k != PERTURBATIONS}
    # An abstract first pass (shapes only) finds the zero perturbations, (B, T, *H) per layer.
    _, created = jax.eval_shape(functools.partial(model.apply, mutable=[PERTURBATIONS], **extra), variables, x)
    if PERTURBATIONS not in created:
        raise ValueError(
            f"{type(model).__name__} has no recurrent layer that exposes its hidden "
            "states (zoo.nn.recurrence.RNN or a ConvLSTM layer)"
        )
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), created[PERTURBATIONS])

    @jax.jit  # one compiled program instead of op-by-op dispatch of the two scans
    def norms_of(variables, x, y, zeros):
        def total_loss(eps):
            return loss_fn(model.apply({**variables, PERTURBATIONS: eps}, x, **extra), x, y)

        grads = jax.grad(total_loss)(zeros)
        return jax.tree.map(lambda g: jnp.sqrt(jnp.sum(jnp.square(g), axis=(0,) + tuple(range(2, g.ndim)))), grads)

    norms = norms_of(variables, x, y, zeros)
    return {
        "/".join(p.key for p in path[:-1]): n  # the last key is "hidden_states"
        for path, n in jax.tree_util.tree_leaves_with_path(norms)
    }


def _natural_key(path: str):
    # "hidden_10" after "hidden_9": layers in depth order, not string order.
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def gradient_norms_per_layer(model, variables, x, y, *, loss="classification", train=True, rngs=None):
    """||dLoss/dW|| of every layer's kernel: the vanishing-gradient picture across depth
    (kang-lecture4, "Gradient Vanishing"; deep sigmoid vs ReLU vs batch-norm nets).

    x, y: a batch and its targets; loss: a `zoo.tasks` name or ``(outputs, y) -> scalar``
    as in `gradient_norms_through_time`. ``train=True`` (default) differentiates the
    training forward pass (batch norm on batch statistics; dropout needs ``rngs``).
    Returns ``{layer path: () float32}`` (e.g. ``"hidden_0"``, ``"out"``), ordered from
    input to output by name (digits compared as numbers); the Frobenius norm of the
    gradient of the mean loss over the batch with respect to each ``kernel``.
    """
    loss_fn = _mean_loss(loss)

    def total_loss(params):
        kwargs = {"train": train, "rngs": rngs} if train else {"train": False}
        mutable = ["batch_stats"] if train and "batch_stats" in variables else False
        out = model.apply({**variables, "params": params}, x, mutable=mutable, **kwargs)
        out = out[0] if mutable else out
        return loss_fn(out, x, y)

    grads = jax.grad(total_loss)(variables["params"])
    norms = {
        "/".join(str(getattr(p, "key", p)) for p in path[:-1]): jnp.sqrt(jnp.sum(jnp.square(g)))
        for path, g in jax.tree_util.tree_leaves_with_path(grads)
        if getattr(path[-1], "key", None) == "kernel"
    }
    return {k: norms[k] for k in sorted(norms, key=_natural_key)}


# Explanations that live beside their model, re-exported here; imported on first use, so
# that importing this module does not import every model family.
_MODEL_EXPLANATIONS = {
    "word_importance": "zoo.models.cnn.textcnn"  # text CNN: CAM over time
}


def __getattr__(name):
    if name in _MODEL_EXPLANATIONS:
        import importlib

        return getattr(importlib.import_module(_MODEL_EXPLANATIONS[name]), name)
    raise AttributeError(f"module 'zoo.explain' has no attribute {name!r}")
