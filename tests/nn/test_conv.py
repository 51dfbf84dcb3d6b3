"""Golden tests for every convolution/pooling worked example in the seeds (zoo.nn.conv).

Seeds: kang-lecture4-neural-networks.txt ("CNN Basics: Convolution / Activation /
Pooling / Strided Convolution", the GoogLeNet table, "Convolutional Auto-Encoder: Max
Pooling"), duan-rnn-cnn.txt ("CNN", "Convolution layer", "Pooling"),
khanzhina-deep-nets-architectures.txt ("Discrete convolution"). Each test says which
convention (cross-correlation, or convolution with the flipped kernel) reproduces the slide.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require_module

from zoo.nn import get_activation
from zoo.nn.conv import (
    KERNELS,
    avg_pool2d,
    avg_pool_as_conv,
    convolve2d,
    correlate2d,
    max_pool2d,
    output_size,
    zero_pad,
)
from zoo.nn.shapes import conv_output_size

# kang-lecture4, "CNN Basics: Convolution": the 5x5 binary input and the X-shaped 3x3 kernel.
KANG_INPUT = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]])
KANG_KERNEL = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])
# duan-rnn-cnn, "Pooling": the 4x4 max-pool example.
DUAN_POOL_INPUT = np.array([[1, 2, 5, 6], [3, 4, 7, 8], [9, 8, 5, 4], [7, 6, 3, 2]])
# An asymmetric kernel (Sobel, x-derivative): the only kind for which the two conventions differ.
SOBEL_X = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32)


# --- Output size --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, kernel, stride, padding, expected, source",
    [
        (5, 3, 1, 0, 3, "kang 'CNN Basics: Convolution': 5x5 input, 3x3 kernel, stride 1"),
        (5, 3, 2, 0, 2, "kang 'Stride 2' feature map"),
        (6, 3, 1, 1, 6, "kang 'Stride 1 with Padding': the 6x6 input padded to 8x8"),
        (4, 2, 2, 0, 2, "duan 'Pooling': max pool with 2x2 filter and stride 2"),
        (224, 7, 2, 3, 112, "kang GoogLeNet table: convolution 7x7/2 -> 112x112"),
        (112, 3, 2, 1, 56, "kang GoogLeNet table: max pool 3x3/2 -> 56x56"),
        (56, 3, 2, 1, 28, "kang GoogLeNet table: max pool 3x3/2 -> 28x28"),
        (28, 3, 2, 1, 14, "kang GoogLeNet table: max pool 3x3/2 -> 14x14"),
        (14, 3, 2, 1, 7, "kang GoogLeNet table: max pool 3x3/2 -> 7x7"),
        (7, 7, 1, 0, 1, "kang GoogLeNet table: avg pool 7x7/1 -> 1x1"),
        (224, 3, 1, 1, 224, "kang VGGNet: 3x3 convolution with stride 1 keeps the size"),
        (224, 2, 2, 0, 112, "kang VGGNet: 2x2 max pooling halves it"),
        (227, 11, 4, 0, 55, "AlexNet conv1 11x11/4 (DESIGN.md): the paper's 55x55 needs 227x227"),
    ],
)
def test_seed_output_size_formula(size, kernel, stride, padding, expected, source):
    """kang-lecture4 "Output size according to the size of padding and stride":
    (H + 2P - F)/S + 1. The GoogLeNet table prints only the sizes; the paddings (3 for the
    7x7 conv, 1 for the 3x3/2 pools) are the ones that reproduce them."""
    assert output_size(size, kernel, stride, padding) == expected, source
    assert output_size(size, kernel, stride, padding) == conv_output_size(size, kernel, stride, padding)
    # The functions produce maps of exactly that size (traced only: shapes, no arithmetic).
    x = jax.ShapeDtypeStruct((size, size), jnp.float32)
    window = jnp.ones((kernel, kernel))
    assert jax.eval_shape(lambda x: correlate2d(x, window, stride, padding), x).shape == (expected, expected)
    assert jax.eval_shape(lambda x: max_pool2d(x, kernel, stride, padding), x).shape == (expected, expected)


def test_seed_output_size_needs_the_floor_where_the_slides_do_not_divide_evenly():
    """kang's formula has no floor. Two places in the seed where the division is not exact:
    the AlexNet slide's "Input size: 224 by 224" with the paper's 11x11/4 conv1 gives
    (224 - 11)/4 + 1 = 54.25 (so 54 maps, not the paper's 55: DESIGN.md's 227 vs 224); and the
    GoogLeNet table's first max pool, 112 -> 56, unpadded gives (112 - 3)/2 + 1 = 55.5 -> 55,
    so the table needs padding 1 (or ceil mode)."""
    assert (224 - 11) / 4 + 1 == 54.25 and output_size(224, 11, 4) == 54
    assert (112 - 3) / 2 + 1 == 55.5 and output_size(112, 3, 2) == 55


def test_output_size_rejects_windows_that_do_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        output_size(2, 3)
    with pytest.raises(ValueError, match="S >= 1"):
        output_size(5, 3, stride=0)
    with pytest.raises(ValueError, match="does not fit an input of size 2 with padding 0"):
        correlate2d(jnp.ones((2, 2)), jnp.ones((3, 3)))
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W\)"):
        correlate2d(jnp.ones(5), jnp.ones((3, 3)))
    with pytest.raises(ValueError, match="2-D kernel"):
        correlate2d(jnp.ones((5, 5)), jnp.ones((3, 3, 1)))


# --- Convolution ----------------------------------------------------------------------------


def test_seed_5x5_input_with_3x3_kernel():
    """kang-lecture4 "CNN Basics: Convolution": the slide multiplies the top-left window by
    the kernel element by element, unflipped ("1x1 1x0 1x1 / 0x0 1x1 1x0 / 0x1 0x0 1x1"),
    and prints 4: cross-correlation. The X kernel is its own 180-degree rotation, so the
    flipped convention gives the same map. The slide prints only the first cell; the other
    eight are worked by hand from the slide's input. Stride 2 ("Stride 2" slide) keeps
    every other cell."""
    stride1 = np.array([[4, 3, 4], [2, 4, 3], [2, 3, 4]])
    y = correlate2d(KANG_INPUT, KANG_KERNEL)
    assert y[0, 0] == 4
    np.testing.assert_array_equal(y, stride1)
    np.testing.assert_array_equal(convolve2d(KANG_INPUT, KANG_KERNEL), stride1)
    np.testing.assert_array_equal(correlate2d(KANG_INPUT, KANG_KERNEL, stride=2), stride1[::2, ::2])
    assert y.dtype == jnp.int32  # integer inputs stay exact


def test_seed_zero_padding_of_6x6_input():
    """kang-lecture4 "Padding with size 1": the 6x6 input framed by one ring of zeros (8x8,
    as printed). No kernel, so no convention."""
    image = np.array(
        [
            [3, 1, 1, 2, 8, 4],
            [1, 0, 7, 3, 2, 6],
            [2, 3, 5, 1, 1, 3],
            [1, 4, 1, 2, 6, 5],
            [3, 2, 1, 3, 7, 2],
            [9, 2, 6, 2, 5, 1],
        ]
    )
    printed = np.array(
        [
            [0, 0, 0, 0, 0, 0, 0, 0],
            [0, 3, 1, 1, 2, 8, 4, 0],
            [0, 1, 0, 7, 3, 2, 6, 0],
            [0, 2, 3, 5, 1, 1, 3, 0],
            [0, 1, 4, 1, 2, 6, 5, 0],
            [0, 3, 2, 1, 3, 7, 2, 0],
            [0, 9, 2, 6, 2, 5, 1, 0],
            [0, 0, 0, 0, 0, 0, 0, 0],
        ]
    )
    np.testing.assert_array_equal(zero_pad(image, 1), printed)
    # "Stride 1 with Padding": a 3x3 kernel on the padded input keeps the 6x6 size.
    assert correlate2d(image, KANG_KERNEL, padding=1).shape == (6, 6)


def test_seed_sharpen_kernel_gives_320():
    """kang-lecture4 "Convolution with padding": the image matrix (a corner of a larger
    image, shown with its top and left zero padding) and the sharpen kernel; the slide sums
    0*0 + 0*-1 + 0*0 + 0*-1 + 105*5 + 102*-1 + 0*0 + 103*-1 + 99*0 = 320, kernel unflipped:
    cross-correlation (the sharpen kernel is its own rotation, so convolution agrees). Only the
    first output cell is printed."""
    image = np.array(
        [
            [105, 102, 100, 97, 96],
            [103, 99, 103, 101, 102],
            [101, 98, 104, 102, 100],
            [99, 101, 106, 104, 99],
            [104, 104, 104, 100, 98],
        ]
    )
    np.testing.assert_array_equal(KERNELS["sharpen"], [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    assert correlate2d(image, KERNELS["sharpen"], padding=1)[0, 0] == 320
    assert convolve2d(image, KERNELS["sharpen"], padding=1)[0, 0] == 320
    # The slide's own term-by-term sum, over the padded window.
    window = np.asarray(zero_pad(image, 1))[:3, :3]
    assert (
        int((window * KERNELS["sharpen"]).sum())
        == 0 * 0 + 0 * -1 + 0 * 0 + 0 * -1 + 105 * 5 + 102 * -1 + 0 * 0 + 103 * -1 + 99 * 0
        == 320
    )


def test_seed_relu_on_4x4_feature_map():
    """kang-lecture4 "CNN Basics: Activation": ReLU after convolution on the printed 4x4 map."""
    feature_map = np.array([[15, 20, -10, 35], [18, -110, 25, 100], [20, -15, 25, -10], [101, 75, 18, 23]], np.float32)
    printed = np.array([[15, 20, 0, 35], [18, 0, 25, 100], [20, 0, 25, 0], [101, 75, 18, 23]])
    np.testing.assert_array_equal(get_activation("relu")(feature_map), printed)


def test_seed_identity_kernel():
    """duan-rnn-cnn "Convolution layer", Identity [[0,0,0],[0,1,0],[0,0,0]]: with zero padding
    1 it returns the image. duan's formula flips the kernel; the identity is its own rotation,
    so both conventions reproduce the slide."""
    np.testing.assert_array_equal(KERNELS["identity"], [[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    x = np.arange(30, dtype=np.float32).reshape(5, 6)
    np.testing.assert_array_equal(convolve2d(x, KERNELS["identity"], padding=1), x)
    np.testing.assert_array_equal(correlate2d(x, KERNELS["identity"], padding=1), x)


def test_seed_edge_detection_kernels():
    """duan-rnn-cnn "Convolution layer", the three "Edge detection" kernels. All three are
    their own 180-degree rotation, so duan's flipped convolution and cross-correlation agree.

    The slide prints the third as [[-1,-1,-1],[-1,0,-1],[-1,-1,-1]]. That is not an edge
    detector: its weights sum to -8, so a flat region of brightness c gives -8c instead of 0.
    The table the slide copies (Wikipedia, "Kernel (image processing)") has 8 in the centre;
    KERNELS holds that corrected kernel, and the test shows both responses.
    """
    np.testing.assert_array_equal(KERNELS["edge_detection_diagonal"], [[1, 0, -1], [0, 0, 0], [-1, 0, 1]])
    np.testing.assert_array_equal(KERNELS["edge_detection_laplacian4"], [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    np.testing.assert_array_equal(KERNELS["edge_detection_laplacian8"], [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])
    as_printed = np.array([[-1, -1, -1], [-1, 0, -1], [-1, -1, -1]], np.float32)

    # A vertical step edge: columns 0-2 dark (0), columns 3-5 bright (1).
    step = np.zeros((6, 6), np.float32)
    step[:, 3:] = 1.0
    # Valid outputs are centred on columns 1..4; the edge lies between columns 2 and 3.
    expected_rows = {
        "edge_detection_diagonal": [0, 0, 0, 0],  # diagonal corners cancel on a straight edge
        "edge_detection_laplacian4": [0, 1, -1, 0],
        "edge_detection_laplacian8": [0, -3, 3, 0],
    }
    for name, row in expected_rows.items():
        kernel = KERNELS[name]
        assert (kernel == kernel[::-1, ::-1]).all(), name
        np.testing.assert_array_equal(convolve2d(step, kernel), np.tile(row, (4, 1)), err_msg=name)
        np.testing.assert_array_equal(correlate2d(step, kernel), np.tile(row, (4, 1)), err_msg=name)
        # Zero on flat regions, whatever their brightness.
        np.testing.assert_array_equal(convolve2d(np.full((5, 5), 7.0), kernel), np.zeros((3, 3)), err_msg=name)
    # The printed centre-0 kernel answers the bright flat region (column 4's window) with -8.
    np.testing.assert_array_equal(convolve2d(step, as_printed)[0], [0, -3, -5, -8])
    np.testing.assert_array_equal(convolve2d(np.full((5, 5), 7.0), as_printed), np.full((3, 3), -56.0))


def test_named_kernels_are_frozen_float32_and_blurs_preserve_brightness():
    for name, kernel in KERNELS.items():
        assert kernel.shape == (3, 3) and kernel.dtype == np.float32, name
        with pytest.raises(ValueError):
            kernel[0, 0] = 1.0  # shared table: read-only
    for name in ("identity", "sharpen", "box_blur", "gaussian_blur"):
        assert KERNELS[name].sum() == pytest.approx(1.0), name
    np.testing.assert_allclose(convolve2d(np.full((4, 4), 3.0), KERNELS["box_blur"]), np.full((2, 2), 3.0), rtol=1e-6)


def test_seed_convolution_definitions_flip_the_kernel():
    """duan-rnn-cnn "CNN": S(i,j) = sum_{m,n=-M..M} I(i-m, j-n) K(m, n), and
    khanzhina-deep-nets-architectures "Discrete convolution": (x * k)_ij =
    sum_{p,q} x_{i+p, j+q} k_{r-p, r-q}. Both flip the kernel and centre the output on (i, j);
    written out literally (zeros outside the image) they equal convolve2d with padding r, and
    differ from cross-correlation for an asymmetric kernel."""
    rng = np.random.default_rng(0)
    image = rng.integers(-5, 6, (6, 7)).astype(np.float32)
    kernel = rng.integers(-3, 4, (3, 3)).astype(np.float32)  # asymmetric
    r = 1
    height, width = image.shape

    def pixel(i, j):
        return image[i, j] if 0 <= i < height and 0 <= j < width else 0.0

    duan = np.array(
        [
            [
                sum(
                    pixel(i - m, j - n) * kernel[m + r, n + r]  # K indexed -r..r
                    for m in range(-r, r + 1)
                    for n in range(-r, r + 1)
                )
                for j in range(width)
            ]
            for i in range(height)
        ]
    )
    khanzhina = np.array(
        [
            [
                sum(
                    pixel(i + p, j + q) * kernel[r - p, r - q]  # k indexed 0..2r
                    for p in range(-r, r + 1)
                    for q in range(-r, r + 1)
                )
                for j in range(width)
            ]
            for i in range(height)
        ]
    )
    np.testing.assert_array_equal(duan, khanzhina)
    np.testing.assert_array_equal(convolve2d(image, kernel, padding=r), duan)
    assert not np.array_equal(correlate2d(image, kernel, padding=r), duan)


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), ((1, 2), (0, 1))])
def test_convolve_equals_correlate_with_flipped_kernel(stride, padding):
    x = jax.random.normal(jax.random.PRNGKey(0), (7, 8))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (3, 2))
    np.testing.assert_array_equal(
        convolve2d(x, kernel, stride, padding), correlate2d(x, kernel[::-1, ::-1], stride, padding)
    )
    # Sobel flipped is Sobel negated: the conventions give opposite signs.
    np.testing.assert_allclose(
        convolve2d(x, SOBEL_X, stride, padding), -correlate2d(x, SOBEL_X, stride, padding), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    "shape, kernel_shape, stride, padding",
    [((5, 5), (3, 3), 1, 0), ((9, 7), (3, 3), 2, 1), ((8, 10), (2, 4), (2, 3), (1, 0)), ((6, 6), (5, 5), 1, 2)],
)
def test_correlate2d_matches_lax_conv(shape, kernel_shape, stride, padding):
    """correlate2d is what XLA's convolution (and so flax.linen.Conv) computes."""
    x = jax.random.normal(jax.random.PRNGKey(2), shape)
    kernel = jax.random.normal(jax.random.PRNGKey(3), kernel_shape)
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    reference = jax.lax.conv_general_dilated(
        x[None, None],
        kernel[None, None],
        (sh, sw),
        [(ph, ph), (pw, pw)],
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        precision="highest",
    )[0, 0]
    np.testing.assert_allclose(correlate2d(x, kernel, stride, padding), reference, rtol=1e-5, atol=1e-5)


