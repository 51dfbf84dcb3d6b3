"""Associative and energy-based networks: Hopfield, Hamming with MAXNET, Boltzmann machine,
RBM, deep belief net, and a discrete Markov chain.

Seeds: khanzhina ("Hopfield neural network", "Hamming neural network": Hebbian weights
with zero diagonal, recall until the outputs stop changing; first layer ``w_ik = x_i^k / 2``,
``T_k = n / 2``, MAXNET lateral inhibition), kang-lecture4 (the "Neural Network Zoo" chart:
Markov chain, Hopfield network, Boltzmann machine, restricted BM, deep belief network;
greedy layer-wise pre-training).

Everything is first a pure, jit-able function of arrays for one pattern or chain (vmap it
for a batch); the Linen modules at the end wrap them so the registry lists them and
`zoo.fit` trains them by their rule (``learning_rule``) instead of a gradient. Bipolar
states are float32 in {-1, +1}; binary states are float32 in {0, 1}.
"""

from __future__ import annotations

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoo.nn import check_input
from zoo.registry import register_model

KHANZHINA = "khanzhina (Deep nets architectures)"
KANG = "kang-lecture4 (Pilsung Kang, Lecture 4: Neural Networks), Neural Network Zoo"


# --------------------------------------------------------------------------------------
# Bipolar patterns.
# --------------------------------------------------------------------------------------


def to_bipolar(x, threshold: float = 0.5):
    """Pixels or bits ``(..., n)`` -> {-1, +1}: +1 where ``x > threshold``."""
    return jnp.where(jnp.asarray(x) > threshold, 1.0, -1.0).astype(jnp.float32)


def check_bipolar(patterns, what: str = "patterns") -> None:
    """ValueError unless ``patterns`` holds only -1 and +1. Traced arrays (inside jit) are
    not checked: their values are not known yet."""
    if isinstance(patterns, jax.core.Tracer):
        return
    values = np.unique(np.asarray(patterns))
    if not set(values.tolist()) <= {-1.0, 1.0}:
        raise ValueError(f"{what} must be bipolar (-1/+1), got values {values[:5].tolist()}: use to_bipolar(x)")


def _check_patterns(patterns, n: int | None = None, what: str = "patterns"):
    patterns = jnp.asarray(patterns, jnp.float32)
    if patterns.ndim != 2 or (n is not None and patterns.shape[1] != n):
        want = f"(P, {n})" if n is not None else "(P, n)"
        raise ValueError(f"{what} must have shape {want}, got {patterns.shape}")
    check_bipolar(patterns, what)
    return patterns


# --------------------------------------------------------------------------------------
# Hopfield network (khanzhina: Hebbian weights, sign activation, recall until stable).
# --------------------------------------------------------------------------------------


def hebbian_weights(patterns, *, weights=None, scale: bool = False):
    """The seed's storage rule ``w_ij = sum_k x_i^k x_j^k`` (i != j), ``w_ii = 0``.

    patterns: (P, n) bipolar; weights: optional (P,) per-pattern factors (0 skips a
    pattern). ``scale`` divides by n (Hopfield's 1/N), which leaves recall unchanged and
    makes the energy comparable across sizes. Returns (n, n) float32, symmetric.
    """
    patterns = _check_patterns(patterns)
    n = patterns.shape[1]
    weighted = patterns if weights is None else patterns * jnp.asarray(weights, jnp.float32)[:, None]
    w = weighted.T @ patterns
    # No self-connection: with w_ii > 0 a unit would vote for its own state, which breaks
    # the energy argument for convergence and adds spurious fixed points.
    w = w * (1.0 - jnp.eye(n, dtype=w.dtype))
    return w / n if scale else w


def hopfield_energy(w, s):
    """E(s) = -1/2 s^T W s: w (n, n), s (..., n) -> (...)."""
    return -0.5 * jnp.einsum("...i,ij,...j->...", s, w, s)


def _sign(h, s):
    """Bipolar sign of the local field ``h``; a unit whose field is exactly 0 keeps its
    state ``s`` (so an update never raises the energy)."""
    return jnp.where(h > 0, 1.0, jnp.where(h < 0, -1.0, s))


