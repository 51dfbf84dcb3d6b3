"""Perceptron, hand-wired XOR networks, MLP, deep feed-forward and RBF networks.

Seed: kang-lecture4, "Perceptron", "Multi-Layer Perceptron (MLP)", "Error Back-Propagation",
"Neural Network Zoo" (RBF, DFF). Every model maps ``x: (B, *input_shape) float32`` to
``(B, num_outputs)``; inputs of more than one axis are flattened.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoo.nn import check_input, get_activation, get_initializer
from zoo.nn.normalization import batch_norm
from zoo.registry import register_model

SEED = "kang-lecture4 (Pilsung Kang, Lecture 4: Neural Networks)"


def _flatten(x, input_shape):
    """(B, *input_shape) -> (B, prod(input_shape))."""
    return x.reshape(x.shape[: x.ndim - len(input_shape)] + (-1,))


def _constant(value):
    """An initializer returning a fixed array (the seed's hand-given weights)."""
    value = np.asarray(value, np.float32)

    def init(key, shape, dtype=jnp.float32):
        if tuple(shape) != value.shape:
            raise ValueError(f"constant of shape {value.shape} cannot initialise {tuple(shape)}")
        return jnp.asarray(value, dtype)

    return init


# --- Perceptron: one unit h = g(w.x + b).


class Perceptron(nn.Module):
    """A single neuron ``y = g(b + w.x)``: (B, *input_shape) -> (B, 1); "sigmoid": the seed's
    unit for gradient descent on ``(t - y)^2 / 2``, "step": Rosenblatt's (`rosenblatt_rule`)."""

    input_shape: tuple[int, ...] = (2,)
    activation: str = "sigmoid"
    kernel_init: str = "zeros"
    use_bias: bool = True

    def __post_init__(self):
        get_activation(self.activation), get_initializer(self.kernel_init)
        super().__post_init__()

    def setup(self):
        self.unit = nn.Dense(1, use_bias=self.use_bias, kernel_init=get_initializer(self.kernel_init))

    def forward_features(self, x, train: bool = False):
        """A single unit has no hidden layer: its features are the flattened input."""
        check_input(x, self.input_shape, model=f"Perceptron(input_shape={tuple(self.input_shape)})")
        return _flatten(x, self.input_shape)

    def head(self, h):
        """(B, D) -> (B, 1)."""
        return get_activation(self.activation)(self.unit(h))

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train))


def rosenblatt_rule(variables, x, t, *, mask=None, learning_rate: float = 1.0):
    """One pass of Rosenblatt's rule, example by example (``lax.scan``): ``w += lr (t - y) x``,
    ``b += lr (t - y)``; x (N, *input_shape), t (N,) or (N, 1) in {0, 1}, ``mask`` 0 skips.
    Returns the updated variables."""
    params = variables["params"]["unit"]
    xs = _flatten(jnp.asarray(x, jnp.float32), x.shape[1:])
    ts = jnp.asarray(t, jnp.float32).reshape(-1)
    ms = jnp.ones_like(ts) if mask is None else jnp.asarray(mask, jnp.float32)

    def visit(p, example):
        xi, ti, mi = example
        y = (xi @ p["kernel"][:, 0] + p.get("bias", 0.0) >= 0).astype(jnp.float32)
        err = learning_rate * (ti - y) * mi
        new = {"kernel": p["kernel"] + err * xi[:, None]}
        if "bias" in p:
            new["bias"] = p["bias"] + err
        return new, None

    params, _ = jax.lax.scan(visit, params, (xs, ts, ms))
    return {**variables, "params": {**variables["params"], "unit": params}}


register_model(
    "perceptron",
    Perceptron,
    family="perceptron",
    task="binary_classification",
    paper=f"Rosenblatt 1958; {SEED}, sigmoid unit trained by gradient descent on squared loss",
    description="Sigmoid perceptron, ``w <- w - alpha (y - t) h (1 - h) x`` (gradient of (t-y)^2/2).",
)
register_model(
    "perceptron_rosenblatt",
    Perceptron,
    family="perceptron",
    task="binary_classification",
    paper="Rosenblatt 1958, The perceptron; threshold unit with the perceptron learning rule",
    defaults={"activation": "step"},
    learning="rosenblatt",
    learning_rule=rosenblatt_rule,
    description="Threshold unit y = [w.x + b >= 0], trained by `rosenblatt_rule` (no gradient).",
)


