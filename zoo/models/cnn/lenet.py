"""LeNet-5: LeCun, Bottou, Bengio & Haffner 1998 (seed: khanzhina), and the modern variant.

``lenet5_1998`` follows the paper: 32x32x1 input, C1 6@5x5, S2 trainable subsampling,
C3 16@5x5 with the partial connection table (Table I), S4, C5 120@5x5, F6 84 and Euclidean
RBF output units with fixed +-1 codes; 60,000 trainable parameters. ``lenet5`` is the
common modern variant (28x28x1, padded conv1, full C3, ReLU, max pooling, dense output;
61,706 parameters). Inputs are NHWC ``(B, H, W, 1)`` float32; outputs ``(B, num_classes)``.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoo.nn import check_input, fastconv
from zoo.nn.initializers import lecun_normal
from zoo.nn.pooling import max_pool
from zoo.registry import register_model

# LeCun-normal kernels drawn in fixed-size chunks (fast eager init; see zoo.nn.initializers).
_Conv = functools.partial(nn.Conv, kernel_init=lecun_normal)
_Dense = functools.partial(nn.Dense, kernel_init=lecun_normal)
_FastConv = functools.partial(fastconv.Conv, kernel_init=lecun_normal)

PAPER_1998 = "LeCun, Bottou, Bengio & Haffner 1998, Gradient-based learning applied to document recognition"
SEED = "khanzhina (LeNet)"

# Table I of the paper: the S2 feature maps each C3 feature map is connected to: 6 maps
# see 3 contiguous ones, 6 see 4 contiguous, 3 see 4 non-contiguous, 1 sees all six.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    *(tuple((s + k) % 6 for k in range(size)) for size in (3, 4) for s in range(6)),
    *((0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5)),
    (0, 1, 2, 3, 4, 5),
)


def c3_connection_matrix(table=C3_TABLE, num_inputs: int = 6) -> np.ndarray:
    """(num_inputs, len(table)) 0/1 matrix: entry [i, j] = 1 iff C3 map j sees S2 map i."""
    m = np.zeros((num_inputs, len(table)), np.int32)
    for j, inputs in enumerate(table):
        m[list(inputs), j] = 1
    return m


def scaled_tanh(a):
    """The paper's squashing function f(a) = A tanh(S a), A = 1.7159, S = 2/3 (Appendix A)."""
    return 1.7159 * jnp.tanh(a * (2.0 / 3.0))


def rbf_codes(num_classes: int, dim: int = 84) -> np.ndarray:
    """Fixed +-1 output codes, (num_classes, dim): rows 1..num_classes of the 128x128
    Sylvester-Hadamard matrix, first ``dim`` columns (the paper's 7x12 character bitmaps are
    not in the seeds); for dim=84 and 10 classes all Hamming distances are >= 36."""
    if not 1 <= num_classes <= 127:
        raise ValueError(f"rbf_codes supports 1..127 classes, got {num_classes}")
    h = np.array([[1.0]], np.float32)
    while h.shape[0] < 128:
        h = np.block([[h, h], [h, -h]])
    return h[1 : num_classes + 1, :dim].astype(np.float32)


class TrainableSubsampling(nn.Module):
    """LeNet's S layers: each map's 2x2 average times a trainable coefficient plus a
    trainable bias, then `scaled_tanh`. (B, H, W, C) -> (B, H//2, W//2, C); 2C parameters."""

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        coefficient = self.param("coefficient", nn.initializers.ones, (c,))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        pooled = nn.avg_pool(x, (2, 2), (2, 2))
        return scaled_tanh(pooled * coefficient + bias)


class PartialConv(nn.Module):
    """A VALID convolution where output map j only sees the input maps ``table[j]``: only
    the connected kernels, (F, F, sum_j |table[j]|), are parameters, the rest exactly zero."""

    table: tuple[tuple[int, ...], ...] = C3_TABLE
    num_inputs: int = 6
    kernel_size: int = 5

    @nn.compact
    def __call__(self, x):
        if x.shape[-1] != self.num_inputs:
            raise ValueError(f"PartialConv expects {self.num_inputs} input maps, got {x.shape[-1]}")
        ins = np.array([i for inputs in self.table for i in inputs])
        outs = np.array([j for j, inputs in enumerate(self.table) for _ in inputs])
        f = self.kernel_size
        fan_in = np.array([len(t) for t in self.table])[outs] * f * f  # per connection

        def init(key, shape, dtype=jnp.float32):
            # LeCun normal per output map (variance 1 / fan-in of that map).
            return nn.initializers.normal(1.0)(key, shape, dtype) / jnp.sqrt(fan_in).astype(dtype)

        kernel = self.param("kernel", init, (f, f, len(ins)))
        bias = self.param("bias", nn.initializers.zeros, (len(self.table),))
        dense = jnp.zeros((f, f, self.num_inputs, len(self.table)), kernel.dtype)
        dense = dense.at[:, :, ins, outs].set(kernel)
        y = jax_conv(x, dense)
        return y + bias


def jax_conv(x, kernel):
    """VALID, stride-1 NHWC cross-correlation with an HWIO kernel."""
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _check_shape(input_shape, min_hw: int, name: str):
    if len(input_shape) != 3 or any(int(d) <= 0 for d in input_shape):
        raise ValueError(f"{name}: input_shape must be (H, W, C) with positive sizes, got {tuple(input_shape)}")
    if min(input_shape[:2]) < min_hw:
        raise ValueError(f"{name}: input height and width must be at least {min_hw}, got {tuple(input_shape)}")


