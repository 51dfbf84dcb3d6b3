"""ResNets: He et al. 2016, "Deep residual learning for image recognition" (seed:
kang-lecture4). One block and stage mechanism (`ResidualBlock`, `ResNet`), two layouts:

* ImageNet (Table 1; torchvision's): 7x7/2 conv 64 -> BN -> ReLU -> 3x3/2 max pool ->
  four stages of basic or bottleneck blocks (64, 128, 256, 512) -> GAP -> dense. Stages
  2-4 stride on the 3x3 conv ("v1.5"); projection shortcuts (1x1 conv + BN, option B)
  where the shape changes; convolutions have no bias.
* CIFAR (section 4.2): 3x3 conv 16 -> three stages of n basic blocks (16, 32, 64) -> GAP
  -> dense, depth 6n + 2; option A shortcuts: subsampled identity, zero-padded channels.

x (B, H, W, C) float32 -> (B, num_classes) logits; BN statistics in ``batch_stats``.
``feature_maps`` is the last block's output, ``forward_features`` its global average,
``head`` the dense layer (CAM: ``feature_maps(x) @ params["fc"]["kernel"]``).
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar, Sequence

import flax.linen as nn
import jax.numpy as jnp

from zoo.nn import check_input, fastconv
from zoo.nn.initializers import he_normal_fan_out
from zoo.nn.linear import dense
from zoo.nn.normalization import batch_norm
from zoo.nn.pooling import max_pool
from zoo.registry import register_model

PAPER = "He, Zhang, Ren & Sun 2016, Deep residual learning for image recognition"
SEED = "kang-lecture4 (ResNet)"


conv_init = he_normal_fan_out  # torchvision's init: He normal (fan_out) convs, dense N(0, 1/fan_in)


def _pad(k: int):
    p = (k - 1) // 2
    return ((p, p), (p, p))


def _check_image_shape(input_shape, name: str):
    if len(tuple(input_shape)) != 3 or any(int(d) <= 0 for d in input_shape):
        raise ValueError(f"{name}: input_shape must be (H, W, C) with positive sizes, got {tuple(input_shape)}")


def shortcut_a(x, filters: int, strides: int):
    """Option A shortcut: identity, subsampled by ``strides``, with ``filters - C`` zero
    channels appended. No parameters. (B, H, W, C) -> (B, ceil(H/s), ceil(W/s), filters)."""
    if strides > 1:
        x = x[:, ::strides, ::strides, :]
    extra = filters - x.shape[-1]
    if extra < 0:
        raise ValueError(f"option A shortcut cannot reduce channels ({x.shape[-1]} -> {filters})")
    if extra:
        x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, extra)))
    return x


class ResidualBlock(nn.Module):
    """A basic (two 3x3 convs) or bottleneck (1x1, 3x3 with the stride, 1x1 to 4x) block.

    ``shortcut``: "B" (projection 1x1 conv + BN where the shape changes, identity otherwise)
    or "A" (parameter-free `shortcut_a`). Output ``relu(F(x) + shortcut(x))``.
    """

    filters: int
    strides: int = 1
    bottleneck: bool = False
    shortcut: str = "B"
    expansion: int = 4  # bottleneck output = expansion * filters
    conv_impl: str = "auto"  # see `ResNet`

    @nn.compact
    def __call__(self, x, train: bool = False):
        conv = partial(fastconv.Conv, use_bias=False, kernel_init=conv_init, conv_impl=self.conv_impl)
        norm = partial(batch_norm, use_running_average=not train)
        s = self.strides
        if self.bottleneck:
            out = self.filters * self.expansion
            y = nn.relu(norm(name="bn1")(conv(self.filters, (1, 1), name="conv1")(x)))
            y = nn.relu(norm(name="bn2")(conv(self.filters, (3, 3), (s, s), _pad(3), name="conv2")(y)))
            y = norm(name="bn3")(conv(out, (1, 1), name="conv3")(y))
        else:
            out = self.filters
            y = nn.relu(norm(name="bn1")(conv(out, (3, 3), (s, s), _pad(3), name="conv1")(x)))
            y = norm(name="bn2")(conv(out, (3, 3), padding=_pad(3), name="conv2")(y))
        if s == 1 and x.shape[-1] == out:
            r = x
        elif self.shortcut == "A":
            r = shortcut_a(x, out, s)
        else:
            r = norm(name="downsample_bn")(conv(out, (1, 1), (s, s), name="downsample_conv")(x))
        return nn.relu(y + r)


class ResNet(nn.Module):
    """A ResNet: stem, ``len(stage_sizes)`` stages of residual blocks, GAP, dense.

    ``stage_sizes[i]`` blocks in stage i with ``width * 2**i`` filters (x4 at the output of
    a bottleneck); stages after the first start with stride 2. ``stem``: "imagenet" (7x7/2
    conv + 3x3/2 max pool) or "cifar" (3x3 conv, stride 1). See the module docstring.

    ``conv_impl``: `zoo.nn.fastconv`'s ways for convolutions and the stem's max pool
    ("xla": the plain path; same variables and numbers either way).
    """

    cam_classifier: ClassVar[str] = "fc"  # the final dense layer after GAP (zoo.cam)

    stage_sizes: Sequence[int] = (2, 2, 2, 2)
    bottleneck: bool = False
    stem: str = "imagenet"
    shortcut: str = "B"
    width: int = 64
    input_shape: tuple[int, ...] = (224, 224, 3)
    num_classes: int = 1000
    conv_impl: str = "auto"

    def __post_init__(self):
        name = type(self).__name__
        _check_image_shape(self.input_shape, name)
        if self.stem not in ("imagenet", "cifar"):
            raise ValueError(f"{name}: stem must be 'imagenet' or 'cifar', got {self.stem!r}")
        if self.shortcut not in ("A", "B"):
            raise ValueError(f"{name}: shortcut must be 'A' or 'B', got {self.shortcut!r}")
        if not self.stage_sizes or any(int(n) <= 0 for n in self.stage_sizes):
            raise ValueError(f"{name}: stage_sizes must be positive block counts, got {self.stage_sizes}")
        if self.width <= 0 or self.num_classes <= 0:
            raise ValueError(f"{name}: width and num_classes must be positive, got {self.width}, {self.num_classes}")
        if self.conv_impl not in fastconv.CONV_IMPLS:
            raise ValueError(f"{name}: conv_impl must be one of {fastconv.CONV_IMPLS}, got {self.conv_impl!r}")
        super().__post_init__()

    def setup(self):
        conv = partial(fastconv.Conv, use_bias=False, kernel_init=conv_init, conv_impl=self.conv_impl)
        if self.stem == "imagenet":
            self.conv1 = conv(self.width, (7, 7), (2, 2), _pad(7))
        else:
            self.conv1 = conv(self.width, (3, 3), padding=_pad(3))
        self.bn1 = batch_norm()
        layers = []
        for i, n in enumerate(self.stage_sizes):
            stage = []
            for j in range(int(n)):
                stage.append(
                    ResidualBlock(
                        self.width * 2**i,
                        strides=2 if (i > 0 and j == 0) else 1,
                        bottleneck=self.bottleneck,
                        shortcut=self.shortcut,
                        conv_impl=self.conv_impl,
                    )
                )
            layers.append(stage)
        # layers[i][j] is torchvision's layer{i+1}.{j}; stored as "layers_i_j".
        self.layers = layers
        self.fc = dense(self.num_classes)

    def feature_maps(self, x, train: bool = False):
        """(B, H, W, C) -> the last block's output (B, h, w, C_out) before pooling."""
        check_input(x, self.input_shape, model=f"ResNet(input_shape={tuple(self.input_shape)})")
        h = nn.relu(self.bn1(self.conv1(x), use_running_average=not train))
        if self.stem == "imagenet":
            h = max_pool(h, 3, 2, 1, impl="xla" if self.conv_impl == "xla" else "auto")
        for stage in self.layers:
            for block in stage:
                h = block(h, train)
        return h

    def forward_features(self, x, train: bool = False):
        """(B, H, W, C) -> globally average-pooled features (B, C_out)."""
        return self.feature_maps(x, train).mean(axis=(1, 2))

    def head(self, h, train: bool = False):
        """(B, C_out) -> (B, num_classes)."""
        return self.fc(h)

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train), train)


