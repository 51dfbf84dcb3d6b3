"""Dense autoencoders: the seed's sigmoid autoencoder (tied weights optional), the linear
one (PCA's subspace), stacked, denoising and sparse variants, and the variational
autoencoder.

Seed: kang-lecture4, "Auto-Encoder": encoder ``h(x) = sigm(b + W x)``, decoder
``x' = sigm(c + W* h(x))``, loss ``1/2 sum_k (x'_k - x_k)^2``; "Denoising Auto-Encoder"
(Gaussian noise during training); the network zoo's VAE, DAE and SAE. Each model maps
``x: (B, *input_shape)`` float32 to its reconstruction for the "reconstruction" task of
`zoo.tasks` and has ``encode(x) -> (B, code)`` and ``decode(h) -> (B, *input_shape)``
(applied with ``method="encode"``), which `zoo.train.pretrain.pretrain_layerwise` stacks.
Noise and the VAE's samples draw from the "noise" rng stream.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoo.nn import check_input, get_activation, get_initializer
from zoo.registry import register_model

SEED = "kang-lecture4 (Pilsung Kang, Lecture 4: Neural Networks), Auto-Encoder"
NOISE_KINDS = ("none", "gaussian", "masking")
SPARSITY_KINDS = ("none", "kl", "l1")
RECONSTRUCTION_LOSSES = ("squared_error", "cross_entropy")


def corrupt(x, key, kind: str, level):
    """The denoising autoencoder's corruption of ``x`` (any shape): ``"gaussian"`` adds
    ``level * N(0, 1)`` (the seed's "random Gaussian noise"); ``"masking"`` sets each value
    to 0 with probability ``level`` (Vincent et al. 2008). ``level`` may be traced, so one
    compiled program serves every noise level under ``vmap``."""
    if kind == "gaussian":
        return x + level * jax.random.normal(key, x.shape, x.dtype)
    if kind == "masking":
        return jnp.where(jax.random.uniform(key, x.shape) < level, 0.0, x).astype(x.dtype)
    return x


def kl_sparsity(mean_activation, target: float):
    """``sum_j KL(rho || rho_j)`` between Bernoulli(target) and Bernoulli(mean activation of
    unit j), the sparse autoencoder's penalty (Ng, CS294A notes): (..., J) -> (...)."""
    rho_hat = jnp.clip(mean_activation, 1e-6, 1 - 1e-6)
    return jnp.sum(target * jnp.log(target / rho_hat) + (1 - target) * jnp.log((1 - target) / (1 - rho_hat)), -1)


def _check_choice(value: str, choices: tuple, what: str) -> None:
    if value not in choices:
        raise ValueError(f"{what} must be one of {choices}, got {value!r}")


def _flat_size(input_shape) -> int:
    return math.prod(int(d) for d in input_shape)


class Autoencoder(nn.Module):
    """Dense autoencoder: (B, *input_shape) -> reconstruction of the same shape.

    The encoder is ``h_l = act(b_l + h_{l-1} W_l)`` for each width in ``hidden_sizes``;
    the decoder mirrors it (``W*`` untied, or ``W_l^T`` with ``tied_weights``) and ends in
    ``decoder_activation``. With ``reconstruction_loss="squared_error"`` (the seed's) the
    model returns ``{"reconstruction": x'}``; with ``"cross_entropy"`` (binary inputs, a
    sigmoid decoder) it returns the decoder's logits and the loss is computed stably on
    them.

    ``noise`` ("gaussian" or "masking", at ``noise_level``) corrupts the input of a
    denoising autoencoder whenever a "noise" rng is given: in training, and in the
    engine's evaluation (fixed noise), while the target stays the clean input; a plain
    ``apply`` without that rng reconstructs the input as it is. ``sparsity`` adds a penalty on the hidden
    activations: "kl" (sigmoid units; ``sparsity_weight * sum_j KL(rho || rho_j)`` with
    ``rho = sparsity_target`` and ``rho_j`` the unit's mean over the batch, every hidden
    layer) or "l1" (``sparsity_weight * sum |h|`` per example). ``encode`` gives the last
    hidden layer of the clean input.
    """

    input_shape: tuple[int, ...] = (8, 8, 1)
    hidden_sizes: tuple[int, ...] = (32,)
    activation: str = "sigmoid"
    decoder_activation: str = "sigmoid"
    reconstruction_loss: str = "squared_error"
    tied_weights: bool = False
    use_bias: bool = True
    noise: str = "none"
    noise_level: float = 0.0
    sparsity: str = "none"
    sparsity_target: float = 0.05
    sparsity_weight: float = 0.0
    kernel_init: str = "xavier_uniform"

    def __post_init__(self):
        if not self.hidden_sizes or any(int(n) <= 0 for n in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive widths, got {tuple(self.hidden_sizes)}")
        _check_choice(self.noise, NOISE_KINDS, "noise")
        _check_choice(self.sparsity, SPARSITY_KINDS, "sparsity")
        _check_choice(self.reconstruction_loss, RECONSTRUCTION_LOSSES, "reconstruction_loss")
        get_activation(self.activation), get_activation(self.decoder_activation), get_initializer(self.kernel_init)
        if self.reconstruction_loss == "cross_entropy" and self.decoder_activation != "sigmoid":
            raise ValueError("reconstruction_loss='cross_entropy' needs decoder_activation='sigmoid'")
        if self.noise == "masking" and not 0.0 <= self.noise_level < 1.0:
            raise ValueError(f"masking noise_level is a probability in [0, 1), got {self.noise_level}")
        if self.noise_level < 0:
            raise ValueError(f"noise_level must be >= 0, got {self.noise_level}")
        if self.sparsity == "kl" and (self.activation != "sigmoid" or not 0.0 < self.sparsity_target < 1.0):
            raise ValueError("sparsity='kl' needs sigmoid hidden units and 0 < sparsity_target < 1")
        if self.sparsity_weight < 0:
            raise ValueError(f"sparsity_weight must be >= 0, got {self.sparsity_weight}")
        super().__post_init__()

    def setup(self):
        init = get_initializer(self.kernel_init)
        widths = [_flat_size(self.input_shape), *map(int, self.hidden_sizes)]
        self.encoder = [nn.Dense(n, use_bias=self.use_bias, kernel_init=init) for n in widths[1:]]
        # Decoder layer l maps width l+1 back to width l, last hidden layer first.
        if self.tied_weights:
            self.decoder_bias = [
                self.param(f"decoder_bias_{l}", nn.initializers.zeros, (widths[l],)) for l in range(len(widths) - 1)
            ]
        else:
            self.decoder = [
                nn.Dense(widths[l], use_bias=self.use_bias, kernel_init=init) for l in range(len(widths) - 1)
            ]

    def _hidden(self, x, corrupted: bool):
        """(B, *input_shape) -> every hidden layer's activations, first to last; with
        ``corrupted``, the input of a denoising model is corrupted first when a "noise" rng
        is given."""
        check_input(x, self.input_shape, model=f"Autoencoder(input_shape={tuple(self.input_shape)})")
        if corrupted and self.noise != "none" and self.noise_level > 0 and self.has_rng("noise"):
            x = corrupt(x, self.make_rng("noise"), self.noise, self.noise_level)
        h = x.reshape(x.shape[: x.ndim - len(self.input_shape)] + (-1,))
        layers = []
        for layer in self.encoder:
            h = get_activation(self.activation)(layer(h))
            layers.append(h)
        return layers

    def forward_features(self, x, train: bool = False):
        """(B, *input_shape) -> (B, hidden_sizes[-1]), the code of the input as given (never
        corrupted: these are the features a classifier reads)."""
        return self._hidden(x, corrupted=False)[-1]

    def encode(self, x):
        """The code, `forward_features`; the name layer-wise pretraining calls."""
        return self.forward_features(x)

    def _decoder_logits(self, h):
        """(B, hidden_sizes[-1]) -> (B, *input_shape): the decoder before its last activation."""
        for l in reversed(range(len(self.encoder))):
            if self.tied_weights:
                h = h @ self.encoder[l].variables["params"]["kernel"].T + self.decoder_bias[l]
            else:
                h = self.decoder[l](h)
            if l:
                h = get_activation(self.activation)(h)
        return h.reshape(h.shape[:-1] + tuple(self.input_shape))

    def decode(self, h):
        """(B, hidden_sizes[-1]) -> (B, *input_shape) reconstructed values."""
        return get_activation(self.decoder_activation)(self._decoder_logits(h))

    def head(self, h):
        """The code (B, hidden_sizes[-1]) -> ``{"reconstruction": values}`` or, with
        cross-entropy, ``{"reconstruction_logits": logits}``."""
        if self.reconstruction_loss == "cross_entropy":
            return {"reconstruction_logits": self._decoder_logits(h)}
        return {"reconstruction": self.decode(h)}

    def __call__(self, x, train: bool = False):
        hidden = self._hidden(x, corrupted=True)
        out = self.head(hidden[-1])
        if self.sparsity == "kl":
            penalty = sum(kl_sparsity(jnp.mean(h, 0), self.sparsity_target) for h in hidden)
            out["penalties"] = {"sparsity": jnp.full(x.shape[:1], self.sparsity_weight * penalty)}
        elif self.sparsity == "l1":
            out["penalties"] = {"sparsity": self.sparsity_weight * sum(jnp.sum(jnp.abs(h), -1) for h in hidden)}
        return out


_DIGITS = {"input_shape": (8, 8, 1)}
_TEST = {"hidden_sizes": (4,), "input_shape": (6,)}

register_model(
    "autoencoder",
    Autoencoder,
    family="autoencoder",
    task="reconstruction",
    paper=f"Rumelhart, Hinton & Williams 1986; {SEED}",
    defaults=_DIGITS,
    test_config=_TEST,
    description="The seed's autoencoder: sigmoid encoder and decoder, squared error (tied weights optional).",
)
register_model(
    "linear_autoencoder",
    Autoencoder,
    family="autoencoder",
    task="reconstruction",
    paper=f"Baldi & Hornik 1989 (a linear autoencoder spans the principal subspace); {SEED}",
    defaults={**_DIGITS, "hidden_sizes": (8,), "activation": "identity", "decoder_activation": "identity"},
    test_config=_TEST,
    description="One linear hidden layer and squared error: learns the span of the top principal components.",
)
register_model(
    "stacked_autoencoder",
    Autoencoder,
    family="autoencoder",
    task="reconstruction",
    paper=f"Bengio et al. 2007, greedy layer-wise training; {SEED} (DNN: layer-wise training)",
    defaults={**_DIGITS, "hidden_sizes": (48, 24)},
    test_config={**_TEST, "hidden_sizes": (5, 3)},
    description="A deep autoencoder; zoo.train.pretrain.pretrain_layerwise trains it one layer at a time.",
)
register_model(
    "denoising_autoencoder",
    Autoencoder,
    family="autoencoder",
    task="reconstruction",
    paper=f"Vincent et al. 2008; {SEED} (Denoising Auto-Encoder)",
    defaults={**_DIGITS, "hidden_sizes": (64,), "noise": "gaussian", "noise_level": 0.3},
    test_config=_TEST,
    description="Reconstructs the clean input from a corrupted one (Gaussian or masking noise).",
)
register_model(
    "sparse_autoencoder",
    Autoencoder,
    family="autoencoder",
    task="reconstruction",
    paper=f"Ng, Sparse autoencoder (CS294A notes, 2011); {SEED} (network zoo: SAE)",
    defaults={**_DIGITS, "hidden_sizes": (64,), "sparsity": "kl", "sparsity_target": 0.05, "sparsity_weight": 0.1},
    test_config=_TEST,
    description="Overcomplete code kept sparse by a KL penalty on the mean activations (or L1).",
)


class VAE(nn.Module):
    """Variational autoencoder (Kingma & Welling 2014): (B, *input_shape) in [0, 1] ->
    ``{"reconstruction_logits": (B, *input_shape), "penalties": {"kl": (B,)}}``.

    The encoder gives ``q(z|x) = N(mean, diag(exp(log_var)))``; ``z = mean + exp(log_var / 2)
    * eps`` with ``eps ~ N(0, I)`` from the "noise" stream (the reparameterisation), and a
    Bernoulli decoder. The task's loss, binary cross-entropy summed over pixels plus the
    analytic ``KL(q(z|x) || N(0, I))``, is the negative ELBO, a one-sample estimate (also
    in evaluation, with fixed noise).
    """

    input_shape: tuple[int, ...] = (8, 8, 1)
    hidden_sizes: tuple[int, ...] = (128,)
    latent_size: int = 2
    activation: str = "relu"
    kernel_init: str = "xavier_uniform"

    def __post_init__(self):
        if any(int(n) <= 0 for n in self.hidden_sizes) or int(self.latent_size) <= 0:
            raise ValueError(
                f"layer sizes must be positive, got hidden_sizes={tuple(self.hidden_sizes)}, "
                f"latent_size={self.latent_size}"
            )
        get_activation(self.activation), get_initializer(self.kernel_init)
        super().__post_init__()

    def setup(self):
        dense = dict(kernel_init=get_initializer(self.kernel_init))
        self.encoder = [nn.Dense(int(n), **dense) for n in self.hidden_sizes]
        self.mean = nn.Dense(int(self.latent_size), **dense)
        self.log_var = nn.Dense(int(self.latent_size), **dense)
        self.decoder = [nn.Dense(int(n), **dense) for n in reversed(self.hidden_sizes)]
        self.out = nn.Dense(_flat_size(self.input_shape), **dense)

    def encode(self, x):
        """(B, *input_shape) -> (mean, log_var), each (B, latent_size)."""
        check_input(x, self.input_shape, model=f"VAE(input_shape={tuple(self.input_shape)})")
        h = x.reshape(x.shape[: x.ndim - len(self.input_shape)] + (-1,))
        for layer in self.encoder:
            h = get_activation(self.activation)(layer(h))
        return self.mean(h), self.log_var(h)

    def forward_features(self, x, train: bool = False):
        """(B, *input_shape) -> (B, latent_size), the posterior mean."""
        return self.encode(x)[0]

    def decode_logits(self, z):
        """(B, latent_size) -> (B, *input_shape) Bernoulli logits."""
        for layer in self.decoder:
            z = get_activation(self.activation)(layer(z))
        logits = self.out(z)
        return logits.reshape(logits.shape[:-1] + tuple(self.input_shape))

    def decode(self, z):
        """(B, latent_size) -> (B, *input_shape) pixel means in [0, 1]."""
        return jax.nn.sigmoid(self.decode_logits(z))

    def head(self, z):
        """(B, latent_size) -> ``{"reconstruction_logits": (B, *input_shape)}``."""
        return {"reconstruction_logits": self.decode_logits(z)}

    def sample(self, key, n: int):
        """``n`` draws ``decode(z)``, ``z ~ N(0, I)``: (n, *input_shape)."""
        return self.decode(jax.random.normal(key, (n, int(self.latent_size))))

    def __call__(self, x, train: bool = False):
        """With a "noise" rng, ``z`` is a sample of q(z|x) (training, the engine's evaluation);
        without one, the posterior mean (a deterministic reconstruction)."""
        mean, log_var = self.encode(x)
        z = mean
        if self.has_rng("noise"):
            z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(self.make_rng("noise"), mean.shape, mean.dtype)
        kl = 0.5 * jnp.sum(jnp.exp(log_var) + mean**2 - 1.0 - log_var, -1)
        return {**self.head(z), "penalties": {"kl": kl}}


def denoising_curve(model, variables, x, noise_levels, key, kind: str = "gaussian") -> dict:
    """The robustness curve of an autoencoder in one compiled call (``vmap`` over levels).

    x: (N, *input_shape) clean inputs; noise_levels: (L,). For each level, ``x`` is
    corrupted (`corrupt`, the same draw scaled, so the curve is smooth) and reconstructed.
    Returns ``{"noisy_error": (L,), "reconstruction_error": (L,)}``: the mean squared error
    against the clean ``x`` of the corrupted input and of its reconstruction.
    """
    x = jnp.asarray(x, jnp.float32)

    def at(level):
        noisy = corrupt(x, key, kind, level)
        out = model.apply(variables, noisy)  # no "noise" rng: the model adds none of its own
        values = out["reconstruction"] if "reconstruction" in out else jax.nn.sigmoid(out["reconstruction_logits"])
        return {"noisy_error": jnp.mean((noisy - x) ** 2), "reconstruction_error": jnp.mean((values - x) ** 2)}

    return jax.jit(jax.vmap(at))(jnp.asarray(noise_levels, jnp.float32))


def latent_grid(size: int, *, quantile: float = 0.95) -> np.ndarray:
    """A ``size x size`` grid of 2-D latent points at evenly spaced Gaussian quantiles in
    ``[1 - quantile, quantile]`` (Kingma & Welling's manifold figure): (size * size, 2),
    row-major, the first coordinate varying along rows."""
    from statistics import NormalDist

    q = np.linspace(1 - quantile, quantile, int(size))
    values = np.array([NormalDist().inv_cdf(float(p)) for p in q], np.float32)
    return np.stack(np.meshgrid(values, values, indexing="ij"), -1).reshape(-1, 2)


register_model(
    "vae",
    VAE,
    family="autoencoder",
    task="reconstruction",
    paper=f"Kingma & Welling 2014, Auto-Encoding Variational Bayes; {SEED} (network zoo: VAE)",
    test_config={"hidden_sizes": (4,), "input_shape": (6,), "latent_size": 2},
    description="Variational autoencoder: Gaussian code by reparameterisation, Bernoulli decoder, ELBO loss.",
)
