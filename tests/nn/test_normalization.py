"""Local response normalisation (zoo.nn.normalization) against the paper's formula written
out in NumPy and against torch.nn.LocalResponseNorm."""

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require_module

from zoo.nn.normalization import local_response_norm


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


# ----------------------------------------------------------------- batch norm: train vs eval


def _bn_numpy(x, gamma, beta, mean, var, eps):
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def _bn_setup(momentum=0.9, epsilon=1e-5):
    import jax

    from zoo.nn.normalization import batch_norm

    layer = batch_norm(momentum=momentum, epsilon=epsilon)
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((4, 3, 3, 5)) * 2 + 1).astype(np.float32) for _ in range(3)]
    variables = layer.init(jax.random.PRNGKey(0), batches[0], use_running_average=True)
    gamma = rng.uniform(0.5, 1.5, 5).astype(np.float32)
    beta = rng.standard_normal(5).astype(np.float32)
    variables = {**variables, "params": {"scale": jnp.asarray(gamma), "bias": jnp.asarray(beta)}}
    return layer, variables, batches, gamma, beta


@pytest.mark.parametrize("momentum, epsilon", [(0.9, 1e-5), (0.5, 1e-2)])
def test_batch_norm_training_uses_batch_statistics_and_updates_running_averages(momentum, epsilon):
    """Ioffe & Szegedy 2015 (kang-lecture4 "Batch Normalization"): in training, each channel
    is normalised by the mini-batch mean and (biased) variance over (B, H, W); the running
    averages follow r <- momentum r + (1 - momentum) batch statistic, from mean 0, var 1."""
    layer, variables, batches, gamma, beta = _bn_setup(momentum, epsilon)
    run_mean, run_var = np.zeros(5), np.ones(5)
    for x in batches:
        y, updates = layer.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
        mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
        np.testing.assert_allclose(y, _bn_numpy(x, gamma, beta, mean, var, epsilon), rtol=1e-5, atol=1e-5)
        run_mean = momentum * run_mean + (1 - momentum) * mean
        run_var = momentum * run_var + (1 - momentum) * var
        variables = {**variables, **updates}
        np.testing.assert_allclose(variables["batch_stats"]["mean"], run_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(variables["batch_stats"]["var"], run_var, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_is_flax_batch_norm_bit_for_bit(train, dtype):
    """zoo's BatchNorm is flax.linen.BatchNorm with less tracing: the same variables (paths,
    shapes, initial values), outputs and their dtype (float32 for bfloat16 inputs with
    float32 parameters), updated statistics, and gradients through a stack of layers, to
    the bit."""
    import flax.linen as nn
    import jax

    from zoo.nn.initializers import ones_init, zeros_init
    from zoo.nn.normalization import BatchNorm

    def stack(make):
        class Stack(nn.Module):
            @nn.compact
            def __call__(self, x):
                for _ in range(3):
                    x = make(momentum=0.8, epsilon=1e-3, use_running_average=not train)(x)
                return x

        return Stack()

    flax_net = stack(lambda **kw: nn.BatchNorm(scale_init=ones_init, bias_init=zeros_init, **kw))
    zoo_net = stack(BatchNorm)
    x = (jax.random.normal(jax.random.PRNGKey(0), (6, 4, 5, 7)) * 3 + 1).astype(dtype)
    variables = flax_net.init(jax.random.PRNGKey(1), x)
    zoo_variables = zoo_net.init(jax.random.PRNGKey(1), x)
    flat, zoo_flat = jax.tree.leaves_with_path(variables), jax.tree.leaves_with_path(zoo_variables)
    assert [path for path, _ in flat] == [path for path, _ in zoo_flat]
    for (_, expected), (_, actual) in zip(flat, zoo_flat):
        np.testing.assert_array_equal(actual, expected)
    variables = jax.tree.map(lambda v: v + jax.random.uniform(jax.random.PRNGKey(2), v.shape), variables)

    def run(net):
        def loss(params, x):
            y, updates = net.apply({**variables, "params": params}, x, mutable=["batch_stats"])
            return jnp.sum(y.astype(jnp.float32) ** 2), (y, updates)

        return jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))(variables["params"], x)

    expected, actual = run(flax_net), run(zoo_net)
    assert actual[1][0].dtype == expected[1][0].dtype == jnp.float32
    for e, a in zip(jax.tree.leaves(expected), jax.tree.leaves(actual), strict=True):
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(e, np.float32))


