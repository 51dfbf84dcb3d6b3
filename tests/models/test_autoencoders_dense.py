"""Dense autoencoders (zoo.models.autoencoders.dense): the seed's equations against NumPy,
PCA's subspace, noise, sparsity, the VAE's ELBO, and their training through zoo.fit."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import train
import zoo
from zoo.data import load_dataset
from zoo.models.autoencoders.dense import corrupt, denoising_curve, kl_sparsity, latent_grid
from zoo.tasks import get_task

RECONSTRUCTION = get_task("reconstruction")


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _init(name, x, **overrides):
    model = zoo.create_model(name, **overrides)
    return model, model.init(jax.random.PRNGKey(0), x)


def test_seed_autoencoder_equations_and_loss():
    """kang-lecture4: h = sigm(b + W x), x' = sigm(c + W* h), l = 1/2 sum_k (x'_k - x_k)^2."""
    x = np.random.default_rng(0).uniform(size=(5, 6)).astype(np.float32)
    model, variables = _init("autoencoder", x, input_shape=(6,), hidden_sizes=(3,))
    p = jax.tree.map(np.asarray, variables["params"])
    h = _sigmoid(p["encoder_0"]["bias"] + x @ p["encoder_0"]["kernel"])
    x_hat = _sigmoid(p["decoder_0"]["bias"] + h @ p["decoder_0"]["kernel"])
    out = model.apply(variables, x)
    np.testing.assert_allclose(out["reconstruction"], x_hat, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.apply(variables, x, method="encode"), h, rtol=1e-5, atol=1e-6)
    loss = RECONSTRUCTION.per_example(out, {"x": jnp.asarray(x)})["loss"]
    np.testing.assert_allclose(loss, 0.5 * np.sum((x_hat - x) ** 2, -1), rtol=1e-5)


def test_tied_weights_decode_with_the_transpose():
    x = np.random.default_rng(1).uniform(size=(4, 6)).astype(np.float32)
    model, variables = _init("stacked_autoencoder", x, input_shape=(6,), hidden_sizes=(4, 2), tied_weights=True)
    p = jax.tree.map(np.asarray, variables["params"])
    assert sorted(p) == ["decoder_bias_0", "decoder_bias_1", "encoder_0", "encoder_1"]  # no W*
    h1 = _sigmoid(x @ p["encoder_0"]["kernel"] + p["encoder_0"]["bias"])
    h2 = _sigmoid(h1 @ p["encoder_1"]["kernel"] + p["encoder_1"]["bias"])
    g1 = _sigmoid(h2 @ p["encoder_1"]["kernel"].T + p["decoder_bias_1"])
    x_hat = _sigmoid(g1 @ p["encoder_0"]["kernel"].T + p["decoder_bias_0"])
    np.testing.assert_allclose(model.apply(variables, x)["reconstruction"], x_hat, rtol=1e-5, atol=1e-6)


def test_linear_autoencoder_spans_the_principal_subspace():
    """The seed's "1-layer autoencoder is similar to PCA" (Baldi & Hornik 1989): at the
    minimum of the squared error, the decoder's columns span the top-k principal
    components of the centred data (the biases take the mean)."""
    x = load_dataset("digits").x_train.reshape(-1, 64)
    k = 4
    model, variables = _init("linear_autoencoder", x[:2], input_shape=(64,), hidden_sizes=(k,))
    tx = optax.adam(1e-2)

    def loss(p):
        return jnp.mean(RECONSTRUCTION.per_example(model.apply({"params": p}, x), {"x": x})["loss"])

    @jax.jit
    def steps(p, o):
        def one(carry, _):
            p, o = carry
            u, o = tx.update(jax.grad(loss)(p), o, p)
            return (optax.apply_updates(p, u), o), None

        return jax.lax.scan(one, (p, o), None, length=3000)[0]

    params, _ = steps(variables["params"], tx.init(variables["params"]))
    q, _ = np.linalg.qr(np.asarray(params["decoder_0"]["kernel"]).T)
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    pcs = vt[:k].T
    assert np.linalg.norm(q @ q.T - pcs @ pcs.T) < 0.01


def test_corruption_statistics():
    x = jnp.ones((200, 50))
    key = jax.random.PRNGKey(0)
    masked = corrupt(x, key, "masking", 0.3)
    assert set(np.unique(np.asarray(masked)).tolist()) <= {0.0, 1.0}
    assert abs(float(jnp.mean(masked == 0)) - 0.3) < 0.02
    noise = corrupt(x, key, "gaussian", 0.3) - x
    assert abs(float(jnp.std(noise)) - 0.3) < 0.01 and abs(float(jnp.mean(noise))) < 0.01
    np.testing.assert_array_equal(corrupt(x, key, "none", 0.3), x)


def test_denoising_model_corrupts_only_with_a_noise_rng():
    x = np.full((3, 6), 0.5, np.float32)
    model, variables = _init("denoising_autoencoder", x, input_shape=(6,), hidden_sizes=(4,))
    clean = model.apply(variables, x)["reconstruction"]
    noisy = model.apply(variables, x, rngs={"noise": jax.random.PRNGKey(1)})["reconstruction"]
    np.testing.assert_allclose(model.apply(variables, x)["reconstruction"], clean)
    assert float(jnp.max(jnp.abs(noisy - clean))) > 1e-3
    h = model.apply(variables, x, method="encode", rngs={"noise": jax.random.PRNGKey(1)})
    np.testing.assert_allclose(h, model.apply(variables, x, method="encode"))  # codes of clean inputs: no rng drawn


def test_denoising_curve_is_the_loop_over_levels_in_one_call():
    x = np.random.default_rng(2).uniform(size=(7, 6)).astype(np.float32)
    model, variables = _init("denoising_autoencoder", x, input_shape=(6,), hidden_sizes=(4,))
    levels = np.array([0.0, 0.1, 0.5], np.float32)
    key = jax.random.PRNGKey(3)
    curve = denoising_curve(model, variables, x, levels, key)
    for i, level in enumerate(levels):
        noisy = x + level * np.asarray(jax.random.normal(key, x.shape))
        recon = np.asarray(model.apply(variables, noisy)["reconstruction"])
        np.testing.assert_allclose(curve["noisy_error"][i], np.mean((noisy - x) ** 2), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(curve["reconstruction_error"][i], np.mean((recon - x) ** 2), rtol=1e-5)


def test_denoising_autoencoder_halves_the_noisy_input_error_on_digits():
    """Issue 13: at Gaussian noise sigma 0.3 the reconstruction's error is at most half the
    noisy input's (the documented run, 30 epochs, reaches 0.023 vs 0.091)."""
    data = load_dataset("digits")
    result = zoo.fit("denoising_autoencoder", data, epochs=8, learning_rate=3e-3, progress=False)
    curve = denoising_curve(result.model, result.variables, data.x_test, [0.3], jax.random.PRNGKey(0))
    assert float(curve["reconstruction_error"][0]) <= 0.5 * float(curve["noisy_error"][0])


