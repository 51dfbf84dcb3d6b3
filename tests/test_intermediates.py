"""zoo.features: intermediate maps of every registered CNN (timm's features_only stages) and
the per-step hidden states of the recurrent nets, read by Flax's capture_intermediates."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import fast_compile

import zoo
from zoo import registry

BATCH = 2
CNNS = zoo.list_models(family="cnn")
# The sequence classifiers; char_rnn's cells run inside its own scan and convlstm returns
# frames, so neither exposes a (B, T, H) layer output (`zoo.feature_info` lists theirs).
RECURRENT = [n for n in zoo.list_models(family="recurrent") if n not in ("char_rnn", "convlstm")]


def _abstract(name):
    """The model at its test size with abstract variables and input: the checks below trace
    the forward pass (jax.eval_shape) and compute nothing."""
    spec = registry.get_spec(name)
    model = zoo.create_model(name, **{**spec.test_config, **fast_compile(name)})
    x = jax.ShapeDtypeStruct((BATCH, *model.input_shape), jnp.dtype(spec.input_dtype))
    return model, jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x), x


def _features(model, variables, x, **kwargs):
    return jax.eval_shape(lambda v, x: zoo.features(model, v, x, **kwargs), variables, x)


@pytest.mark.parametrize("name", CNNS)
def test_every_cnn_gives_its_stage_maps(name):
    model, variables, x = _abstract(name)
    info = zoo.feature_info(model, variables, x)
    names = [n for n, _ in info]
    assert len(set(names)) == len(names) > 0
    stages = [m.shape for m in _features(model, variables, x)]
    assert set(stages) <= {s for _, s in info}
    resolutions = [s[1:-1] for s in stages]
    assert len(set(resolutions)) == len(resolutions) > 0  # one map per resolution
    assert all(s[0] == BATCH for s in stages)
    if name != "text_cnn":  # image CNNs: (B, H, W, C) maps that shrink stage by stage
        assert all(len(s) == 4 for s in stages)
        sizes = [int(np.prod(r)) for r in resolutions]
        assert sizes == sorted(sizes, reverse=True)
        assert sizes[0] <= int(np.prod(x.shape[1:3]))


def test_lenet_features_are_its_convolutions_outputs():
    model, variables = zoo.create_model("lenet5", pretrained="fashion_mnist", **fast_compile("lenet5"))
    x = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype(np.float32)
    assert zoo.feature_info(model, variables, x) == [("conv1", (3, 28, 28, 6)), ("conv2", (3, 10, 10, 16))]
    conv1, conv2 = zoo.features(model, variables, x)
    expected1 = model.apply(variables, x, method=lambda m, x: m.conv1(x))
    pooled = model.apply(variables, x, method=lambda m, x: zoo.nn.pooling.max_pool(jax.nn.relu(m.conv1(x)), 2, 2))
    expected2 = model.apply(variables, pooled, method=lambda m, h: m.conv2(h))
    chex.assert_trees_all_close((conv1, conv2), (expected1, expected2), rtol=1e-6, atol=1e-6)
    assert [m.shape for m in zoo.features(model, variables, x, layers="all")] == [conv1.shape, conv2.shape]
    # By name and by index, and under jit.
    (by_name,) = zoo.features(model, variables, x, layers=["conv2"])
    (by_index,) = jax.jit(lambda v, x: zoo.features(model, v, x, layers=[-1]))(variables, x)
    chex.assert_trees_all_close((by_name, by_index), (expected2, expected2), rtol=1e-6, atol=1e-6)
    with pytest.raises(
        ValueError, match=r"unknown layer 'fc1' of LeNet5: give a name or an index \(0 \.\. 1\) of conv1, conv2"
    ):
        zoo.features(model, variables, x, layers=["fc1"])


@pytest.mark.parametrize("name", RECURRENT)
def test_recurrent_nets_give_per_step_hidden_states(name):
    model, variables, x = _abstract(name)
    states = [m.shape for m in _features(model, variables, x, layers="all")]
    assert states and all(s[:2] == (BATCH, x.shape[1]) for s in states), states
    assert [m.shape for m in _features(model, variables, x)] == [states[-1]]  # the last layer's
