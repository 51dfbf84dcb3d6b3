"""Class activation maps (Zhou et al. 2016; seed kang-lecture4, "Class Activation Map") and
gradient saliency maps (Simonyan et al. 2014): zoo.cam, zoo.saliency.

Tiny versions of the GAP models (a few thousand parameters, 16-64 pixel inputs) keep each
test to a few seconds; the identities checked do not depend on size.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.explain import cam, saliency

# name -> overrides giving a tiny model whose last feature map is still larger than 1x1.
GAP_MODELS = {
    "resnet20": {"input_shape": (16, 16, 3), "stage_sizes": (1, 1, 1), "width": 4, "num_classes": 3},  # 4x4 map
    "densenet_bc_100": {"input_shape": (16, 16, 3), "block_config": (1, 1), "growth_rate": 4, "num_classes": 3},  # 8x8
    "googlenet": {"input_shape": (64, 64, 3), "width_divisor": 16, "num_classes": 3},  # 2x2
}
BATCH = 2


def _build(name, **overrides):
    """(model, variables, x) with a random classifier bias, so the bias term is tested."""
    model = zoo.create_model(name, **overrides)
    x = jax.random.normal(jax.random.PRNGKey(0), (BATCH, *model.input_shape))
    variables = jax.jit(model.init)(jax.random.PRNGKey(1), x)
    return model, variables, x


@pytest.fixture(scope="module", params=sorted(GAP_MODELS))
def gap_case(request):
    """Everything the CAM tests read, computed in one jit'd program per model (one compile)."""
    name = request.param
    model, variables, x = _build(name, **GAP_MODELS[name])
    classifier = "classifier" if name.startswith("densenet") else "fc"
    params = dict(variables["params"])
    params[classifier] = {
        **params[classifier],
        "bias": jax.random.normal(jax.random.PRNGKey(2), params[classifier]["bias"].shape),
    }
    variables = {**variables, "params": params}

    @jax.jit
    def run(variables, x):
        return {
            "maps": zoo.cam(model, variables, x, upsample=False),  # (maps, logits)
            "picked": cam(model, variables, x, classes=[2, 0], upsample=False),
            "one": cam(model, variables, x, classes=1, upsample=False),
            "upsampled": cam(model, variables, x, classes=(2, 0)),
            "features": model.apply(variables, x, method=model.feature_maps),
            "logits": model.apply(variables, x),
        }

    return name, jax.device_get(run(variables, x)), params[classifier], x.shape