# --- Registered networks.

IMAGENET = {
    "resnet18": ((2, 2, 2, 2), False, 11_689_512),
    "resnet34": ((3, 4, 6, 3), False, 21_797_672),
    "resnet50": ((3, 4, 6, 3), True, 25_557_032),
    "resnet101": ((3, 4, 23, 3), True, 44_549_160),
    "resnet152": ((3, 8, 36, 3), True, 60_192_808),
}
CIFAR = {  # depth 6n + 2
    "resnet20": (3, 269_722),
    "resnet32": (5, 464_154),
    "resnet44": (7, 658_586),
    "resnet56": (9, 853_018),
    "resnet110": (18, 1_727_962),
}

_TEST_IMAGENET = {"input_shape": (32, 32, 3), "num_classes": 3, "stage_sizes": (1, 1), "width": 4}
_TEST_CIFAR = {"input_shape": (16, 16, 3), "num_classes": 3, "stage_sizes": (1, 1, 1), "width": 4}


for _name, (_stages, _bottleneck, _count) in IMAGENET.items():
    register_model(
        _name,
        ResNet,
        family="cnn",
        paper=f"{PAPER}, Table 1; seed {SEED}",
        task="classification",
        defaults={"stage_sizes": _stages, "bottleneck": _bottleneck},
        test_config=_TEST_IMAGENET,
        description=(
            f"{_name}: ImageNet layout, {'bottleneck' if _bottleneck else 'basic'} blocks {_stages}, "
            f"projection shortcuts; {_count:,} parameters at 224x224x3, 1000 classes."
        ),
    )
for _name, (_n, _count) in CIFAR.items():
    register_model(
        _name,
        ResNet,
        family="cnn",
        paper=f"{PAPER}, section 4.2 (CIFAR-10, option A); seed {SEED}",
        task="classification",
        defaults={
            "stage_sizes": (_n, _n, _n),
            "stem": "cifar",
            "shortcut": "A",
            "width": 16,
            "input_shape": (32, 32, 3),
            "num_classes": 10,
        },
        test_config=_TEST_CIFAR,
        description=(
            f"{_name}: CIFAR layout (section 4.2), n={_n} basic blocks per stage, option A "
            f"shortcuts; {_count:,} parameters at 10 classes."
        ),
    )
