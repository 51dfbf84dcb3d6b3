"""The NNX bridge (zoo.nn.bridge): a zoo Linen model as an NNX module."""

import jax
import numpy as np

import zoo
from zoo.nn import to_nnx


def test_to_nnx_equals_linen_apply():
    from flax import nnx

    model = zoo.create_model("dff", input_shape=(4,), hidden_sizes=(8,), num_outputs=3)
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
    nnx_model = to_nnx(model, x)
    variables = {
        "params": nnx.to_pure_dict(nnx.state(nnx_model, nnx.Param)),
        "batch_stats": nnx.to_pure_dict(nnx.state(nnx_model, nnx.BatchStat)),
    }
    np.testing.assert_allclose(nnx_model(x), model.apply(variables, x), rtol=1e-6)
    nnx_model(x, train=True, mutable=["batch_stats"])  # updates batch statistics in place
    after = nnx.to_pure_dict(nnx.state(nnx_model, nnx.BatchStat))
    assert not np.allclose(after["norms_0"]["mean"], variables["batch_stats"]["norms_0"]["mean"])
