"""The convolutional autoencoder (seed kang-lecture4, "Convolutional Auto-Encoder"; Masci,
Meier, Ciresan & Schmidhuber 2011), in the seed's two ways of growing the feature map back
in the decoder:

* ``decoder="unpool"``: each encoder max pool remembers its argmax (`zoo.nn.pooling.
  max_pool(..., return_indices=True)`) and the matching decoder stage puts each value back
  at that position (`max_unpool`), then convolves — "corresponding pairs of downsampling
  and upsampling layers";
* ``decoder="transposed"``: each decoder stage is a 3x3 transposed convolution of stride 2,
  padding 1, output padding 1 (`zoo.nn.conv_transpose.ConvTranspose`), which doubles the
  map: ``(n - 1) * 2 - 2 + 3 + 1 = 2n``.

Encoder stage i: 3x3 "SAME" conv with ``features[i]`` maps, [batch norm], ReLU, 2x2/2 max
pool. ``x: (B, H, W, C) -> code (B, H / 2^n, W / 2^n, features[-1])`` for n stages (H and W
must be multiples of 2^n). Decoder stage i (deepest first): upsample, then 3x3 conv to
``features[i - 1]`` maps (``features[0]`` for the last), [batch norm], ReLU; a final 3x3
conv gives C maps of logits. The output is ``{"reconstruction_logits": (B, H, W, C)}``:
``sigmoid`` of it is the reconstruction of data in [0, 1], trained by binary cross-entropy
(the "reconstruction" task).

`ConvStack` (convs, batch norm, ReLU) is shared with the segmentation networks.
"""

from __future__ import annotations

from functools import partial

import flax.linen as nn

from zoo.nn import check_input, fastconv
from zoo.nn.conv_transpose import CONV_TRANSPOSE_IMPLS, ConvTranspose
from zoo.nn.initializers import he_normal
from zoo.nn.normalization import batch_norm
from zoo.nn.pooling import max_pool, max_unpool
from zoo.registry import register_model

DECODERS = ("unpool", "transposed")

SEED = "kang-lecture4 (Convolutional Auto-Encoder: max unpooling, transpose convolution)"
PAPER = (
    "Masci, Meier, Ciresan & Schmidhuber 2011, Stacked convolutional auto-encoders for hierarchical feature extraction"
)


def check_image_config(owner, input_shape, features, pools: int, conv_impl: str) -> None:
    """ValueError unless ``input_shape`` is (H, W, C) with H, W multiples of 2**pools,
    ``features`` positive, and ``conv_impl`` one of `fastconv.CONV_IMPLS`."""
    name = type(owner).__name__
    if len(input_shape) != 3 or any(int(d) <= 0 for d in input_shape):
        raise ValueError(f"{name}: input_shape must be (H, W, C) with positive sizes, got {tuple(input_shape)}")
    if not features or any(int(f) <= 0 for f in features):
        raise ValueError(f"{name}: features must be positive channel counts, got {tuple(features)}")
    if input_shape[0] % 2**pools or input_shape[1] % 2**pools:
        raise ValueError(
            f"{name}: input height and width must be multiples of {2**pools} ({pools} 2x2 pools), "
            f"got {tuple(input_shape)}"
        )
    if conv_impl not in fastconv.CONV_IMPLS:
        raise ValueError(f"{name}: conv_impl must be one of {fastconv.CONV_IMPLS}, got {conv_impl!r}")


def transpose_impl(conv_impl: str) -> str:
    """The transposed convolutions' way for a model's ``conv_impl``: the same name where
    `conv_transpose2d` has it ("xla", "im2col"), its own choice otherwise."""
    return conv_impl if conv_impl in CONV_TRANSPOSE_IMPLS else "auto"


def pool_impl(conv_impl: str) -> str:
    return "xla" if conv_impl == "xla" else "auto"


