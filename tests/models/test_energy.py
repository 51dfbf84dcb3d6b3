"""Energy-based and associative networks (zoo.models.energy): golden values worked by hand
from the seeds' formulas, NumPy references, and exact results by enumerating every state
of tiny models."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.models import energy as E


def _bipolar(rng, *shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


def _states(n):
    return np.array(list(itertools.product((0.0, 1.0), repeat=n)))


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


# --------------------------------------------------------------------------------------
# Hopfield network (khanzhina, "Hopfield neural network").
# --------------------------------------------------------------------------------------


def test_seed_hebbian_weights_and_one_synchronous_step():
    """w_ij = sum_k x_i^k x_j^k, w_ii = 0, then y_j = f(sum_i w_ij y_i), worked by hand for
    x^1 = (1, -1, 1, -1), x^2 = (1, 1, -1, -1) and the probe (1, -1, 1, 1)."""
    patterns = jnp.array([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]])
    w = E.hebbian_weights(patterns)
    np.testing.assert_array_equal(w, [[0, 0, 0, -2], [0, 0, -2, 0], [0, -2, 0, 0], [-2, 0, 0, 0]])
    # s = (w_30 y_3, w_21 y_2, w_12 y_1, w_03 y_0) = (-2, -2, 2, -2).
    np.testing.assert_array_equal(E.hopfield_step(w, jnp.array([1.0, -1.0, 1.0, 1.0])), [-1, -1, 1, -1])
    # One stored pattern: the flipped unit gets field 3 x_3, the others x_j: one step repairs it.
    w1 = E.hebbian_weights(patterns[:1])
    state, steps, stable = E.hopfield_recall(w1, jnp.array([1.0, -1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(state, patterns[0])
    assert int(steps) == 2 and bool(stable)  # the second step confirms nothing changes


def test_hebbian_scale_and_bipolar_check():
    patterns = _bipolar(np.random.default_rng(0), 3, 5)
    np.testing.assert_allclose(E.hebbian_weights(patterns, scale=True), E.hebbian_weights(patterns) / 5)
    np.testing.assert_allclose(E.hebbian_weights(patterns, weights=[1, 0, 1]), E.hebbian_weights(patterns[[0, 2]]))
    with pytest.raises(ValueError, match="bipolar"):
        E.hebbian_weights((patterns + 1) / 2)  # 0/1 bits
    with pytest.raises(ValueError, match=r"shape \(P, n\)"):
        E.hebbian_weights(patterns[0])


def test_synchronous_batch_recall_matches_numpy_loop():
    rng = np.random.default_rng(1)
    patterns = _bipolar(rng, 12, 40)  # over capacity: probes wander, some into 2-cycles
    w = np.asarray(E.hebbian_weights(patterns))
    probes = _bipolar(rng, 16, 40)
    states, steps, stable = jax.jit(lambda w, p: E.hopfield_recall_batch(w, p, max_steps=30))(w, probes)
    for i, p in enumerate(probes):
        s, n = p.copy(), 0
        while n < 30:
            h = s @ w
            new = np.where(h > 0, 1.0, np.where(h < 0, -1.0, s))
            n += 1
            done = np.array_equal(new, s)
            s = new
            if done:
                break
        np.testing.assert_array_equal(states[i], s)
        assert int(steps[i]) == n and bool(stable[i]) == done


def test_stored_patterns_are_fixed_points():
    patterns = _bipolar(np.random.default_rng(2), 10, 200)  # 0.05 n
    w = E.hebbian_weights(patterns)
    np.testing.assert_array_equal(E.hopfield_step(w, patterns), patterns)


_async_sweep = jax.jit(E.hopfield_async_sweep)  # compiled once for every seed


@pytest.mark.parametrize("seed", range(6))
def test_asynchronous_updates_never_increase_energy(seed):
    rng = np.random.default_rng(seed)
    w = E.hebbian_weights(_bipolar(rng, 30, 50))  # 0.6 n: many units flip
    s = jnp.asarray(_bipolar(rng, 50))
    energies = [float(E.hopfield_energy(w, s))]
    for sweep in range(4):
        s, trace = _async_sweep(w, s, jax.random.PRNGKey(100 * seed + sweep))
        energies.extend(np.asarray(trace).tolist())
        # The incremental energy is the energy of the state reached.
        np.testing.assert_allclose(trace[-1], E.hopfield_energy(w, s), rtol=1e-6)
    assert np.all(np.diff(energies) <= 1e-4), energies
    assert energies[-1] < energies[0]


def test_asynchronous_sweep_matches_numpy_and_recall_ends_in_a_fixed_point():
    rng = np.random.default_rng(3)
    w = np.asarray(E.hebbian_weights(_bipolar(rng, 8, 30)))
    s0 = _bipolar(rng, 30)
    key = jax.random.PRNGKey(7)
    s = s0.copy()
    for i in np.asarray(jax.random.permutation(key, 30)):  # the sweep's own order
        h = w[i] @ s
        s[i] = 1.0 if h > 0 else (-1.0 if h < 0 else s[i])
    np.testing.assert_array_equal(E.hopfield_async_sweep(jnp.asarray(w), jnp.asarray(s0), key)[0], s)
    state, sweeps, stable = E.hopfield_recall_async(w, s0, key)
    assert bool(stable) and int(sweeps) >= 1
    np.testing.assert_array_equal(E.hopfield_step(w, state), state)  # every field agrees with its unit


def test_capacity_knee():
    """Recall of stored patterns from 5% flipped units: nearly perfect well below ~0.14 n,
    poor well above it (n = 100)."""

    def recall_rate(p, seed=0):
        patterns = _bipolar(np.random.default_rng(seed), p, 100)
        probes = E.flip_bits(jnp.asarray(patterns), 0.05, jax.random.PRNGKey(seed))
        states, _, _ = E.hopfield_recall_batch(E.hebbian_weights(patterns), probes)
        return float(np.mean(np.all(np.asarray(states) == patterns, axis=1)))

    assert recall_rate(5) >= 0.95
    assert recall_rate(40) <= 0.2


def test_flip_bits_flips_exactly_the_fraction():
    patterns = jnp.asarray(_bipolar(np.random.default_rng(4), 6, 50))
    noisy = E.flip_bits(patterns, 0.2, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.sum(np.asarray(noisy) != np.asarray(patterns), axis=1), [10] * 6)


# --------------------------------------------------------------------------------------
# Hamming network with MAXNET (khanzhina, "Hamming neural network").
# --------------------------------------------------------------------------------------


def test_hamming_first_layer_is_n_minus_hamming_distance():
    rng = np.random.default_rng(5)
    patterns, probes = _bipolar(rng, 7, 20), _bipolar(rng, 9, 20)
    distance = (probes[:, None, :] != patterns[None, :, :]).sum(-1)
    np.testing.assert_allclose(E.hamming_scores(jnp.asarray(patterns), jnp.asarray(probes)), 20 - distance)


def _numpy_maxnet(y, eps):
    y, steps = y.astype(np.float64), 0
    while (y > 0).sum() > 1:
        y = np.maximum(y - eps * (y.sum() - y), 0.0)
        steps += 1
    return y, steps


def test_maxnet_leaves_exactly_one_winner():
    rng = np.random.default_rng(6)
    for _ in range(5):
        y = rng.uniform(1, 20, 8).astype(np.float32)
        out, steps = jax.jit(E.maxnet)(y)
        assert int(np.sum(np.asarray(out) > 0)) == 1
        assert int(np.argmax(out)) == int(np.argmax(y))
        ref, ref_steps = _numpy_maxnet(y, 1 / 16)
        assert int(steps) == ref_steps
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_maxnet_tie_and_epsilon_range():
    out, steps = E.maxnet(jnp.array([3.0, 5.0, 5.0, 1.0]))
    # eps = 1/8. Step 1: (1.625, 3.875, 3.875, 0); step 2: (0.65625, 3.1875, 3.1875, 0);
    # step 3: (0, 2.70703125, 2.70703125, 0), the tied pair alone: stop, first one wins.
    np.testing.assert_allclose(out, [0.0, 2.70703125, 2.70703125, 0.0])
    assert int(steps) == 3 and int(jnp.argmax(out)) == 1
    with pytest.raises(ValueError, match="epsilon < 1/m"):
        E.maxnet(jnp.ones(4), epsilon=0.25)


def test_hamming_recall_finds_the_nearest_stored_pattern():
    rng = np.random.default_rng(7)
    patterns = _bipolar(rng, 10, 64)
    probes = np.asarray(E.flip_bits(jnp.asarray(patterns), 0.1, jax.random.PRNGKey(1)))
    index, distance, steps = E.hamming_recall_batch(patterns, probes)
    d = (probes[:, None, :] != patterns[None]).sum(-1)
    np.testing.assert_array_equal(index, np.argmin(d, 1))
    np.testing.assert_array_equal(index, np.arange(10))  # 6 flips of 64 keep every probe nearest its source
    np.testing.assert_array_equal(distance, d.min(1))
    assert np.all(np.asarray(steps) >= 1)
    with pytest.raises(ValueError, match="bipolar"):
        E.hamming_recall_batch((patterns + 1) / 2, probes)


# --------------------------------------------------------------------------------------
# Restricted Boltzmann machine.
# --------------------------------------------------------------------------------------


def _tiny_rbm(v=3, h=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "kernel": rng.normal(0, 1, (v, h)).astype(np.float32),
        "visible_bias": rng.normal(0, 0.5, v).astype(np.float32),
        "hidden_bias": rng.normal(0, 0.5, h).astype(np.float32),
    }


def test_free_energy_marginalises_the_hidden_units():
    """F(v) = -log sum_h exp(-E(v, h)) with E = -b.v - c.h - v W h, summed over every h."""
    p = _tiny_rbm(4, 3)
    vs, hs = _states(4), _states(3)
    energy = -(vs @ p["visible_bias"])[:, None] - (hs @ p["hidden_bias"])[None] - vs @ p["kernel"] @ hs.T
    expected = -np.log(np.exp(-energy).sum(1))
    np.testing.assert_allclose(E.rbm_free_energy(p, jnp.asarray(vs)), expected, rtol=1e-5, atol=1e-5)


def _numpy_stats(p, v, weights):
    ph = _sigmoid(v @ p["kernel"] + p["hidden_bias"])
    return [(v * weights[:, None]).T @ ph, (v * weights[:, None]).sum(0), (ph * weights[:, None]).sum(0)]


def test_cd1_gradient_matches_its_exact_expectation():
    """CD-1's negative statistics averaged over many keys equal their expectation
    sum_{h0} p(h0|v0) sum_{v1} p(v1|h0) [v1 p(h|v1)^T], enumerated in NumPy."""
    p = _tiny_rbm()
    data = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], np.float32)
    vs, hs = _states(3), _states(2)
    neg = [np.zeros((3, 2)), np.zeros(3), np.zeros(2)]
    for v0 in data:
        ph0 = _sigmoid(v0 @ p["kernel"] + p["hidden_bias"])
        for h in hs:
            p_h = np.prod(np.where(h == 1, ph0, 1 - ph0))
            pv1 = _sigmoid(h @ p["kernel"].T + p["visible_bias"])
            p_v = np.prod(np.where(vs == 1, pv1, 1 - pv1), axis=1)  # (8,)
            for a, b in zip(neg, _numpy_stats(p, vs, p_v * p_h / len(data))):
                a += b
    pos = _numpy_stats(p, data, np.full(2, 0.5))
    expected = [a - b for a, b in zip(pos, neg)]
    keys = jax.random.split(jax.random.PRNGKey(0), 40_000)
    grads = jax.jit(jax.vmap(lambda k: E.rbm_cd_gradient(p, jnp.asarray(data), k, k=1)[0]))(keys)
    mean = jax.tree.map(lambda g: np.asarray(g.mean(0)), grads)
    for name, e in zip(("kernel", "visible_bias", "hidden_bias"), expected):
        np.testing.assert_allclose(mean[name], e, atol=0.01, err_msg=name)


def _exact_gradient(p, data):
    """<v h>_data - <v h>_model with the model's average over all visible states (NumPy)."""
    vs = _states(p["kernel"].shape[0])
    free = -(vs @ p["visible_bias"]) - np.log1p(np.exp(vs @ p["kernel"] + p["hidden_bias"])).sum(1)
    pv = np.exp(-free - np.max(-free))
    pv /= pv.sum()
    pos = _numpy_stats(p, data, np.full(len(data), 1.0 / len(data)))
    return [a - b for a, b in zip(pos, _numpy_stats(p, vs, pv))]


