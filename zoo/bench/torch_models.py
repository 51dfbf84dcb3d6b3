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

The CNN twins also carry torchvision's module layout and ``state_dict()`` key names
(torchvision itself cannot be imported beside the pinned CPU torch), so the weight-import
tests of `zoo.interop` check against the same networks the benchmark times: ResNet,
DenseNet, AlexNet (torchvision's and the paper's) and VGG (as in the paper, or with
torchvision's 7x7 adaptive pool). Their sizes are constructor arguments, so tests build
small ones.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from zoo.bench.reference_config import bahdanau_args, num_classes, require
from zoo.nn.tokens import BOS, PAD

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
# ResNet (torchvision.models.resnet: conv1, bn1, layer1..4 of blocks, fc)
# --------------------------------------------------------------------------------------


def _downsample(cin: int, cout: int, stride: int) -> nn.Module | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, width, stride)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """torchvision's v1.5 bottleneck: the stride sits on the 3x3 conv."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, cout, stride)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """torchvision's ImageNet ResNet (He et al. 2015): conv 7x7/2 -> max pool 3x3/2 ->
    stages of ``width`` * 1, 2, 4, 8 filters (64 there) -> global average pool -> dense.
    ResNet-18 11,689,512 and ResNet-50 25,557,032 parameters at 1000 classes."""

    input_layout = "NCHW"

    def __init__(self, block, layers: Sequence[int], num_classes: int = 1000, width: int = 64, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = width
        for i, n in enumerate(layers):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, width * 2**i, 2 if (i > 0 and j == 0) else 1))
                cin = width * 2**i * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_stages = len(layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(x.mean((2, 3)))


def resnet18(config: Mapping) -> nn.Module:
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes(config), in_channels=config["input_shape"][-1])


def resnet50(config: Mapping) -> nn.Module:
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes(config), in_channels=config["input_shape"][-1])


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
            nn.Linear(cin * side * side, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout_rate),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout_rate),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def vgg11(config: Mapping) -> nn.Module:
    height, width, channels = config["input_shape"]
    if height != width:
        raise ValueError(f"the torch VGG twin takes square images, got {config['input_shape']}")
    return VGG(VGG11_LAYERS, height, channels, num_classes(config), float(config.get("dropout_rate", 0.5)))


def vgg_layers(divisor: int = 1, layers=VGG11_LAYERS) -> tuple:
    """VGG-11's feature layers with every width divided by ``divisor``."""
    return tuple(item if item == "M" else item // divisor for item in layers)


class VGGTorchvision(VGG):
    """torchvision's VGG: `VGG`'s features and classifier (torchvision's indices), with the
    last map average-pooled to 7x7 first, so the classifier takes C*7*7 inputs at any
    input size."""

    def __init__(self, layers, channels: int = 3, num_classes: int = 1000, dropout_rate: float = 0.5):
        super().__init__(layers, 224, channels, num_classes, dropout_rate)  # 224/32 = 7: C*7*7 inputs
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


# --------------------------------------------------------------------------------------
# DenseNet (torchvision.models.densenet: features.{conv0, norm0, denseblockI, transitionI,
# norm5}, classifier)
# --------------------------------------------------------------------------------------


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth_rate: int, bn_size: int):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(cin, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, 1, 1, bias=False)

    def forward(self, x):
        y = self.conv1(self.relu1(self.norm1(x)))
        y = self.conv2(self.relu2(self.norm2(y)))
        return torch.cat([x, y], 1)


class DenseBlock(nn.ModuleDict):
    def __init__(self, num_layers: int, cin: int, growth_rate: int, bn_size: int):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(cin + i * growth_rate, growth_rate, bn_size))

    def forward(self, x):
        for layer in self.values():
            x = layer(x)
        return x


class Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(
            OrderedDict(
                norm=nn.BatchNorm2d(cin),
                relu=nn.ReLU(),
                conv=nn.Conv2d(cin, cout, 1, bias=False),
                pool=nn.AvgPool2d(2, 2),
            )
        )


