"""Image augmentation (zoo.data.augment): identity at zero strength, shapes and labels kept,
deterministic per key, exact flips and shifts, and its use in a training run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import zoo
from zoo.data.augment import AUGMENTATIONS, _affine, augment_batch, parse_augment

IMAGES = jnp.asarray(np.random.default_rng(0).uniform(size=(4, 9, 7, 3)), jnp.float32)
KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_zero_strength_is_the_identity(name):
    out = augment_batch(KEY, IMAGES, ((name, 0.0),))
    np.testing.assert_allclose(out, IMAGES, atol=1e-5)


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_shape_dtype_kept_and_deterministic_per_key(name):
    pipeline = parse_augment(name)  # each at its default strength
    out = augment_batch(KEY, IMAGES, pipeline)
    assert out.shape == IMAGES.shape and out.dtype == IMAGES.dtype
    np.testing.assert_array_equal(out, augment_batch(KEY, IMAGES, pipeline))
    np.testing.assert_allclose(jax.jit(augment_batch, static_argnums=2)(KEY, IMAGES, pipeline), out, atol=1e-5)
    assert not np.allclose(augment_batch(jax.random.PRNGKey(1), IMAGES, pipeline), out)


def test_an_example_depends_on_its_key_and_position_not_the_batch():
    pipeline = parse_augment("rotate=30,translate=2")
    np.testing.assert_allclose(
        augment_batch(KEY, IMAGES[:2], pipeline), augment_batch(KEY, IMAGES, pipeline)[:2], atol=1e-6
    )


def test_certain_flips_are_exact():
    np.testing.assert_array_equal(augment_batch(KEY, IMAGES, (("flip", 1.0),)), IMAGES[:, :, ::-1])
    np.testing.assert_array_equal(augment_batch(KEY, IMAGES, (("vflip", 1.0),)), IMAGES[:, ::-1])


def test_integer_shift_and_crop_move_the_image_with_zero_fill():
    image = IMAGES[0]
    shifted = _affine(image, 1.0, jnp.array([1.0, -2.0]))  # down 1, left 2
    expected = np.zeros_like(image)
    expected[1:, :-2] = image[:-1, 2:]
    np.testing.assert_allclose(shifted, expected, atol=1e-5)
    cropped = np.asarray(augment_batch(KEY, IMAGES, (("crop", 2.0),)))
    for out, original in zip(cropped, np.asarray(IMAGES)):
        padded = np.pad(original, ((2, 2), (2, 2), (0, 0)))
        windows = [padded[i : i + 9, j : j + 7] for i in range(5) for j in range(5)]
        assert any(np.array_equal(out, w) for w in windows)


def test_zoom_keeps_the_centre_and_gaussian_noise_has_its_sigma():
    image = jnp.broadcast_to(jnp.arange(9.0)[:, None, None], (9, 9, 1))
    zoomed = _affine(image, 2.0, jnp.zeros(2))
    assert float(zoomed[4, 4, 0]) == pytest.approx(4.0)
    np.testing.assert_allclose(zoomed[:, 4, 0], 4 + (np.arange(9) - 4) / 2, atol=1e-5)  # half the slope
    noise = augment_batch(KEY, jnp.zeros((64, 8, 8, 1)), (("noise", 0.2),))
    assert float(jnp.std(noise)) == pytest.approx(0.2, rel=0.05)


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["rotate", "scale", "translate", "noise", "flip"]), st.floats(0, 0.9)),
        min_size=1,
        max_size=3,
    )
)
def test_any_pipeline_keeps_shape_and_finite_values(pipeline):
    out = augment_batch(KEY, IMAGES, tuple(pipeline))
    assert out.shape == IMAGES.shape and bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("flop", "unknown augmentation 'flop'; choose from: flip"),
        ("rotate=abc", "'abc' is not a number"),
        ("noise=-1", "strength must be a finite number >= 0"),
        ("flip=2", "probability must be at most 1"),
        ("crop=1.5", "padding must be whole pixels"),
    ],
)
def test_bad_specs_are_one_clear_line(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_augment(spec)


def test_parse_defaults_and_order():
    assert parse_augment("flip,crop=4,rotate") == (("flip", 0.5), ("crop", 4.0), ("rotate", 15.0))
    assert parse_augment(None) == () and parse_augment("") == ()


def test_training_with_augmentation_changes_the_batches_not_the_evaluation():
    data = zoo.data.load_dataset("digits")
    plain = zoo.fit("mlp", data, epochs=1, progress=False, model_overrides={"hidden_sizes": (16,)})
    flipped = zoo.fit("mlp", data, epochs=1, progress=False, model_overrides={"hidden_sizes": (16,)}, augment="flip=1")
    assert flipped.history[0]["train_loss"] != plain.history[0]["train_loss"]
    # Evaluation sees the images as they are: the reported test metrics equal evaluate's.
    again = zoo.evaluate(flipped.model, flipped.variables, data.x_test, data.y_test)
    assert again["accuracy"] == pytest.approx(flipped.test_metrics["accuracy"])
    with pytest.raises(ValueError, match="augmentation works on images"):
        zoo.fit("mlp", "diabetes", epochs=1, progress=False, augment="flip")
