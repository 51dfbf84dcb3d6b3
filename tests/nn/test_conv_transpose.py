"""zoo.nn.conv_transpose: output sizes by the rule of zoo.nn.shapes, values against
PyTorch's ``ConvTranspose2d`` (same weights, NCHW <-> NHWC), the three ways ("xla", "im2col",
"polyphase") against each other, and the transposed convolution as the adjoint of the strided one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require_module

from zoo.nn.conv_transpose import (
    ConvTranspose,
    _phase_taps,
    choose_transpose_impl,
    conv_transpose2d,
    transpose_geometry,
)
from zoo.nn.fastconv import windows_tile
from zoo.nn.fastconv import conv2d_xla
from zoo.nn.shapes import conv_output_size, conv_transpose_output_size

# (kernel, stride, padding, output_padding, H, W): the seed's 3x3 examples at stride 1 and
# 2 with padding 0 and 1, U-Net's 2x2/2 up-conv, the 3x3/2 "SAME" inverse, DCGAN's 4x4/2/1.
CASES = [
    (3, 1, 0, 0, 3, 3),
    (3, 1, 1, 0, 3, 3),
    (3, 2, 0, 0, 3, 3),
    (3, 2, 1, 0, 3, 3),
    (3, 2, 1, 1, 4, 5),
    (2, 2, 0, 0, 4, 6),
    (4, 2, 1, 0, 5, 5),
    (1, 1, 0, 0, 4, 4),
    (5, 3, 2, 1, 4, 6),  # kernel not a multiple of the stride: phases with 2 and 1 taps
]
IMPLS = ("xla", "im2col", "polyphase")


def _data(k, h, w, seed=0, cin=3, cout=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, h, w, cin)).astype(np.float32)
    kernel = rng.standard_normal((k, k, cin, cout)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(kernel)


def test_seed_output_size_rule():
    # The seed's 3x3 feature map: padding 0 stride 1 -> 5 (F - 1 = 2 cells of zeros each
    # side); padding 1 stride 1 -> 3 (1 cell); padding 0 stride 2 -> 7; padding 1 stride 2 -> 5.
    assert conv_transpose_output_size(3, 3, 1, 0) == 5
    assert conv_transpose_output_size(3, 3, 1, 1) == 3
    assert conv_transpose_output_size(3, 3, 2, 0) == 7
    assert conv_transpose_output_size(3, 3, 2, 1) == 5
    assert conv_transpose_output_size(16, 2, 2) == 32  # U-Net's up-conv doubles
    assert conv_transpose_output_size(16, 3, 2, 1, 1) == 32
    assert conv_transpose_output_size(5, 3, 2, (0, 1)) == 10
    # The inverse of the convolution's rule, for every input size a strided conv maps to n.
    for n, k, s, p in [(7, 3, 2, 1), (8, 3, 2, 1), (5, 2, 2, 0), (6, 4, 2, 1)]:
        for extra in range(s):
            assert conv_output_size(conv_transpose_output_size(n, k, s, p, extra), k, s, p) == n


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("k,s,p,op,h,w", CASES)
def test_output_shape_is_the_rule(k, s, p, op, h, w, impl):
    x, kernel = _data(k, h, w)
    y = conv_transpose2d(x, kernel, s, p, op, impl=impl)
    rule = (conv_transpose_output_size(h, k, s, p, op), conv_transpose_output_size(w, k, s, p, op))
    assert y.shape == (2, *rule, 4)


@pytest.mark.parametrize("k,s,p,op,h,w", CASES)
def test_values_match_torch_conv_transpose2d(k, s, p, op, h, w):
    torch = require_module("torch")
    x, kernel = _data(k, h, w, seed=1)
    layer = torch.nn.ConvTranspose2d(3, 4, k, stride=s, padding=p, output_padding=op)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.asarray(kernel).transpose(2, 3, 0, 1).copy()))
        ref = layer(torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())).permute(0, 2, 3, 1).numpy()
    module = ConvTranspose(4, k, s, p, op)
    variables = {"params": {"kernel": kernel, "bias": jnp.asarray(layer.bias.detach().numpy())}}
    for impl in IMPLS:
        y = module.clone(conv_impl=impl).apply(variables, x)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k,s,p,op,h,w", CASES + [(3, 2, ((0, 1), (2, 1)), 1, 5, 4)])
def test_transposed_conv_is_the_adjoint_of_the_strided_conv(k, s, p, op, h, w):
    x, kernel = _data(k, h, w, seed=2)
    y = conv_transpose2d(x, kernel, s, p, op)
    conv_kernel = kernel.transpose(0, 1, 3, 2)  # (k, k, 4, 3): maps the 4-channel output back
    pads = ((p, p), (p, p)) if isinstance(p, int) else p
    _, vjp = jax.vjp(lambda z: conv2d_xla(z, conv_kernel, s, pads), jnp.zeros_like(y))
    np.testing.assert_allclose(y, vjp(x)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k,s,p,op,h,w", CASES + [(3, (2, 1), ((0, 1), (2, 1)), (1, 0), 5, 4)])
def test_matmul_ways_equal_xla_in_value_and_gradient(k, s, p, op, h, w):
    x, kernel = _data(k, h, w, seed=3)
    g = jnp.asarray(np.random.default_rng(4).standard_normal(conv_transpose2d(x, kernel, s, p, op).shape), jnp.float32)
    results = [
        jax.jit(jax.value_and_grad(lambda x, k_: jnp.vdot(conv_transpose2d(x, k_, s, p, op, impl=impl), g), (0, 1)))(
            x, kernel
        )
        for impl in IMPLS
    ]
    (value, grads), others = results[0], results[1:]
    for other_value, other_grads in others:
        np.testing.assert_allclose(other_value, value, rtol=1e-4, atol=1e-4)
        for a, b in zip(other_grads, grads):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_auto_choice_per_geometry():
    """What "auto" takes on the CPU, from each geometry's (input, output) sizes as
    `transpose_geometry` gives them."""

    def choice(kernel, stride, padding=0, output_padding=0, platform="cpu", input_shape=(64, 16, 16, 32), features=32):
        pads, _, out_hw = transpose_geometry(input_shape[1:3], kernel, stride, padding, output_padding)
        kernel_shape = (*kernel, input_shape[-1], features)
        return choose_transpose_impl(input_shape, kernel_shape, stride, pads, out_hw, platform=platform)

    # Overlapping copies of a large map: the scattered matrix (64*16*16, 3*3*32) is 18 MiB.
    assert choice((3, 3), 2, padding=1) == "polyphase"
    assert choice((4, 4), 2, padding=1) == "polyphase"
    # Of a small map (64*8*8, 3*3*16: 2.25 MiB), im2col.
    assert choice((3, 3), 2, padding=1, input_shape=(64, 8, 8, 32), features=16) == "im2col"
    # The transposed autoencoder's last up-conv (64*16*16, 3*3*16: 9 MiB), im2col too.
    assert choice((3, 3), 2, padding=1, input_shape=(64, 16, 16, 16), features=16) == "im2col"
    assert choice((2, 2), 2) == "im2col"  # the copies tile the output: col2im is a reshape
    assert choice((2, 2), 2, padding=1, features=128) == "polyphase"
    # output_padding adds a row and column no window covers: not a tiling either
    assert choice((2, 2), 2, output_padding=1, features=128) == "polyphase"
    assert choice((3, 3), 1, padding=1) == "xla"  # a plain convolution
    assert choice((3, 3), 2, padding=1, platform="gpu") == "xla"
    assert windows_tile((2, 2), (2, 2), ((0, 0), (0, 0)), (16, 16), (8, 8))  # the shared rule, col2im's too
    assert not windows_tile((2, 2), (2, 2), ((0, 0), (0, 0)), (17, 17), (8, 8))


def test_bad_arguments_raise():
    x, kernel = _data(3, 4, 4)
    with pytest.raises(ValueError, match="output_padding"):
        conv_transpose2d(x, kernel, 2, 1, 2)
    with pytest.raises(ValueError, match="explicit"):
        conv_transpose2d(x, kernel, 1, "SAME")
    with pytest.raises(ValueError, match="NHWC"):
        conv_transpose2d(x[0], kernel)
    with pytest.raises(ValueError, match="conv_impl"):
        ConvTranspose(4, 3, conv_impl="fast")
    with pytest.raises(ValueError, match="empty"):
        conv_transpose2d(x[:, :1, :1], kernel, 1, 2)


def test_polyphase_phases_tile_the_output_where_that_costs_no_taps():
    # 3x3/2 padding 1: output cell 2u is x[u] k[1], cell 2u + 1 is x[u] k[2] + x[u + 1] k[0]
    # (y[2i + a - 1] += x[i] k[a]); so two taps, the phases on the output's own grid, no crop.
    shift, first, rows = _phase_taps(3, 2, 1, 16)
    assert (shift, first) == (0, 0) and rows.tolist() == [[1, 2], [3, 0]]  # row 3: none (zero)
    # 4x4/2 padding 1: on the output's grid the phases would read 3 input offsets; on the
    # uncropped scatter's, shifted a cell and cropped, 2.
    shift, first, rows = _phase_taps(4, 2, 1, 16)
    assert (shift, first) == (1, -1) and rows.tolist() == [[2, 3], [0, 1]]