def hopfield_step(w, s):
    """One synchronous update ``y_j(p+1) = f(sum_i w_ij y_i(p))``: s (..., n) -> (..., n)."""
    return _sign(s @ w, s)


def hopfield_recall(w, probe, *, max_steps: int = 100, free=None):
    """Synchronous recall of one probe (n,) until the state stops changing (the seed's step
    3) or ``max_steps`` updates. Returns ``(state (n,), steps int32, stable bool)``;
    ``stable`` is False when the limit was hit (a synchronous net may enter a 2-cycle).
    Entries 0 in the probe are unknown units; they take a sign at the first update.
    ``free`` (n,) bool: only these units update, the others stay clamped to the probe
    (pattern completion from known units); default all."""

    def cond(carry):
        _, steps, stable = carry
        return (~stable) & (steps < max_steps)

    def body(carry):
        s, steps, _ = carry
        new = hopfield_step(w, s)
        if free is not None:
            new = jnp.where(free, new, s)
        return new, steps + 1, jnp.all(new == s)

    w, s0 = jnp.asarray(w, jnp.float32), jnp.asarray(probe, jnp.float32)
    return jax.lax.while_loop(cond, body, (s0, jnp.int32(0), jnp.bool_(False)))


def hopfield_recall_batch(w, probes, *, max_steps: int = 100, free=None):
    """`hopfield_recall` of probes (B, n) in one call: (states (B, n), steps (B,), stable (B,))."""
    recall = lambda p: hopfield_recall(w, p, max_steps=max_steps, free=free)
    return jax.vmap(recall)(jnp.asarray(probes, jnp.float32))


def hopfield_async_sweep(w, s, key):
    """Update every unit once, one at a time, in a random order drawn from ``key``.

    Returns ``(state (n,), energies (n,))``: the energy after each single-unit update,
    kept incrementally (``dE = -(s_i' - s_i) h_i``, valid because w_ii = 0), so a sweep
    costs O(n^2).
    """
    w, s = jnp.asarray(w, jnp.float32), jnp.asarray(s, jnp.float32)
    n = s.shape[-1]

    def visit(carry, i):
        s, e = carry
        h = w[i] @ s
        new = _sign(h, s[i])
        e = e - (new - s[i]) * h
        return (s.at[i].set(new), e), e

    (s, _), energies = jax.lax.scan(visit, (s, hopfield_energy(w, s)), jax.random.permutation(key, n))
    return s, energies


def hopfield_recall_async(w, probe, key, *, max_sweeps: int = 100):
    """Asynchronous recall: random-order sweeps (`hopfield_async_sweep`) until a whole sweep
    changes no unit, or ``max_sweeps``. Unlike synchronous recall it always ends in a fixed
    point (the energy falls at every change and is bounded). Returns ``(state (n,), sweeps
    int32, stable bool)``."""

    def cond(carry):
        _, sweeps, stable = carry
        return (~stable) & (sweeps < max_sweeps)

    def body(carry):
        s, sweeps, _ = carry
        new, _ = hopfield_async_sweep(w, s, jax.random.fold_in(key, sweeps))
        return new, sweeps + 1, jnp.all(new == s)

    w, s0 = jnp.asarray(w, jnp.float32), jnp.asarray(probe, jnp.float32)
    return jax.lax.while_loop(cond, body, (s0, jnp.int32(0), jnp.bool_(False)))


def flip_bits(patterns, fraction: float, key):
    """Bipolar patterns (P, n) with ``round(fraction * n)`` distinct units of each flipped
    (noisy probes for recall experiments)."""
    p, n = patterns.shape
    k = int(round(fraction * n))
    ranks = jnp.argsort(jax.random.uniform(key, (p, n)), axis=1).argsort(axis=1)
    return jnp.where(ranks < k, -patterns, patterns)


# --------------------------------------------------------------------------------------
# Hamming network with MAXNET (khanzhina).
# --------------------------------------------------------------------------------------


def hamming_scores(patterns, x):
    """The seed's first layer: ``y_k = sum_i (x_i^k / 2) x_i + n / 2 = n - d_H(x, x^k)``.

    patterns: (m, n) bipolar, x: (..., n) bipolar -> (..., m) float32.
    """
    n = patterns.shape[-1]
    return x @ (patterns / 2.0).T + n / 2.0


