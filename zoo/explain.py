"""Where a classifier looks: class activation maps and gradient saliency maps.

* `cam` — class activation maps (Zhou, Khosla, Lapedriza, Oliva & Torralba 2016, "Learning
  deep features for discriminative localization"; seed kang-lecture4, "Class Activation
  Map"). For a network that ends in global average pooling (GAP) and one dense layer,
  with ``f_k(i, j)`` the last convolutional feature maps and ``w_k^c`` the dense kernel,

      M_c(i, j) = sum_k w_k^c f_k(i, j),    S_c = mean_{i,j} M_c(i, j) + b_c,

  so the map shows how much each location adds to the class score. The seed writes GAP as a
  sum, ``F_k = sum_{x,y} f_k(x, y)``; the zoo's GAP models average, so here the identity holds
  with the mean (the sum gives h*w times ``S_c - b_c``). The maps are upsampled to the input
  size, as the seed's last CAM slide does ("upsampling is commonly used").
* `saliency` — gradient saliency maps (Simonyan, Vedaldi & Zisserman 2014, "Deep inside
  convolutional networks"): ``max over input channels of |d S_c / d x|``, one example at a
  time with ``jax.vmap`` (each example's gradient, not the gradient of the batch sum). Works
  for any image classifier in the zoo, GAP or not.

Both run the model in evaluation mode (``train=False``: batch norm uses its running
statistics, dropout is off), so examples do not interact and both are jit-able with the model,
``classes`` and ``upsample`` held static::

    maps, logits = jax.jit(lambda v, x: zoo.cam(model, v, x, classes=(3,)))(variables, x)

``zoo.cam`` and ``zoo.saliency`` are these functions. Re-exported here from beside their models:
the text CNN's word-level maps (CAM over time), `zoo.models.cnn.textcnn.word_importance`; an
attention-pooling recurrent classifier's per-token weights (which words decided the class),
`zoo.models.recurrent.attention_weights`; and the norm of dLoss/dh_t at every step of a
recurrent model (vanishing gradients, kang-lecture4), `zoo.models.recurrent.gradient_norms_through_time`.

Which models support CAM: the ones whose class names their final dense layer in a
``cam_classifier`` attribute (the key of its kernel and bias in ``variables["params"]``), and
which provide ``feature_maps(x, train)`` with ``forward_features = GAP(feature_maps)`` and
``head`` = that dense layer (plus dropout, off in evaluation): ResNet, DenseNet, GoogLeNet.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

__all__ = ["cam", "saliency"]


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
        raise ValueError(f"class indices {bad} out of range for a model with {num_classes} classes (0..{num_classes - 1})")
    return ids


def cam(model, variables, x, classes: int | Sequence[int] | None = None, *, upsample: bool = True):
    """Class activation maps of a global-average-pooling classifier (Zhou et al. 2016).

    Args:
      model: a zoo GAP model (ResNet, DenseNet, GoogLeNet; see the module docstring).
      variables: its variables (``params``, and ``batch_stats`` where it has batch norm).
      x: images ``(B, H, W, C)`` float, the model's input shape.
      classes: None (every class), a class index, or a sequence of them; ``C_sel`` of them.
      upsample: resize the ``(h, w)`` maps bilinearly to the input's ``(H, W)``.

    Returns:
      ``(maps, logits)``: ``maps (B, C_sel, H, W)`` (``(B, C_sel, h, w)`` without upsampling)
      float32, ``maps[:, i]`` for class ``classes[i]``; ``logits (B, num_classes)``, the model's
      evaluation-mode output. Before upsampling, ``maps.mean(axis=(2, 3)) + bias[classes]``
      equals ``logits[:, classes]`` (the GAP identity; the bias is not part of the map).

    Raises:
      ValueError: the model does not end in global average pooling and one dense layer (the
        message lists the models that do), ``x`` is not a float (B, H, W, C) batch, or a class
        index is out of range.
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
        raise ValueError(f"cam: variables['params'] has no dense layer {classifier!r} "
                         f"(the classifier of {_model_label(model)}); pass the model's own variables")
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
    """Gradient saliency maps (Simonyan et al. 2014): ``max_channels |d logit_c / d x|``.

    Each example's map is the gradient of its own logits (``jax.vmap`` over the batch of a
    single-example Jacobian), so it does not depend on the rest of the batch.

    Args:
      model: any zoo image classifier (``model.apply(variables, x) -> (B, num_classes)``).
      variables: its variables.
      x: images ``(B, H, W, C)`` float.
      classes: None (every class: one backward pass per class and example — pass the classes
        you need for large heads), a class index, or a sequence of them; ``C_sel`` of them.

    Returns:
      ``(maps, logits)``: ``maps (B, C_sel, H, W)`` with
      ``maps[b, i] = max_c |d logits[b, classes[i]] / d x[b, :, :, c]|``; ``logits
      (B, num_classes)``, the model's evaluation-mode output.

    Raises:
      ValueError: ``x`` is not a float (B, H, W, C) batch, or a class index is out of range.
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


# Explanations that live beside their models, re-exported here; imported on first use, so
# that importing this module does not import every model family.
_MODEL_EXPLANATIONS = {
    "word_importance": "zoo.models.cnn.textcnn",  # text CNN: CAM over time
    "attention_weights": "zoo.models.recurrent",  # attention pooling: per-step weights (B, T)
    "gradient_norms_through_time": "zoo.models.recurrent",  # ||dLoss/dh_t|| per layer
}


def __getattr__(name):
    if name in _MODEL_EXPLANATIONS:
        import importlib

        return getattr(importlib.import_module(_MODEL_EXPLANATIONS[name]), name)
    raise AttributeError(f"module 'zoo.explain' has no attribute {name!r}")
