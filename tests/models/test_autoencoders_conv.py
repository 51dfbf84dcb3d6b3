"""The convolutional autoencoder (zoo.models.autoencoders.conv) in both decoders: shapes
from the window formulas, the unpooling decoder's values at the encoder's argmax, the
output against its PyTorch twin (Conv2d, MaxPool2d/MaxUnpool2d, ConvTranspose2d) with the
same weights, and a few real training steps lowering the reconstruction loss."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from autoencoder_testing import conv_to_torch, randomize, stack_to_torch, torch_nhwc
from conftest import require_module

import zoo
from zoo.models.autoencoders.conv import ConvAutoencoder, ConvStack
from zoo.nn.pooling import max_pool
from zoo.nn.shapes import conv_output_size, conv_transpose_output_size
from zoo.tasks import get_task

SMALL = {"input_shape": (8, 12, 2), "features": (3, 4), "conv_impl": "xla"}


def _x(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(size=shape), jnp.float32)


@pytest.mark.parametrize("decoder", ["unpool", "transposed"])
def test_code_indices_and_output_shapes(decoder):
    model = ConvAutoencoder(**SMALL, decoder=decoder)
    x = _x((2, 8, 12, 2))
    variables = model.init(jax.random.PRNGKey(0), x)
    code, indices = model.apply(variables, x, method=model.encode)
    h, w = 8, 12
    for _ in SMALL["features"]:  # each 2x2/2 pool: floor((n - 2) / 2) + 1
        h, w = conv_output_size(h, 2, 2), conv_output_size(w, 2, 2)
    assert code.shape == (2, h, w, 4)
    assert [i.shape for i in indices] == ([(2, 4, 6, 3), (2, 2, 3, 4)] if decoder == "unpool" else [])
    # the transposed decoder's 3x3/2, padding 1, output padding 1 layers double each side
    assert conv_transpose_output_size(h, 3, 2, 1, 1) == 2 * h
    logits = model.apply(variables, code, indices, method=model.decode)
    assert logits.shape == x.shape
    np.testing.assert_allclose(model.apply(variables, x)["reconstruction_logits"], logits, rtol=1e-6)
    recon = model.apply(variables, x, method=model.reconstruct)
    assert float(recon.min()) >= 0 and float(recon.max()) <= 1


def test_unpool_decoder_puts_values_at_the_encoder_argmax():
    model = ConvAutoencoder(**SMALL)
    x = _x((2, 8, 12, 2), seed=1)
    variables = model.init(jax.random.PRNGKey(0), x)
    seen = []

    def spy(next_fun, args, kwargs, context):  # record what each decoder stage receives
        if isinstance(context.module, ConvStack) and context.module.name.startswith("up_convs"):
            seen.append(args[0])
        return next_fun(*args, **kwargs)

    code, indices = model.apply(variables, x, method=model.encode)
    with nn.intercept_methods(spy):
        model.apply(variables, code, indices, method=model.decode)
    deepest = seen[0]  # (2, 4, 6, 4): the code unpooled with the second pool's indices
    flat = deepest.reshape(2, -1, 4)
    idx = indices[1].reshape(2, -1, 4)
    gathered = jnp.take_along_axis(flat, idx, axis=1)
    np.testing.assert_array_equal(gathered, code.reshape(2, -1, 4))
    assert int((deepest != 0).sum()) <= code.size  # nothing anywhere else
    # and each index is the argmax of its window in the encoder's map before the pool
    feature = model.apply(variables, x, method=lambda m, x: m.down[1](max_pool(m.down[0](x), 2)))
    _, expected = max_pool(feature, 2, return_indices=True)
    np.testing.assert_array_equal(indices[1], expected)


@pytest.mark.parametrize("decoder", ["unpool", "transposed"])
def test_matches_the_torch_twin(decoder):
    torch = require_module("torch")
    from zoo.bench import torch_models

    config = {**zoo.model_info("conv_autoencoder")["config"], **SMALL, "decoder": decoder}
    model = ConvAutoencoder(**config)
    # Distinct values: a tie in a max pool may send torch and us to different argmaxes.
    x = jnp.asarray(np.random.default_rng(2).permutation(2 * 8 * 12 * 2).reshape(2, 8, 12, 2) / 400.0, jnp.float32)
    variables = randomize(model.init(jax.random.PRNGKey(0), x), seed=3)
    p = variables["params"]
    twin = torch_models.conv_autoencoder(config)
    with torch.no_grad():
        for i in range(2):
            stack_to_torch(torch, twin.down[i], p[f"down_{i}"], None, False)
            stack_to_torch(torch, twin.up_convs[i], p[f"up_convs_{i}"], None, False)
            if decoder == "transposed":
                conv_to_torch(torch, twin.up[i], p[f"up_{i}"], transposed=True)
        conv_to_torch(torch, twin.out, p["out"])
    ours = model.apply(variables, x)["reconstruction_logits"]
    np.testing.assert_allclose(ours, torch_nhwc(torch, twin, x).transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-5)


def test_bad_configs_and_inputs_raise():
    with pytest.raises(ValueError, match="decoder must be one of"):
        ConvAutoencoder(decoder="deconv")
    with pytest.raises(ValueError, match="multiples of 4"):
        ConvAutoencoder(input_shape=(10, 12, 1))
    model = zoo.create_model("conv_autoencoder", **SMALL)
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 8, 12, 2\)"):
        model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 2)))


@pytest.mark.parametrize("name", ["conv_autoencoder", "conv_autoencoder_transposed"])
def test_training_steps_lower_the_reconstruction_loss(name):
    model = zoo.create_model(name, **{**SMALL, "features": (8, 8)})
    task = get_task("reconstruction")
    # Binary 4x4 blocks: a code of the pooled size can hold them, and the loss can reach 0.
    blocks = (_x((8, 2, 3, 2), seed=4) > 0.5).astype(jnp.float32)
    x = jnp.repeat(jnp.repeat(blocks, 4, axis=1), 4, axis=2)
    params = model.init(jax.random.PRNGKey(0), x)["params"]
    tx = optax.adam(0.03)

    @jax.jit
    def step(params, opt_state):
        def loss(p):
            return task.per_example(model.apply({"params": p}, x), {"x": x})["loss"].mean()

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, value

    opt_state = tx.init(params)
    losses = []
    for _ in range(20):
        params, opt_state, value = step(params, opt_state)
        losses.append(float(value))
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("name", ["conv_autoencoder", "conv_autoencoder_transposed"])
def test_bench_twin_has_our_parameters_and_trains_a_step(name):
    require_module("torch")
    from zoo.bench import contenders, flops, torch_models
    from zoo.bench.suite import suite_entry

    entry = suite_entry(name)
    workload = entry.workload(batch_size=2, image_size=8)
    config = {**zoo.model_info(name)["config"], **entry.config(workload), "features": (3, 4)}
    model = zoo.create_model(name, **config)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)))
    count = flops.parameter_count(variables["params"])
    assert torch_models.parameter_count(torch_models.conv_autoencoder(config)) == count
    host = contenders.make_host_batch(model, "reconstruction", (8, 8, 1), workload, None)
    np.testing.assert_array_equal(host["y"], host["x"])  # the target is the input
    contenders.torch_contender(entry.torch_twin, config, "reconstruction", host, workload).run_step()
