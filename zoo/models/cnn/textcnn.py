"""Text CNN: Kim 2014, "Convolutional neural networks for sentence classification"
(seed: kang-lecture4, "CNN for text analytics: sentiment classification and word
localization", after Lee, Jeong, Seo, Kim & Kang 2018).

Inputs are token ids ``(B, T)`` int32 (0 = padding, see `zoo.data.text`); outputs
``(B, num_classes)`` logits. `word_importance` gives the class activation over time:
how much each token contributed to a class's logit.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoo.nn.tokens import KIM_UNKNOWN_SCALE, PAD
from zoo.nn import check_input
from zoo.nn.initializers import lecun_normal
from zoo.registry import register_model

PAPER = "Kim 2014, Convolutional neural networks for sentence classification (EMNLP)"
SEED = "kang-lecture4 (CNN for text analytics: sentiment classification and word localization; Lee et al. 2018)"

# Kim's four variants: where the word vectors come from and whether training moves them.
EMBEDDING_MODES = (
    "rand",  # random vectors, trained
    "static",  # pre-trained vectors, frozen
    "non-static",  # pre-trained vectors, fine-tuned
    "multichannel",  # one frozen and one fine-tuned copy of the pre-trained vectors
)
_PRETRAINED_MODES = ("static", "non-static", "multichannel")
_TRAINED_MODES = ("rand", "non-static", "multichannel")
_FROZEN_MODES = ("static", "multichannel")

_Conv = functools.partial(nn.Conv, kernel_init=lecun_normal)
_Dense = functools.partial(nn.Dense, kernel_init=lecun_normal)


class PretrainedVectors:
    """A read-only ``(vocab_size, dim)`` float32 matrix as a module field: fields must hash
    and print briefly (the run's config records the repr); this holder hashes by identity."""

    def __init__(self, matrix):
        matrix = np.array(matrix, dtype=np.float32)  # a private copy
        if matrix.ndim != 2 or 0 in matrix.shape:
            raise ValueError(f"pretrained word vectors must be a (vocab_size, dim) matrix, got shape {matrix.shape}")
        if not np.all(np.isfinite(matrix)):
            raise ValueError("pretrained word vectors hold NaN or infinite values")
        matrix.setflags(write=False)
        self.matrix = matrix

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def __repr__(self) -> str:
        return f"PretrainedVectors(shape={self.matrix.shape})"


def _is_tracer(x) -> bool:
    return isinstance(x, jax.core.Tracer)


class TextCNN(nn.Module):
    """Kim's CNN for sentence classification: ``(B, T)`` int token ids -> ``(B, num_classes)``.

    Embedding -> per width h in ``filter_widths``, ``num_filters`` VALID convolutions over
    h words -> ReLU -> max over time -> concatenated ``(B, len(filter_widths) *
    num_filters)`` (``forward_features``) -> dropout -> dense (``head``).

    ``embedding_mode``: "rand" (trained from U[-0.25, 0.25]), "static" (``pretrained_vectors``
    frozen: the "constants" collection, read through ``stop_gradient``), "non-static"
    (initialised from them, trained) or "multichannel" (both; the same filters on both
    channels, computed by linearity on their sum). Padding (id 0) embeds to zero. Ids must
    be in ``[0, vocab_size)``: eager calls check, under jit an out-of-range id reads NaN.
    Kim's max-norm constraint on the output weights is not applied.
    """

    input_shape: tuple = (64,)
    vocab_size: int = 20_000
    embedding_dim: int = 300
    filter_widths: tuple[int, ...] = (3, 4, 5)
    num_filters: int = 100
    dropout_rate: float = 0.5
    num_classes: int = 2
    embedding_mode: str = "rand"
    # A (vocab_size, embedding_dim) matrix, or the PretrainedVectors holder it is wrapped in.
    pretrained_vectors: PretrainedVectors | None = None

    def __post_init__(self):
        vectors = self.pretrained_vectors
        if vectors is not None and not isinstance(vectors, PretrainedVectors):
            # Before Flax freezes the fields: a module field must hash (see PretrainedVectors).
            object.__setattr__(self, "pretrained_vectors", PretrainedVectors(vectors))
        _validate(self)
        super().__post_init__()

    def setup(self):
        mode = self.embedding_mode
        shape = (self.vocab_size, self.embedding_dim)
        if mode in _TRAINED_MODES:
            if mode == "rand":
                init = _symmetric_uniform(KIM_UNKNOWN_SCALE)
            else:
                vectors = self.pretrained_vectors.matrix

                def init(key, shape, dtype=jnp.float32):  # the pre-trained vectors, whatever the key
                    return jnp.asarray(vectors, dtype)

            self.embedding = self.param("embedding", init, shape)
        if mode in _FROZEN_MODES:
            vectors = self.pretrained_vectors.matrix
            self.static_embedding = self.variable("constants", "static_embedding", lambda: jnp.asarray(vectors))
        self.convs = [_Conv(self.num_filters, (h,), padding="VALID") for h in self.filter_widths]
        self.dropout = nn.Dropout(self.dropout_rate)
        self.classifier = _Dense(self.num_classes)

    @property
    def num_features(self) -> int:
        """Width of the pooled features: ``len(filter_widths) * num_filters``."""
        return len(self.filter_widths) * self.num_filters

    def _checked_ids(self, token_ids):
        # Token ids that arrive as floats (a float pipeline, or an init on float zeros) must
        # be whole numbers; they are taken as int32 ids.
        name = f"TextCNN(input_shape={tuple(self.input_shape)})"
        # Ranges are checked on the host, while the ids are still concrete (eager calls,
        # or arrays closed over by a jit'd function); traced ids cannot be inspected.
        concrete = None if _is_tracer(token_ids) else np.asarray(token_ids)
        token_ids = jnp.asarray(token_ids)
        if jnp.issubdtype(token_ids.dtype, jnp.floating):
            token_ids = token_ids.astype(jnp.int32)
        check_input(token_ids, self.input_shape, model=name, dtype_kind="int")
        if token_ids.ndim != 2:
            raise ValueError(f"{name} expects token ids of shape (B, T), got {token_ids.shape}")
        if token_ids.shape[1] < max(self.filter_widths):
            raise ValueError(
                f"{name}: {token_ids.shape[1]} tokens are fewer than the widest filter "
                f"({max(self.filter_widths)}); pad the texts to at least that length"
            )
        if concrete is not None and concrete.size and np.issubdtype(concrete.dtype, np.number):
            if np.issubdtype(concrete.dtype, np.floating) and not np.all(concrete == np.round(concrete)):
                raise ValueError(
                    f"{name} expects int token ids of shape (B, T), got fractional {concrete.dtype} values"
                )
            low, high = int(concrete.min()), int(concrete.max())
            if low < 0 or high >= self.vocab_size:
                raise ValueError(
                    f"{name}: token ids must be in [0, {self.vocab_size}) (vocab_size), got ids from {low} to {high}"
                )
        return token_ids

    def embed(self, token_ids):
        """``(B, T)`` int -> ``(B, T, embedding_dim)`` float32: the word vectors, the two
        channels summed in multichannel mode, zero at padding."""
        channels = []
        if self.embedding_mode in _TRAINED_MODES:
            channels.append(jnp.take(self.embedding, token_ids, axis=0))
        if self.embedding_mode in _FROZEN_MODES:
            # stop_gradient as well as the "constants" collection: even a gradient taken
            # with respect to every variable leaves the static channel at zero.
            static = jax.lax.stop_gradient(self.static_embedding.value)
            channels.append(jnp.take(static, token_ids, axis=0))
        vectors = channels[0] if len(channels) == 1 else channels[0] + channels[1]
        return vectors * (token_ids != PAD)[..., None].astype(vectors.dtype)

    def feature_maps(self, token_ids, train: bool = False) -> list[jax.Array]:
        """Post-ReLU maps over time, one per width h: ``(B, T - h + 1, num_filters)``, position
        i the window of tokens ``i .. i + h - 1`` (``train``: the zoo's convention, unused)."""
        return self._maps(self._checked_ids(token_ids))

    def _maps(self, token_ids):
        vectors = self.embed(token_ids)
        return [nn.relu(conv(vectors)) for conv in self.convs]

    def forward_features(self, token_ids, train: bool = False):
        """``(B, T)`` -> ``(B, num_features)``: each feature map's maximum over time."""
        return jnp.concatenate([m.max(axis=1) for m in self.feature_maps(token_ids)], axis=-1)

    def head(self, features, train: bool = False):
        """``(B, num_features)`` -> ``(B, num_classes)`` logits (dropout in training only)."""
        return self.classifier(self.dropout(features, deterministic=not train))

    def __call__(self, token_ids, train: bool = False):
        return self.head(self.forward_features(token_ids, train), train)

    def class_activation_over_time(self, token_ids, target_class):
        """Per-token contributions to the logit of ``target_class`` ``(B,)`` int: ``(B, T)``.

        The seed's CAM carried over to max-over-time pooling: feature k (width h_k) enters
        logit c as ``w[k, c] * f_k(i*_k)``, i*_k its first argmax window; each of that
        window's h_k tokens gets an equal share, so a text's scores sum to
        ``logit[c] - bias[c]`` (inference mode).
        """
        token_ids = self._checked_ids(token_ids)
        maps = self._maps(token_ids)
        kernel = self.classifier.variables["params"]["kernel"]  # (num_features, num_classes)
        class_weights = jnp.take(kernel, target_class, axis=1).T  # (B, num_features)
        num_tokens = token_ids.shape[1]
        scores = jnp.zeros(token_ids.shape, jnp.float32)
        for k, (h, maps_h) in enumerate(zip(self.filter_widths, maps)):
            weights = class_weights[:, k * self.num_filters : (k + 1) * self.num_filters]  # (B, F)
            winners = jax.nn.one_hot(jnp.argmax(maps_h, axis=1), maps_h.shape[1], axis=1)  # (B, L, F)
            window_scores = jnp.einsum("blf,bf->bl", winners, maps_h.max(axis=1) * weights)  # (B, L)
            # Token t lies in windows t - h + 1 .. t: sum those, each shared over h tokens.
            padded = jnp.pad(window_scores, ((0, 0), (h - 1, h - 1)))
            scores += sum(padded[:, h - 1 - j : h - 1 - j + num_tokens] for j in range(h)) / h
        return scores


def _symmetric_uniform(scale):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


def _validate(m: TextCNN) -> None:
    name = "TextCNN"
    shape = tuple(m.input_shape)
    if len(shape) != 1 or (shape[0] is not None and int(shape[0]) <= 0):
        raise ValueError(f"{name}: input_shape must be (T,) (T tokens, or None for any length), got {shape}")
    widths = tuple(m.filter_widths)
    if not widths or any(int(h) <= 0 for h in widths):
        raise ValueError(f"{name}: filter_widths must be positive window sizes, got {widths}")
    if shape[0] is not None and shape[0] < max(widths):
        raise ValueError(f"{name}: input_shape {shape} is shorter than the widest filter ({max(widths)})")
    for key in ("vocab_size", "embedding_dim", "num_filters", "num_classes"):
        if int(getattr(m, key)) <= 0:
            raise ValueError(f"{name}: {key} must be positive, got {getattr(m, key)}")
    if m.vocab_size < 2:
        raise ValueError(f"{name}: vocab_size must be at least 2 (PAD and UNK), got {m.vocab_size}")
    if not 0.0 <= m.dropout_rate < 1.0:
        raise ValueError(f"{name}: dropout_rate must be in [0, 1), got {m.dropout_rate}")
    if m.embedding_mode not in EMBEDDING_MODES:
        raise ValueError(f"{name}: unknown embedding_mode {m.embedding_mode!r}; expected one of {EMBEDDING_MODES}")
    vectors = m.pretrained_vectors
    if m.embedding_mode in _PRETRAINED_MODES:
        if vectors is None:
            raise ValueError(
                f"{name}: embedding_mode={m.embedding_mode!r} needs pretrained_vectors, a "
                f"({m.vocab_size}, {m.embedding_dim}) matrix (zoo.data.text.load_word_vectors)"
            )
        if vectors.shape != (m.vocab_size, m.embedding_dim):
            raise ValueError(
                f"{name}: pretrained_vectors have shape {vectors.shape} but the model has "
                f"vocab_size={m.vocab_size}, embedding_dim={m.embedding_dim}; build the "
                "vectors with the dataset's vocabulary and set embedding_dim to their dimension"
            )
    elif vectors is not None:
        raise ValueError(
            f"{name}: embedding_mode='rand' trains random vectors and ignores "
            "pretrained_vectors; use 'static', 'non-static' or 'multichannel'"
        )


def word_importance(model: TextCNN, variables, token_ids, target_class=None) -> jax.Array:
    """Per-token contribution of ``token_ids`` ``(B, T)`` to ``target_class`` (an int, ``(B,)``
    ints, or None: the predicted class): ``(B, T)`` float32, as defined by
    `TextCNN.class_activation_over_time`; high scores mark the words that decided the class.
    """
    token_ids = jnp.asarray(token_ids)
    if target_class is None:
        target_class = jnp.argmax(model.apply(variables, token_ids), axis=-1)
    target_class = jnp.broadcast_to(jnp.asarray(target_class, jnp.int32), token_ids.shape[:1])
    if not _is_tracer(target_class) and target_class.size:
        low, high = int(np.min(target_class)), int(np.max(target_class))
        if low < 0 or high >= model.num_classes:
            raise ValueError(f"target_class must be in [0, {model.num_classes}), got {low}..{high}")
    return model.apply(variables, token_ids, target_class, method=TextCNN.class_activation_over_time)


def _small_test_vectors():
    # Tiny pre-trained stand-ins, so the registry-wide test covers the multichannel mode:
    # a trained embedding in "params" and a frozen one in "constants".
    return np.random.default_rng(0).uniform(-0.25, 0.25, (40, 8)).astype(np.float32)


register_model(
    "text_cnn",
    TextCNN,
    family="cnn",
    paper=f"{PAPER}; seed {SEED}",
    task="classification",
    input_dtype="int32",
    test_config={
        "input_shape": (12,),
        "vocab_size": 40,
        "embedding_dim": 8,
        "num_filters": 4,
        "num_classes": 3,
        "embedding_mode": "multichannel",
        "pretrained_vectors": _small_test_vectors(),
    },
    description=(
        "Kim's text CNN (widths 3/4/5 x 100 maps, dropout 0.5) over ``(B, T)`` int32 token ids. "
        '``embedding_mode``: "rand", "static", "non-static" or "multichannel"; the last '
        "three need ``pretrained_vectors``, a ``(vocab_size, embedding_dim)`` matrix such as "
        "`zoo.data.text.load_word_vectors` returns."
    ),
)
