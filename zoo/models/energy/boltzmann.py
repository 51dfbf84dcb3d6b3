"""Boltzmann machines (kang-lecture4, Neural Network Zoo: BM, RBM, DBN): the fully
visible Boltzmann machine with Gibbs sampling and its exact gradient, the binary RBM with
CD-k and persistent CD, a deep belief net's weights for the MLP; the registered ``rbm``."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo.models.energy._common import KANG, _bernoulli, _check_classes, _flat, _mask, _one_hot, _size, all_binary_states
from zoo.nn import check_input
from zoo.registry import register_model


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


def bm_sampled_gradient(w, b, data, key, *, sweeps: int = 1, mask=None):
    """The Boltzmann learning rule with the model's averages estimated by Gibbs sampling:
    each data vector (B, n) starts a chain run for ``sweeps`` sweeps (the CD-k estimate;
    many sweeps approach `bm_exact_gradient`). Rows with ``mask`` 0 count in neither phase.
    Returns (dW, db)."""
    m = jnp.ones(data.shape[0]) if mask is None else mask
    count = jnp.maximum(jnp.sum(m), 1.0)
    keys = jax.random.split(key, data.shape[0])
    ends = jax.vmap(lambda s, k: bm_sample(w, b, s, k, sweeps)[-1])(data, keys)
    off = 1.0 - jnp.eye(b.shape[0])

    def stats(s):
        return (s * m[:, None]).T @ s / count, m @ s / count

    (pos_w, pos_b), (neg_w, neg_b) = stats(data), stats(ends)
    return (pos_w - neg_w) * off, pos_b - neg_b


class BoltzmannMachine(nn.Module):
    """A fully connected Boltzmann machine of binary units (Ackley, Hinton & Sejnowski 1985)
    over [pixels binarised at ``threshold``, one-hot label units]: symmetric weights with a
    zero diagonal, ``E(s) = -1/2 s^T W s - b.s``. Class scores (B, C) are ``-E([x, e_c])``,
    log p(x, c) up to a constant. Trained by `bm_rule` (Gibbs-sampled Boltzmann learning)."""

    input_shape: tuple[int, ...] = (8, 8, 1)
    num_classes: int = 10
    threshold: float = 0.5
    gibbs_sweeps: int = 1

    def __post_init__(self):
        _check_classes(self.num_classes, 1)
        if self.gibbs_sweeps < 1:
            raise ValueError(f"gibbs_sweeps must be positive, got {self.gibbs_sweeps}")
        super().__post_init__()

    def setup(self):
        n = _size(self.input_shape) + self.num_classes
        self.weights = self.param("weights", nn.initializers.zeros, (n, n))
        self.bias = self.param("bias", nn.initializers.zeros, (n,))

    def __call__(self, x, train: bool = False):
        check_input(x, self.input_shape, model=f"BoltzmannMachine(input_shape={tuple(self.input_shape)})")
        v = _binary_pixels(self, x)
        states = jnp.concatenate(
            [
                jnp.broadcast_to(v[:, None], (v.shape[0], self.num_classes, v.shape[1])),
                jnp.broadcast_to(jnp.eye(self.num_classes), (v.shape[0], self.num_classes, self.num_classes)),
            ],
            -1,
        )
        return -bm_energy(self.weights, self.bias, states)


def _binary_pixels(model, x):
    """x (B, *input_shape) -> pixel units binarised at ``model.threshold`` (B, n)."""
    return (_flat(jnp.asarray(x, jnp.float32), model.input_shape) > model.threshold).astype(jnp.float32)


def bm_rule(variables, x, t, *, mask=None, key, model, learning_rate: float = 0.05):
    """One step of Gibbs-sampled Boltzmann learning on the visible vectors [x, onehot(t)]:
    ``W += lr (<s s^T>_data - <s s^T>_model)``, ``b += lr (<s>_data - <s>_model)``."""
    params = variables["params"]
    s = jnp.concatenate([_binary_pixels(model, x), _one_hot(t, model.num_classes)], -1)
    dw, db = bm_sampled_gradient(
        params["weights"], params["bias"], s, key, sweeps=model.gibbs_sweeps, mask=_mask(mask, t)
    )
    return {
        **variables,
        "params": {"weights": params["weights"] + learning_rate * dw, "bias": params["bias"] + learning_rate * db},
    }


register_model(
    "boltzmann_machine",
    BoltzmannMachine,
    family="energy",
    task="classification",
    learning="contrastive_divergence",
    learning_rule=bm_rule,
    paper=f"Ackley, Hinton & Sejnowski 1985, A learning algorithm for Boltzmann machines; {KANG} (BM)",
    test_config={"input_shape": (4,), "num_classes": 2},
    description="Fully connected Boltzmann machine over [pixels, label units], Gibbs-sampled learning; scores -E(x, c).",
)


# --------------------------------------------------------------------------------------
# Deep belief net: RBMs stacked greedily, then fine-tuned as an MLP.
# --------------------------------------------------------------------------------------


def dbn_mlp_params(rbm_params: list, out: dict | None = None) -> dict:
    """Parameters of the registered ``mlp`` (``activation="sigmoid"``, ``hidden_sizes`` the
    RBMs' hidden sizes) from a greedy stack, bottom first: layer i's Dense is RBM i's
    (kernel, hidden bias), so the MLP's hidden layer i computes RBM i's p(h|v). ``out``:
    the output layer's {"kernel", "bias"}, or None to leave it to the MLP's own
    initialisation (``zoo.fit(..., initial_variables={"params": ...})``)."""
    for a, b in zip(rbm_params, rbm_params[1:]):
        if a["kernel"].shape[1] != b["kernel"].shape[0]:
            raise ValueError(f"RBM stack does not chain: {a['kernel'].shape} then {b['kernel'].shape}")
    params = {f"hidden_{i}": {"kernel": p["kernel"], "bias": p["hidden_bias"]} for i, p in enumerate(rbm_params)}
    return params if out is None else {**params, "out": out}


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
