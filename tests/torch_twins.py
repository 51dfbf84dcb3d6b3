"""Hand-written PyTorch twins with torchvision's module layout and key names, for the
weight-import tests (torchvision itself cannot be imported beside the pinned CPU torch).

Each class reproduces torchvision's ``state_dict()`` keys and its forward pass in eval
mode; sizes are parameters so tests can build small ones. VGG reuses the benchmark twin
(`zoo.bench.torch_models.VGG`, torchvision's ``features``/``classifier`` indices) and adds
torchvision's 7x7 adaptive pool. Inputs are NCHW float32.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from zoo.bench import torch_models


def randomize_batch_norm(module: nn.Module, generator: torch.Generator) -> None:
    """Random affine parameters and running statistics for every BatchNorm2d, so an import
    that mixed up scale/bias/mean/var, or ignored the statistics, changes the outputs."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                m.bias.copy_(0.2 * torch.randn(n, generator=generator))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
                m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)


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
        self.downsample = _downsample(cin, width, stride)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


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
        self.downsample = _downsample(cin, cout, stride)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """torchvision's ImageNet ResNet; ``width`` (64 there) scales every stage."""

    def __init__(self, block, layers: Sequence[int], num_classes: int = 1000, width: int = 64,
                 in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
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
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(x.mean((2, 3)))


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
        super().__init__(OrderedDict(norm=nn.BatchNorm2d(cin), relu=nn.ReLU(),
                                     conv=nn.Conv2d(cin, cout, 1, bias=False),
                                     pool=nn.AvgPool2d(2, 2)))


class DenseNet(nn.Module):
    """torchvision's DenseNet-BC (DenseNet-121: growth 32, blocks (6, 12, 24, 16), 64 stem filters)."""

    def __init__(self, growth_rate: int = 32, block_config: Sequence[int] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, num_classes: int = 1000):
        super().__init__()
        layers = OrderedDict(conv0=nn.Conv2d(3, num_init_features, 7, 2, 3, bias=False),
                             norm0=nn.BatchNorm2d(num_init_features), relu0=nn.ReLU(),
                             pool0=nn.MaxPool2d(3, 2, 1))
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

    def __init__(self, num_classes: int = 1000, widths: Sequence[int] = (64, 192, 384, 256, 256),
                 fc_size: int = 4096):
        super().__init__()
        w = widths
        self.features = nn.Sequential(
            nn.Conv2d(3, w[0], 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(w[0], w[1], 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(w[1], w[2], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w[2], w[3], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w[3], w[4], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(w[4] * 36, fc_size), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(fc_size, fc_size), nn.ReLU(inplace=True),
            nn.Linear(fc_size, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


class AlexNetPaper(nn.Module):
    """The paper's AlexNet as a Sequential port would write it (features 0, 4, 8, 10, 12;
    classifier 0, 3, 6): LRN after conv1 and conv2, conv2/4/5 split into ``groups`` towers,
    no adaptive pool (227x227 gives the 6x6 map). torch's LRN divides alpha by the window
    size, so alpha 1e-4 of the paper is 5e-4 here."""

    def __init__(self, num_classes: int = 1000, widths: Sequence[int] = (96, 256, 384, 384, 256),
                 fc_size: int = 4096, groups: int = 2, padding: int = 0, last_map: int = 6):
        super().__init__()
        w, g = widths, groups
        self.features = nn.Sequential(
            nn.Conv2d(3, w[0], 11, 4, padding), nn.ReLU(), nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(w[0], w[1], 5, padding=2, groups=g), nn.ReLU(),
            nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0), nn.MaxPool2d(3, 2),
            nn.Conv2d(w[1], w[2], 3, padding=1), nn.ReLU(),
            nn.Conv2d(w[2], w[3], 3, padding=1, groups=g), nn.ReLU(),
            nn.Conv2d(w[3], w[4], 3, padding=1, groups=g), nn.ReLU(), nn.MaxPool2d(3, 2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(w[4] * last_map * last_map, fc_size), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(fc_size, fc_size), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(fc_size, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


# --------------------------------------------------------------------------------------
# VGG with torchvision's adaptive pool
# --------------------------------------------------------------------------------------


def vgg_layers(divisor: int = 1, layers=torch_models.VGG11_LAYERS) -> tuple:
    """VGG-11's feature layers with every width divided by ``divisor``."""
    return tuple(item if item == "M" else item // divisor for item in layers)


class VGGTorchvision(torch_models.VGG):
    """torchvision's VGG: the benchmark twin's features and classifier, with the last map
    average-pooled to 7x7 first (so the classifier takes C*7*7 inputs at any input size)."""

    def __init__(self, layers, channels: int = 3, num_classes: int = 1000, dropout_rate: float = 0.5):
        super().__init__(layers, 224, channels, num_classes, dropout_rate)  # 224/32 = 7: C*7*7 inputs
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))
