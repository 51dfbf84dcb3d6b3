"""PyTorch twins of the benchmark suite's models, written by hand.

These are reference implementations for ``python -m zoo.bench --compare torch``, kept
with the benchmark code rather than in the zoo: torchvision cannot be imported beside
the CPU torch build the project pins, and the zoo itself never depends on torch.

Every builder takes the zoo model's full config (its registry defaults updated by the
suite entry's overrides) and returns a ``torch.nn.Module`` of the same architecture,
whose ``forward`` takes the batch the zoo model takes (token ids as ``long``) and returns
logits whose last axis is the class axis. A config value a twin does not replicate
raises ``ValueError``: the harness then reports the comparison as unavailable instead
of timing a different network.

Image twins compute in PyTorch's native NCHW layout and say so with
``input_layout = "NCHW"``; the harness transposes the (NHWC) batch once, before timing.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from zoo.bench.reference_config import num_classes, require

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


def parameter_count(module: nn.Module) -> int:
    """Trainable parameters (batch-norm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# --------------------------------------------------------------------------------------
# MLP
# --------------------------------------------------------------------------------------


class MLP(nn.Module):
    """Flatten -> [Linear -> activation] * len(hidden_sizes) -> Linear."""

    def __init__(self, in_features: int, hidden_sizes: Sequence[int], num_outputs: int, activation: str):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for n in hidden_sizes:
            layers += [nn.Linear(width, int(n)), _ACTIVATIONS[activation]()]
            width = int(n)
        layers.append(nn.Linear(width, num_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.flatten(1))


def mlp(config: Mapping) -> nn.Module:
    activation = require(config, "activation", ("relu", "tanh", "sigmoid", "gelu"), "MLP")
    require(config, "output_activation", ("identity",), "MLP")
    require(config, "dropout_rate", (0.0, 0), "MLP")
    require(config, "batch_norm", (False,), "MLP")
    return MLP(math.prod(config["input_shape"]), config["hidden_sizes"], num_classes(config), activation)


# --------------------------------------------------------------------------------------
# LeNet-5, modern variant
# --------------------------------------------------------------------------------------


class LeNet5(nn.Module):
    """The common modern LeNet-5: conv 6@5x5 (padding 2) -> max pool 2 -> conv 16@5x5 ->
    max pool 2 -> dense 120 -> 84 -> classes, ReLU. 61,706 parameters on 28x28x1, 10 classes."""

    input_layout = "NCHW"

    def __init__(self, image_size: int, channels: int, num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        side = (image_size // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc3(F.relu(self.fc2(x)))


def lenet5(config: Mapping) -> nn.Module:
    height, width, channels = config["input_shape"]
    if height != width:
        raise ValueError(f"the torch LeNet-5 twin takes square images, got {config['input_shape']}")
    return LeNet5(height, channels, num_classes(config))


# --------------------------------------------------------------------------------------
# ResNet (He et al. 2015, ImageNet form; stride on the 3x3 conv of the bottleneck)
# --------------------------------------------------------------------------------------


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout)]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(cin, width, 3, stride), nn.ReLU(inplace=True), *_conv_bn(width, width, 3)
        )
        needs_projection = stride != 1 or cin != width
        self.shortcut = nn.Sequential(*_conv_bn(cin, width, 1, stride)) if needs_projection else nn.Identity()

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.body = nn.Sequential(
            *_conv_bn(cin, width, 1), nn.ReLU(inplace=True),
            *_conv_bn(width, width, 3, stride), nn.ReLU(inplace=True),
            *_conv_bn(width, cout, 1),
        )
        needs_projection = stride != 1 or cin != cout
        self.shortcut = nn.Sequential(*_conv_bn(cin, cout, 1, stride)) if needs_projection else nn.Identity()

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """conv 7x7/2 -> max pool 3x3/2 -> four stages (64, 128, 256, 512 wide) -> global
    average pool -> dense. ResNet-18 11,689,512 and ResNet-50 25,557,032 parameters at
    1000 classes."""

    input_layout = "NCHW"

    def __init__(self, block, depths: Sequence[int], channels: int, num_classes: int):
        super().__init__()
        layers: list[nn.Module] = [*_conv_bn(channels, 64, 7, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        cin = 64
        for stage, depth in enumerate(depths):
            width = 64 * 2**stage
            for i in range(depth):
                layers.append(block(cin, width, 2 if (i == 0 and stage > 0) else 1))
                cin = width * block.expansion
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def resnet18(config: Mapping) -> nn.Module:
    return ResNet(BasicBlock, (2, 2, 2, 2), config["input_shape"][-1], num_classes(config))


def resnet50(config: Mapping) -> nn.Module:
    return ResNet(Bottleneck, (3, 4, 6, 3), config["input_shape"][-1], num_classes(config))


# --------------------------------------------------------------------------------------
# VGG-11 (configuration A)
# --------------------------------------------------------------------------------------

VGG11_LAYERS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG(nn.Module):
    """3x3 convs (padding 1) with ReLU and 2x2 max pools, then flatten -> 4096 -> 4096 ->
    classes with dropout 0.5, as in the paper (no adaptive pooling): VGG-11 has
    132,863,336 parameters on 224x224x3 at 1000 classes."""

    input_layout = "NCHW"

    def __init__(self, layers, image_size: int, channels: int, num_classes: int, dropout_rate: float):
        super().__init__()
        modules: list[nn.Module] = []
        cin, side = channels, image_size
        for item in layers:
            if item == "M":
                modules.append(nn.MaxPool2d(2))
                side //= 2
            else:
                modules += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU(inplace=True)]
                cin = item
        self.features = nn.Sequential(*modules)
        self.classifier = nn.Sequential(
            nn.Linear(cin * side * side, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout_rate),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout_rate),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def vgg11(config: Mapping) -> nn.Module:
    height, width, channels = config["input_shape"]
    if height != width:
        raise ValueError(f"the torch VGG twin takes square images, got {config['input_shape']}")
    return VGG(VGG11_LAYERS, height, channels, num_classes(config), float(config.get("dropout_rate", 0.5)))


# --------------------------------------------------------------------------------------
# Recurrent sequence classifiers: (B, T, I) -> recurrent layer -> last output -> dense
# --------------------------------------------------------------------------------------


class RecurrentClassifier(nn.Module):
    """torch.nn.LSTM / GRU / RNN (batch first), then a dense layer on the last step."""

    def __init__(self, kind: str, input_size: int, hidden_size: int, num_classes: int):
        super().__init__()
        layer = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
        self.recurrent = layer(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        outputs, _ = self.recurrent(x)
        return self.head(outputs[:, -1])


def _recurrent(kind: str, config: Mapping) -> nn.Module:
    return RecurrentClassifier(kind, config["input_shape"][-1], int(config["hidden_size"]), num_classes(config))


def lstm(config: Mapping) -> nn.Module:
    return _recurrent("lstm", config)


def gru(config: Mapping) -> nn.Module:
    return _recurrent("gru", config)


def rnn(config: Mapping) -> nn.Module:
    return _recurrent("rnn", config)


# --------------------------------------------------------------------------------------
# Sequence to sequence with attention
# --------------------------------------------------------------------------------------


class Seq2SeqAttention(nn.Module):
    """LSTM encoder-decoder with Luong global attention ("general" score
    h_t^T W_a h_s, attentional state tanh(W_c [c_t; h_t])), teacher forcing, no input
    feeding. Input (B, 2, T) token ids: row 0 the source, row 1 the decoder input (the
    target shifted right); output (B, T, tgt_vocab_size) logits."""

    def __init__(self, src_vocab: int, tgt_vocab: int, embed_dim: int, hidden_size: int):
        super().__init__()
        self.src_embed = nn.Embedding(src_vocab, embed_dim)
        self.tgt_embed = nn.Embedding(tgt_vocab, embed_dim)
        self.encoder = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.decoder = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.score = nn.Linear(hidden_size, hidden_size, bias=False)
        self.combine = nn.Linear(2 * hidden_size, hidden_size, bias=False)
        self.out = nn.Linear(hidden_size, tgt_vocab)

    def forward(self, x):
        source, decoder_input = x[:, 0], x[:, 1]
        encoded, state = self.encoder(self.src_embed(source))
        decoded, _ = self.decoder(self.tgt_embed(decoder_input), state)
        weights = torch.softmax(decoded @ self.score(encoded).transpose(1, 2), dim=-1)  # (B, Tt, Ts)
        attentional = torch.tanh(self.combine(torch.cat([weights @ encoded, decoded], dim=-1)))
        return self.out(attentional)


def seq2seq_attention(config: Mapping) -> nn.Module:
    return Seq2SeqAttention(
        int(config["src_vocab_size"]), int(config["tgt_vocab_size"]),
        int(config["embed_dim"]), int(config["hidden_size"]),
    )
