"""Initializers (seed kang-lecture4, "Weight Initialization"), zoo.nn.initializers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.nn import get_initializer, list_initializers

FAN_IN, FAN_OUT = 400, 300
# name -> (variance, distribution) from the seed's formulas (Glorot = "both paths").
EXPECTED = {
    "xavier_normal": (2 / (FAN_IN + FAN_OUT), "normal"),
    "xavier_uniform": (2 / (FAN_IN + FAN_OUT), "uniform"),  # bound sqrt(6 / (in + out))
    "he_normal": (2 / FAN_IN, "normal"),
    "he_uniform": (2 / FAN_IN, "uniform"),  # bound sqrt(6 / in)
    "lecun_normal": (1 / FAN_IN, "normal"),  # the seed's "forward path only" N(0, 1/size)
    "lecun_uniform": (1 / FAN_IN, "uniform"),  # bound sqrt(3 / in)
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_initializer_variance_and_support(name):
    var, dist = EXPECTED[name]
    w = np.asarray(get_initializer(name)(jax.random.PRNGKey(0), (FAN_IN, FAN_OUT)))
    assert abs(w.mean()) < 0.05 * np.sqrt(var)
    assert w.var() == pytest.approx(var, rel=0.02)
    if dist == "uniform":
        bound = np.sqrt(3 * var)
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    else:  # untruncated: tails beyond 2 sigma exist (about 4.6%)
        assert 0.03 < np.mean(np.abs(w) > 2 * np.sqrt(var)) < 0.06


def test_zeros_normal_uniform_with_scale():
    key, shape = jax.random.PRNGKey(1), (200, 300)
    assert not np.any(np.asarray(get_initializer("zeros")(key, shape)))
    w = np.asarray(get_initializer("normal", scale=0.1)(key, shape))
    assert w.std() == pytest.approx(0.1, rel=0.02)
    u = np.asarray(get_initializer("uniform", scale=0.2)(key, shape))
    assert -0.2 <= u.min() < -0.19 and 0.19 < u.max() <= 0.2


def test_initializer_aliases_and_errors():
    assert {"glorot_uniform", "kaiming_normal", "he_normal"} <= set(list_initializers())
    with pytest.raises(ValueError, match="Did you mean: he_normal"):
        get_initializer("he_norml")
    with pytest.raises(ValueError, match="takes no scale"):
        get_initializer("he_normal", scale=0.1)


def test_zero_init_makes_hidden_units_identical():
    """Seed, Strategy 1: with all weights 0 every hidden unit gets the same gradient."""
    model = zoo.create_model(
        "mlp", input_shape=(2,), hidden_sizes=(4,), num_outputs=2, activation="sigmoid", kernel_init="zeros"
    )
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 2))
    params = model.init(jax.random.PRNGKey(0), x)["params"]
    g = jax.grad(lambda p: jnp.sum(model.apply({"params": p}, x)[:, 0]))(params)
    k = np.asarray(g["hidden_0"]["kernel"])
    np.testing.assert_allclose(k, np.repeat(k[:, :1], 4, axis=1))