def test_cam_gap_identity(gap_case):
    """Zhou et al.: S_c = sum_k w_k^c GAP(f_k) + b_c = GAP(M_c) + b_c. The maps' spatial mean plus
    the bias is the logit, and the spatial sum (the seed's F_k = sum_{x,y} f_k) is h*w times
    the logit minus the bias."""
    name, out, classifier, _ = gap_case
    maps, logits = out["maps"]
    features = out["features"]
    _, h, w, channels = features.shape
    assert maps.shape == (BATCH, 3, h, w) and h * w > 1, name
    np.testing.assert_allclose(logits, out["logits"], rtol=1e-5, atol=1e-5)  # cam's logits are the model's
    np.testing.assert_allclose(maps.mean(axis=(2, 3)), logits - classifier["bias"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(maps.sum(axis=(2, 3)), h * w * (logits - classifier["bias"]), rtol=1e-5, atol=1e-4)
    # M_c(i, j) = sum_k w_k^c f_k(i, j) at one location, written out.
    b, i, j, c = 1, h - 1, 0, 2
    kernel = np.asarray(classifier["kernel"])
    assert maps[b, c, i, j] == pytest.approx(
        sum(kernel[k, c] * features[b, i, j, k] for k in range(channels)), rel=1e-4
    )


def test_cam_selects_classes_and_upsamples_to_the_input(gap_case):
    name, out, _, x_shape = gap_case
    every, logits = out["maps"]
    picked, picked_logits = out["picked"]
    np.testing.assert_allclose(picked, every[:, [2, 0]], rtol=1e-6)
    np.testing.assert_allclose(picked_logits, logits, rtol=1e-6)
    np.testing.assert_allclose(out["one"][0], every[:, [1]], rtol=1e-6)

    upsampled, _ = out["upsampled"]
    assert upsampled.shape == (BATCH, 2, *x_shape[1:3]), name
    expected = jax.image.resize(every[:, [2, 0]], (BATCH, 2, *x_shape[1:3]), "bilinear")
    np.testing.assert_allclose(upsampled, expected, rtol=1e-5, atol=1e-5)
    # Bilinear upsampling interpolates: it stays within the map's range, per example and class.
    assert np.all(upsampled.max(axis=(2, 3)) <= every[:, [2, 0]].max(axis=(2, 3)) + 1e-5)
    assert np.all(upsampled.min(axis=(2, 3)) >= every[:, [2, 0]].min(axis=(2, 3)) - 1e-5)


def _abstract(name, **overrides):
    """(model, abstract variables, x): shapes only, for tests that must fail before any work."""
    model = zoo.create_model(name, **overrides)
    x = jnp.zeros((BATCH, *model.input_shape))
    return model, jax.eval_shape(model.init, jax.random.PRNGKey(0), x), x


@pytest.mark.parametrize("name", ["vgg11", "alexnet", "lenet5"])
def test_cam_rejects_models_without_global_average_pooling(name):
    model = zoo.create_model(name, **zoo.registry.get_spec(name).test_config)
    x = jnp.zeros((1, *model.input_shape))
    with pytest.raises(ValueError, match="global average pooling") as error:
        cam(model, {}, x)  # refused before anything runs: no variables needed
    message = str(error.value)
    for supported in ("resnet18", "resnet20", "densenet121", "densenet_bc_100", "googlenet"):
        assert supported in message
    assert name not in message.split("support CAM:")[1]


def test_cam_and_saliency_reject_bad_classes_and_inputs():
    model, variables, x = _abstract("resnet20", **GAP_MODELS["resnet20"])
    with pytest.raises(ValueError, match=r"out of range for a model with 3 classes"):
        cam(model, variables, x, classes=[0, 3])
    with pytest.raises(ValueError, match="out of range"):
        saliency(model, variables, x, classes=-1)
    with pytest.raises(ValueError, match="non-empty sequence of ints"):
        cam(model, variables, x, classes=[])
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        cam(model, variables, x[0])
    with pytest.raises(ValueError, match="floating-point"):
        saliency(model, variables, x.astype(jnp.int32))
    with pytest.raises(ValueError, match="no dense layer 'fc'"):
        cam(model, {"params": {}}, x)


def test_zoo_exports_cam_and_saliency():
    """zoo.cam and zoo.saliency are the functions of zoo.explain."""
    assert zoo.cam is cam and zoo.saliency is saliency
    model, variables, x = _abstract("resnet20", **GAP_MODELS["resnet20"])
    maps, logits = jax.eval_shape(lambda v, x: zoo.cam(model, v, x, classes=1), variables, x)
    assert maps.shape == (BATCH, 1, 16, 16) and logits.shape == (BATCH, 3)
    maps, logits = jax.eval_shape(lambda v, x: zoo.saliency(model, v, x, classes=(0, 2)), variables, x)
    assert maps.shape == (BATCH, 2, 16, 16) and logits.shape == (BATCH, 3)


@pytest.fixture(scope="module", params=["resnet20", "lenet5"])
def saliency_case(request):
    """A GAP model with batch norm, and LeNet-5 (no GAP: saliency works for any classifier);
    everything the saliency tests read, from one jit'd program per model."""
    name = request.param
    model, variables, x = _build(name, **GAP_MODELS.get(name, {"num_classes": 3}))

    @jax.jit
    def run(variables, x):
        return {
            "every": saliency(model, variables, x),
            "picked": saliency(model, variables, x, classes=(2, 0)),
            # One example at a time, each on its own (B = 1) batch.
            "looped": [saliency(model, variables, x[b : b + 1], classes=(2, 0))[0] for b in range(BATCH)],
            "logits": model.apply(variables, x),
            # Independent route: the Jacobian of the batch's logits w.r.t. the whole batch.
            "jacobian": jax.jacrev(lambda x: model.apply(variables, x))(x),  # (B, K, B, H, W, C)
        }

    return name, jax.device_get(run(variables, x)), x


def test_saliency_equals_diagonal_blocks_of_the_batch_jacobian(saliency_case):
    """Simonyan et al.: the map is max over channels of |d S_c / d x| for the example's own
    input. The batch Jacobian (no vmap) holds the per-example gradients in its diagonal blocks;
    in evaluation mode the off-diagonal blocks (one example's logits vs another's pixels) are 0."""
    name, out, x = saliency_case
    maps, logits = out["every"]
    jacobian = out["jacobian"]
    own = np.stack([jacobian[b, :, b] for b in range(BATCH)])  # (B, K, H, W, C)
    np.testing.assert_allclose(maps, np.abs(own).max(axis=-1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(logits, out["logits"], rtol=1e-5, atol=1e-6)
    assert np.abs(jacobian[0, :, 1]).max() == 0.0 and np.abs(jacobian[1, :, 0]).max() == 0.0
    assert maps.shape == (BATCH, 3, *x.shape[1:3]) and maps.min() >= 0.0 and maps.max() > 0.0, name


def test_saliency_vmap_equals_loop_over_examples(saliency_case):
    _, out, _ = saliency_case
    batched, _ = out["picked"]
    np.testing.assert_allclose(batched, np.concatenate(out["looped"]), rtol=1e-6, atol=1e-8)
    # Classes select rows of the full map.
    np.testing.assert_allclose(batched, out["every"][0][:, [2, 0]], rtol=1e-6, atol=1e-8)


def test_saliency_matches_finite_differences():
    """A direct numerical derivative of one logit at a few pixels (tiny ResNet, float32,
    central differences, all perturbed batches in one call)."""
    model, variables, x = _build("resnet20", **GAP_MODELS["resnet20"])
    maps, _ = jax.jit(lambda v, x: saliency(model, v, x, classes=1))(variables, x)
    eps, pixels = 1e-2, [(0, 3, 5), (1, 10, 2), (1, 15, 15)]
    steps = jnp.stack([jnp.zeros_like(x).at[b, i, j, c].set(eps) for b, i, j in pixels for c in range(3)])
    perturbed = jnp.concatenate([x + steps, x - steps])  # (2 * 9, B, H, W, C)
    logits = jax.jit(lambda v, x: model.apply(v, x))(variables, perturbed.reshape(-1, *x.shape[1:]))
    logit = np.asarray(logits[:, 1]).reshape(2, len(pixels), 3, BATCH)
    slopes = (logit[0] - logit[1]) / (2 * eps)  # (pixel, channel, example)
    for n, (b, i, j) in enumerate(pixels):
        assert float(maps[b, 0, i, j]) == pytest.approx(np.abs(slopes[n, :, b]).max(), rel=2e-2, abs=1e-4)


# ----------------------------------------------------------------- gradient norms per layer


def test_gradient_norms_per_layer_match_hand_backprop():
    """A 2-2-2 sigmoid MLP, softmax cross-entropy: the backward pass written out in NumPy."""
    from zoo.explain import gradient_norms_per_layer
    from zoo.models.perceptron import MLP

    model = MLP(input_shape=(2,), hidden_sizes=(2,), num_outputs=2, activation="sigmoid")
    x = np.array([[0.5, -1.0], [1.5, 0.3], [-0.7, 0.9]], np.float32)
    y = np.array([0, 1, 1])
    variables = model.init(jax.random.PRNGKey(0), x)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    w1, b1, w2, b2 = p["hidden_0"]["kernel"], p["hidden_0"]["bias"], p["out"]["kernel"], p["out"]["bias"]
    h = 1 / (1 + np.exp(-(x @ w1 + b1)))
    z = h @ w2 + b2
    prob = np.exp(z - z.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    dz = (prob - np.eye(2)[y]) / len(x)
    da = (dz @ w2.T) * h * (1 - h)
    norms = gradient_norms_per_layer(model, variables, x, y)
    assert list(norms) == ["hidden_0", "out"]
    np.testing.assert_allclose(norms["hidden_0"], np.linalg.norm(x.T @ da), rtol=1e-5)
    np.testing.assert_allclose(norms["out"], np.linalg.norm(h.T @ dz), rtol=1e-5)


def test_gradient_norms_per_layer_orders_by_depth_and_vanish_in_deep_sigmoid_nets():
    """kang-lecture4 "Gradient Vanishing": through 12 sigmoid layers the first layer's
    gradient is far smaller than the last's; ReLU with He init and batch norm keep it."""
    from zoo.explain import gradient_norms_per_layer
    from zoo.models.perceptron import MLP

    x = jax.random.normal(jax.random.PRNGKey(1), (64, 16))
    y = jnp.arange(64) % 4
    ratios = {}
    for label, kw in {
        "sigmoid": {"activation": "sigmoid"},
        "relu": {"activation": "relu", "kernel_init": "he_normal"},
        "batch norm": {"activation": "sigmoid", "batch_norm": True},
    }.items():
        model = MLP(input_shape=(16,), hidden_sizes=(32,) * 12, num_outputs=4, **kw)
        norms = gradient_norms_per_layer(model, model.init(jax.random.PRNGKey(0), x), x, y)
        assert list(norms)[:3] == ["hidden_0", "hidden_1", "hidden_2"] and list(norms)[-2:] == ["hidden_11", "out"]
        ratios[label] = float(norms["hidden_0"] / norms["hidden_11"])
    assert ratios["sigmoid"] < 1e-3 < ratios["relu"]
    assert ratios["batch norm"] > 100 * ratios["sigmoid"]
