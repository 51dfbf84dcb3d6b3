"""VGG: Simonyan & Zisserman 2014, "Very deep convolutional networks for large-scale image
recognition" — configurations A, A-LRN, B, C, D, E of the paper's Table 1 (seed: duan's
configuration table; kang-lecture4).

Inputs are NHWC ``(B, H, W, 3)`` float32 (224x224 in the paper); outputs ``(B, num_classes)``.
"""

from __future__ import annotations

import functools

import flax.linen as nn

from zoo.nn import check_input, fastconv
from zoo.nn.initializers import lecun_normal
from zoo.nn.linear import dropout_relu_head
from zoo.nn.normalization import LocalResponseNorm
from zoo.nn.pooling import max_pool
from zoo.registry import register_model

# LeCun-normal kernels drawn in fixed-size chunks (fast eager init; see zoo.nn.initializers).
_Conv = functools.partial(fastconv.Conv, kernel_init=lecun_normal)
_Dense = functools.partial(nn.Dense, kernel_init=lecun_normal)

PAPER = "Simonyan & Zisserman 2014, Very deep convolutional networks for large-scale image recognition"
SEED = "duan (VGG configuration table A, A-LRN, B, C, D, E); kang-lecture4"

# Table 1 of the paper. Each stage is a list of (filters, kernel size) convolutions and
# ends with a 2x2/2 max pool. "LRN" marks local response normalisation after that conv.
CONFIGS: dict[str, tuple[tuple[tuple, ...], ...]] = {
    "A": (((64, 3),), ((128, 3),), ((256, 3), (256, 3)), ((512, 3), (512, 3)), ((512, 3), (512, 3))),
    "A-LRN": (((64, 3, "LRN"),), ((128, 3),), ((256, 3), (256, 3)), ((512, 3), (512, 3)), ((512, 3), (512, 3))),
    "B": (((64, 3), (64, 3)), ((128, 3), (128, 3)), ((256, 3), (256, 3)), ((512, 3), (512, 3)), ((512, 3), (512, 3))),
    "C": (
        ((64, 3), (64, 3)),
        ((128, 3), (128, 3)),
        ((256, 3), (256, 3), (256, 1)),
        ((512, 3), (512, 3), (512, 1)),
        ((512, 3), (512, 3), (512, 1)),
    ),
    "D": (((64, 3), (64, 3)), ((128, 3), (128, 3)), ((256, 3),) * 3, ((512, 3),) * 3, ((512, 3),) * 3),
    "E": (((64, 3), (64, 3)), ((128, 3), (128, 3)), ((256, 3),) * 4, ((512, 3),) * 4, ((512, 3),) * 4),
}


