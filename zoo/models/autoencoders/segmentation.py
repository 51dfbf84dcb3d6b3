"""Encoder-decoder networks for semantic segmentation (seed khanzhina, "Autoencoders for
semantic segmentation"; kang-lecture4, "Convolutional Auto-Encoder: image segmentation"):
every pixel is classified, ``x: (B, H, W, C) -> logits (B, H, W, num_classes)``.

* SegNet (Badrinarayanan, Kendall & Cipolla 2017): a VGG-style encoder of conv-BN-ReLU
  stages, each ending in a 2x2/2 max pool that remembers its argmax; the mirrored decoder
  max-unpools with those indices (sparse maps: each value back at its encoder maximum,
  zeros elsewhere) and densifies them with conv-BN-ReLU; a 1x1 conv is the per-pixel
  classifier. No skip of whole feature maps, only the indices.
* U-Net (Ronneberger, Fischer & Brox 2015): a contracting path of two 3x3 convs + ReLU and
  a 2x2/2 max pool per level; an expanding path of a 2x2/2 "up-conv" (transposed
  convolution) halving the channels, concatenation with the contracting path's map of the
  same level (the skip), and two 3x3 convs; a 1x1 conv maps to the classes. The paper's
  convolutions are unpadded (572 -> 388, the skips cropped); ours are "SAME" so that the
  mask has the input's size and no cropping is needed (the common variant). The paper
  has no batch norm; ``batch_norm=True`` adds it after each conv.

Small default configs for 32x32 inputs and 4 classes (the generated shapes task:
background, circle, square, triangle). H and W must be multiples of 2^(number of pools).
"""

from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax.numpy as jnp

from zoo.models.autoencoders.conv import ConvStack, check_image_config, pool_impl, transpose_impl
from zoo.nn import check_input, fastconv
from zoo.nn.conv_transpose import ConvTranspose
from zoo.nn.initializers import he_normal
from zoo.nn.pooling import max_pool, max_unpool
from zoo.registry import register_model

SEGNET_PAPER = (
    "Badrinarayanan, Kendall & Cipolla 2017, SegNet: a deep convolutional encoder-decoder "
    "architecture for image segmentation; seed khanzhina (Autoencoders for semantic segmentation)"
)
UNET_PAPER = (
    "Ronneberger, Fischer & Brox 2015, U-Net: convolutional networks for biomedical image "
    "segmentation; seed khanzhina (Autoencoders for semantic segmentation)"
)


class SegNet(nn.Module):
    """SegNet, (B, H, W, C) -> per-pixel logits (B, H, W, num_classes).

    Encoder stage i: ``convs_per_stage`` x (3x3 conv, batch norm, ReLU) with
    ``features[i]`` maps, then a 2x2/2 max pool with indices. Decoder stage i (deepest
    first): max-unpool with stage i's indices to stage i's size, then ``convs_per_stage``
    x (3x3 conv, batch norm, ReLU), the last to ``features[i - 1]`` maps (``features[0]``
    at the top); a 1x1 conv classifies. ``forward_features(x) -> (code, indices)``: the
    deepest pooled map and the n indices arrays (B, H / 2^(i+1), W / 2^(i+1), features[i])
    int32, shallowest first; ``head`` decodes them.
    """

    input_shape: tuple[int, ...] = (32, 32, 1)
    num_classes: int = 4
    features: tuple[int, ...] = (16, 32, 64)
    convs_per_stage: int = 2
    conv_impl: str = "auto"

    def __post_init__(self):
        check_image_config(self, self.input_shape, self.features, len(self.features), self.conv_impl)
        if self.convs_per_stage < 1 or self.num_classes < 1:
            raise ValueError(
                f"SegNet: convs_per_stage and num_classes must be >= 1, got {self.convs_per_stage}, {self.num_classes}"
            )
        super().__post_init__()

    def setup(self):
        stack = partial(ConvStack, batch_norm=True, conv_impl=self.conv_impl)
        n = self.convs_per_stage
        self.encoder = [stack((int(f),) * n) for f in self.features]
        outs = [int(f) for f in (self.features[0], *self.features[:-1])]
        self.decoder = [stack((int(f),) * (n - 1) + (o,)) for f, o in zip(self.features, outs)]
        self.classifier = fastconv.Conv(self.num_classes, (1, 1), conv_impl=self.conv_impl)

    def forward_features(self, x, train: bool = False):
        """(B, H, W, C) -> (code, indices); see the class docstring."""
        check_input(x, self.input_shape, model=f"SegNet(input_shape={tuple(self.input_shape)})")
        indices = []
        for stage in self.encoder:
            x, idx = max_pool(stage(x, train), 2, return_indices=True, impl=pool_impl(self.conv_impl))
            indices.append(idx)
        return x, tuple(indices)

    def head(self, features, train: bool = False):
        """(code, indices) -> logits (B, H, W, num_classes)."""
        h, indices = features
        for i in reversed(range(len(self.features))):
            h = max_unpool(h, indices[i], (2 * h.shape[1], 2 * h.shape[2]))
            h = self.decoder[i](h, train)
        return self.classifier(h)

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train), train)