def maxnet(y, *, epsilon: float | None = None, max_steps: int = 10_000):
    """MAXNET: ``s_j(p+1) = y_j(p) - epsilon sum_{k != j} y_k(p)``, ``y = max(s, 0)``, repeated
    until at most one output is positive. y: (m,) non-negative; epsilon in (0, 1/m)
    (default 1/(2m)). Returns ``(outputs (m,), steps int32)``.

    The largest output always stays positive (epsilon < 1/m). Equal largest outputs fall
    together and would only shrink towards 0, so the loop also stops once every positive
    output is equal; the caller's argmax then picks the first of them.
    """
    m = y.shape[-1]
    eps = 1.0 / (2 * m) if epsilon is None else epsilon
    if not 0 < eps < 1.0 / m:
        raise ValueError(f"MAXNET needs 0 < epsilon < 1/m = {1.0 / m:.4g}, got {eps}")

    def settled(v):
        positive = v > 0
        return (jnp.sum(positive) <= 1) | (jnp.max(v) == jnp.min(jnp.where(positive, v, jnp.inf)))

    def cond(carry):
        v, steps = carry
        return (~settled(v)) & (steps < max_steps)

    def body(carry):
        v, steps = carry
        return jnp.maximum(v - eps * (jnp.sum(v) - v), 0.0), steps + 1

    return jax.lax.while_loop(cond, body, (jnp.asarray(y, jnp.float32), jnp.int32(0)))


def hamming_recall(patterns, x, *, epsilon: float | None = None, max_steps: int = 10_000):
    """Recall of one bipolar probe x (n,) against stored patterns (m, n): the first layer
    gives n - d_H, MAXNET picks the winner. Returns ``(index int32, distance float32,
    steps int32)``. vmap over probes for a batch (`hamming_recall_batch`)."""
    scores = hamming_scores(patterns, x)
    out, steps = maxnet(scores, epsilon=epsilon, max_steps=max_steps)
    index = jnp.argmax(out).astype(jnp.int32)
    return index, patterns.shape[-1] - scores[index], steps


def hamming_recall_batch(patterns, probes, *, epsilon: float | None = None):
    """`hamming_recall` of probes (B, n): (indices (B,), distances (B,), steps (B,))."""
    patterns = _check_patterns(patterns)
    return jax.vmap(lambda x: hamming_recall(patterns, x, epsilon=epsilon))(jnp.asarray(probes, jnp.float32))


# --------------------------------------------------------------------------------------
# Binary states, enumeration (exact results for tiny models, used by the tests).
# --------------------------------------------------------------------------------------


def all_binary_states(n: int):
    """Every binary vector of length n: (2^n, n) float32, in counting order."""
    if not 0 < n <= 20:
        raise ValueError(f"enumeration is for tiny models: n must be in 1..20, got {n}")
    return jnp.asarray(list(itertools.product((0.0, 1.0), repeat=n)), jnp.float32)


def _bernoulli(key, p):
    return jax.random.bernoulli(key, p).astype(jnp.float32)


# --------------------------------------------------------------------------------------
# Restricted Boltzmann machine (binary units). params: {"kernel": (V, H),
# "visible_bias": (V,), "hidden_bias": (H,)}.
# --------------------------------------------------------------------------------------


def rbm_hidden_probs(params, v):
    """p(h_j = 1 | v) = sigmoid(c_j + v W_:j): v (..., V) -> (..., H)."""
    return jax.nn.sigmoid(v @ params["kernel"] + params["hidden_bias"])


def rbm_visible_probs(params, h):
    """p(v_i = 1 | h) = sigmoid(b_i + W_i: h): h (..., H) -> (..., V)."""
    return jax.nn.sigmoid(h @ params["kernel"].T + params["visible_bias"])


def rbm_free_energy(params, v):
    """F(v) = -b.v - sum_j softplus(c_j + v W_:j), so p(v) = exp(-F(v)) / Z: (..., V) -> (...)."""
    return -(v @ params["visible_bias"]) - jnp.sum(jax.nn.softplus(v @ params["kernel"] + params["hidden_bias"]), -1)


