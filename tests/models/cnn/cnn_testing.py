"""Helpers of the CNN tests: abstract variables (jax.eval_shape, nothing allocated) and
parameter counts."""

import jax
import jax.numpy as jnp
import numpy as np


def abstract(model, batch=1):
    """(abstract input, abstract variables) of ``model`` at its input shape."""
    x = jax.ShapeDtypeStruct((batch, *model.input_shape), jnp.float32)
    return x, jax.eval_shape(model.init, jax.random.PRNGKey(0), x)


def abstract_variables(model, batch=1):
    return abstract(model, batch)[1]


def count(tree):
    """Number of scalars in a tree of arrays."""
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))