class UNet(nn.Module):
    """U-Net, (B, H, W, C) -> per-pixel logits (B, H, W, num_classes).

    Level i < L - 1 (L = len(features)): two 3x3 convs + ReLU with ``features[i]`` maps
    (the skip, (B, H / 2^i, W / 2^i, features[i])), then a 2x2/2 max pool; the bottom level
    has two convs with ``features[-1]`` maps at (H / 2^(L-1), W / 2^(L-1)). Up level i
    (deepest first): 2x2/2 transposed conv to ``features[i]`` maps, concatenated with skip
    i (channels [skip, up]) to 2 * features[i] maps, two 3x3 convs + ReLU to features[i];
    a 1x1 conv classifies. ``forward_features(x) -> (bottom, skips)``; ``head`` runs the
    expanding path.
    """

    input_shape: tuple[int, ...] = (32, 32, 1)
    num_classes: int = 4
    features: tuple[int, ...] = (16, 32, 64, 128)
    batch_norm: bool = False
    conv_impl: str = "auto"

    def __post_init__(self):
        check_image_config(self, self.input_shape, self.features, len(self.features) - 1, self.conv_impl)
        if len(self.features) < 2 or self.num_classes < 1:
            raise ValueError(
                f"UNet: needs at least two levels and num_classes >= 1, got {tuple(self.features)}, {self.num_classes}"
            )
        super().__post_init__()

    def setup(self):
        stack = partial(ConvStack, batch_norm=self.batch_norm, conv_impl=self.conv_impl)
        self.down = [stack((int(f), int(f))) for f in self.features]
        self.up = [
            ConvTranspose(int(f), 2, 2, kernel_init=he_normal, conv_impl=transpose_impl(self.conv_impl))
            for f in self.features[:-1]
        ]
        self.up_convs = [stack((int(f), int(f))) for f in self.features[:-1]]
        self.classifier = fastconv.Conv(self.num_classes, (1, 1), conv_impl=self.conv_impl)

    def forward_features(self, x, train: bool = False):
        """(B, H, W, C) -> (bottom map, skips); see the class docstring."""
        check_input(x, self.input_shape, model=f"UNet(input_shape={tuple(self.input_shape)})")
        skips = []
        for level in self.down[:-1]:
            skip = level(x, train)
            skips.append(skip)
            x = max_pool(skip, 2, impl=pool_impl(self.conv_impl))
        return self.down[-1](x, train), tuple(skips)

    def head(self, features, train: bool = False):
        """(bottom, skips) -> logits (B, H, W, num_classes)."""
        h, skips = features
        for i in reversed(range(len(skips))):
            h = jnp.concatenate([skips[i], self.up[i](h)], axis=-1)
            h = self.up_convs[i](h, train)
        return self.classifier(h)

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train), train)


register_model(
    "segnet",
    SegNet,
    family="autoencoders",
    paper=SEGNET_PAPER,
    task="segmentation",
    test_config={"input_shape": (8, 8, 1), "num_classes": 3, "features": (3, 4), "convs_per_stage": 1},
)
register_model(
    "unet",
    UNet,
    family="autoencoders",
    paper=UNET_PAPER,
    task="segmentation",
    test_config={"input_shape": (8, 8, 1), "num_classes": 3, "features": (3, 4, 5)},
)