# --- The seed's hand-wired XOR networks.


class _FixedLayer(nn.Module):
    """Dense layer whose weights are given, followed by an activation."""

    kernel: tuple
    bias: tuple
    activation: str

    @nn.compact
    def __call__(self, x):
        k = self.param("kernel", _constant(self.kernel), np.shape(self.kernel))
        b = self.param("bias", _constant(self.bias), np.shape(self.bias))
        return get_activation(self.activation)(x @ k + b)


class XORNet(nn.Module):
    """A 2-2-1 network with given weights: (B, 2) -> (B, 1).

    Hidden unit j computes ``g(x . hidden_kernel[:, j] + hidden_bias[j])``.
    """

    hidden_kernel: tuple
    hidden_bias: tuple
    output_kernel: tuple
    output_bias: tuple
    activation: str
    input_shape: tuple[int, ...] = (2,)

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_input(x, self.input_shape, model="XORNet")
        h = _FixedLayer(self.hidden_kernel, self.hidden_bias, self.activation, name="hidden")(x)
        return _FixedLayer(self.output_kernel, self.output_bias, self.activation, name="output")(h)


register_model(
    "xor_sigmoid_net",
    XORNet,
    family="perceptron",
    task="binary_classification",
    learning="hand_wired",
    paper=f"{SEED}, MLP slide: sigmoid OR and NAND units feeding an AND unit",
    defaults={
        "hidden_kernel": ((20.0, -20.0), (20.0, -20.0)),
        "hidden_bias": (-10.0, 30.0),
        "output_kernel": ((20.0,), (20.0,)),
        "output_bias": (-30.0,),
        "activation": "sigmoid",
    },
    description=(
        "XOR = AND(OR, NAND): h1 = s(20x1 + 20x2 - 10), h2 = s(-20x1 - 20x2 + 30), "
        "y = s(20h1 + 20h2 - 30); inputs in {0, 1}, output ~0/~1."
    ),
)
register_model(
    "xor_sign_net",
    XORNet,
    family="perceptron",
    task="regression",
    learning="hand_wired",
    paper=(
        f"{SEED}, 'XOR problem revisited': sign units a1 = x1 + x2 - 3/2, a2 = x1 + x2 - 5/2; "
        "output o = h1 - h2 - 1 (the slide prints h1 + h2 - 1, which contradicts its own table)"
    ),
    defaults={
        "hidden_kernel": ((1.0, 1.0), (1.0, 1.0)),
        "hidden_bias": (-1.5, -2.5),
        "output_kernel": ((1.0,), (-1.0,)),
        "output_bias": (-1.0,),
        "activation": "sign",
    },
    description="XOR on inputs in {1/2, 3/2} with sign units; outputs +-1.",
)


# --- MLP and deep feed-forward net.


