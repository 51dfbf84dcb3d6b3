"""SegNet and U-Net (zoo.models.autoencoders.segmentation): shapes of the encoder maps,
skips and logits, SegNet's decoder receiving its encoder's maxima at their argmax, the
outputs against the PyTorch twins with the same weights, and a few real training steps on
the generated shapes task lowering the per-pixel loss."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from autoencoder_testing import conv_to_torch, randomize, stack_to_torch, torch_nhwc
from conftest import require_module

import zoo
from zoo.data.shapes import shapes
from zoo.models.autoencoders.conv import ConvStack
from zoo.models.autoencoders.segmentation import SegNet, UNet
from zoo.nn.pooling import max_pool
from zoo.tasks import get_task

SEGNET = {"input_shape": (8, 8, 1), "num_classes": 3, "features": (3, 4), "convs_per_stage": 2, "conv_impl": "xla"}
UNET = {"input_shape": (8, 8, 1), "num_classes": 3, "features": (3, 4, 5), "conv_impl": "xla"}


def _x(shape, seed=0):
    # Distinct values: a tie in a max pool may send torch and us to different argmaxes.
    n = int(np.prod(shape))
    return jnp.asarray(np.random.default_rng(seed).permutation(n).reshape(shape) / n, jnp.float32)


def test_segnet_shapes_and_indices():
    model = SegNet(**SEGNET)
    x = _x((2, 8, 8, 1))
    variables = model.init(jax.random.PRNGKey(0), x)
    (code, indices), logits = (model.apply(variables, x, method=model.forward_features), model.apply(variables, x))
    assert code.shape == (2, 2, 2, 4)
    assert [i.shape for i in indices] == [(2, 4, 4, 3), (2, 2, 2, 4)]
    assert all(i.dtype == jnp.int32 for i in indices)
    assert logits.shape == (2, 8, 8, 3)


def test_segnet_decoder_places_values_at_the_encoder_argmax():
    model = SegNet(**SEGNET)
    x = _x((2, 8, 8, 1), seed=1)
    variables = model.init(jax.random.PRNGKey(0), x)
    received = []

    def spy(next_fun, args, kwargs, context):  # what each decoder stage receives: the unpooled map
        if isinstance(context.module, ConvStack) and context.module.name.startswith("decoder"):
            received.append(args[0])
        return next_fun(*args, **kwargs)

    code, indices = model.apply(variables, x, method=model.forward_features)
    with nn.intercept_methods(spy):
        model.apply(variables, (code, indices), method=model.head)
    # The deepest stage gets the code at the second pool's argmax positions, zeros elsewhere.
    encoder_map = model.apply(variables, x, method=lambda m, x: m.encoder[1](max_pool(m.encoder[0](x), 2)))
    pooled, argmax = max_pool(encoder_map, 2, return_indices=True)
    np.testing.assert_array_equal(indices[1], argmax)
    unpooled = np.asarray(received[0]).reshape(2, 16, 4)
    expected = np.zeros_like(unpooled)
    for b in range(2):
        for c in range(4):
            expected[b, np.asarray(argmax)[b, ..., c].ravel(), c] = np.asarray(pooled)[b, ..., c].ravel()
    np.testing.assert_array_equal(unpooled, expected)
    # ...which is where the encoder's map has its window maxima.
    flat = np.asarray(encoder_map).reshape(2, 16, 4)
    nonzero = unpooled != 0
    np.testing.assert_array_equal(unpooled[nonzero], flat[nonzero])


def test_unet_skip_and_logit_shapes():
    model = UNet(**UNET)
    x = _x((2, 8, 8, 1))
    variables = model.init(jax.random.PRNGKey(0), x)
    bottom, skips = model.apply(variables, x, method=model.forward_features)
    assert [s.shape for s in skips] == [(2, 8, 8, 3), (2, 4, 4, 4)]
    assert bottom.shape == (2, 2, 2, 5)
    assert model.apply(variables, x).shape == (2, 8, 8, 3)
    # Up level i: 2x2/2 up-conv to features[i], concatenated with skip i: 2 * features[i] maps.
    kernels = {k: v["Conv_0"]["kernel"].shape for k, v in variables["params"].items() if k.startswith("up_convs")}
    assert kernels == {"up_convs_0": (3, 3, 6, 3), "up_convs_1": (3, 3, 8, 4)}
    assert variables["params"]["up_1"]["kernel"].shape == (2, 2, 5, 4)


@pytest.mark.parametrize("name", ["segnet", "unet"])
def test_matches_the_torch_twin(name):
    torch = require_module("torch")
    from zoo.bench import torch_models

    small = SEGNET if name == "segnet" else {**UNET, "batch_norm": True}
    config = {**zoo.model_info(name)["config"], **small}
    model = zoo.create_model(name, **small)
    x = _x((2, 8, 8, 1), seed=2)
    variables = randomize(model.init(jax.random.PRNGKey(0), x), seed=3)
    p, s = variables["params"], variables["batch_stats"]
    twin = getattr(torch_models, name)(config)
    with torch.no_grad():
        if name == "segnet":
            for i in range(2):
                stack_to_torch(torch, twin.encoder[i], p[f"encoder_{i}"], s[f"encoder_{i}"], True)
                stack_to_torch(torch, twin.decoder[i], p[f"decoder_{i}"], s[f"decoder_{i}"], True)
        else:
            for i in range(3):
                stack_to_torch(torch, twin.down[i], p[f"down_{i}"], s[f"down_{i}"], True)
            for i in range(2):
                stack_to_torch(torch, twin.up_convs[i], p[f"up_convs_{i}"], s[f"up_convs_{i}"], True)
                conv_to_torch(torch, twin.up[i], p[f"up_{i}"], transposed=True)
        conv_to_torch(torch, twin.classifier, p["classifier"])
    ours = model.apply(variables, x)  # inference: batch norm from the running statistics
    np.testing.assert_allclose(ours, torch_nhwc(torch, twin, x), rtol=1e-4, atol=1e-4)


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="multiples of 8"):
        UNet(input_shape=(12, 12, 1))
    with pytest.raises(ValueError, match="at least two levels"):
        UNet(input_shape=(8, 8, 1), features=(4,))
    with pytest.raises(ValueError, match="convs_per_stage"):
        SegNet(convs_per_stage=0)
    model = zoo.create_model("segnet", **SEGNET)
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 8, 8, 1\)"):
        model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3)))


@pytest.mark.parametrize("name", ["segnet", "unet"])
def test_a_few_steps_on_shapes_lower_the_loss(name):
    data = shapes(num_examples=16, num_test_examples=1, size=16)
    model = zoo.create_model(name, input_shape=(16, 16, 1), num_classes=4, features=(8, 8, 8), conv_impl="xla")
    task = get_task("segmentation")
    batch = {"x": jnp.asarray(data.x_train), "y": jnp.asarray(data.y_train)}
    variables = model.init(jax.random.PRNGKey(0), batch["x"])
    tx = optax.adam(0.01)

    @jax.jit
    def step(params, stats, opt_state):
        def loss(p):
            out, state = model.apply({"params": p, **stats}, batch["x"], train=True, mutable=list(stats))
            return task.per_example(out, batch)["loss"].mean(), state

        (value, stats), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state)
        return optax.apply_updates(params, updates), stats, opt_state, value

    params = variables["params"]
    stats = {k: v for k, v in variables.items() if k != "params"}
    opt_state = tx.init(params)
    losses = []
    for _ in range(12):
        params, stats, opt_state, value = step(params, stats, opt_state)
        losses.append(float(value))
    assert losses[-1] < 0.6 * losses[0], losses


@pytest.mark.parametrize("name", ["segnet", "unet"])
def test_bench_twin_has_our_parameters_and_trains_a_step(name):
    require_module("torch")
    from zoo.bench import contenders, flops, suite, torch_models

    workload = suite.Workload(batch_size=2, image_size=8)
    small = SEGNET if name == "segnet" else UNET
    config = {**zoo.model_info(name)["config"], **small}
    model = zoo.create_model(name, **small)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)))
    assert torch_models.parameter_count(getattr(torch_models, name)(config)) == flops.parameter_count(
        variables["params"]
    )
    host = contenders.make_host_batch(model, "segmentation", (8, 8, 1), workload, None)
    assert host["y"].shape == (2, 8, 8) and host["y"].max() < 3  # a class per pixel
    contenders.torch_contender(name, config, "segmentation", host, workload).run_step()


@pytest.mark.parametrize("name", ["segnet", "unet"])
def test_the_training_engine_fits_shapes_with_checkpoints(name, tmp_path):
    """`python train.py --model <name> --dataset shapes` in miniature: the engine's
    segmentation task trains the model, the loss falls, mean IoU is reported and every
    epoch is checkpointed."""
    data = shapes(num_examples=48, num_test_examples=8, size=16)
    result = zoo.fit(
        name,
        data,
        epochs=2,
        batch_size=16,
        optimizer="adam",
        learning_rate=0.01,
        model_overrides={
            "features": (8, 8),
            "conv_impl": "xla",
            **({"convs_per_stage": 1} if name == "segnet" else {}),
        },
        workdir=str(tmp_path),
        progress=False,
        num_devices=1,
    )
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0], losses
    assert 0.0 <= result.test_metrics["mean_iou"] <= 1.0 and "pixel_accuracy" in result.test_metrics
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1", "2"]
