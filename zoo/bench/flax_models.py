"""The suite's architectures from Flax's stock layers, for ``--compare flax``: what a user
would write with plain ``flax.linen``, trained by the zoo's own train step, so a zoo/flax
ratio isolates the model definition. Builders take the zoo model's full config, like the
torch twins, and raise ``ValueError`` for values they do not replicate; every module takes
``(x, train=False)``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import flax.linen as nn
import jax.numpy as jnp

from zoo.bench.reference_config import bahdanau_args, num_classes, require
from zoo.nn.tokens import BOS, PAD

_ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "sigmoid": nn.sigmoid, "gelu": nn.gelu}


class MLP(nn.Module):
    hidden_sizes: Sequence[int]
    num_outputs: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = x.reshape(x.shape[0], -1)
        for n in self.hidden_sizes:
            h = _ACTIVATIONS[self.activation](nn.Dense(int(n))(h))
        return nn.Dense(self.num_outputs)(h)


def mlp(config: Mapping) -> nn.Module:
    activation = require(config, "activation", tuple(_ACTIVATIONS), "MLP")
    require(config, "output_activation", ("identity",), "MLP")
    require(config, "dropout_rate", (0.0, 0), "MLP")
    require(config, "batch_norm", (False,), "MLP")
    return MLP(tuple(config["hidden_sizes"]), num_classes(config), activation)


class LeNet5(nn.Module):
    """Modern LeNet-5 (see `zoo.bench.torch_models.LeNet5`), NHWC."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.max_pool(nn.relu(nn.Conv(6, (5, 5), padding=2)(x)), (2, 2), (2, 2))
        x = nn.max_pool(nn.relu(nn.Conv(16, (5, 5), padding="VALID")(x)), (2, 2), (2, 2))
        x = nn.relu(nn.Dense(120)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes)(nn.relu(nn.Dense(84)(x)))


def lenet5(config: Mapping) -> nn.Module:
    return LeNet5(num_classes(config))


class _ConvBN(nn.Module):
    features: int
    kernel: int
    stride: int = 1

    @nn.compact
    def __call__(self, x, train: bool):
        pad = self.kernel // 2
        x = nn.Conv(self.features, (self.kernel,) * 2, (self.stride,) * 2, padding=[(pad, pad)] * 2, use_bias=False)(x)
        # PyTorch's batch-norm defaults (momentum 0.1 there is 0.9 here), as the twins use.
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)


class _BasicBlock(nn.Module):
    width: int
    stride: int
    expansion = 1

    @nn.compact
    def __call__(self, x, train: bool):
        h = nn.relu(_ConvBN(self.width, 3, self.stride)(x, train))
        h = _ConvBN(self.width, 3)(h, train)
        if self.stride != 1 or x.shape[-1] != self.width:
            x = _ConvBN(self.width, 1, self.stride)(x, train)
        return nn.relu(h + x)


class _Bottleneck(nn.Module):
    width: int
    stride: int
    expansion = 4

    @nn.compact
    def __call__(self, x, train: bool):
        out = self.width * self.expansion
        h = nn.relu(_ConvBN(self.width, 1)(x, train))
        h = nn.relu(_ConvBN(self.width, 3, self.stride)(h, train))
        h = _ConvBN(out, 1)(h, train)
        if self.stride != 1 or x.shape[-1] != out:
            x = _ConvBN(out, 1, self.stride)(x, train)
        return nn.relu(h + x)


class ResNet(nn.Module):
    """ImageNet ResNet (see `zoo.bench.torch_models.ResNet`), NHWC."""

    block: type
    depths: Sequence[int]
    num_classes: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(_ConvBN(64, 7, 2)(x, train))
        x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        for stage, depth in enumerate(self.depths):
            for i in range(depth):
                x = self.block(64 * 2**stage, 2 if (i == 0 and stage > 0) else 1)(x, train)
        return nn.Dense(self.num_classes)(jnp.mean(x, axis=(1, 2)))


def resnet18(config: Mapping) -> nn.Module:
    return ResNet(_BasicBlock, (2, 2, 2, 2), num_classes(config))


def resnet50(config: Mapping) -> nn.Module:
    return ResNet(_Bottleneck, (3, 4, 6, 3), num_classes(config))