def test_kl_sparsity_penalty_equals_numpy():
    rho, rho_hat = 0.05, np.array([[0.01, 0.05, 0.5, 0.9]])
    expected = np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat)), -1)
    np.testing.assert_allclose(kl_sparsity(jnp.asarray(rho_hat), rho), expected, rtol=1e-5)
    assert float(kl_sparsity(jnp.full((3,), rho), rho)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("kind", ["kl", "l1"])
def test_sparse_autoencoder_adds_its_penalty_to_the_loss(kind):
    x = np.random.default_rng(4).uniform(size=(5, 6)).astype(np.float32)
    model, variables = _init("sparse_autoencoder", x, input_shape=(6,), hidden_sizes=(8,), sparsity=kind)
    out = model.apply(variables, x)
    h = np.asarray(model.apply(variables, x, method="encode"))
    expected = (
        np.full(5, 0.1 * np.asarray(kl_sparsity(jnp.asarray(h.mean(0)), 0.05)))
        if kind == "kl"
        else 0.1 * np.abs(h).sum(-1)
    )
    np.testing.assert_allclose(out["penalties"]["sparsity"], expected, rtol=1e-5)
    metrics = RECONSTRUCTION.per_example(out, {"x": jnp.asarray(x)})
    squared = 0.5 * np.sum((np.asarray(out["reconstruction"]) - x) ** 2, -1)
    np.testing.assert_allclose(metrics["loss"], squared + expected, rtol=1e-5)
    np.testing.assert_allclose(metrics["sparsity"], expected, rtol=1e-5)


def test_sparse_training_lowers_the_mean_activation():
    data = load_dataset("digits")
    dense = zoo.fit("autoencoder", data, model_overrides={"hidden_sizes": (64,)}, epochs=3, progress=False)
    sparse = zoo.fit("sparse_autoencoder", data, model_overrides={"sparsity_weight": 1.0}, epochs=3, progress=False)

    def mean_code(r):
        return float(np.mean(r.model.apply(r.variables, data.x_test, method="encode")))

    assert mean_code(sparse) < 0.5 * mean_code(dense)


def test_vae_loss_is_the_negative_elbo():
    """loss = sum BCE(logits, x) + KL(N(mean, exp(log_var)) || N(0, I)), the KL analytic:
    0.5 sum(exp(log_var) + mean^2 - 1 - log_var), checked against NumPy and a Monte
    Carlo estimate of the same KL."""
    x = np.random.default_rng(5).uniform(size=(4, 6)).astype(np.float32)
    model, variables = _init("vae", x, input_shape=(6,), hidden_sizes=(5,), latent_size=3)
    key = jax.random.PRNGKey(7)
    out = model.apply(variables, x, rngs={"noise": key})
    mean, log_var = (np.asarray(a, np.float64) for a in model.apply(variables, x, method="encode"))
    kl = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1 - log_var, -1)
    np.testing.assert_allclose(out["penalties"]["kl"], kl, rtol=1e-5)
    z = mean + np.exp(0.5 * log_var) * np.random.default_rng(0).standard_normal((200_000, *mean.shape))
    log_q = -0.5 * np.sum((z - mean) ** 2 / np.exp(log_var) + log_var + np.log(2 * np.pi), -1)
    log_p = -0.5 * np.sum(z**2 + np.log(2 * np.pi), -1)
    np.testing.assert_allclose(np.mean(log_q - log_p, 0), kl, rtol=0.03, atol=2e-3)
    logits = np.asarray(out["reconstruction_logits"], np.float64)
    bce = np.sum(np.logaddexp(0, logits) - x * logits, -1)
    loss = RECONSTRUCTION.per_example(out, {"x": jnp.asarray(x)})["loss"]
    np.testing.assert_allclose(loss, bce + kl, rtol=1e-5)
    # Without a noise rng z is the posterior mean; with one, a draw around it.
    deterministic = model.apply(variables, x)["reconstruction_logits"]
    np.testing.assert_allclose(
        deterministic,
        model.apply(variables, mean.astype(np.float32), method="head")["reconstruction_logits"],
        rtol=1e-5,
    )
    assert float(jnp.max(jnp.abs(deterministic - out["reconstruction_logits"]))) > 1e-4