def rbm_reconstruct(params, v):
    """Mean-field reconstruction p(v | h = p(h | v)): (..., V) -> (..., V)."""
    return rbm_visible_probs(params, rbm_hidden_probs(params, v))


def rbm_gibbs_step(params, v, key):
    """One block Gibbs step v -> h ~ p(h|v) -> v' ~ p(v|h): (..., V) -> (..., V) binary."""
    kh, kv = jax.random.split(key)
    h = _bernoulli(kh, rbm_hidden_probs(params, v))
    return _bernoulli(kv, rbm_visible_probs(params, h))


def rbm_sample(params, v0, key, steps: int):
    """``steps`` Gibbs steps from v0 (..., V); returns the last visible sample."""
    return jax.lax.fori_loop(0, steps, lambda t, v: rbm_gibbs_step(params, v, jax.random.fold_in(key, t)), v0)


def rbm_cd_gradient(params, v, key, *, k: int = 1, chain=None, mask=None):
    """Contrastive-divergence estimate of d mean log p(v) / d params (an ascent direction).

    v: (B, V) data in [0, 1]; positive statistics use p(h|v). The negative statistics come
    from k Gibbs steps started at the data (CD-k, Hinton 2002) or, when ``chain`` (C, V) is
    given, at the persistent chains (PCD, Tieleman 2008), using p(h|v_k). ``mask`` (B,)
    weights the data rows (0 = padding; with CD-k a padding row's chain counts 0 too).
    Returns ``(gradient like params, chain end (B or C, V))``.
    """
    m = jnp.ones(v.shape[0], v.dtype) if mask is None else jnp.asarray(mask, v.dtype)

    def stats(x, weights):
        ph = rbm_hidden_probs(params, x)
        total = jnp.maximum(jnp.sum(weights), 1.0)
        wx = x * weights[:, None]
        return {
            "kernel": wx.T @ ph / total,
            "visible_bias": jnp.sum(wx, 0) / total,
            "hidden_bias": jnp.sum(ph * weights[:, None], 0) / total,
        }

    start = v if chain is None else chain
    end = rbm_sample(params, start, key, k)
    negative = stats(end, m if chain is None else jnp.ones(end.shape[0], v.dtype))
    return jax.tree.map(jnp.subtract, stats(v, m), negative), end


def rbm_log_partition(params):
    """log Z by enumerating every visible state (tiny V only)."""
    return jax.nn.logsumexp(-rbm_free_energy(params, all_binary_states(params["kernel"].shape[0])))


def rbm_log_likelihood(params, v):
    """Exact mean log p(v) over data v (B, V), by enumeration (tiny V only)."""
    return jnp.mean(-rbm_free_energy(params, v)) - rbm_log_partition(params)


# --------------------------------------------------------------------------------------
# Boltzmann machine: fully connected, fully visible binary units (the chart's BM), with
# symmetric weights w (n, n), zero diagonal, and biases b (n,).
# --------------------------------------------------------------------------------------


def bm_energy(w, b, s):
    """E(s) = -1/2 s^T W s - b.s: s (..., n) -> (...)."""
    return -0.5 * jnp.einsum("...i,ij,...j->...", s, w, s) - s @ b


def bm_gibbs_sweep(w, b, s, key):
    """Resample each unit in turn from p(s_i = 1 | rest) = sigmoid(W_i: s + b_i): (n,) -> (n,)."""
    u = jax.random.uniform(key, s.shape)

    def visit(s, i):
        p = jax.nn.sigmoid(w[i] @ s + b[i])  # w_ii = 0: unit i's own state does not enter
        return s.at[i].set((u[i] < p).astype(s.dtype)), None

    return jax.lax.scan(visit, s, jnp.arange(s.shape[0]))[0]


def bm_sample(w, b, s0, key, sweeps: int):
    """A chain of ``sweeps`` Gibbs sweeps from s0 (n,): the states after each, (sweeps, n)."""

    def step(s, t):
        s = bm_gibbs_sweep(w, b, s, jax.random.fold_in(key, t))
        return s, s

    return jax.lax.scan(step, jnp.asarray(s0, jnp.float32), jnp.arange(sweeps))[1]