VGG11_LAYERS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG(nn.Module):
    """VGG as in the paper (see `zoo.bench.torch_models.VGG`), NHWC."""

    layers: Sequence
    num_classes: int
    dropout_rate: float = 0.5

    @nn.compact
    def __call__(self, x, train: bool = False):
        for item in self.layers:
            if item == "M":
                x = nn.max_pool(x, (2, 2), (2, 2))
            else:
                x = nn.relu(nn.Conv(item, (3, 3), padding=1)(x))
        x = x.reshape(x.shape[0], -1)
        for _ in range(2):
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(nn.relu(nn.Dense(4096)(x)))
        return nn.Dense(self.num_classes)(x)


def vgg11(config: Mapping) -> nn.Module:
    return VGG(VGG11_LAYERS, num_classes(config), float(config.get("dropout_rate", 0.5)))


_CELLS = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell, "rnn": nn.SimpleCell}


class RecurrentClassifier(nn.Module):
    """``nn.RNN(cell)`` over (B, T, I), then a dense layer on the last step."""

    kind: str
    hidden_size: int
    num_classes: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        outputs = nn.RNN(_CELLS[self.kind](self.hidden_size))(x)
        return nn.Dense(self.num_classes)(outputs[:, -1])


def lstm(config: Mapping) -> nn.Module:
    return RecurrentClassifier("lstm", int(config["hidden_size"]), num_classes(config))


def gru(config: Mapping) -> nn.Module:
    return RecurrentClassifier("gru", int(config["hidden_size"]), num_classes(config))


def rnn(config: Mapping) -> nn.Module:
    return RecurrentClassifier("rnn", int(config["hidden_size"]), num_classes(config))


class _BahdanauStep(nn.Module):
    """One decoder step: additive attention on the previous state, then a GRU cell."""

    width: int
    units: int

    @nn.compact
    def __call__(self, state, embedded, memory, keys, mask):
        scores = nn.Dense(1, use_bias=False)(jnp.tanh(keys + nn.Dense(self.units, use_bias=False)(state)[:, None]))
        scores = jnp.where(mask, scores[..., 0], jnp.finfo(scores.dtype).min)
        weights = jnp.where(mask, nn.softmax(scores, axis=-1), 0.0)
        context = jnp.einsum("bs,bsd->bd", weights, memory)
        state, _ = nn.GRUCell(self.width)(state, jnp.concatenate([embedded, context], -1))
        return state, jnp.concatenate([state, context], -1)


class Seq2SeqBahdanau(nn.Module):
    """Bahdanau et al.'s encoder-decoder (see `zoo.bench.torch_models.Seq2SeqBahdanau`):
    ``nn.Bidirectional`` GRU encoder, the decoder step under ``nn.scan``. x (B, S) int,
    y (B, T) int -> logits (B, T, V), teacher forced."""

    vocab_size: int
    target_vocab_size: int
    embed_dim: int
    hidden_size: int
    attention_units: int | None = None
    bos_id: int = BOS

    @nn.compact
    def __call__(self, x, y, train: bool = False):
        width = 2 * self.hidden_size
        mask = x != PAD
        encoder = nn.Bidirectional(
            nn.RNN(nn.GRUCell(self.hidden_size)), nn.RNN(nn.GRUCell(self.hidden_size)), return_carry=True
        )
        (forward, backward), memory = encoder(
            nn.Embed(self.vocab_size, self.embed_dim)(x), seq_lengths=jnp.sum(mask, -1)
        )
        keys = nn.Dense(self.attention_units or width, use_bias=False)(memory)
        inputs = jnp.concatenate([jnp.full_like(y[:, :1], self.bos_id), y[:, :-1]], 1)
        embedded = nn.Embed(self.target_vocab_size, self.embed_dim)(inputs)
        decode = nn.scan(
            _BahdanauStep,
            variable_broadcast="params",
            split_rngs={"params": False},
            in_axes=(1, nn.broadcast, nn.broadcast, nn.broadcast),
            out_axes=1,
        )
        _, outputs = decode(width, self.attention_units or width)(
            jnp.concatenate([forward, backward], -1), embedded, memory, keys, mask
        )
        return nn.Dense(self.target_vocab_size)(outputs)


def seq2seq_bahdanau(config: Mapping) -> nn.Module:
    return Seq2SeqBahdanau(*bahdanau_args(config))