def test_exact_gradient_is_the_log_likelihood_gradient_and_cd_k_approaches_it():
    p = _tiny_rbm(seed=1)
    data = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 1.0]], np.float32)
    exact = _exact_gradient(p, data)
    autodiff = jax.grad(E.rbm_log_likelihood)(p, jnp.asarray(data))
    for name, e in zip(("kernel", "visible_bias", "hidden_bias"), exact):
        np.testing.assert_allclose(autodiff[name], e, rtol=1e-4, atol=1e-5, err_msg=name)
    # Long chains forget the data they start from: CD-k tends to the exact gradient.
    keys = jax.random.split(jax.random.PRNGKey(1), 20_000)
    grads = jax.jit(jax.vmap(lambda k: E.rbm_cd_gradient(p, jnp.asarray(data), k, k=30)[0]))(keys)
    for name, e in zip(("kernel", "visible_bias", "hidden_bias"), exact):
        np.testing.assert_allclose(np.asarray(grads[name].mean(0)), e, atol=0.015, err_msg=name)


@pytest.mark.parametrize("persistent", [False, True])
def test_rbm_rule_raises_the_exact_log_likelihood(persistent):
    """CD-1 / PCD-1 through the registered rule on a tiny data set: the exact log p(data)
    (by enumeration) goes up; a batch of padding changes nothing."""
    spec = zoo.registry.get_spec("rbm")
    model = zoo.create_model("rbm", input_shape=(5,), num_classes=1, use_labels=False, persistent=persistent)
    data = jnp.array([[1.0, 1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0, 0.0]] * 4)
    t = jnp.zeros(8, jnp.int32)
    v = model.init(jax.random.PRNGKey(0), data)
    rule = jax.jit(lambda v, k: spec.learning_rule(v, data, t, key=k, model=model, learning_rate=0.1))
    before = float(E.rbm_log_likelihood(v["params"], data))
    after = v
    for i in range(300):
        after = rule(after, jax.random.PRNGKey(i))
    assert float(E.rbm_log_likelihood(after["params"], data)) > before + 1.0
    if persistent:
        assert not np.array_equal(after["chains"]["visible"], v["chains"]["visible"])
    unchanged = spec.learning_rule(v, data, t, mask=jnp.zeros(8), key=jax.random.PRNGKey(0), model=model)
    chex.assert_trees_all_equal(unchanged, v)