def test_correlate2d_matches_torch_conv2d():
    """torch.nn.functional.conv2d is cross-correlation too (same numbers, same shapes)."""
    torch = require_module("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((9, 11)).astype(np.float32)
    kernel = rng.standard_normal((3, 4)).astype(np.float32)
    for stride, padding in [(1, 0), (2, 1), ((2, 1), (1, 2))]:
        expected = torch.nn.functional.conv2d(
            torch.from_numpy(x)[None, None], torch.from_numpy(kernel)[None, None], stride=stride, padding=padding
        )[0, 0].numpy()
        np.testing.assert_allclose(correlate2d(x, kernel, stride, padding), expected, rtol=1e-5, atol=1e-5)
    # And the seed example through torch: the slide's map.
    seed = torch.nn.functional.conv2d(
        torch.tensor(KANG_INPUT, dtype=torch.float32)[None, None],
        torch.tensor(KANG_KERNEL, dtype=torch.float32)[None, None],
    )[0, 0]
    np.testing.assert_array_equal(seed.numpy(), correlate2d(KANG_INPUT, KANG_KERNEL))


def test_leading_axes_equal_vmap_and_jit():
    """Leading axes (batch, channels) share the kernel: equal to jax.vmap of the 2-D call."""
    x = jax.random.normal(jax.random.PRNGKey(5), (2, 3, 7, 7))
    kernel = jnp.asarray(KERNELS["sharpen"])
    fn = lambda image: correlate2d(image, kernel, 2, 1)
    np.testing.assert_array_equal(correlate2d(x, kernel, 2, 1), jax.vmap(jax.vmap(fn))(x))
    np.testing.assert_allclose(jax.jit(fn)(x), correlate2d(x, kernel, 2, 1), rtol=1e-6)
    np.testing.assert_array_equal(max_pool2d(x, 3, 2, 1), jax.vmap(jax.vmap(lambda i: max_pool2d(i, 3, 2, 1)))(x))


# --- Pooling ------------------------------------------------------------------------------------


def test_seed_duan_max_pool_example():
    """duan-rnn-cnn "Pooling": max pool with 2x2 filter and stride 2 -> [[4, 8], [9, 5]]. No
    kernel, so no convention."""
    np.testing.assert_array_equal(max_pool2d(DUAN_POOL_INPUT, 2, 2), [[4, 8], [9, 5]])
    np.testing.assert_array_equal(max_pool2d(DUAN_POOL_INPUT, 2), [[4, 8], [9, 5]])  # stride defaults to size


def test_seed_kang_unpooling_slide_max_pool():
    """kang-lecture4 "Convolutional Auto-Encoder: Max Pooling": the 4x4 input pooled 2x2/2
    ("Output: 2 x 2", values not printed). The max-unpooling picture puts its inputs back at
    (1,1), (0,2), (3,0), (3,3): the positions of 5, 6, 7, 8, which are therefore the pooled map
    (the unpooling itself: tests/nn/test_pooling.py::test_seed_max_unpool_example)."""
    x = np.array([[1, 2, 6, 3], [3, 5, 2, 1], [1, 2, 2, 1], [7, 3, 4, 8]])
    np.testing.assert_array_equal(max_pool2d(x, 2), [[5, 6], [7, 8]])
    assert [x[1, 1], x[0, 2], x[3, 0], x[3, 3]] == [5, 6, 7, 8]


def test_max_pool_padding_never_wins():
    x = -np.arange(1, 10, dtype=np.float32).reshape(3, 3)  # all negative: zero padding would win
    np.testing.assert_array_equal(max_pool2d(x, 3, 2, 1), [[-1, -2], [-4, -5]])
    np.testing.assert_array_equal(max_pool2d(x.astype(np.int32), 3, 2, 1), [[-1, -2], [-4, -5]])


def test_seed_average_pooling_is_a_strided_convolution():
    """kang-lecture4 "CNN Basics: Strided Convolution": "average pooling is a special case of
    strided convolution: all weights are 1/n" (n = cells in the window: 1/4 for 2x2). No
    numbers on the slide; on duan's pooling input the 2x2/2 means are worked by hand. The
    uniform kernel is its own flip, so either convention reproduces the slide."""
    by_hand = [[(1 + 2 + 3 + 4) / 4, (5 + 6 + 7 + 8) / 4], [(9 + 8 + 7 + 6) / 4, (5 + 4 + 3 + 2) / 4]]
    np.testing.assert_array_equal(by_hand, [[2.5, 6.5], [7.5, 3.5]])
    np.testing.assert_array_equal(avg_pool2d(DUAN_POOL_INPUT, 2), by_hand)
    np.testing.assert_array_equal(avg_pool_as_conv(DUAN_POOL_INPUT, 2), by_hand)  # 1/4 is exact in binary
    np.testing.assert_array_equal(correlate2d(DUAN_POOL_INPUT, np.full((2, 2), 1 / 4), stride=2), by_hand)
    # Overlapping windows and zero padding (counted in the divisor): still the same.
    x = jax.random.normal(jax.random.PRNGKey(6), (2, 9, 9))
    for size, stride, padding in [(3, 2, 1), (3, 1, 0), (2, 3, 0)]:
        np.testing.assert_allclose(
            avg_pool_as_conv(x, size, stride, padding), avg_pool2d(x, size, stride, padding), rtol=1e-6, atol=1e-6
        )
    # Agrees with flax's average pool where no padding enters the window.
    import flax.linen as nn

    np.testing.assert_allclose(avg_pool2d(x, 3, 2), nn.avg_pool(x[..., None], (3, 3), (2, 2))[..., 0], rtol=1e-6)