def bm_distribution(w, b):
    """Exact p(s) over `all_binary_states` order: (2^n,) (tiny n only)."""
    return jax.nn.softmax(-bm_energy(w, b, all_binary_states(b.shape[0])))


def bm_log_likelihood(w, b, data):
    """Exact mean log p(s) over data (B, n) by enumeration."""
    log_z = jax.nn.logsumexp(-bm_energy(w, b, all_binary_states(b.shape[0])))
    return jnp.mean(-bm_energy(w, b, data)) - log_z


def bm_exact_gradient(w, b, data):
    """The Boltzmann learning rule, exact: dW = <s s^T>_data - <s s^T>_model (zero
    diagonal), db = <s>_data - <s>_model, the model's averages by enumeration."""
    states = all_binary_states(b.shape[0])
    p = bm_distribution(w, b)
    model_corr = (states * p[:, None]).T @ states
    data_corr = data.T @ data / data.shape[0]
    off = 1.0 - jnp.eye(b.shape[0])
    return (data_corr - model_corr) * off, jnp.mean(data, 0) - p @ states


# --------------------------------------------------------------------------------------
# Discrete Markov chain (the chart's MC).
# --------------------------------------------------------------------------------------


def check_transition_matrix(p) -> None:
    """ValueError unless p is a square row-stochastic matrix (concrete arrays only)."""
    if isinstance(p, jax.core.Tracer):
        return
    p = np.asarray(p)
    if p.ndim != 2 or p.shape[0] != p.shape[1] or (p < 0).any() or not np.allclose(p.sum(1), 1.0, atol=1e-5):
        raise ValueError(f"a transition matrix must be square (S, S) with rows summing to 1, got shape {p.shape}")


def markov_sample(p, x0, key, steps: int):
    """States x_1..x_steps of the chain with transition matrix p (S, S), p[i, j] =
    P(x_{t+1} = j | x_t = i), from state x0: (steps,) int32."""
    check_transition_matrix(p)
    logp = jnp.log(jnp.asarray(p, jnp.float32))

    def step(x, t):
        x = jax.random.categorical(jax.random.fold_in(key, t), logp[x]).astype(jnp.int32)
        return x, x

    return jax.lax.scan(step, jnp.int32(x0), jnp.arange(steps))[1]


def stationary_distribution(p):
    """pi with pi P = pi, sum pi = 1 (S,), solved as a linear system (unique for an
    irreducible chain)."""
    check_transition_matrix(p)
    p = jnp.asarray(p, jnp.float32)
    s = p.shape[0]
    # (P^T - I) pi = 0 has rank S-1; replacing one equation by sum(pi) = 1 fixes the scale.
    a = (p.T - jnp.eye(s)).at[-1].set(1.0)
    return jnp.linalg.solve(a, jnp.zeros(s).at[-1].set(1.0))


# --------------------------------------------------------------------------------------
# Deep belief net: RBMs stacked greedily, then fine-tuned as an MLP.
# --------------------------------------------------------------------------------------


def dbn_mlp_params(rbm_params: list, out: dict) -> dict:
    """Parameters of the registered ``mlp`` (``activation="sigmoid"``, ``hidden_sizes`` the
    RBMs' hidden sizes) from a greedy stack: layer i's Dense is RBM i's (kernel, hidden
    bias), so the MLP's hidden layer i computes RBM i's p(h|v). ``out``: the output
    layer's {"kernel", "bias"} (e.g. a fresh initialisation)."""
    params = {f"hidden_{i}": {"kernel": p["kernel"], "bias": p["hidden_bias"]} for i, p in enumerate(rbm_params)}
    for a, b in zip(rbm_params, rbm_params[1:]):
        if a["kernel"].shape[1] != b["kernel"].shape[0]:
            raise ValueError(f"RBM stack does not chain: {a['kernel'].shape} then {b['kernel'].shape}")
    return {**params, "out": out}


# --------------------------------------------------------------------------------------
# Registered modules. Each takes images or vectors x: (B, *input_shape) float32 in [0, 1]
# (binarised at ``threshold``) and returns class scores (B, num_classes), so `zoo.fit`
# trains it on a classification set by its rule and reports accuracy; the associative
# recall itself is a method (``recall``) and the pure functions above.
# --------------------------------------------------------------------------------------


