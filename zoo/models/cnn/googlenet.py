"""GoogLeNet: Szegedy et al. 2014, "Going deeper with convolutions" (seed: kang-lecture4).

Table 1, NHWC at 224x224x3: conv 7x7/2 64 -> max pool -> conv 1x1 64 -> conv 3x3 192 ->
max pool -> inception 3a, 3b -> max pool -> 4a-4e -> max pool -> 5a, 5b (7x7x1024) -> GAP
-> dropout 0.4 -> linear. An inception module concatenates 1x1; 1x1 -> 3x3; 1x1 -> true
5x5; 3x3/1 max pool -> 1x1; every conv has a ReLU. Max pools are 3x3/2 "SAME" (the
reference implementations' ceil mode). Parameter-free deviations: no local response
normalisation, and a global instead of a 7x7 average pool (other input sizes pass).

``batch_norm=True`` puts BN after every conv instead of its bias. ``aux_heads=True`` adds
the two auxiliary classifiers on 4a and 4d (5x5/3 avg pool -> 1x1 conv 128 -> FC 1024 ->
dropout 0.7 -> linear), in train mode only, their logits sown into ``aux_logits``::

    logits, state = model.apply(v, x, train=True, mutable=["aux_logits", ...], rngs=...)
    aux1, aux2 = state["aux_logits"]["aux1"][0], state["aux_logits"]["aux2"][0]

(the paper weighs them 0.3 in the loss). ``feature_maps`` is 5b's output (B, h, w, 1024),
``forward_features`` its global average, ``head`` dropout + linear (CAM).
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax.numpy as jnp

from zoo.nn import check_input
from zoo.nn.initializers import he_normal, zeros_init
from zoo.nn.linear import dense
from zoo.nn.normalization import batch_norm
from zoo.nn.pooling import max_pool
from zoo.registry import register_model

PAPER = "Szegedy et al. 2014, Going deeper with convolutions, Table 1"
SEED = "kang-lecture4 (GoogLeNet, inception table)"

# name: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj) — Table 1 of the paper.
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
conv_init = he_normal  # He normal
ORDER = ("3a", "3b", "pool", "4a", "4b", "4c", "4d", "4e", "pool", "5a", "5b")


def _div(n: int, d: int) -> int:
    return max(1, n // d)


class ConvReLU(nn.Module):
    """Conv (with bias, or without bias and followed by BN) -> ReLU. Padding (k-1)/2."""

    features: int
    kernel: int = 1
    strides: int = 1
    batch_norm: bool = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        p = (self.kernel - 1) // 2
        y = nn.Conv(
            self.features,
            (self.kernel, self.kernel),
            (self.strides, self.strides),
            ((p, p), (p, p)),
            use_bias=not self.batch_norm,
            kernel_init=conv_init,
            bias_init=zeros_init,
            name="conv",
        )(x)
        if self.batch_norm:
            y = batch_norm(use_running_average=not train, epsilon=1e-3, name="bn")(y)
        return nn.relu(y)


class Inception(nn.Module):
    """Four branches concatenated on C: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | max pool 3x3/1 -> 1x1."""

    c1: int
    c3r: int
    c3: int
    c5r: int
    c5: int
    cp: int
    batch_norm: bool = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        conv = lambda f, k, name: ConvReLU(f, k, batch_norm=self.batch_norm, name=name)  # noqa: E731
        b1 = conv(self.c1, 1, "branch1")(x, train)
        b2 = conv(self.c3, 3, "branch2_3x3")(conv(self.c3r, 1, "branch2_reduce")(x, train), train)
        b3 = conv(self.c5, 5, "branch3_5x5")(conv(self.c5r, 1, "branch3_reduce")(x, train), train)
        b4 = conv(self.cp, 1, "branch4_proj")(max_pool(x, 3, 1, 1), train)
        return jnp.concatenate([b1, b2, b3, b4], axis=-1)


class AuxHead(nn.Module):
    """The paper's auxiliary classifier: avg pool 5x5/3 -> 1x1 conv 128 -> FC 1024 -> dropout 0.7 -> linear."""

    num_classes: int
    width_divisor: int = 1
    batch_norm: bool = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        wh, ww = min(5, x.shape[1]), min(5, x.shape[2])
        y = nn.avg_pool(x, (wh, ww), (3, 3))
        y = ConvReLU(_div(128, self.width_divisor), 1, batch_norm=self.batch_norm, name="conv")(y, train)
        y = nn.relu(dense(_div(1024, self.width_divisor), name="fc1")(y.reshape(y.shape[0], -1)))
        y = nn.Dropout(0.7, deterministic=not train)(y)
        return dense(self.num_classes, name="fc2")(y)


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1): (B, H, W, C) -> (B, num_classes). See the module docstring.

    ``width_divisor`` divides every width (for fast tests; 1 is the paper).
    """

    cam_classifier: ClassVar[str] = "fc"  # the final dense layer after GAP (zoo.cam)

    input_shape: tuple[int, ...] = (224, 224, 3)
    num_classes: int = 1000
    batch_norm: bool = False
    aux_heads: bool = False
    dropout_rate: float = 0.4
    width_divisor: int = 1

    def __post_init__(self):
        if len(tuple(self.input_shape)) != 3 or any(int(d) <= 0 for d in self.input_shape):
            raise ValueError(
                f"GoogLeNet: input_shape must be (H, W, C) with positive sizes, got {tuple(self.input_shape)}"
            )
        if self.num_classes <= 0:
            raise ValueError(f"GoogLeNet: num_classes must be positive, got {self.num_classes}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"GoogLeNet: dropout_rate must be in [0, 1), got {self.dropout_rate}")
        if self.width_divisor < 1:
            raise ValueError(f"GoogLeNet: width_divisor must be >= 1, got {self.width_divisor}")
        super().__post_init__()

    def setup(self):
        d, bn = self.width_divisor, self.batch_norm
        self.conv1 = ConvReLU(_div(64, d), 7, 2, batch_norm=bn)
        self.conv2 = ConvReLU(_div(64, d), 1, batch_norm=bn)
        self.conv3 = ConvReLU(_div(192, d), 3, batch_norm=bn)
        # Attribute names inception3a ... inception5b.
        for name, widths in INCEPTION.items():
            setattr(self, f"inception{name}", Inception(*(_div(w, d) for w in widths), batch_norm=bn))
        if self.aux_heads:
            # Parameters under aux_head1/2; their logits are sown as aux_logits/aux1, aux2.
            self.aux_head1 = AuxHead(self.num_classes, d, bn)
            self.aux_head2 = AuxHead(self.num_classes, d, bn)
        self.dropout = nn.Dropout(self.dropout_rate)
        self.fc = dense(self.num_classes)

    def _aux(self, head, name, h, train):
        # Run in train mode (sowing the logits) and at init (to create the parameters).
        if self.aux_heads and (train or self.is_initializing()):
            logits = head(h, train)
            if train:
                self.sow("aux_logits", name, logits)

    def feature_maps(self, x, train: bool = False):
        """(B, H, W, C) -> inception 5b's output (B, h, w, 1024 / width_divisor)."""
        check_input(x, self.input_shape, model=f"GoogLeNet(input_shape={tuple(self.input_shape)})")
        # "SAME" pads (0, 1) at even sizes: windows start at 0, 2, 4 ..., torchvision's ceil mode.
        pool = lambda h: max_pool(h, 3, 2, "SAME")  # noqa: E731
        h = pool(self.conv1(x, train))
        h = pool(self.conv3(self.conv2(h, train), train))
        for name in ORDER:
            if name == "pool":
                h = pool(h)
                continue
            h = getattr(self, f"inception{name}")(h, train)
            if self.aux_heads and name in ("4a", "4d"):
                aux = "aux1" if name == "4a" else "aux2"
                self._aux(getattr(self, f"aux_head{aux[-1]}"), aux, h, train)
        return h

    def forward_features(self, x, train: bool = False):
        """(B, H, W, C) -> globally average-pooled features (B, 1024 / width_divisor)."""
        return self.feature_maps(x, train).mean(axis=(1, 2))

    def head(self, h, train: bool = False):
        """Dropout 0.4 (train mode) then linear: (B, C) -> (B, num_classes)."""
        return self.fc(self.dropout(h, deterministic=not train))

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train), train)


register_model(
    "googlenet",
    GoogLeNet,
    family="cnn",
    paper=f"{PAPER}; seed {SEED}",
    task="classification",
    test_config={"input_shape": (32, 32, 3), "num_classes": 3, "width_divisor": 16},
    description=(
        "GoogLeNet per the paper's Table 1 (true 5x5 branches, conv bias, no BN, LRN omitted): "
        "6,998,552 parameters at 1000 classes without auxiliary heads; 7,005,832 with "
        "``batch_norm=True``. ``aux_heads=True`` adds the two training-only auxiliary classifiers "
        "(logits sown into the ``aux_logits`` collection in train mode)."
    ),
)