class LeNet5_1998(nn.Module):
    """LeNet-5 exactly as in LeCun et al. 1998: (B, 32, 32, 1) -> (B, num_classes).

    C1 conv 6@5x5 -> S2 -> C3 partial conv 16@5x5 -> S4 -> C5 conv 120@5x5 (the flattened
    features) -> F6 dense 84 -> Euclidean RBF units ``y_c = sum_i (f6_i - w_ci)^2`` with
    fixed codes in "constants"; logits ``-y_c``. Units up to F6 use `scaled_tanh`. The
    paper's input normalisation (-0.1 / 1.175) is left to the data pipeline.
    """

    input_shape: tuple[int, ...] = (32, 32, 1)
    num_classes: int = 10

    def __post_init__(self):
        _check_shape(self.input_shape, 32, "LeNet5_1998")
        if not 1 <= self.num_classes <= 127:
            raise ValueError(f"LeNet5_1998: num_classes must be in 1..127 (fixed RBF codes), got {self.num_classes}")
        super().__post_init__()

    def setup(self):
        self.C1 = _Conv(6, (5, 5), padding="VALID")
        self.S2 = TrainableSubsampling()
        self.C3 = PartialConv(C3_TABLE, 6, 5)
        self.S4 = TrainableSubsampling()
        self.C5 = _Conv(120, (5, 5), padding="VALID")
        self.F6 = _Dense(84)
        self.codes = self.variable("constants", "rbf_codes", lambda: jnp.asarray(rbf_codes(self.num_classes, 84)))

    def forward_features(self, x, train: bool = False):
        check_input(x, self.input_shape, model=f"LeNet5_1998(input_shape={tuple(self.input_shape)})")
        h = self.S2(scaled_tanh(self.C1(x)))
        h = self.S4(scaled_tanh(self.C3(h)))
        h = scaled_tanh(self.C5(h))
        return h.reshape(h.shape[0], -1)

    def head(self, h, train: bool = False):
        f6 = scaled_tanh(self.F6(h))
        codes = self.codes.value
        d2 = (f6 * f6).sum(-1, keepdims=True) - 2.0 * f6 @ codes.T + (codes * codes).sum(-1)
        return -d2

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train), train)


class LeNet5(nn.Module):
    """The common modern LeNet-5: (B, 28, 28, 1) -> (B, num_classes).

    conv 6@5x5 padded 2 -> ReLU -> max pool 2; conv 16@5x5 VALID -> ReLU -> max pool 2
    (flattened (B, 400): the features); dense 120 -> ReLU -> 84 -> ReLU -> num_classes.
    ``conv_impl``: `zoo.nn.fastconv`'s ways for the convolutions and poolings ("xla" the
    plain path; same variables and numbers either way).
    """

    input_shape: tuple[int, ...] = (28, 28, 1)
    num_classes: int = 10
    conv_impl: str = "auto"

    def __post_init__(self):
        _check_shape(self.input_shape, 8, "LeNet5")
        if self.num_classes <= 0:
            raise ValueError(f"LeNet5: num_classes must be positive, got {self.num_classes}")
        if self.conv_impl not in fastconv.CONV_IMPLS:
            raise ValueError(f"LeNet5: conv_impl must be one of {fastconv.CONV_IMPLS}, got {self.conv_impl!r}")
        super().__post_init__()

    def setup(self):
        self.conv1 = _FastConv(6, (5, 5), padding=((2, 2), (2, 2)), conv_impl=self.conv_impl)
        self.conv2 = _FastConv(16, (5, 5), padding="VALID", conv_impl=self.conv_impl)
        self.fc1 = _Dense(120)
        self.fc2 = _Dense(84)
        self.fc3 = _Dense(self.num_classes)

    def feature_maps(self, x, train: bool = False):
        """(B, H, W, C) -> the second pooling's output (B, h, w, 16) (5x5 at 28x28 inputs)."""
        check_input(x, self.input_shape, model=f"LeNet5(input_shape={tuple(self.input_shape)})")
        pool_impl = "xla" if self.conv_impl == "xla" else "auto"
        h = max_pool(nn.relu(self.conv1(x)), 2, 2, impl=pool_impl)
        return max_pool(nn.relu(self.conv2(h)), 2, 2, impl=pool_impl)

    def forward_features(self, x, train: bool = False):
        """(B, H, W, C) -> the flattened feature maps (B, h * w * 16) (400 at 28x28)."""
        h = self.feature_maps(x, train)
        return h.reshape(h.shape[0], -1)

    def head(self, h, train: bool = False):
        return self.fc3(nn.relu(self.fc2(nn.relu(self.fc1(h)))))

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train), train)


register_model(
    "lenet5_1998",
    LeNet5_1998,
    family="cnn",
    paper=f"{PAPER_1998}; seed {SEED}. Partial C3 table, trainable subsampling, RBF output",
    task="classification",
    test_config={"num_classes": 5},
    description="LeNet-5 as published (60,000 trainable parameters at 32x32x1, 10 classes).",
)
register_model(
    "lenet5",
    LeNet5,
    family="cnn",
    paper=f"modern LeNet-5 variant after {PAPER_1998}; seed {SEED}",
    task="classification",
    test_config={"num_classes": 5},
    description=(
        "Modern LeNet-5 (ReLU, max pooling, padded conv1, full C3): 61,706 parameters. "
        '``conv_impl``: "auto", "xla" (plain), "im2col" or "banded" (see `zoo.nn.fastconv`).'
    ),
)