def test_rbm_scores_are_minus_free_energy_of_each_label():
    model = zoo.create_model("rbm", input_shape=(6,), num_hidden=4, num_classes=3)
    x = jax.random.uniform(jax.random.PRNGKey(0), (5, 6))
    v = model.init(jax.random.PRNGKey(1), x)
    scores = model.apply(v, x)
    for c in range(3):
        f = model.apply(v, x, jnp.full(5, c), method=model.free_energy)
        np.testing.assert_allclose(scores[:, c], -f, rtol=1e-5)
    encoded = model.apply(v, x, method=model.encode)
    bits = (np.asarray(x) > 0.5).astype(np.float32)
    k = np.asarray(v["params"]["kernel"])
    np.testing.assert_allclose(encoded, _sigmoid(bits @ k[:6] + np.asarray(v["params"]["hidden_bias"])), rtol=1e-5)


def test_rbm_trained_by_fit_lowers_reconstruction_error_on_digits():
    data = zoo.data.load_dataset("digits")
    model_kwargs = dict(num_hidden=32, use_labels=False)
    result = zoo.fit(
        "rbm", data, epochs=3, batch_size=64, learning_rate=0.1, model_overrides=model_kwargs, progress=False
    )
    x = data.x_test
    bits = (x.reshape(len(x), -1) > 0.5).astype(np.float32)
    init = result.model.init(jax.random.PRNGKey(0), x[:2])

    def error(variables):
        recon = result.model.apply(variables, x, method=result.model.reconstruct)
        return float(np.mean((np.asarray(recon) - bits) ** 2))

    assert error(result.state.variables) < 0.7 * error(init)