class VGG(nn.Module):
    """VGG configuration ``configuration`` of Table 1: (B, H, W, C) -> (B, num_classes).

    Five stages of 3x3 pad-1 convolutions (C's 1x1 unpadded) with ReLU, each followed by a
    2x2/2 max pool; A-LRN adds AlexNet's LRN after the first conv. ``forward_features``:
    the flattened (NHWC) last map (B, (H/32)(W/32) * 512/width_divisor), so smaller inputs
    work; ``head``: FC fc_size -> ReLU -> dropout, twice, -> num_classes.
    ``width_divisor`` divides every conv width (fast tests). ``conv_impl``:
    `zoo.nn.fastconv`'s ways ("xla": the plain path; same variables and numbers).
    """

    configuration: str = "D"  # a key of CONFIGS (Table 1's column)
    input_shape: tuple[int, ...] = (224, 224, 3)
    num_classes: int = 1000
    fc_size: int = 4096
    dropout_rate: float = 0.5
    width_divisor: int = 1
    conv_impl: str = "auto"

    def __post_init__(self):
        if self.configuration not in CONFIGS:
            raise ValueError(f"VGG: unknown configuration {self.configuration!r}; expected one of {sorted(CONFIGS)}")
        if len(self.input_shape) != 3 or any(int(d) <= 0 for d in self.input_shape):
            raise ValueError(f"VGG: input_shape must be (H, W, C) with positive sizes, got {tuple(self.input_shape)}")
        if min(self.input_shape[:2]) < 32:
            raise ValueError(f"VGG: five 2x2 poolings need inputs of at least 32x32, got {tuple(self.input_shape)}")
        if self.fc_size <= 0 or self.num_classes <= 0:
            raise ValueError(f"VGG: fc_size and num_classes must be positive, got {self.fc_size}, {self.num_classes}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"VGG: dropout_rate must be in [0, 1), got {self.dropout_rate}")
        if self.width_divisor < 1 or 64 % self.width_divisor:
            raise ValueError(f"VGG: width_divisor must divide 64, got {self.width_divisor}")
        if self.conv_impl not in fastconv.CONV_IMPLS:
            raise ValueError(f"VGG: conv_impl must be one of {fastconv.CONV_IMPLS}, got {self.conv_impl!r}")
        super().__post_init__()

    def setup(self):
        convs = []
        for stage, layers in enumerate(CONFIGS[self.configuration]):
            for i, (filters, size, *extra) in enumerate(layers):
                p = (size - 1) // 2
                conv = _Conv(
                    filters // self.width_divisor,
                    (size, size),
                    padding=((p, p), (p, p)),
                    name=f"conv{stage + 1}_{i + 1}",
                    conv_impl=self.conv_impl,
                )
                convs.append((stage, conv, "LRN" in extra))
        self.convs = [c for _, c, _ in convs]
        self._stage_of = tuple(s for s, _, _ in convs)
        self._lrn_after = tuple(l for _, _, l in convs)
        self.norm = LocalResponseNorm(size=5, k=2.0, alpha=1e-4, beta=0.75)
        self.fc1 = _Dense(self.fc_size)
        self.fc2 = _Dense(self.fc_size)
        self.fc3 = _Dense(self.num_classes)
        self.dropout = nn.Dropout(self.dropout_rate)

    def forward_features(self, x, train: bool = False):
        check_input(x, self.input_shape, model=f"VGG-{self.configuration}(input_shape={tuple(self.input_shape)})")
        h = x
        n = len(self.convs)
        for i, conv in enumerate(self.convs):
            h = nn.relu(conv(h))
            if self._lrn_after[i]:
                h = self.norm(h)
            if i == n - 1 or self._stage_of[i + 1] != self._stage_of[i]:
                h = max_pool(h, 2, 2, impl="xla" if self.conv_impl == "xla" else "auto")
        return h.reshape(h.shape[0], -1)

    def head(self, h, train: bool = False):
        return dropout_relu_head(h, (self.fc1, self.fc2), self.fc3, self.dropout, train)

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train), train)


_TEST = {"input_shape": (32, 32, 3), "num_classes": 5, "width_divisor": 16, "fc_size": 16}


for _name, _configuration, _description in (
    ("vgg11", "A", "VGG configuration A (11 weight layers): 132,863,336 parameters."),
    (
        "vgg11_lrn",
        "A-LRN",
        "VGG configuration A-LRN: A with LRN after the first conv (LRN has no parameters: 132,863,336).",
    ),
    ("vgg13", "B", "VGG configuration B (13 weight layers): 133,047,848 parameters."),
    (
        "vgg16_c",
        "C",
        "VGG configuration C (16 weight layers, 1x1 convs as the third conv of stages 3-5): 133,638,952 parameters.",
    ),
    ("vgg16", "D", "VGG configuration D (16 weight layers, all 3x3): 138,357,544 parameters."),
    ("vgg19", "E", "VGG configuration E (19 weight layers): 143,667,240 parameters."),
):
    register_model(
        _name,
        VGG,
        family="cnn",
        paper=f"{PAPER}, configuration {_configuration}; seed {SEED}",
        task="classification",
        defaults={"configuration": _configuration},
        test_config=_TEST,
        description=_description,
    )