def _flat(x, input_shape):
    """(B, *input_shape) -> (B, n)."""
    return x.reshape(x.shape[: x.ndim - len(input_shape)] + (-1,))


def _size(input_shape) -> int:
    return int(np.prod(input_shape))


def _one_hot(t, num_classes: int):
    return jax.nn.one_hot(jnp.asarray(t).reshape(-1).astype(jnp.int32), num_classes, dtype=jnp.float32)


def _mask(mask, t):
    return (
        jnp.ones(jnp.asarray(t).reshape(-1).shape[0], jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
    )


def _check_classes(num_classes: int, minimum: int):
    if int(num_classes) < minimum:
        raise ValueError(f"num_classes must be at least {minimum}, got {num_classes}")


class Hopfield(nn.Module):
    """Hopfield net over the binarised input plus ``num_classes`` label units.

    Neurons: n = prod(input_shape) pixel units then C label units (one-of-C bipolar code:
    +1 for the class, -1 for the others); weights (n + C, n + C) in params["weights"].
    Storing an example is the seed's Hebbian sum over the pattern [x, code(label)]. Recall
    starts from [x, 0] (labels unknown), runs synchronous updates until stable or
    ``max_steps``; the class scores (B, C) are the label units' local fields in the
    recalled state. With ``clamp_input`` the pixel units stay fixed to the probe and only
    the label units update (pattern completion): a memory holding far more than ~0.15n
    examples, as a whole training set is, otherwise drifts to one spurious attractor for
    every probe. With C = 0 it is the plain associative memory (scores (B, 0)).
    """

    input_shape: tuple[int, ...] = (8, 8, 1)
    num_classes: int = 10
    threshold: float = 0.5
    scale: bool = False
    max_steps: int = 10
    clamp_input: bool = True

    def __post_init__(self):
        _check_classes(self.num_classes, 0)
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")
        super().__post_init__()

    def setup(self):
        size = _size(self.input_shape) + self.num_classes
        self.weights = self.param("weights", nn.initializers.zeros, (size, size))

    def probe(self, x):
        """x (B, *input_shape) -> the recall's start [bipolar(x), 0...0]: (B, n + C)."""
        check_input(x, self.input_shape, model=f"Hopfield(input_shape={tuple(self.input_shape)})")
        xb = to_bipolar(_flat(x, self.input_shape), self.threshold)
        return jnp.concatenate([xb, jnp.zeros(xb.shape[:-1] + (self.num_classes,), xb.dtype)], -1)

    def recall(self, x):
        """Synchronous recall: (states (B, n + C), steps (B,), stable (B,))."""
        n = _size(self.input_shape)
        free = jnp.arange(n + self.num_classes) >= n if self.clamp_input else None
        return hopfield_recall_batch(self.weights, self.probe(x), max_steps=self.max_steps, free=free)

    def __call__(self, x, train: bool = False):
        states, _, _ = self.recall(x)
        n = _size(self.input_shape)
        return states @ self.weights[:, n:]


def hopfield_rule(variables, x, t, *, mask=None, model):
    """Hebbian storage of each unmasked example: ``W += sum_k [x^k, code(t^k)] [x^k,
    code(t^k)]^T`` off the diagonal (divided by the neuron count if ``model.scale``)."""
    xb = to_bipolar(_flat(jnp.asarray(x, jnp.float32), model.input_shape), model.threshold)
    patterns = jnp.concatenate([xb, 2.0 * _one_hot(t, model.num_classes) - 1.0], -1)
    w = variables["params"]["weights"]
    w = w + hebbian_weights(patterns, weights=_mask(mask, t), scale=model.scale)
    return {**variables, "params": {**variables["params"], "weights": w}}


register_model(
    "hopfield",
    Hopfield,
    family="energy",
    task="classification",
    learning="hebbian",
    learning_rule=hopfield_rule,
    paper=f"Hopfield 1982; {KHANZHINA}, Hopfield neural network; {KANG} (HN)",
    test_config={"input_shape": (6,), "num_classes": 3},
    description="Hopfield associative memory (Hebbian storage, sign units) with label units read after recall.",
)


class Hamming(nn.Module):
    """Hamming network with MAXNET: one stored bipolar prototype per class.

    params["sums"] (C, n) accumulates the bipolar examples of each class (Hebbian:
    ``dw_ik = x_i t_k``); the stored pattern of class k is sign(sums_k) (0 -> +1). The
    first layer has the seed's ``w_ik = x_i^k / 2``, ``T_k = n / 2``, so the scores (B, C)
    are n minus the Hamming distance to each prototype; ``recall`` runs MAXNET
    (``epsilon``, 0 = 1/(2C)) to a single winner: (index (B,), distance (B,)).
    """

    input_shape: tuple[int, ...] = (8, 8, 1)
    num_classes: int = 10
    threshold: float = 0.5
    epsilon: float = 0.0

    def __post_init__(self):
        _check_classes(self.num_classes, 1)
        if self.epsilon and not 0 < self.epsilon < 1.0 / self.num_classes:
            raise ValueError(f"MAXNET needs 0 < epsilon < 1/num_classes, got {self.epsilon}")
        super().__post_init__()

    def setup(self):
        self.sums = self.param("sums", nn.initializers.zeros, (self.num_classes, _size(self.input_shape)))

    def patterns(self):
        """The stored bipolar prototypes (C, n)."""
        return jnp.where(self.sums >= 0, 1.0, -1.0)

    def _bipolar(self, x):
        check_input(x, self.input_shape, model=f"Hamming(input_shape={tuple(self.input_shape)})")
        return to_bipolar(_flat(x, self.input_shape), self.threshold)

    def recall(self, x):
        """MAXNET winner and its Hamming distance: (index (B,) int32, distance (B,))."""
        patterns = self.patterns()
        index, distance, _ = jax.vmap(lambda p: hamming_recall(patterns, p, epsilon=self.epsilon or None))(
            self._bipolar(x)
        )
        return index, distance

    def __call__(self, x, train: bool = False):
        return hamming_scores(self.patterns(), self._bipolar(x))


def hamming_rule(variables, x, t, *, mask=None, model):
    """Adds each unmasked bipolar example to its class's sum (the prototype is its sign)."""
    xb = to_bipolar(_flat(jnp.asarray(x, jnp.float32), model.input_shape), model.threshold)
    sums = variables["params"]["sums"] + (_one_hot(t, model.num_classes) * _mask(mask, t)[:, None]).T @ xb
    return {**variables, "params": {**variables["params"], "sums": sums}}


register_model(
    "hamming",
    Hamming,
    family="energy",
    task="classification",
    learning="hebbian",
    learning_rule=hamming_rule,
    paper=f"Lippmann 1987; {KHANZHINA}, Hamming neural network (MAXNET second layer)",
    test_config={"input_shape": (6,), "num_classes": 3},
    description="Hamming network: n - Hamming distance to per-class prototypes, MAXNET winner-take-all.",
)


class RBM(nn.Module):
    """Restricted Boltzmann machine with binary units, trained by contrastive divergence.

    Visible layer: the input binarised at ``threshold`` (n units; ``binarize=False`` keeps
    values in [0, 1] as probabilities, e.g. a lower RBM's codes) and, with ``use_labels``, C one-hot label units (the joint model of
    Larochelle & Bengio 2008, here with Bernoulli label units). Class scores (B, C) are
    -F([x, e_c]) (free energy), i.e. log p(x, c) up to a constant; without labels they are
    0. ``cd_steps`` is k of CD-k; ``persistent`` keeps ``num_chains`` Gibbs chains in the
    "chains" collection (PCD). ``encode`` gives p(h | x) (B, num_hidden), ``reconstruct``
    the mean-field reconstruction (B, n).
    """

    input_shape: tuple[int, ...] = (8, 8, 1)
    num_hidden: int = 64
    num_classes: int = 10
    use_labels: bool = True
    threshold: float = 0.5
    binarize: bool = True
    cd_steps: int = 1
    persistent: bool = False
    num_chains: int = 64

    def __post_init__(self):
        _check_classes(self.num_classes, 1)
        if self.num_hidden < 1 or self.cd_steps < 1 or self.num_chains < 1:
            raise ValueError(
                f"num_hidden, cd_steps and num_chains must be positive, got "
                f"{self.num_hidden}, {self.cd_steps}, {self.num_chains}"
            )
        super().__post_init__()

    @property
    def num_visible(self) -> int:
        return _size(self.input_shape) + (self.num_classes if self.use_labels else 0)

    def setup(self):
        v, h = self.num_visible, self.num_hidden
        self.kernel = self.param("kernel", nn.initializers.normal(0.01), (v, h))
        self.visible_bias = self.param("visible_bias", nn.initializers.zeros, (v,))
        self.hidden_bias = self.param("hidden_bias", nn.initializers.zeros, (h,))
        if self.persistent:
            self.chains = self.variable(
                "chains", "visible", lambda: _bernoulli(self.make_rng("params"), jnp.full((self.num_chains, v), 0.5))
            )

    def _params(self):
        return {"kernel": self.kernel, "visible_bias": self.visible_bias, "hidden_bias": self.hidden_bias}

    def pixels(self, x):
        """x (B, *input_shape) -> visible pixel units (B, n)."""
        check_input(x, self.input_shape, model=f"RBM(input_shape={tuple(self.input_shape)})")
        return _rbm_pixels(self, x)

    def encode(self, x):
        """p(h = 1 | x), label units off: (B, num_hidden)."""
        v = self.pixels(x)
        n = v.shape[-1]
        return jax.nn.sigmoid(v @ self.kernel[:n] + self.hidden_bias)

    def reconstruct(self, x):
        """Mean-field reconstruction of the pixels, p(v | p(h | x)): (B, n)."""
        return rbm_visible_probs(self._params(), self.encode(x))[..., : _size(self.input_shape)]

    def free_energy(self, x, t):
        """F([x, onehot(t)]) (B,) (t ignored without label units)."""
        return rbm_free_energy(self._params(), _rbm_visible(self, x, t))

    def __call__(self, x, train: bool = False):
        v = self.pixels(x)
        if not self.use_labels:
            return jnp.zeros(v.shape[:-1] + (self.num_classes,), jnp.float32)
        n = v.shape[-1]
        base = v @ self.kernel[:n] + self.hidden_bias  # (B, H)
        per_class = base[..., None, :] + self.kernel[n:]  # (B, C, H): label unit c on
        return v @ self.visible_bias[:n, None] + self.visible_bias[n:] + jnp.sum(jax.nn.softplus(per_class), -1)


def _rbm_pixels(model, x):
    v = _flat(jnp.asarray(x, jnp.float32), model.input_shape)
    return (v > model.threshold).astype(jnp.float32) if model.binarize else v


def _rbm_visible(model, x, t):
    v = _rbm_pixels(model, x)
    return jnp.concatenate([v, _one_hot(t, model.num_classes)], -1) if model.use_labels else v


def rbm_rule(variables, x, t, *, mask=None, key, model, learning_rate: float = 0.1):
    """One CD-k (or PCD-k, ``model.persistent``) step of size ``learning_rate`` on the
    visible vectors [x, onehot(t)]. A batch whose rows are all padding changes nothing
    (persistent chains included)."""
    params = variables["params"]
    v = _rbm_visible(model, x, t)
    m = _mask(mask, t)
    chain = variables["chains"]["visible"] if model.persistent else None
    grads, end = rbm_cd_gradient(params, v, key, k=model.cd_steps, chain=chain, mask=m)
    active = jnp.sum(m) > 0
    new = jax.tree.map(lambda p, g: jnp.where(active, p + learning_rate * g, p), params, grads)
    out = {**variables, "params": new}
    if model.persistent:
        out["chains"] = {"visible": jnp.where(active, end, chain)}
    return out


register_model(
    "rbm",
    RBM,
    family="energy",
    task="classification",
    learning="contrastive_divergence",
    learning_rule=rbm_rule,
    paper=f"Smolensky 1986; Hinton 2002 (CD); Tieleman 2008 (PCD); {KANG} (RBM)",
    test_config={"input_shape": (6,), "num_hidden": 4, "num_classes": 3},
    description="Binary RBM over [pixels, label units], CD-k or persistent CD; scores -F(x, c).",
)