class DenseNet(nn.Module):
    """torchvision's DenseNet-BC (DenseNet-121: growth 32, blocks (6, 12, 24, 16), 64 stem filters)."""

    input_layout = "NCHW"

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        num_classes: int = 1000,
    ):
        super().__init__()
        layers = OrderedDict(
            conv0=nn.Conv2d(3, num_init_features, 7, 2, 3, bias=False),
            norm0=nn.BatchNorm2d(num_init_features),
            relu0=nn.ReLU(),
            pool0=nn.MaxPool2d(3, 2, 1),
        )
        c = num_init_features
        for i, n in enumerate(block_config):
            layers[f"denseblock{i + 1}"] = DenseBlock(n, c, growth_rate, bn_size)
            c += n * growth_rate
            if i < len(block_config) - 1:
                layers[f"transition{i + 1}"] = Transition(c, c // 2)
                c //= 2
        layers["norm5"] = nn.BatchNorm2d(c)
        self.features = nn.Sequential(layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.classifier(F.relu(self.features(x)).mean((2, 3)))


# --------------------------------------------------------------------------------------
# AlexNet: torchvision's 64-filter variant, and the paper's (LRN, two-tower grouping)
# --------------------------------------------------------------------------------------


class AlexNetTorchvision(nn.Module):
    """torchvision.models.AlexNet: features 0, 3, 6, 8, 10; avgpool 6x6; classifier 1, 4, 6."""

    input_layout = "NCHW"

    def __init__(self, num_classes: int = 1000, widths: Sequence[int] = (64, 192, 384, 256, 256), fc_size: int = 4096):
        super().__init__()
        w = widths
        self.features = nn.Sequential(
            nn.Conv2d(3, w[0], 11, 4, 2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(w[0], w[1], 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(w[1], w[2], 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(w[2], w[3], 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(w[3], w[4], 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),
            nn.Linear(w[4] * 36, fc_size),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(fc_size, fc_size),
            nn.ReLU(inplace=True),
            nn.Linear(fc_size, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


class AlexNetPaper(nn.Module):
    """The paper's AlexNet as a Sequential port would write it (features 0, 4, 8, 10, 12;
    classifier 0, 3, 6): LRN after conv1 and conv2, conv2/4/5 split into ``groups`` towers,
    no adaptive pool (227x227 gives the 6x6 map). torch's LRN divides alpha by the window
    size, so alpha 1e-4 of the paper is 5e-4 here."""

    input_layout = "NCHW"

    def __init__(
        self,
        num_classes: int = 1000,
        widths: Sequence[int] = (96, 256, 384, 384, 256),
        fc_size: int = 4096,
        groups: int = 2,
        padding: int = 0,
        last_map: int = 6,
    ):
        super().__init__()
        w, g = widths, groups
        self.features = nn.Sequential(
            nn.Conv2d(3, w[0], 11, 4, padding),
            nn.ReLU(),
            nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(w[0], w[1], 5, padding=2, groups=g),
            nn.ReLU(),
            nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(w[1], w[2], 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(w[2], w[3], 3, padding=1, groups=g),
            nn.ReLU(),
            nn.Conv2d(w[3], w[4], 3, padding=1, groups=g),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(w[4] * last_map * last_map, fc_size),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(fc_size, fc_size),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(fc_size, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


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
# Sequence to sequence: Bahdanau et al.'s encoder-decoder
# --------------------------------------------------------------------------------------


class Seq2SeqBahdanau(nn.Module):
    """Bahdanau, Cho & Bengio 2015, as the zoo's ``seq2seq_bahdanau`` computes it:
    bidirectional GRU encoder over the source (each sequence's length = its non-padding
    tokens); a GRU decoder of width 2H starting from both final states side by side;
    additive attention v^T tanh(W_1 h_s + W_2 s_(t-1)) on the previous decoder state, the
    padded positions masked; the context joins the decoder input; readout W_o [s_t; c_t].

    ``forward(x (B, S) long, y (B, T) long) -> logits (B, T, V)``, teacher forced: the
    decoder reads [BOS, y_0, ..., y_(T-2)], one ``GRUCell`` step per target token.
    """

    def __init__(
        self,
        vocab_size: int,
        target_vocab_size: int,
        embed_dim: int,
        hidden_size: int,
        attention_units: int | None = None,
        bos_id: int = BOS,
    ):
        super().__init__()
        width = 2 * hidden_size
        units = attention_units or width
        self.bos_id = bos_id
        self.source_embedding = nn.Embedding(vocab_size, embed_dim)
        self.encoder = nn.GRU(embed_dim, hidden_size, batch_first=True, bidirectional=True)
        self.target_embedding = nn.Embedding(target_vocab_size, embed_dim)
        self.decoder = nn.GRUCell(embed_dim + width, width)
        self.W_1 = nn.Linear(width, units, bias=False)
        self.W_2 = nn.Linear(width, units, bias=False)
        self.v = nn.Linear(units, 1, bias=False)
        self.output = nn.Linear(2 * width, target_vocab_size)

    def forward(self, x, y):
        mask = x != PAD
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            self.source_embedding(x), lengths, batch_first=True, enforce_sorted=False
        )
        memory, final = self.encoder(packed)
        memory, _ = nn.utils.rnn.pad_packed_sequence(memory, batch_first=True, total_length=x.shape[1])
        state = torch.cat([final[0], final[1]], -1)  # forward and backward final states, (B, 2H)
        keys = self.W_1(memory)  # the source's part of the score, once per sequence
        start = torch.full_like(y[:, :1], self.bos_id)
        embedded = self.target_embedding(torch.cat([start, y[:, :-1]], 1))
        lowest = torch.finfo(keys.dtype).min
        outputs = []
        for t in range(y.shape[1]):
            scores = self.v(torch.tanh(keys + self.W_2(state)[:, None])).squeeze(-1)
            weights = torch.softmax(scores.masked_fill(~mask, lowest), -1) * mask
            context = torch.bmm(weights[:, None], memory)[:, 0]
            state = self.decoder(torch.cat([embedded[:, t], context], -1), state)
            outputs.append(torch.cat([state, context], -1))
        return self.output(torch.stack(outputs, 1))


def seq2seq_bahdanau(config: Mapping) -> nn.Module:
    return Seq2SeqBahdanau(*bahdanau_args(config))


# --------------------------------------------------------------------------------------
# Convolutional autoencoder, SegNet, U-Net (zoo.models.autoencoders)
# --------------------------------------------------------------------------------------


def _conv_bn_relu(cin: int, widths: Sequence[int], batch_norm: bool) -> nn.Sequential:
    """3x3 padding-1 convs, each followed by [BatchNorm2d] and ReLU (zoo's ConvStack)."""
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Conv2d(cin, int(w), 3, padding=1, bias=not batch_norm)]
        layers += [nn.BatchNorm2d(int(w), momentum=0.1, eps=1e-5)] if batch_norm else []
        layers += [nn.ReLU()]
        cin = int(w)
    return nn.Sequential(*layers)


class ConvAutoencoder(nn.Module):
    """Encoder stages conv-ReLU-maxpool; decoder stages MaxUnpool2d at the remembered
    argmax ("unpool") or ConvTranspose2d(3, stride 2, padding 1, output_padding 1)
    ("transposed"), then conv-ReLU; a 3x3 conv to the input's channels. NCHW logits."""

    input_layout = "NCHW"

    def __init__(self, channels: int, features: Sequence[int], decoder: str, batch_norm: bool):
        super().__init__()
        self.decoder = decoder
        features = [int(f) for f in features]
        outs = [features[0], *features[:-1]]
        self.down = nn.ModuleList(_conv_bn_relu(c, (f,), batch_norm) for c, f in zip([channels, *features], features))
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        if decoder == "transposed":
            self.up = nn.ModuleList(nn.ConvTranspose2d(f, o, 3, 2, 1, output_padding=1) for f, o in zip(features, outs))
        ins = outs if decoder == "transposed" else features
        self.up_convs = nn.ModuleList(_conv_bn_relu(i, (o,), batch_norm) for i, o in zip(ins, outs))
        self.out = nn.Conv2d(features[0], channels, 3, padding=1)

    def forward(self, x):
        indices = []
        for stage in self.down:
            x, idx = self.pool(stage(x))
            indices.append(idx)
        for i in reversed(range(len(self.down))):
            x = self.unpool(x, indices[i]) if self.decoder == "unpool" else self.up[i](x)
            x = self.up_convs[i](x)
        return self.out(x)


def conv_autoencoder(config: Mapping) -> nn.Module:
    decoder = require(config, "decoder", ("unpool", "transposed"), "ConvAutoencoder")
    return ConvAutoencoder(config["input_shape"][-1], config["features"], decoder, bool(config["batch_norm"]))


class SegNet(nn.Module):
    """SegNet: conv-BN-ReLU stages with indexed max pools; MaxUnpool2d + conv-BN-ReLU
    decoder; 1x1 classifier. Logits NHWC (class axis last)."""

    input_layout = "NCHW"

    def __init__(self, channels: int, num_classes: int, features: Sequence[int], convs_per_stage: int):
        super().__init__()
        features = [int(f) for f in features]
        outs = [features[0], *features[:-1]]
        n = int(convs_per_stage)
        self.encoder = nn.ModuleList(_conv_bn_relu(c, (f,) * n, True) for c, f in zip([channels, *features], features))
        self.decoder = nn.ModuleList(_conv_bn_relu(f, (f,) * (n - 1) + (o,), True) for f, o in zip(features, outs))
        self.pool, self.unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
        self.classifier = nn.Conv2d(features[0], num_classes, 1)

    def forward(self, x):
        indices = []
        for stage in self.encoder:
            x, idx = self.pool(stage(x))
            indices.append(idx)
        for i in reversed(range(len(self.decoder))):
            x = self.decoder[i](self.unpool(x, indices[i]))
        return self.classifier(x).permute(0, 2, 3, 1)


def segnet(config: Mapping) -> nn.Module:
    return SegNet(config["input_shape"][-1], config["num_classes"], config["features"], config["convs_per_stage"])


class UNet(nn.Module):
    """U-Net with padded convs: double conv + max pool down, ConvTranspose2d(2, 2) up,
    concatenation [skip, up], double conv; 1x1 classifier. Logits NHWC."""

    input_layout = "NCHW"

    def __init__(self, channels: int, num_classes: int, features: Sequence[int], batch_norm: bool):
        super().__init__()
        features = [int(f) for f in features]
        self.down = nn.ModuleList(_conv_bn_relu(c, (f, f), batch_norm) for c, f in zip([channels, *features], features))
        self.up = nn.ModuleList(nn.ConvTranspose2d(features[i + 1], f, 2, 2) for i, f in enumerate(features[:-1]))
        self.up_convs = nn.ModuleList(_conv_bn_relu(2 * f, (f, f), batch_norm) for f in features[:-1])
        self.classifier = nn.Conv2d(features[0], num_classes, 1)

    def forward(self, x):
        skips = []
        for level in self.down[:-1]:
            skips.append(level(x))
            x = F.max_pool2d(skips[-1], 2)
        x = self.down[-1](x)
        for i in reversed(range(len(skips))):
            x = self.up_convs[i](torch.cat([skips[i], self.up[i](x)], 1))
        return self.classifier(x).permute(0, 2, 3, 1)


def unet(config: Mapping) -> nn.Module:
    return UNet(config["input_shape"][-1], config["num_classes"], config["features"], bool(config["batch_norm"]))
