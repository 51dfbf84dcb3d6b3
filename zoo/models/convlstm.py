"""Convolutional LSTM (Shi et al. 2015, "Convolutional LSTM network") and its
encoder-forecaster for next-frame prediction (seed: khanzhina, C-LSTM). With ``*`` a
convolution ("same" padding, stride 1) and ``∘`` the element-wise product::

    i_t = σ(W_xi * X_t + W_hi * H_{t-1} + W_ci ∘ C_{t-1} + b_i)
    f_t = σ(W_xf * X_t + W_hf * H_{t-1} + W_cf ∘ C_{t-1} + b_f)
    C_t = f_t ∘ C_{t-1} + i_t ∘ tanh(W_xc * X_t + W_hc * H_{t-1} + b_c)
    o_t = σ(W_xo * X_t + W_ho * H_{t-1} + W_co ∘ C_t + b_o)
    H_t = o_t ∘ tanh(C_t)

X_t (B, H, W, C_in); H_t, C_t (B, H, W, F); the peepholes are per-position (H, W, F), as in
the paper. One convolution per step over ``concat([X_t, H_{t-1}])``, kernel
(k, k, C_in + F, 4F), gate blocks (i, f, c, o), run by `zoo.nn.recurrence.scan_cell`.
Convolutions go through `zoo.nn.fastconv.conv2d`: on CPU, XLA's convolution inside a scan
has a backward pass an order of magnitude slower (README's ConvLSTM notes).

Encoder-forecaster (section 3.2): an encoder stack reads the T_in frames; a forecaster
stack, starting from its final states, runs T_out steps without input (each higher layer
sees the one below); all forecaster states, concatenated, go through a 1x1 convolution and
a sigmoid to frames in [0, 1] (the zoo's regression task).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo.nn import check_input
from zoo.nn.fastconv import CONV_IMPLS, conv2d
from zoo.nn.recurrence import hidden_state_perturbation, scan_cell, torch_uniform
from zoo.registry import register_model

PAPER = (
    "Shi et al. 2015, Convolutional LSTM network: a machine learning approach for precipitation nowcasting (NeurIPS)"
)
SEED = "khanzhina (C-LSTM)"


def convlstm_step(w, carry, x, *, conv_impl: str = "auto"):
    """One ConvLSTM step (Shi et al. 2015, equation 3): x (B, H, W, C_in), carry (c, h)
    each (B, H, W, F) -> ((c, h), h). ``w``: kernel (k, k, C_in + F, 4F), bias (4F,),
    peephole_i, peephole_f, peephole_o (H, W, F). ``conv_impl``: how the "same"
    cross-correlation is computed (`zoo.nn.fastconv.conv2d`)."""
    c, h = carry
    # A zero-channel x (the forecaster's first layer has no input) concatenates to h alone.
    gates = conv2d(jnp.concatenate([x, h], -1), w["kernel"], 1, "SAME", conv_impl) + w["bias"]
    i, f, a, o = jnp.split(gates, 4, axis=-1)
    i = jax.nn.sigmoid(i + w["peephole_i"] * c)
    f = jax.nn.sigmoid(f + w["peephole_f"] * c)
    c = f * c + i * jnp.tanh(a)
    o = jax.nn.sigmoid(o + w["peephole_o"] * c)
    h = o * jnp.tanh(c)
    return (c, h), h


class ConvLSTMCell(nn.Module):
    """A ConvLSTM cell owning its weights; ``cell((H, W, C_in))`` returns the step
    ``(carry, x_t) -> (carry, h_t)`` for frames of that size (see `convlstm_step`)."""

    features: int = 16
    kernel_size: int = 3
    conv_impl: str = "auto"

    def __post_init__(self):
        if self.conv_impl not in CONV_IMPLS:
            raise ValueError(f"ConvLSTM conv_impl must be one of {CONV_IMPLS}, got {self.conv_impl!r}")
        if int(self.features) <= 0:
            raise ValueError(f"ConvLSTM features must be positive, got {self.features}")
        if int(self.kernel_size) <= 0 or int(self.kernel_size) % 2 == 0:
            raise ValueError(
                f"ConvLSTM kernel_size must be a positive odd number (so 'same' padding "
                f"is symmetric), got {self.kernel_size}"
            )
        super().__post_init__()

    def initial_carry(self, batch_size: int, frame_size: tuple[int, int], dtype=jnp.float32):
        """Zero state (c, h), each (B, H, W, F)."""
        zeros = jnp.zeros((batch_size, *frame_size, self.features), dtype)
        return zeros, zeros

    @nn.compact
    def __call__(self, input_shape):
        height, width, channels = input_shape
        k, F = self.kernel_size, self.features
        init = torch_uniform(k * k * (channels + F))
        w = {
            "kernel": self.param("kernel", init, (k, k, channels + F, 4 * F)),
            "bias": self.param("bias", init, (4 * F,)),
        }
        for gate in ("i", "f", "o"):
            # Zero peepholes: the cell starts as a plain ConvLSTM without them and learns them.
            w[f"peephole_{gate}"] = self.param(f"peephole_{gate}", nn.initializers.zeros, (height, width, F))
        return functools.partial(convlstm_step, w, conv_impl=self.conv_impl)


class ConvLSTM(nn.Module):
    """One ConvLSTM layer: x (B, T, H, W, C_in) -> (final carry (c, h), outputs
    (B, T, H, W, F)). ``initial_carry`` defaults to zeros; ``remat`` checkpoints the step."""

    features: int = 16
    kernel_size: int = 3
    remat: bool = False
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x, initial_carry=None):
        if x.ndim != 5:
            raise ValueError(f"ConvLSTM expects input of shape (B, T, H, W, C), got {tuple(x.shape)}")
        cell = ConvLSTMCell(self.features, self.kernel_size, self.conv_impl, name="cell")
        step = cell(x.shape[2:])
        carry = cell.initial_carry(x.shape[0], x.shape[2:4], x.dtype) if initial_carry is None else initial_carry
        eps = hidden_state_perturbation(self, x.shape[:4] + (self.features,), carry[1].dtype)
        return scan_cell(step, carry, x, remat=self.remat, perturbations=eps)


class ConvLSTMForecaster(nn.Module):
    """Encoder-forecaster ConvLSTM: x (B, T_in, H, W, C) float32 -> (B, output_frames, H, W,
    C) in [0, 1]. ``features``: each stacked layer's channels; ``forward_features``: the
    forecaster's states (B, output_frames, H, W, sum(features)); ``head``: 1x1 conv, sigmoid.
    """

    input_shape: tuple = (5, 24, 24, 1)
    output_frames: int = 5
    features: tuple[int, ...] = (16, 16)
    kernel_size: int = 3
    remat: bool = False
    conv_impl: str = "auto"

    def __post_init__(self):
        shape = tuple(self.input_shape)
        if len(shape) != 4 or any(d is not None and int(d) <= 0 for d in shape) or None in shape[1:]:
            raise ValueError(
                f"ConvLSTMForecaster: input_shape must be (T_in, H, W, C) with positive "
                f"H, W, C (T_in may be None), got {shape}"
            )
        if int(self.output_frames) <= 0:
            raise ValueError(f"ConvLSTMForecaster: output_frames must be positive, got {self.output_frames}")
        if not tuple(self.features) or any(int(f) <= 0 for f in self.features):
            raise ValueError(
                f"ConvLSTMForecaster: features must be positive channel counts, one per "
                f"layer, got {tuple(self.features)}"
            )
        if int(self.kernel_size) <= 0 or int(self.kernel_size) % 2 == 0:
            raise ValueError(f"ConvLSTMForecaster: kernel_size must be a positive odd number, got {self.kernel_size}")
        if self.conv_impl not in CONV_IMPLS:
            raise ValueError(f"ConvLSTMForecaster: conv_impl must be one of {CONV_IMPLS}, got {self.conv_impl!r}")
        super().__post_init__()

    def setup(self):
        layer = functools.partial(ConvLSTM, kernel_size=self.kernel_size, remat=self.remat, conv_impl=self.conv_impl)
        self.encoder = [layer(f) for f in self.features]
        self.forecaster = [layer(f) for f in self.features]
        self.readout = nn.Conv(self.input_shape[-1], (1, 1))

    def forward_features(self, x, train: bool = False):
        """(B, T_in, H, W, C) -> the forecaster's states (B, output_frames, H, W, sum(features))."""
        name = f"ConvLSTMForecaster(input_shape={tuple(self.input_shape)})"
        check_input(x, self.input_shape, model=name)
        if x.ndim != 5:
            shape = ", ".join("*" if d is None else str(d) for d in self.input_shape)
            raise ValueError(f"{name} expects input of shape (B, {shape}), got {tuple(x.shape)}")
        carries = []
        for layer in self.encoder:
            carry, x = layer(x)
            carries.append(carry)
        # The first forecaster layer has no input: a zero-channel sequence only sets T_out.
        x = jnp.zeros((x.shape[0], self.output_frames, *x.shape[2:4], 0), x.dtype)
        states = []
        for layer, carry in zip(self.forecaster, carries):
            _, x = layer(x, carry)
            states.append(x)
        return jnp.concatenate(states, axis=-1)

    def head(self, states):
        """(B, T_out, H, W, sum(features)) -> frames (B, T_out, H, W, C) in [0, 1]."""
        return jax.nn.sigmoid(self.readout(states))

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train))


register_model(
    "convlstm",
    ConvLSTMForecaster,
    family="recurrent",
    task="regression",
    paper=f"{PAPER}; Hadamard peepholes; encoder-forecaster; seed {SEED}",
    test_config={"input_shape": (3, 6, 5, 2), "output_frames": 2, "features": (3, 2)},
    description=(
        "ConvLSTM encoder-forecaster (Shi et al. 2015): frames (B, T_in, H, W, C) -> the next "
        "``output_frames`` frames (B, T_out, H, W, C) in [0, 1] (sigmoid); stacked layers of "
        "``features`` channels, ``kernel_size`` x ``kernel_size`` convolutions, per-position "
        "Hadamard peepholes. Trains on ``moving_digits`` (which sets ``output_frames``). "
        '``conv_impl``: "auto" (matmul-based convolutions on CPU, XLA\'s elsewhere), "xla", '
        '"im2col", "banded" or "winograd" (`zoo.nn.fastconv`).'
    ),
)
