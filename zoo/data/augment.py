"""Image augmentation: pure JAX functions on batches, one key per example, usable inside a
jit'd train step (seed: kang-lecture4, part 05, "Data augmentation": flips, rotation,
scaling, cropping, translation, noise). Built on DeepMind's dm-pix where it has the
operation.

    pipeline = parse_augment("flip,crop=4,rotate=15")   # configs as data: a string
    x = augment_batch(key, x, pipeline)                 # (B, H, W, C) -> (B, H, W, C)

``train.py --augment flip,crop=4`` (``TrainConfig.augment``) applies it to each training
batch on the device; evaluation sees the images as they are. Each operation at strength 0
is the identity, keeps the shape and never touches the labels.
"""

from __future__ import annotations

import math
from typing import Callable

import dm_pix
import jax
import jax.numpy as jnp

Pipeline = tuple[tuple[str, float], ...]


def _flip(key, image, probability):
    return dm_pix.random_flip_left_right(key, image, probability=probability)


def _vflip(key, image, probability):
    return dm_pix.random_flip_up_down(key, image, probability=probability)


def _rotate(key, image, degrees):
    """Rotation by an angle uniform in [-degrees, degrees] about the centre; corners filled with 0."""
    angle = jax.random.uniform(key, (), minval=-1.0, maxval=1.0) * degrees * math.pi / 180
    return dm_pix.rotate(image, angle, mode="constant", cval=0.0)


def _affine(image, scale, shift):
    """Zoom by ``scale`` about the centre, then move by ``shift`` = (dy, dx) pixels."""
    height, width = image.shape[:2]
    centre = jnp.array([(height - 1) / 2, (width - 1) / 2])
    # dm-pix maps each output coordinate o to the input coordinate matrix @ o + offset.
    matrix = jnp.diag(jnp.array([1 / scale, 1 / scale, 1.0]))
    offset = jnp.concatenate([centre - (centre + shift) / scale, jnp.zeros(1)])
    return dm_pix.affine_transform(image, matrix, offset=offset, mode="constant", cval=0.0)


def _scale(key, image, amount):
    """Zoom by a factor uniform in [1 - amount, 1 + amount] about the centre."""
    return _affine(image, 1.0 + jax.random.uniform(key, (), minval=-amount, maxval=amount), jnp.zeros(2))


def _translate(key, image, pixels):
    """Shift by up to ``pixels`` (uniform, sub-pixel, bilinear) in each direction; 0 fills."""
    return _affine(image, 1.0, jax.random.uniform(key, (2,), minval=-pixels, maxval=pixels))


def _crop(key, image, padding):
    """Zero-pad ``padding`` pixels on every side, then crop back at a random place (the
    CIFAR recipe of He et al. 2016). ``padding`` is static: it fixes a shape."""
    pad = int(padding)
    padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    return dm_pix.random_crop(key, padded, image.shape)


def _noise(key, image, sigma):
    return image + sigma * jax.random.normal(key, image.shape, image.dtype)


# name -> (operation on one (H, W, C) image, what the strength means, its default)
AUGMENTATIONS: dict[str, tuple[Callable, str, float]] = {
    "flip": (_flip, "probability of a left-right flip", 0.5),
    "vflip": (_vflip, "probability of an up-down flip", 0.5),
    "rotate": (_rotate, "largest angle, degrees", 15.0),
    "scale": (_scale, "largest relative zoom", 0.1),
    "translate": (_translate, "largest shift, pixels", 2.0),
    "crop": (_crop, "zero padding before the random crop, pixels (an integer)", 4.0),
    "noise": (_noise, "standard deviation of added Gaussian noise", 0.05),
}


def parse_augment(spec: str | None) -> Pipeline:
    """``"flip,crop=4,rotate=15"`` -> ``(("flip", 0.5), ("crop", 4.0), ("rotate", 15.0))``;
    a name without ``=value`` takes its default. Raises ValueError naming the choices."""
    if not spec:
        return ()
    pipeline = []
    for item in spec.split(","):
        name, _, value = item.strip().partition("=")
        if name not in AUGMENTATIONS:
            choices = ", ".join(f"{n} ({AUGMENTATIONS[n][1]})" for n in AUGMENTATIONS)
            raise ValueError(f"unknown augmentation {name!r}; choose from: {choices}")
        try:
            strength = float(value) if value else AUGMENTATIONS[name][2]
        except ValueError:
            raise ValueError(f"augmentation {name}: {value!r} is not a number") from None
        if not math.isfinite(strength) or strength < 0:
            raise ValueError(f"augmentation {name}: strength must be a finite number >= 0, got {value}")
        if name in ("flip", "vflip") and strength > 1:
            raise ValueError(f"augmentation {name}: a probability must be at most 1, got {value}")
        if name == "crop" and strength != int(strength):
            raise ValueError(f"augmentation crop: padding must be whole pixels, got {value}")
        pipeline.append((name, strength))
    return tuple(pipeline)


def check_images(shape: tuple[int, ...], pipeline: Pipeline) -> None:
    """Raise ValueError unless examples of ``shape`` are images (H, W, C) the pipeline can
    transform."""
    if pipeline and len(shape) != 3:
        raise ValueError(f"augmentation works on images (H, W, C); these examples have shape {tuple(shape)}")


def augment_image(key, image, pipeline: Pipeline):
    """Apply each operation of ``pipeline`` in order to one (H, W, C) image."""
    for name, strength in pipeline:
        key, sub = jax.random.split(key)
        image = AUGMENTATIONS[name][0](sub, image, strength)
    return image


def augment_batch(key, images, pipeline: Pipeline):
    """(B, H, W, C) -> (B, H, W, C): each image with its own key ``fold_in(key, i)``
    (``vmap``), so an example's augmentation depends only on ``key`` and its position."""
    if not pipeline:
        return images
    check_images(images.shape[1:], pipeline)
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(images.shape[0]))
    return jax.vmap(augment_image, in_axes=(0, 0, None))(keys, images, pipeline).astype(images.dtype)
