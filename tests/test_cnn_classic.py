"""LeNet-5 (1998 and modern), AlexNet and VGG A-E: exact parameter counts (jax.eval_shape,
no allocation), LeNet's C3 connection table, local response normalisation against NumPy
and torch, output shapes and input validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require_module

import zoo
from zoo.models.cnn.lenet import C3_TABLE, c3_connection_matrix, rbf_codes
from zoo.nn.layers import adaptive_avg_pool, conv_output_size, local_response_norm


def _abstract_variables(model, batch=1):
    x = jax.ShapeDtypeStruct((batch, *model.input_shape), jnp.float32)
    return jax.eval_shape(model.init, jax.random.PRNGKey(0), x)


def _count(tree):
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


@pytest.mark.parametrize(
    "name, overrides, expected",
    [
        ("lenet5_1998", {}, 60_000),
        ("lenet5", {}, 61_706),
        ("alexnet", {}, 60_965_224),
        ("alexnet", {"input_shape": (224, 224, 3), "padding": 2}, 60_965_224),
        ("alexnet", {"groups": 1}, 62_378_344),
        ("alexnet", {"input_shape": (224, 224, 3), "padding": 2, "groups": 1}, 62_378_344),
        ("alexnet", {"input_shape": (224, 224, 3)}, 49_430_888),
        ("alexnet_torchvision", {}, 61_100_840),
        ("vgg11", {}, 132_863_336),
        ("vgg11_lrn", {}, 132_863_336),
        ("vgg13", {}, 133_047_848),
        ("vgg16_c", {}, 133_638_952),
        ("vgg16", {}, 138_357_544),
        ("vgg19", {}, 143_667_240),
    ],
)
def test_parameter_count_matches_reference_figure(name, overrides, expected):
    variables = _abstract_variables(zoo.create_model(name, **overrides))
    assert _count(variables["params"]) == expected
    assert set(variables) <= {"params", "constants"}  # no batch norm in these networks


def test_lenet1998_per_layer_parameter_counts():
    variables = _abstract_variables(zoo.create_model("lenet5_1998"))
    counts = {k: _count(v) for k, v in variables["params"].items()}
    assert counts == {"C1": 156, "S2": 12, "C3": 1_516, "S4": 32, "C5": 48_120, "F6": 10_164}
    assert sum(counts.values()) == 60_000


def test_lenet1998_rbf_codes_are_fixed_constants_not_parameters():
    model = zoo.create_model("lenet5_1998")
    x = jnp.zeros((1, 32, 32, 1))
    v1, v2 = model.init(jax.random.PRNGKey(0), x), model.init(jax.random.PRNGKey(1), x)
    codes = v1["constants"]["rbf_codes"]
    assert codes.shape == (10, 84)
    np.testing.assert_array_equal(codes, v2["constants"]["rbf_codes"])
    np.testing.assert_array_equal(np.abs(codes), 1.0)
    assert len({tuple(r) for r in np.asarray(codes)}) == 10  # distinct codes
    np.testing.assert_array_equal(codes, rbf_codes(10))


def test_lenet1998_logits_are_negative_squared_distances_to_codes():
    model = zoo.create_model("lenet5_1998")
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 32, 32, 1))
    v = model.init(jax.random.PRNGKey(1), x)
    h = model.apply(v, x, method=model.forward_features)
    f6 = 1.7159 * jnp.tanh(2.0 / 3.0 * (h @ v["params"]["F6"]["kernel"] + v["params"]["F6"]["bias"]))
    codes = v["constants"]["rbf_codes"]
    expected = -((f6[:, None, :] - codes[None]) ** 2).sum(-1)
    np.testing.assert_allclose(model.apply(v, x), expected, rtol=1e-5, atol=1e-4)


def test_c3_connection_table_is_the_papers_table_one():
    m = c3_connection_matrix()
    assert m.shape == (6, 16)
    assert list(m.sum(0)) == [3] * 6 + [4] * 9 + [6]
    assert m.sum() == 60
    for j in range(6):
        assert sorted(C3_TABLE[j]) == sorted((j + d) % 6 for d in range(3))
    for j in range(6, 12):
        assert sorted(C3_TABLE[j]) == sorted((j - 6 + d) % 6 for d in range(4))
    assert [sorted(C3_TABLE[j]) for j in (12, 13, 14)] == [[0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5]]


def test_c3_map_depends_on_s2_map_iff_connected():
    """Effective connectivity: d C3_j / d S2_i is non-zero exactly when Table I connects them."""
    model = zoo.create_model("lenet5_1998")
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 1)))["params"]["C3"]
    from zoo.models.cnn.lenet import PartialConv

    conv = PartialConv()
    s2 = jax.random.normal(jax.random.PRNGKey(1), (1, 14, 14, 6))
    connected = np.zeros((6, 16), bool)
    for j in range(16):
        g = jax.grad(lambda s, j=j: conv.apply({"params": params}, s)[..., j].sum())(s2)
        connected[:, j] = np.asarray(jnp.abs(g).sum(axis=(0, 1, 2)) > 0)
    np.testing.assert_array_equal(connected, c3_connection_matrix().astype(bool))


def _lrn_numpy(a, n, k, alpha, beta):
    """Krizhevsky et al. 2012, eq. in Section 3.3, written out with loops (channels last)."""
    c = a.shape[-1]
    b = np.empty_like(a)
    for i in range(c):
        lo, hi = max(0, i - n // 2), min(c - 1, i + (n - 1) // 2)
        b[..., i] = a[..., i] / (k + alpha * (a[..., lo : hi + 1] ** 2).sum(-1)) ** beta
    return b


@pytest.mark.parametrize("n, k, alpha, beta", [(5, 2.0, 1e-4, 0.75), (3, 1.0, 0.5, 0.5), (4, 2.0, 0.1, 1.0)])
def test_lrn_matches_numpy_reference(n, k, alpha, beta):
    a = np.random.default_rng(0).normal(size=(2, 4, 3, 9)).astype(np.float32) * 3
    got = local_response_norm(jnp.asarray(a), size=n, k=k, alpha=alpha, beta=beta)
    np.testing.assert_allclose(got, _lrn_numpy(a.astype(np.float64), n, k, alpha, beta), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n, k, alpha, beta", [(5, 2.0, 1e-4, 0.75), (3, 1.0, 0.5, 0.5), (4, 2.0, 0.1, 1.0)])
def test_lrn_matches_torch_with_alpha_times_size(n, k, alpha, beta):
    torch = require_module("torch")
    a = np.random.default_rng(1).normal(size=(2, 5, 4, 11)).astype(np.float32) * 3
    # torch computes k + (alpha_t / n) * sum, so alpha_t = alpha * n; torch is NCHW.
    ref = torch.nn.LocalResponseNorm(n, alpha=alpha * n, beta=beta, k=k)(torch.from_numpy(a).permute(0, 3, 1, 2))
    ref = ref.permute(0, 2, 3, 1).numpy()
    got = local_response_norm(jnp.asarray(a), size=n, k=k, alpha=alpha, beta=beta)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_adaptive_avg_pool_matches_torch():
    torch = require_module("torch")
    a = np.random.default_rng(2).normal(size=(2, 13, 9, 3)).astype(np.float32)
    for size in [(6, 6), (13, 9), (4, 5)]:
        ref = torch.nn.AdaptiveAvgPool2d(size)(torch.from_numpy(a).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        np.testing.assert_allclose(adaptive_avg_pool(jnp.asarray(a), size), ref.numpy(), rtol=1e-5, atol=1e-6)


def test_conv_output_size_formula():
    assert conv_output_size(227, 11, 4) == 55
    assert conv_output_size(224, 11, 4, 2) == 55
    assert conv_output_size(224, 11, 4) == 54
    assert conv_output_size(5, 3) == 3


@pytest.mark.parametrize(
    "name, overrides, batch_shape, features",
    [
        ("lenet5_1998", {}, (4, 32, 32, 1), 120),
        ("lenet5", {}, (4, 28, 28, 1), 400),
        ("alexnet", {}, (2, 227, 227, 3), 6 * 6 * 256),
        ("alexnet", {"input_shape": (224, 224, 3), "padding": 2}, (2, 224, 224, 3), 6 * 6 * 256),
        ("alexnet", {"input_shape": (224, 224, 3)}, (2, 224, 224, 3), 5 * 5 * 256),
        ("alexnet_torchvision", {}, (2, 224, 224, 3), 6 * 6 * 256),
        ("alexnet_torchvision", {"input_shape": (256, 200, 3)}, (2, 256, 200, 3), 6 * 6 * 256),
        ("vgg16", {}, (2, 224, 224, 3), 7 * 7 * 512),
        ("vgg16_c", {"input_shape": (64, 96, 3), "num_classes": 7}, (2, 64, 96, 3), 2 * 3 * 512),
    ],
)
def test_output_and_feature_shapes_at_stated_input_sizes(name, overrides, batch_shape, features):
    model = zoo.create_model(name, **overrides)
    num_classes = overrides.get("num_classes", 10 if name.startswith("lenet") else 1000)
    x = jax.ShapeDtypeStruct(batch_shape, jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    assert jax.eval_shape(model.apply, variables, x).shape == (batch_shape[0], num_classes)
    h = jax.eval_shape(lambda v, x: model.apply(v, x, method=model.forward_features), variables, x)
    assert h.shape == (batch_shape[0], features)


@pytest.mark.parametrize(
    "name, bad_shape, expected",
    [
        ("lenet5_1998", (2, 28, 28, 1), r"\(B, 32, 32, 1\)"),
        ("lenet5", (2, 28, 28, 3), r"\(B, 28, 28, 1\)"),
        ("alexnet", (2, 224, 224, 3), r"\(B, 227, 227, 3\)"),
        ("alexnet_torchvision", (2, 224, 224, 1), r"\(B, 224, 224, 3\)"),
        ("vgg19", (2, 3, 224, 224), r"\(B, 224, 224, 3\)"),
    ],
)
def test_wrong_input_shape_raises_value_error_naming_expected_shape(name, bad_shape, expected):
    model = zoo.create_model(name)
    good = jax.ShapeDtypeStruct((2, *model.input_shape), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), good)
    with pytest.raises(ValueError, match="expects input of shape " + expected):
        jax.eval_shape(model.apply, variables, jax.ShapeDtypeStruct(bad_shape, jnp.float32))


def test_integer_input_is_rejected():
    model = zoo.create_model("lenet5")
    variables = _abstract_variables(model)
    with pytest.raises(ValueError, match="float input"):
        jax.eval_shape(model.apply, variables, jax.ShapeDtypeStruct((1, 28, 28, 1), jnp.int32))


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("lenet5_1998", {"input_shape": (28, 28, 1)}, "at least 32"),
        ("lenet5_1998", {"num_classes": 200}, "1..127"),
        ("lenet5", {"num_classes": 0}, "positive"),
        ("lenet5", {"input_shape": (28, 28)}, r"\(H, W, C\)"),
        ("alexnet", {"groups": 3}, "groups"),
        ("alexnet", {"widths": (96, 255, 384, 384, 256)}, "divisible"),
        ("alexnet", {"widths": (96, 256, 384)}, "5 positive"),
        ("alexnet", {"input_shape": (40, 40, 3)}, "too small"),
        ("alexnet", {"padding": -1}, "padding"),
        ("alexnet", {"dropout_rate": 1.0}, "dropout_rate"),
        ("alexnet_torchvision", {"fc_size": 0}, "positive"),
        ("vgg11", {"input_shape": (16, 16, 3)}, "at least 32x32"),
        ("vgg16", {"width_divisor": 3}, "width_divisor"),
        ("vgg19", {"num_classes": -1}, "positive"),
    ],
)
def test_invalid_config_raises_clear_value_error(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model(name, **overrides)


def test_alexnet_grouping_splits_conv2_conv4_conv5_only():
    params = _abstract_variables(zoo.create_model("alexnet"))["params"]
    assert params["conv1"]["kernel"].shape == (11, 11, 3, 96)
    assert params["conv2"]["kernel"].shape == (5, 5, 48, 256)
    assert params["conv3"]["kernel"].shape == (3, 3, 256, 384)
    assert params["conv4"]["kernel"].shape == (3, 3, 192, 384)
    assert params["conv5"]["kernel"].shape == (3, 3, 192, 256)


def test_vgg_c_uses_one_by_one_convs_in_last_three_stages():
    params = _abstract_variables(zoo.create_model("vgg16_c"))["params"]
    for name in ("conv3_3", "conv4_3", "conv5_3"):
        assert params[name]["kernel"].shape[:2] == (1, 1)
    d = _abstract_variables(zoo.create_model("vgg16"))["params"]
    assert d["conv3_3"]["kernel"].shape[:2] == (3, 3)


def test_vgg11_lrn_normalises_after_first_conv():
    kw = {"input_shape": (32, 32, 3), "width_divisor": 16, "fc_size": 8, "num_classes": 3}
    a, lrn = zoo.create_model("vgg11", **kw), zoo.create_model("vgg11_lrn", **kw)
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 32, 32, 3)) * 50
    v = a.init(jax.random.PRNGKey(1), x)
    assert jax.tree.structure(v) == jax.tree.structure(lrn.init(jax.random.PRNGKey(1), x))
    assert not np.allclose(a.apply(v, x), lrn.apply(v, x))


def test_dropout_is_active_only_in_training():
    model = zoo.create_model("alexnet", input_shape=(67, 67, 3), widths=(8, 16, 16, 16, 8), fc_size=16)
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 67, 67, 3))
    v = model.init(jax.random.PRNGKey(1), x)
    np.testing.assert_array_equal(model.apply(v, x), model.apply(v, x))
    y1 = model.apply(v, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    y2 = model.apply(v, x, train=True, rngs={"dropout": jax.random.PRNGKey(3)})
    assert not np.allclose(y1, y2)


def test_lenet5_learns_digits_short_run():
    """Short version of the README's documented run (digits resized to 28x28, 50 epochs,
    0.98+): 6 epochs already pass 0.93 test accuracy."""
    data = zoo.data.load_dataset("digits", image_size=28)
    result = zoo.fit("lenet5", data, epochs=6, batch_size=32, optimizer="adamw", learning_rate=2e-3,
                     optimizer_kwargs={"weight_decay": 0.05, "schedule": "cosine"},
                     validation_fraction=0, progress=False)
    assert result.test_metrics["accuracy"] > 0.93