def test_batch_norm_eval_uses_running_averages_and_is_deterministic_per_example():
    """At test time the running mean and variance replace the batch's (the seed's "weighted
    average of gamma and beta" is a slip: gamma and beta are learnt, not averaged): the
    output is a fixed affine map of each example, the same on every call and whatever the
    rest of the batch; in training the same example's output depends on its batch."""
    layer, variables, batches, gamma, beta = _bn_setup()
    for x in batches:  # accumulate running statistics
        _, updates = layer.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
        variables = {**variables, **updates}
    stats = variables["batch_stats"]
    x = batches[0]
    y = layer.apply(variables, x, use_running_average=True)
    np.testing.assert_allclose(
        y, _bn_numpy(x, gamma, beta, np.asarray(stats["mean"]), np.asarray(stats["var"]), 1e-5), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(y, layer.apply(variables, x, use_running_average=True))
    np.testing.assert_allclose(layer.apply(variables, x[:1], use_running_average=True), y[:1], rtol=1e-6, atol=1e-6)
    train_alone, _ = layer.apply(variables, x[:2], use_running_average=False, mutable=["batch_stats"])
    train_full, _ = layer.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
    assert np.abs(np.asarray(train_alone[:1]) - np.asarray(train_full[:1])).max() > 1e-2


def test_mlp_batch_norm_train_and_eval_differ_and_eval_is_deterministic():
    """The same semantics through a model: zoo's MLP with batch_norm=True."""
    import jax

    import zoo

    model = zoo.create_model("mlp", input_shape=(6,), hidden_sizes=(8, 8), num_outputs=3, batch_norm=True)
    x = jax.random.normal(jax.random.PRNGKey(1), (16, 6)) * 3 + 2
    variables = model.init(jax.random.PRNGKey(0), x)
    train_out, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    eval_out = model.apply(variables, x, train=False)
    assert np.abs(np.asarray(train_out) - np.asarray(eval_out)).max() > 1e-2
    assert not np.allclose(updates["batch_stats"]["norms_0"]["mean"], variables["batch_stats"]["norms_0"]["mean"])
    np.testing.assert_array_equal(eval_out, model.apply(variables, x, train=False))
    np.testing.assert_allclose(model.apply(variables, x[:3], train=False), eval_out[:3], rtol=1e-6, atol=1e-6)


def test_mlp_batch_norm_momentum_and_epsilon_are_its_config():
    """The running mean moves by (1 - momentum) toward the batch mean of the pre-activation
    (bias-free Dense output), and epsilon enters the normalisation."""
    import jax

    import zoo

    x = jax.random.normal(jax.random.PRNGKey(1), (16, 6)) * 3 + 2
    model = zoo.create_model("mlp", input_shape=(6,), hidden_sizes=(8,), batch_norm=True, batch_norm_momentum=0.25)
    variables = model.init(jax.random.PRNGKey(0), x)
    _, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    pre_activation = np.asarray(x) @ np.asarray(variables["params"]["hidden_0"]["kernel"])
    np.testing.assert_allclose(updates["batch_stats"]["norms_0"]["mean"], 0.75 * pre_activation.mean(0), rtol=1e-5)
    huge_epsilon = zoo.create_model("mlp", input_shape=(6,), hidden_sizes=(8,), batch_norm=True, batch_norm_epsilon=1e6)
    features = huge_epsilon.apply(variables, x, train=True, mutable=["batch_stats"], method="forward_features")[0]
    assert np.abs(np.asarray(features)).max() < 0.1  # (h - mean) / sqrt(var + 1e6): nearly zero
