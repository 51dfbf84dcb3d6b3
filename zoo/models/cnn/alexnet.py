"""AlexNet: Krizhevsky, Sutskever & Hinton 2012 (seed: kang-lecture4), and the 64-filter
variant that frameworks ship (torchvision's ``alexnet``).

Inputs are NHWC ``(B, H, W, 3)`` float32; outputs ``(B, num_classes)`` logits.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn

from zoo.nn import check_input
from zoo.nn.initializers import lecun_normal
from zoo.nn.linear import dropout_relu_head
from zoo.nn.normalization import LocalResponseNorm
from zoo.nn.pooling import adaptive_avg_pool, max_pool
from zoo.nn.shapes import conv_output_size
from zoo.registry import register_model

# LeCun-normal kernels drawn in fixed-size chunks (fast eager init; see zoo.nn.initializers).
_Conv = functools.partial(nn.Conv, kernel_init=lecun_normal)
_Dense = functools.partial(nn.Dense, kernel_init=lecun_normal)

PAPER = "Krizhevsky, Sutskever & Hinton 2012, ImageNet classification with deep convolutional neural networks"
SEED = "kang-lecture4 (AlexNet)"


def _validate(name, input_shape, widths, fc_size, num_classes, dropout_rate, groups=1, grouped=()):
    if len(input_shape) != 3 or any(int(d) <= 0 for d in input_shape):
        raise ValueError(f"{name}: input_shape must be (H, W, C) with positive sizes, got {tuple(input_shape)}")
    if len(widths) != 5 or any(int(w) <= 0 for w in widths):
        raise ValueError(f"{name}: widths must be 5 positive filter counts, got {tuple(widths)}")
    if fc_size <= 0 or num_classes <= 0:
        raise ValueError(f"{name}: fc_size and num_classes must be positive, got {fc_size}, {num_classes}")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"{name}: dropout_rate must be in [0, 1), got {dropout_rate}")
    if groups not in (1, 2):
        raise ValueError(f"{name}: groups must be 1 (single tower) or 2 (two towers), got {groups}")
    for i in grouped:  # conv i and its input must split evenly into the towers
        if widths[i] % groups or widths[i - 1] % groups:
            raise ValueError(f"{name}: with groups={groups}, widths {tuple(widths)} must be divisible by {groups}")


class AlexNet(nn.Module):
    """AlexNet as in the paper: (B, H, W, 3) -> (B, num_classes).

    conv1 96@11x11/4 (``padding`` 0 at 227x227, 2 at 224x224) -> ReLU -> LRN -> max pool
    3x3/2; conv2 256@5x5 pad 2 -> ReLU -> LRN -> max pool; conv3-5 384, 384, 256 @3x3 pad 1
    -> max pool (``forward_features``: flattened NHWC); ``head``: FC 4096 -> ReLU -> dropout,
    twice, -> num_classes. ``groups=2`` splits conv2, conv4 and conv5 into the paper's two
    GPU towers.
    """

    input_shape: tuple[int, ...] = (227, 227, 3)
    num_classes: int = 1000
    widths: Sequence[int] = (96, 256, 384, 384, 256)
    fc_size: int = 4096
    groups: int = 2
    padding: int = 0
    dropout_rate: float = 0.5
    lrn: bool = True

    def __post_init__(self):
        _validate(
            "AlexNet",
            self.input_shape,
            self.widths,
            self.fc_size,
            self.num_classes,
            self.dropout_rate,
            self.groups,
            grouped=(1, 3, 4),
        )
        if self.padding < 0:
            raise ValueError(f"AlexNet: padding must be >= 0, got {self.padding}")
        h = min(self.input_shape[:2])
        for f, s, p in ((11, 4, self.padding), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 2, 0)):
            h = conv_output_size(h, f, s, p)
        if h < 1:
            raise ValueError(f"AlexNet: input {tuple(self.input_shape)} is too small (at least 67x67 without padding)")
        super().__post_init__()

    def setup(self):
        w, g, p = [int(v) for v in self.widths], self.groups, self.padding
        self.conv1 = _Conv(w[0], (11, 11), (4, 4), padding=((p, p), (p, p)))
        self.conv2 = _Conv(w[1], (5, 5), padding=((2, 2), (2, 2)), feature_group_count=g)
        self.conv3 = _Conv(w[2], (3, 3), padding=((1, 1), (1, 1)))
        self.conv4 = _Conv(w[3], (3, 3), padding=((1, 1), (1, 1)), feature_group_count=g)
        self.conv5 = _Conv(w[4], (3, 3), padding=((1, 1), (1, 1)), feature_group_count=g)
        self.norm = LocalResponseNorm(size=5, k=2.0, alpha=1e-4, beta=0.75)
        self.fc1 = _Dense(self.fc_size)
        self.fc2 = _Dense(self.fc_size)
        self.fc3 = _Dense(self.num_classes)
        self.dropout = nn.Dropout(self.dropout_rate)

    def forward_features(self, x, train: bool = False):
        check_input(x, self.input_shape, model=f"AlexNet(input_shape={tuple(self.input_shape)})")
        lrn = self.norm if self.lrn else (lambda h: h)
        h = max_pool(lrn(nn.relu(self.conv1(x))), 3, 2)
        h = max_pool(lrn(nn.relu(self.conv2(h))), 3, 2)
        h = nn.relu(self.conv3(h))
        h = nn.relu(self.conv4(h))
        h = max_pool(nn.relu(self.conv5(h)), 3, 2)
        return h.reshape(h.shape[0], -1)

    def head(self, h, train: bool = False):
        return dropout_relu_head(h, (self.fc1, self.fc2), self.fc3, self.dropout, train)

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train), train)


class AlexNetTorchvision(nn.Module):
    """The 64-filter AlexNet frameworks ship (torchvision; Krizhevsky 2014, "One weird trick"):
    convs 64, 192, 384, 256, 256 with max pools, adaptive average pool to 6x6 (features:
    (B, 6*6*widths[4]), NHWC order), no LRN or grouping; dropout -> FC 4096 -> ReLU ->
    dropout -> FC 4096 -> ReLU -> FC num_classes (torchvision's order).
    """

    input_shape: tuple[int, ...] = (224, 224, 3)
    num_classes: int = 1000
    widths: Sequence[int] = (64, 192, 384, 256, 256)
    fc_size: int = 4096
    dropout_rate: float = 0.5

    def __post_init__(self):
        _validate(
            "AlexNetTorchvision", self.input_shape, self.widths, self.fc_size, self.num_classes, self.dropout_rate
        )
        h = min(self.input_shape[:2])
        for f, s, p in ((11, 4, 2), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 2, 0)):
            h = conv_output_size(h, f, s, p)
        if h < 1:
            raise ValueError(f"AlexNetTorchvision: input {tuple(self.input_shape)} is too small (at least 63x63)")
        super().__post_init__()

    def setup(self):
        w = [int(v) for v in self.widths]
        pad = lambda p: ((p, p), (p, p))
        self.conv1 = _Conv(w[0], (11, 11), (4, 4), padding=pad(2))
        self.conv2 = _Conv(w[1], (5, 5), padding=pad(2))
        self.conv3 = _Conv(w[2], (3, 3), padding=pad(1))
        self.conv4 = _Conv(w[3], (3, 3), padding=pad(1))
        self.conv5 = _Conv(w[4], (3, 3), padding=pad(1))
        self.fc1 = _Dense(self.fc_size)
        self.fc2 = _Dense(self.fc_size)
        self.fc3 = _Dense(self.num_classes)
        self.dropout = nn.Dropout(self.dropout_rate)

    def forward_features(self, x, train: bool = False):
        check_input(x, self.input_shape, model=f"AlexNetTorchvision(input_shape={tuple(self.input_shape)})")
        h = max_pool(nn.relu(self.conv1(x)), 3, 2)
        h = max_pool(nn.relu(self.conv2(h)), 3, 2)
        h = nn.relu(self.conv4(nn.relu(self.conv3(h))))
        h = max_pool(nn.relu(self.conv5(h)), 3, 2)
        h = adaptive_avg_pool(h, (6, 6))
        return h.reshape(h.shape[0], -1)

    def head(self, h, train: bool = False):
        h = nn.relu(self.fc1(self.dropout(h, deterministic=not train)))
        h = nn.relu(self.fc2(self.dropout(h, deterministic=not train)))
        return self.fc3(h)

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train), train)


_TEST = {"input_shape": (67, 67, 3), "num_classes": 5, "widths": (8, 16, 16, 16, 8), "fc_size": 16}


register_model(
    "alexnet",
    AlexNet,
    family="cnn",
    paper=f"{PAPER}; seed {SEED}. LRN, overlapping pooling, dropout; optional two-tower grouping",
    task="classification",
    test_config=_TEST,
    description="AlexNet (paper). Use ``padding=2`` with 224x224 inputs; ``groups=1`` for one tower.",
)
register_model(
    "alexnet_torchvision",
    AlexNetTorchvision,
    family="cnn",
    paper=f"Krizhevsky 2014, One weird trick for parallelizing CNNs (torchvision's 64-filter AlexNet); after {PAPER}",
    task="classification",
    test_config=_TEST,
    description="64-filter AlexNet without LRN, with adaptive average pooling to 6x6: 61,100,840 parameters.",
)
