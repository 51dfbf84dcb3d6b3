"""DenseNets: Huang et al. 2017, "Densely connected convolutional networks" (seed:
kang-lecture4). One mechanism (`DenseLayer`, `Transition`, `DenseNet`), two layouts:

* ImageNet (DenseNet-BC, Table 1; torchvision's): 7x7/2 conv 2k -> BN -> ReLU -> 3x3/2
  max pool -> dense blocks of ``block_config`` layers with transitions -> BN -> ReLU ->
  GAP -> dense.
* CIFAR (DenseNet-BC, L = 100, k = 12): 3x3 conv 2k -> three blocks of 16 layers.

A layer is BN -> ReLU -> 1x1 conv (``bn_size * k``) -> BN -> ReLU -> 3x3 conv (k),
concatenated to its input; a transition BN -> ReLU -> 1x1 conv to
``floor(compression * C)`` -> 2x2/2 average pool. Convolutions have no bias; dropout after
each conv (``dropout_rate``) is off by default. ``feature_maps`` is the map after the final
BN and ReLU, ``forward_features`` its global average, ``head`` the dense layer (CAM).
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar, Sequence

import flax.linen as nn
import jax.numpy as jnp

from zoo.nn import check_input
from zoo.nn.initializers import he_normal
from zoo.nn.linear import dense
from zoo.nn.normalization import batch_norm
from zoo.nn.pooling import max_pool
from zoo.registry import register_model

PAPER = "Huang, Liu, van der Maaten & Weinberger 2017, Densely connected convolutional networks"
SEED = "kang-lecture4 (DenseNet, growth rate)"

conv_init = he_normal  # He normal, as torchvision's DenseNet
_norm = batch_norm


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bn_size * k)-BN-ReLU-3x3 conv (k); output concat([x, new]) on C."""

    growth_rate: int
    bn_size: int = 4
    dropout_rate: float = 0.0

    @nn.compact
    def __call__(self, x, train: bool = False):
        conv = partial(nn.Conv, use_bias=False, kernel_init=conv_init)
        y = nn.relu(_norm(use_running_average=not train, name="norm1")(x))
        y = conv(self.bn_size * self.growth_rate, (1, 1), name="conv1")(y)
        y = nn.Dropout(self.dropout_rate, deterministic=not train)(y) if self.dropout_rate else y
        y = nn.relu(_norm(use_running_average=not train, name="norm2")(y))
        y = conv(self.growth_rate, (3, 3), padding=((1, 1), (1, 1)), name="conv2")(y)
        y = nn.Dropout(self.dropout_rate, deterministic=not train)(y) if self.dropout_rate else y
        return jnp.concatenate([x, y], axis=-1)


class Transition(nn.Module):
    """BN-ReLU-1x1 conv to ``filters``-2x2/2 average pool."""

    filters: int
    dropout_rate: float = 0.0

    @nn.compact
    def __call__(self, x, train: bool = False):
        y = nn.relu(_norm(use_running_average=not train, name="norm")(x))
        y = nn.Conv(self.filters, (1, 1), use_bias=False, kernel_init=conv_init, name="conv")(y)
        y = nn.Dropout(self.dropout_rate, deterministic=not train)(y) if self.dropout_rate else y
        return nn.avg_pool(y, (2, 2), (2, 2))