def test_vae_samples_and_latent_grid():
    grid = latent_grid(5, quantile=0.95)
    assert grid.shape == (25, 2)
    np.testing.assert_allclose(grid[0], [-1.6448536, -1.6448536], rtol=1e-5)  # the 5% quantile of N(0, 1)
    np.testing.assert_allclose(grid[12], [0.0, 0.0], atol=1e-6)
    x = np.zeros((2, 6), np.float32)
    model, variables = _init("vae", x, input_shape=(6,), hidden_sizes=(5,))
    images = model.apply(variables, grid, method="decode")
    samples = model.apply(variables, jax.random.PRNGKey(0), 9, method="sample")
    assert images.shape == (25, 6) and samples.shape == (9, 6)
    assert float(images.min()) >= 0 and float(images.max()) <= 1


def test_vae_trains_on_digits_with_checkpoints_and_resume(tmp_path):
    """`train.py --model vae --dataset digits` like every model: a resumed run ends where an
    uninterrupted one does."""
    args = ["--model", "vae", "--dataset", "digits", "--no-progress", "--set", "hidden_sizes=(32,)"]
    assert train.run([*args, "--epochs", "2", "--workdir", str(tmp_path / "full")]) == 0
    assert train.run([*args, "--epochs", "1", "--workdir", str(tmp_path / "cut")]) == 0
    assert train.run([*args, "--epochs", "2", "--workdir", str(tmp_path / "cut"), "--resume"]) == 0

    def last(run):
        return [
            r
            for r in map(json.loads, (tmp_path / run / "metrics.jsonl").read_text().splitlines())
            if r.get("epoch") == 2 and "event" not in r
        ][0]

    full, cut = last("full"), last("cut")
    assert full["train_loss"] == pytest.approx(cut["train_loss"], rel=1e-6)
    assert full["val_loss"] == pytest.approx(cut["val_loss"], rel=1e-6)
    assert full["train_loss"] > full["train_kl"] > 0  # the loss includes the KL penalty


def test_reconstruction_needs_inputs_in_the_sigmoid_range():
    data = load_dataset("diabetes")  # standardised features, outside [0, 1]
    with pytest.raises(ValueError, match=r"through a sigmoid .* not \[0, 1\]"):
        zoo.fit("vae", data, epochs=1, progress=False)
    with pytest.raises(ValueError, match="reconstructs real-valued inputs"):
        zoo.fit("autoencoder", "sentiment", epochs=1, progress=False)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"noise": "salt"}, "noise must be one of"),
        ({"sparsity": "kl", "activation": "relu"}, "sparsity='kl' needs sigmoid"),
        ({"reconstruction_loss": "cross_entropy", "decoder_activation": "identity"}, "needs decoder_activation"),
        ({"noise": "masking", "noise_level": 1.0}, r"probability in \[0, 1\)"),
        ({"hidden_sizes": ()}, "hidden_sizes must be positive"),
    ],
)
def test_bad_autoencoder_configs(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("autoencoder", **overrides)