class ConvStack(nn.Module):
    """``len(features)`` 3x3 "SAME" convs, each followed by [batch norm] and ReLU.
    (B, H, W, C) -> (B, H, W, features[-1])."""

    features: tuple[int, ...]
    batch_norm: bool = False
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x, train: bool = False):
        # Batch norm has its own shift, so the conv before it needs no bias.
        conv = partial(fastconv.Conv, kernel_init=he_normal, use_bias=not self.batch_norm, conv_impl=self.conv_impl)
        for f in self.features:
            if self.batch_norm:
                x = nn.relu(batch_norm(use_running_average=not train)(conv(int(f), (3, 3))(x)))
            else:  # ReLU in the convolution's pass
                x = conv(int(f), (3, 3), relu=True)(x)
        return x


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder, (B, H, W, C) -> {"reconstruction_logits": (B, H, W, C)};
    ``decoder`` "unpool" (max unpooling at the encoder's argmax) or "transposed"
    (stride-2 transposed convolutions). See the module docstring for the layers.

    ``encode(x) -> (code, indices)``: the code (B, H / 2^n, W / 2^n, features[-1]) and the
    pooling indices the unpooling decoder needs (a tuple of n (B, h_i, w_i, features[i])
    int32 arrays, shallowest first; empty for "transposed"). ``decode(code, indices) ->``
    logits (B, H, W, C).
    """

    input_shape: tuple[int, ...] = (32, 32, 1)
    features: tuple[int, ...] = (16, 32)
    decoder: str = "unpool"
    batch_norm: bool = False
    conv_impl: str = "auto"

    def __post_init__(self):
        check_image_config(self, self.input_shape, self.features, len(self.features), self.conv_impl)
        if self.decoder not in DECODERS:
            raise ValueError(f"ConvAutoencoder: decoder must be one of {DECODERS}, got {self.decoder!r}")
        super().__post_init__()

    def setup(self):
        stack = partial(ConvStack, batch_norm=self.batch_norm, conv_impl=self.conv_impl)
        self.down = [stack((int(f),)) for f in self.features]
        outs = [int(f) for f in (self.features[0], *self.features[:-1])]
        if self.decoder == "transposed":
            # The up-sampling layer itself maps to the stage's width, as a conv would.
            self.up = [
                ConvTranspose(o, 3, 2, 1, 1, kernel_init=he_normal, conv_impl=transpose_impl(self.conv_impl))
                for o in outs
            ]
        self.up_convs = [stack((o,)) for o in outs]
        self.out = fastconv.Conv(int(self.input_shape[-1]), (3, 3), conv_impl=self.conv_impl)

    def encode(self, x, train: bool = False):
        """(B, H, W, C) -> (code, indices); see the class docstring."""
        check_input(x, self.input_shape, model=f"ConvAutoencoder(input_shape={tuple(self.input_shape)})")
        indices = []
        for stage in self.down:
            h = stage(x, train)
            if self.decoder == "unpool":
                x, idx = max_pool(h, 2, return_indices=True, impl=pool_impl(self.conv_impl))
                indices.append(idx)
            else:
                x = max_pool(h, 2, impl=pool_impl(self.conv_impl))
        return x, tuple(indices)

    def decode(self, code, indices=(), train: bool = False):
        """(code, indices) from `encode` -> reconstruction logits (B, H, W, C)."""
        h = code
        for i in reversed(range(len(self.features))):
            if self.decoder == "unpool":
                h = max_unpool(h, indices[i], (2 * h.shape[1], 2 * h.shape[2]))
            else:
                h = self.up[i](h)
            h = self.up_convs[i](h, train)
        return self.out(h)

    def forward_features(self, x, train: bool = False):
        return self.encode(x, train)

    def head(self, features, train: bool = False):
        code, indices = features
        return {"reconstruction_logits": self.decode(code, indices, train)}

    def __call__(self, x, train: bool = False):
        return self.head(self.encode(x, train), train)

    def reconstruct(self, x, train: bool = False):
        """(B, H, W, C) -> the reconstruction in [0, 1], sigmoid of the logits."""
        return nn.sigmoid(self(x, train)["reconstruction_logits"])


_TEST = {"input_shape": (8, 8, 1), "features": (3, 4)}

register_model(
    "conv_autoencoder",
    ConvAutoencoder,
    family="autoencoders",
    paper=f"{PAPER}; seed {SEED}",
    task="reconstruction",
    test_config=_TEST,
    description="Convolutional autoencoder whose decoder max-unpools at the encoder's remembered argmax.",
)
register_model(
    "conv_autoencoder_transposed",
    ConvAutoencoder,
    family="autoencoders",
    paper=f"{PAPER}; seed {SEED}",
    task="reconstruction",
    defaults={"decoder": "transposed"},
    test_config=_TEST,
    description="Convolutional autoencoder whose decoder grows the map by stride-2 transposed convolutions.",
)