class MLP(nn.Module):
    """Fully connected net: (B, *input_shape) -> (B, num_outputs). Hidden layers (the
    features) are Dense -> [BatchNorm] -> activation -> [Dropout]; the output layer is linear
    unless ``output_activation`` says otherwise."""

    input_shape: tuple[int, ...] = (64,)
    hidden_sizes: tuple[int, ...] = (128,)
    num_outputs: int = 10
    activation: str = "relu"
    output_activation: str = "identity"
    kernel_init: str = "xavier_uniform"
    bias_init: str = "zeros"
    dropout_rate: float = 0.0
    batch_norm: bool = False
    batch_norm_momentum: float = 0.9  # running average r <- m r + (1 - m) batch statistic
    batch_norm_epsilon: float = 1e-5

    def __post_init__(self):
        # Validate when the model is built, not at its first call.
        if any(int(n) <= 0 for n in self.hidden_sizes) or self.num_outputs <= 0:
            raise ValueError(
                f"layer sizes must be positive, got hidden_sizes={tuple(self.hidden_sizes)}, "
                f"num_outputs={self.num_outputs}"
            )
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")
        for name in (self.activation, self.output_activation):
            get_activation(name)
        for name in (self.kernel_init, self.bias_init):
            get_initializer(name)
        super().__post_init__()

    def setup(self):
        dense = dict(kernel_init=get_initializer(self.kernel_init), bias_init=get_initializer(self.bias_init))
        # Batch norm subtracts the mean, so a bias before it has no effect (and only a
        # numerically-zero gradient); its shift parameter takes the bias's place.
        self.hidden = [nn.Dense(int(n), use_bias=not self.batch_norm, **dense) for n in self.hidden_sizes]
        bn = dict(momentum=self.batch_norm_momentum, epsilon=self.batch_norm_epsilon)
        self.norms = [batch_norm(**bn) for _ in self.hidden_sizes] if self.batch_norm else []
        self.dropout = nn.Dropout(self.dropout_rate)
        self.out = nn.Dense(self.num_outputs, **dense)
        self._act = get_activation(self.activation)
        self._out_act = get_activation(self.output_activation)

    def forward_features(self, x, train: bool = False):
        """(B, *input_shape) -> (B, hidden_sizes[-1]) (the input, flattened, if no hidden layer)."""
        check_input(x, self.input_shape, model=f"MLP(input_shape={tuple(self.input_shape)})")
        h = _flatten(x, self.input_shape)
        for i, layer in enumerate(self.hidden):
            h = layer(h)
            if self.batch_norm:
                h = self.norms[i](h, use_running_average=not train)
            h = self._act(h)
            if self.dropout_rate > 0:
                h = self.dropout(h, deterministic=not train)
        return h

    def head(self, h):
        """(B, features) -> (B, num_outputs)."""
        return self._out_act(self.out(h))

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train))


register_model(
    "mlp",
    MLP,
    family="perceptron",
    task="classification",
    paper=f"Rumelhart, Hinton & Williams 1986; {SEED}, Multi-Layer Perceptron",
    defaults={"input_shape": (8, 8, 1), "hidden_sizes": (256,)},
    test_config={"hidden_sizes": (8,), "input_shape": (4,), "num_outputs": 3},
    description="Multi-layer perceptron of any depth, width and activation (default: digits).",
)
register_model(
    "dff",
    MLP,
    family="perceptron",
    task="classification",
    paper=f"{SEED}, Deep Feed Forward (DFF) in the Neural Network Zoo; He et al. 2015 init",
    defaults={
        "input_shape": (8, 8, 1),
        "hidden_sizes": (256, 256, 256, 256),
        "kernel_init": "he_normal",
        "dropout_rate": 0.1,
        "batch_norm": True,
    },
    test_config={"hidden_sizes": (8, 8, 8), "input_shape": (4,), "num_outputs": 3},
    description="Deep feed-forward net: many ReLU layers, He init, batch norm and dropout.",
)


def backprop_example(activation: str = "sigmoid"):
    """The seed's back-propagation worked example: (model, variables, x, t). x = (0.5, 0.5),
    hidden weights (w11, w12, w10) = (1, 1, 0) and (0, 1, -2), output (1, 1, 1), linear,
    t = 1. ``"seed_sigmoid"`` is the slide's h = 1/(1 + e^a), ``"sigmoid"`` the logistic.
    """
    model = MLP(input_shape=(2,), hidden_sizes=(2,), num_outputs=1, activation=activation)
    params = {
        "hidden_0": {"kernel": jnp.array([[1.0, 0.0], [1.0, 1.0]]), "bias": jnp.array([0.0, -2.0])},
        "out": {"kernel": jnp.array([[1.0], [1.0]]), "bias": jnp.array([1.0])},
    }
    return model, {"params": params}, jnp.array([[0.5, 0.5]]), jnp.array([[1.0]])


# --- Radial basis function network.


def kmeans(x, num_centres: int, *, key, iterations: int = 50):
    """Lloyd's k-means: x (N, D) -> centres (K, D). Starts from K distinct random points.

    A pure function (``lax.fori_loop``); an empty cluster keeps its previous centre.
    """
    x = jnp.asarray(x, jnp.float32)
    if not 0 < num_centres <= x.shape[0]:
        raise ValueError(f"num_centres must be in 1..{x.shape[0]} (the number of points), got {num_centres}")
    centres = x[jax.random.choice(key, x.shape[0], (num_centres,), replace=False)]

    def step(_, c):
        assign = jnp.argmin(_sq_distances(x, c), axis=1)
        one_hot = jax.nn.one_hot(assign, num_centres, dtype=x.dtype)  # (N, K)
        counts = one_hot.sum(0)[:, None]
        means = one_hot.T @ x / jnp.maximum(counts, 1.0)
        return jnp.where(counts > 0, means, c)

    return jax.lax.fori_loop(0, iterations, step, centres)


