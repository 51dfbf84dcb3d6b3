"""Activations by name (zoo.nn.activations) against their definitions."""

import jax.numpy as jnp
import numpy as np

from zoo.nn import get_activation


def test_activations_match_definitions():
    a = jnp.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(get_activation("sigmoid")(a), 1 / (1 + np.exp(-a)), rtol=1e-6)
    np.testing.assert_allclose(get_activation("relu")(a), np.maximum(0, a))
    np.testing.assert_allclose(get_activation("leaky_relu")(a), np.where(a > 0, a, 0.01 * a), rtol=1e-6)
    np.testing.assert_array_equal(get_activation("sign")(a), [-1, -1, 1, 1, 1])
    np.testing.assert_array_equal(get_activation("step")(a), [0, 0, 1, 1, 1])
    np.testing.assert_allclose(get_activation("seed_sigmoid")(a), 1 / (1 + np.exp(a)), rtol=1e-6)