class DenseNet(nn.Module):
    """Dense blocks of ``block_config[i]`` bottleneck layers with growth ``growth_rate``,
    transitions with ``compression`` between blocks, ``num_init_features`` stem filters
    (None: 2 * growth_rate). ``stem``: "imagenet" or "cifar" (see the module docstring)."""

    cam_classifier: ClassVar[str] = "classifier"  # the final dense layer after GAP (zoo.cam)

    block_config: Sequence[int] = (6, 12, 24, 16)
    growth_rate: int = 32
    num_init_features: int | None = None
    bn_size: int = 4
    compression: float = 0.5
    dropout_rate: float = 0.0
    stem: str = "imagenet"
    input_shape: tuple[int, ...] = (224, 224, 3)
    num_classes: int = 1000

    def __post_init__(self):
        n = type(self).__name__
        if len(tuple(self.input_shape)) != 3 or any(int(d) <= 0 for d in self.input_shape):
            raise ValueError(f"{n}: input_shape must be (H, W, C) with positive sizes, got {tuple(self.input_shape)}")
        if self.stem not in ("imagenet", "cifar"):
            raise ValueError(f"{n}: stem must be 'imagenet' or 'cifar', got {self.stem!r}")
        if not self.block_config or any(int(b) <= 0 for b in self.block_config):
            raise ValueError(f"{n}: block_config must be positive layer counts, got {self.block_config}")
        if self.growth_rate <= 0 or self.bn_size <= 0 or self.num_classes <= 0:
            raise ValueError(f"{n}: growth_rate, bn_size and num_classes must be positive")
        if self.num_init_features is not None and self.num_init_features <= 0:
            raise ValueError(f"{n}: num_init_features must be positive, got {self.num_init_features}")
        if not 0.0 < self.compression <= 1.0:
            raise ValueError(f"{n}: compression must be in (0, 1], got {self.compression}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"{n}: dropout_rate must be in [0, 1), got {self.dropout_rate}")
        super().__post_init__()

    def setup(self):
        init = self.num_init_features or 2 * self.growth_rate
        if self.stem == "imagenet":
            self.conv0 = nn.Conv(init, (7, 7), (2, 2), ((3, 3), (3, 3)), use_bias=False, kernel_init=conv_init)
            self.norm0 = _norm()
        else:
            self.conv0 = nn.Conv(init, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, kernel_init=conv_init)
        blocks, transitions = [], []
        c = init
        for i, n in enumerate(self.block_config):
            blocks.append([DenseLayer(self.growth_rate, self.bn_size, self.dropout_rate) for _ in range(int(n))])
            c += int(n) * self.growth_rate
            if i < len(self.block_config) - 1:
                c = int(c * self.compression)
                transitions.append(Transition(c, self.dropout_rate))
        # blocks[i][j]: torchvision's denseblock{i+1}.denselayer{j+1}; transitions[i]: transition{i+1}.
        self.blocks = blocks
        self.transitions = transitions
        self.norm_final = _norm()
        self.classifier = dense(self.num_classes)

    def feature_maps(self, x, train: bool = False):
        """(B, H, W, C) -> final BN + ReLU map (B, h, w, C_out) before pooling."""
        check_input(x, self.input_shape, model=f"DenseNet(input_shape={tuple(self.input_shape)})")
        h = self.conv0(x)
        if self.stem == "imagenet":
            h = nn.relu(self.norm0(h, use_running_average=not train))
            h = max_pool(h, 3, 2, 1)
        for i, block in enumerate(self.blocks):
            for layer in block:
                h = layer(h, train)
            if i < len(self.transitions):
                h = self.transitions[i](h, train)
        return nn.relu(self.norm_final(h, use_running_average=not train))

    def forward_features(self, x, train: bool = False):
        """(B, H, W, C) -> globally average-pooled features (B, C_out)."""
        return self.feature_maps(x, train).mean(axis=(1, 2))

    def head(self, h, train: bool = False):
        """(B, C_out) -> (B, num_classes)."""
        return self.classifier(h)

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train), train)


IMAGENET = {
    "densenet121": ((6, 12, 24, 16), 7_978_856),
    "densenet169": ((6, 12, 32, 32), 14_149_480),
    "densenet201": ((6, 12, 48, 32), 20_013_928),
}
_TEST_IMAGENET = {"input_shape": (32, 32, 3), "num_classes": 3, "block_config": (1, 1), "growth_rate": 4}
_TEST_CIFAR = {"input_shape": (16, 16, 3), "num_classes": 3, "block_config": (1, 1), "growth_rate": 4}


for _name, (_blocks, _count) in IMAGENET.items():
    register_model(
        _name,
        DenseNet,
        family="cnn",
        paper=f"{PAPER}, Table 1; seed {SEED}",
        task="classification",
        defaults={"block_config": _blocks, "num_init_features": 64},
        test_config={**_TEST_IMAGENET, "num_init_features": 8},
        description=f"{_name}: DenseNet-BC, k=32, blocks {_blocks}; {_count:,} parameters at 224x224x3, 1000 classes.",
    )

register_model(
    "densenet_bc_100",
    DenseNet,
    family="cnn",
    paper=f"{PAPER}, DenseNet-BC (L=100, k=12) for CIFAR; seed {SEED}",
    task="classification",
    defaults={
        "block_config": (16, 16, 16),
        "growth_rate": 12,
        "stem": "cifar",
        "input_shape": (32, 32, 3),
        "num_classes": 10,
    },
    test_config=_TEST_CIFAR,
    description=(
        "DenseNet-BC for CIFAR, L=100, k=12 (3 blocks of 16 bottleneck layers, initial conv 2k): "
        "769,162 parameters at 10 classes, 800,032 at 100."
    ),
)