def _sq_distances(x, c):
    """||x_n - c_k||^2: (N, D), (K, D) -> (N, K)."""
    return (x * x).sum(-1)[:, None] - 2.0 * x @ c.T + (c * c).sum(-1)[None, :]


def rbf_width(centres) -> float:
    """Haykin's width heuristic sigma = d_max / sqrt(2K) (d_max: largest centre distance)."""
    c = np.asarray(centres, np.float64)
    d_max = np.sqrt(np.maximum(_sq_distances(c, c), 0.0).max())
    return float(d_max / np.sqrt(2 * len(c))) or 1.0


class RBFNetwork(nn.Module):
    """Gaussian RBF network, phi_k(x) = exp(-||x - c_k||^2 / (2 sigma_k^2)), y = W phi + b:
    (B, *input_shape) -> (B, num_outputs). ``centres`` given (e.g. `kmeans`) or from N(0, 1);
    ``trainable_centres=False`` keeps them in "constants" (two-stage RBF training).
    """

    input_shape: tuple[int, ...] = (64,)
    num_centres: int = 32
    num_outputs: int = 10
    width: float = 1.0
    centres: tuple | None = None
    trainable_centres: bool = True
    trainable_widths: bool = True

    def __post_init__(self):
        if self.width <= 0 or self.num_centres <= 0:
            raise ValueError(f"width and num_centres must be positive, got {self.width}, {self.num_centres}")
        super().__post_init__()

    def setup(self):
        shape = (self.num_centres, int(np.prod(self.input_shape)))
        init = nn.initializers.normal(1.0) if self.centres is None else _constant(self.centres)
        if self.trainable_centres:
            self.c = self.param("centres", init, shape)
        else:
            self.c = self.variable("constants", "centres", lambda: init(self.make_rng("params"), shape)).value
        log_width = lambda *_: jnp.full((self.num_centres,), np.log(self.width), jnp.float32)
        if self.trainable_widths:
            self.log_width = self.param("log_width", log_width)
        else:
            self.log_width = self.variable("constants", "log_width", log_width).value
        self.out = nn.Dense(self.num_outputs)

    def forward_features(self, x, train: bool = False):
        """(B, *input_shape) -> (B, num_centres) Gaussian activations."""
        check_input(x, self.input_shape, model=f"RBFNetwork(input_shape={tuple(self.input_shape)})")
        d2 = _sq_distances(_flatten(x, self.input_shape), self.c)
        return jnp.exp(-jnp.maximum(d2, 0.0) / (2.0 * jnp.exp(2.0 * self.log_width)))

    def head(self, phi):
        return self.out(phi)

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train))


register_model(
    "rbf",
    RBFNetwork,
    family="perceptron",
    task="classification",
    paper=f"Broomhead & Lowe 1988; Moody & Darken 1989; {SEED}, Radial Basis Network (RBF)",
    defaults={"input_shape": (8, 8, 1), "num_centres": 64},
    test_config={"input_shape": (3,), "num_centres": 4, "num_outputs": 2},
    description="Gaussian radial basis function network with a linear output layer.",
)


def rbf_from_data(x, num_centres: int, *, seed: int = 0, num_outputs: int = 10, **kwargs) -> RBFNetwork:
    """An RBF network whose centres are k-means centres of ``x`` (N, *input_shape) and whose
    width is Haykin's heuristic; ``kwargs`` go to `RBFNetwork`."""
    x = np.asarray(x, np.float32)
    centres = np.asarray(kmeans(x.reshape(len(x), -1), num_centres, key=jax.random.PRNGKey(seed)))
    return RBFNetwork(
        input_shape=x.shape[1:],
        num_centres=num_centres,
        num_outputs=num_outputs,
        width=rbf_width(centres),
        centres=tuple(map(tuple, centres.tolist())),
        **kwargs,
    )