# --------------------------------------------------------------------------------------
# Boltzmann machine and Markov chain.
# --------------------------------------------------------------------------------------


def _tiny_bm(n=4, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, (n, n))
    w = np.triu(a, 1) + np.triu(a, 1).T
    return jnp.asarray(w, jnp.float32), jnp.asarray(rng.normal(0, 0.5, n), jnp.float32)


def test_boltzmann_exact_gradient_is_the_log_likelihood_gradient():
    """The Boltzmann rule <s_i s_j>_data - <s_i s_j>_model is d log p / d w_ij for the shared
    weight w_ij = w_ji, i.e. twice the partial derivative of -1/2 s W s w.r.t. one entry."""
    w, b = _tiny_bm()
    data = jnp.array([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]])
    dw, db = E.bm_exact_gradient(w, b, data)
    gw, gb = jax.grad(E.bm_log_likelihood, argnums=(0, 1))(w, b, data)
    off = 1.0 - np.eye(4)
    np.testing.assert_allclose(dw, 2 * np.asarray(gw) * off, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(db, gb, rtol=1e-4, atol=1e-6)


def test_boltzmann_gibbs_sampler_reaches_the_exact_distribution():
    w, b = _tiny_bm(3, seed=1)
    states = _states(3)
    energy = -0.5 * np.einsum("si,ij,sj->s", states, np.asarray(w), states) - states @ np.asarray(b)
    exact = np.exp(-energy) / np.exp(-energy).sum()
    np.testing.assert_allclose(E.bm_distribution(w, b), exact, rtol=1e-5)
    samples = np.asarray(jax.jit(lambda k: E.bm_sample(w, b, jnp.zeros(3), k, 40_000))(jax.random.PRNGKey(0)))
    index = samples @ np.array([4, 2, 1])  # all_binary_states order
    freq = np.bincount(index.astype(int), minlength=8) / len(index)
    assert 0.5 * np.abs(freq - exact).sum() < 0.02


def test_markov_chain_stationary_distribution():
    p = np.array([[0.5, 0.3, 0.2, 0.0], [0.1, 0.6, 0.2, 0.1], [0.0, 0.3, 0.4, 0.3], [0.2, 0.0, 0.3, 0.5]])
    values, vectors = np.linalg.eig(p.T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    pi /= pi.sum()
    np.testing.assert_allclose(E.stationary_distribution(p), pi, rtol=1e-4)
    chain = np.asarray(E.markov_sample(p, 0, jax.random.PRNGKey(0), 60_000))
    np.testing.assert_allclose(np.bincount(chain, minlength=4) / len(chain), pi, atol=0.015)
    with pytest.raises(ValueError, match="rows summing to 1"):
        E.stationary_distribution(p[:, :3])


# --------------------------------------------------------------------------------------
# Registered models trained by zoo.fit; the deep belief net's weights in the MLP.
# --------------------------------------------------------------------------------------


def test_hopfield_fit_stores_the_hebbian_sum_of_the_training_set():
    data = zoo.data.load_dataset("digits").with_validation(0.1, seed=0)
    result = zoo.fit("hopfield", data, epochs=1, batch_size=100, progress=False)
    x = E.to_bipolar(data.x_train.reshape(len(data.x_train), -1))
    patterns = jnp.concatenate([x, 2.0 * jax.nn.one_hot(data.y_train, 10) - 1.0], -1)
    np.testing.assert_allclose(result.state.params["weights"], E.hebbian_weights(patterns))
    assert result.test_metrics["accuracy"] > 0.75  # 0.84 measured: label units read after recall


def test_hamming_fit_stores_class_prototypes_and_maxnet_agrees_with_the_scores():
    data = zoo.data.load_dataset("digits").with_validation(0.1, seed=0)
    result = zoo.fit("hamming", data, epochs=1, progress=False)
    x = np.where(data.x_train.reshape(len(data.x_train), -1) > 0.5, 1.0, -1.0)
    sums = np.stack([x[data.y_train == c].sum(0) for c in range(10)])
    np.testing.assert_allclose(result.state.params["sums"], sums)
    assert result.test_metrics["accuracy"] > 0.65  # 0.75 measured
    model, variables = result.model, result.state.variables
    index, distance = model.apply(variables, data.x_test, method=model.recall)
    scores = np.asarray(model.apply(variables, data.x_test))
    top = np.sort(scores, 1)
    untied = top[:, -1] > top[:, -2]
    np.testing.assert_array_equal(np.asarray(index)[untied], scores.argmax(1)[untied])
    np.testing.assert_allclose(distance, 64 - scores.max(1))


def test_dbn_weights_run_in_the_mlp_as_the_rbm_stack():
    x = jax.random.uniform(jax.random.PRNGKey(0), (4, 8, 8, 1))
    rbm1 = zoo.create_model("rbm", num_hidden=16, use_labels=False)
    rbm2 = zoo.create_model("rbm", input_shape=(16,), num_hidden=8, use_labels=False, binarize=False)
    v1 = rbm1.init(jax.random.PRNGKey(1), x)
    h1 = rbm1.apply(v1, x, method=rbm1.encode)
    v2 = rbm2.init(jax.random.PRNGKey(2), h1)
    h2 = rbm2.apply(v2, h1, method=rbm2.encode)
    mlp = zoo.create_model("mlp", hidden_sizes=(16, 8), activation="sigmoid")
    out = mlp.init(jax.random.PRNGKey(3), x)["params"]["out"]
    params = E.dbn_mlp_params([v1["params"], v2["params"]], out)
    bits = (x > 0.5).astype(jnp.float32)  # the first RBM sees binarised pixels
    features = mlp.apply({"params": params}, bits, method=mlp.forward_features)
    np.testing.assert_allclose(features, h2, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="does not chain"):
        E.dbn_mlp_params([v2["params"], v1["params"]], out)


def test_dbn_pretrained_layerwise_by_fit_starts_the_mlp():
    """Two RBMs fitted in turn by pretrain_layerwise (the second on the first's codes
    p(h|v)), copied into the MLP with fit(initial_variables=...)."""
    from zoo.train.pretrain import pretrain_layerwise

    data = zoo.data.load_dataset("digits")
    layers = [
        ("rbm", {"num_hidden": 16, "use_labels": False}),
        ("rbm", {"num_hidden": 8, "use_labels": False, "binarize": False}),
    ]
    results = pretrain_layerwise(layers, data, epochs=1, learning_rate=0.1, progress=False)
    assert results[1].model.input_shape == (16,)
    # Host copies: fit's jit'd steps take over (donate) the arrays they start from.
    params = E.dbn_mlp_params([jax.device_get(r.variables["params"]) for r in results])
    mlp_config = {"hidden_sizes": (16, 8), "activation": "sigmoid"}
    result = zoo.fit(
        "mlp", data, epochs=1, model_overrides=mlp_config, initial_variables={"params": params}, progress=False
    )
    # Fine-tuning starts from the RBMs: one epoch of Adam at 1e-3 moves them only a little.
    start = np.asarray(params["hidden_1"]["kernel"])
    moved = np.abs(np.asarray(result.variables["params"]["hidden_1"]["kernel"]) - start).max()
    assert 0 < moved < 0.1 * np.abs(start).max() + 0.05


def test_persistent_chains_travel_through_the_rule_step():
    data = zoo.data.load_dataset("digits")
    overrides = {"num_hidden": 8, "persistent": True, "num_chains": 4}
    result = zoo.fit("rbm", data, epochs=1, learning_rate=0.1, model_overrides=overrides, progress=False)
    init = result.model.init(jax.random.PRNGKey(0), data.x_train[:2])
    chains = np.asarray(result.state.model_state["chains"]["visible"])
    assert chains.shape == (4, 74) and set(np.unique(chains)) <= {0.0, 1.0}
    assert not np.array_equal(chains, np.asarray(init["chains"]["visible"]))


def test_sampled_boltzmann_gradient_approaches_the_exact_one():
    """Long Gibbs chains from the data estimate the model's averages: the sampled Boltzmann
    rule approaches bm_exact_gradient (enumeration) on a 4-unit machine."""
    from zoo.models.energy import bm_exact_gradient, bm_sampled_gradient

    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.5, (4, 4)).astype(np.float32)
    w = np.triu(w, 1) + np.triu(w, 1).T
    b = rng.normal(0, 0.5, 4).astype(np.float32)
    data = jnp.asarray((rng.random((4000, 4)) < 0.5).astype(np.float32))
    exact_w, exact_b = bm_exact_gradient(jnp.asarray(w), jnp.asarray(b), data)
    sampled_w, sampled_b = bm_sampled_gradient(jnp.asarray(w), jnp.asarray(b), data, jax.random.PRNGKey(0), sweeps=30)
    np.testing.assert_allclose(sampled_w, exact_w, atol=0.03)
    np.testing.assert_allclose(sampled_b, exact_b, atol=0.03)


def test_boltzmann_machine_scores_and_learns_digits():
    model = zoo.create_model("boltzmann_machine", input_shape=(4,), num_classes=2)
    x = jnp.asarray([[1.0, 0.0, 1.0, 0.0]])
    variables = {"params": {"weights": jnp.zeros((6, 6)).at[0, 4].set(2.0).at[4, 0].set(2.0), "bias": jnp.zeros(6)}}
    scores = model.apply(variables, x)
    np.testing.assert_allclose(scores, [[2.0, 0.0]])  # -E([x, e_c]): only label 0 couples to x_0
    result = zoo.fit("boltzmann_machine", "digits", epochs=2, progress=False)
    assert result.test_metrics["accuracy"] > 0.5
