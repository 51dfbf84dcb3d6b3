"""zoo.nn.pooling: the one max pool (values, gradients and argmax indices) and max
unpooling against a NumPy reference, ``flax.linen.max_pool`` and PyTorch's
``max_pool2d(return_indices=True)`` / ``max_unpool2d``; the seed's max-unpooling example;
adaptive average pooling against PyTorch.

Our maps are NHWC, torch's NCHW: torch tensors are built from ``x.transpose(0, 3, 1, 2)``
and read back with ``.permute(0, 2, 3, 1)``. Both index a maximum by its flat position
``row * W + col`` in its own (H, W) input plane, so the indices compare directly.
"""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require_module

from zoo.nn.pooling import adaptive_avg_pool, max_pool, max_unpool
from zoo.nn.shapes import conv_padding


def _close(a, b, rtol=1e-5):
    """``a`` equals ``b`` up to float summation order: |a - b| <= rtol * max|b| (+ tiny)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    scale = max(float(np.abs(b).max()), 1e-30)
    assert float(np.abs(a - b).max()) <= rtol * scale + 1e-12, (float(np.abs(a - b).max()), scale)


def _pool_numpy(x, window, stride, pads):
    """Max pool with loops: (pooled, indices) of NHWC ``x``; the first maximum in row-major
    order wins; ``pads`` ((top, bottom), (left, right)) cells of -inf never win."""
    b, h, w, c = x.shape
    (kh, kw), (sh, sw) = window, stride
    ho = (h + sum(pads[0]) - kh) // sh + 1
    wo = (w + sum(pads[1]) - kw) // sw + 1
    pooled = np.empty((b, ho, wo, c), x.dtype)
    indices = np.empty((b, ho, wo, c), np.int64)
    for n in range(b):
        for k in range(c):
            for i in range(ho):
                for j in range(wo):
                    best, where = -np.inf, -1
                    for di in range(kh):
                        for dj in range(kw):
                            r, q = i * sh + di - pads[0][0], j * sw + dj - pads[1][0]
                            if 0 <= r < h and 0 <= q < w and x[n, r, q, k] > best:
                                best, where = x[n, r, q, k], r * w + q
                    pooled[n, i, j, k], indices[n, i, j, k] = best, where
    return pooled, indices


def _unpool_numpy(pooled, indices, h, w):
    b, _, _, c = pooled.shape
    out = np.zeros((b, h * w, c), pooled.dtype)
    for n in range(b):
        for k in range(c):
            for v, i in zip(pooled[n, ..., k].ravel(), indices[n, ..., k].ravel()):
                out[n, i, k] += v
    return out.reshape(b, h, w, c)


def _ties(shape, seed=5):
    # ReLU-like inputs on a coarse grid: many exact ties, incl. all-zero windows.
    rng = np.random.default_rng(seed)
    return np.maximum(np.round(rng.standard_normal(shape) * 2) / 2, 0).astype(np.float32)


# (window, stride, padding, H, W): LeNet/VGG/SegNet 2x2/2 (even and odd sizes), AlexNet's
# overlapping 3x3/2, ResNet's and DenseNet's 3x3/2 with padding 1, GoogLeNet's "SAME" 3x3/2
# (padding (0, 1) at even sizes: torchvision's ceil mode) and its inception branch's 3x3/1,
# rectangular windows and asymmetric padding.
GEOMETRIES = [
    (2, 2, 0, 8, 8),
    (2, 2, 0, 11, 9),
    (3, 2, 0, 13, 13),
    (3, 2, 1, 16, 16),
    (3, 2, 1, 15, 15),
    (3, 2, "SAME", 14, 14),
    (3, 1, 1, 7, 7),
    (3, 1, "SAME", 6, 6),
    ((2, 3), (1, 2), ((0, 1), (1, 1)), 7, 8),
]


@pytest.mark.parametrize("window,stride,padding,h,w", GEOMETRIES)
def test_max_pool_and_indices_match_numpy_reference(window, stride, padding, h, w):
    x = _ties((2, h, w, 3))
    win, st = (window,) * 2 if isinstance(window, int) else window, (stride,) * 2 if isinstance(stride, int) else stride
    pads = conv_padding(padding, win, st, (h, w))
    ref_pooled, ref_indices = _pool_numpy(x, win, st, pads)
    for impl in ("slices", "xla"):
        pooled, indices = jax.jit(lambda x: max_pool(x, window, stride, padding, return_indices=True, impl=impl))(x)
        np.testing.assert_array_equal(pooled, ref_pooled)
        np.testing.assert_array_equal(indices, ref_indices)
        assert indices.dtype == jnp.int32
    g = np.random.default_rng(6).standard_normal(ref_pooled.shape).astype(np.float32)
    np.testing.assert_allclose(max_unpool(g, indices, (h, w)), _unpool_numpy(g, ref_indices, h, w), rtol=1e-6)


@pytest.mark.parametrize(
    "window,stride,padding,size",
    [(2, 2, 0, 28), (2, 2, 0, 11), (3, 2, 1, 16), (3, 2, 1, 15), (3, 1, 1, 7), (2, 1, 0, 6)],
)
def test_max_pool_matches_nn_max_pool_including_ties(window, stride, padding, size):
    rng = np.random.default_rng(5)
    x = jnp.asarray(_ties((2, size, size, 3)))
    pads = ((padding, padding), (padding, padding))
    ref = lambda x: nn.max_pool(x, (window, window), (stride, stride), pads)  # noqa: E731
    fast = lambda x: max_pool(x, window, stride, padding, impl="slices")  # noqa: E731
    np.testing.assert_array_equal(jax.jit(fast)(x), ref(x))
    g = jnp.asarray(rng.standard_normal(ref(x).shape, np.float32))
    dx_ref = jax.grad(lambda x: jnp.vdot(ref(x), g))(x)
    dx = jax.jit(jax.grad(lambda x: jnp.vdot(fast(x), g)))(x)
    # The gradient of each window goes to its first maximal element, as select_and_scatter
    # does; overlapping windows add in another order (hence a tolerance, not equality).
    _close(dx, dx_ref)
    assert max_pool(x, window, stride, padding, impl="xla").shape == ref(x).shape
    # Unpooling the cotangent at the remembered argmax is that same gradient.
    _, indices = max_pool(x, window, stride, padding, return_indices=True)
    _close(max_unpool(g, indices, x.shape), dx_ref)


def test_max_pool_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown pool impl"):
        max_pool(jnp.zeros((1, 4, 4, 1)), 2, 2, impl="fast")
    with pytest.raises(ValueError, match="larger than"):
        max_pool(jnp.zeros((1, 2, 2, 1)), 3, 1)
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        max_pool(jnp.zeros((4, 4)), 2)


def test_max_unpool_rejects_bad_arguments():
    pooled, indices = max_pool(jnp.ones((1, 4, 4, 2)), 2, return_indices=True)
    with pytest.raises(ValueError, match="one shape"):
        max_unpool(pooled, indices[..., :1], (4, 4))
    with pytest.raises(ValueError, match="integers"):
        max_unpool(pooled, indices.astype(jnp.float32), (4, 4))
    with pytest.raises(ValueError, match="batch or channels"):
        max_unpool(pooled, indices, (1, 4, 4, 3))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        max_unpool(pooled, indices, (4,))


def test_seed_max_unpool_example():
    """kang-lecture4, "Convolutional Auto-Encoder": max pooling 2x2/2 of the 4x4 input
    remembers which element was max; max unpooling of [[1, 2], [3, 4]] puts each value at
    its window's remembered position (the slide's 4x4 output, zeros elsewhere). The slide
    is consistent: 5, 6, 7, 8 sit at (1, 1), (0, 2), (3, 0), (3, 3)."""
    x = jnp.asarray([[1, 2, 6, 3], [3, 5, 2, 1], [1, 2, 2, 1], [7, 3, 4, 8]], jnp.float32)[None, :, :, None]
    pooled, indices = max_pool(x, 2, 2, return_indices=True)
    np.testing.assert_array_equal(pooled[0, ..., 0], [[5, 6], [7, 8]])
    np.testing.assert_array_equal(indices[0, ..., 0], [[1 * 4 + 1, 0 * 4 + 2], [3 * 4 + 0, 3 * 4 + 3]])
    decoder_input = jnp.asarray([[1, 2], [3, 4]], jnp.float32)[None, :, :, None]
    np.testing.assert_array_equal(
        max_unpool(decoder_input, indices, (4, 4))[0, ..., 0], [[0, 0, 2, 0], [0, 1, 0, 0], [0, 0, 0, 0], [3, 0, 0, 4]]
    )


def test_max_unpool_takes_indices_outside_their_window_and_out_of_range():
    """Indices from a tiling pool go through a select per window cell; any index outside
    its own window, or outside the map, takes the scatter: the same values and gradient
    as a scatter-add of every value at its index (out-of-range ones dropped)."""
    x = jax.random.normal(jax.random.PRNGKey(3), (2, 6, 8, 3))
    pooled, indices = max_pool(x, 2, return_indices=True)

    def scatter(p, i):
        out = np.zeros((2, 48, 3), np.float32)
        for b, r, c in np.ndindex(2, 12, 3):
            flat = int(np.asarray(i).reshape(2, 12, 3)[b, r, c])
            if 0 <= flat < 48:
                out[b, flat, c] += float(np.asarray(p).reshape(2, 12, 3)[b, r, c])
        return out.reshape(2, 6, 8, 3)

    weights = jnp.arange(2 * 6 * 8 * 3, dtype=jnp.float32).reshape(2, 6, 8, 3)
    stray = indices.at[0, 0, 0, 0].set(5 * 8 + 7)  # the last window's cell
    outside = indices.at[1, 2, 3, 2].set(48)  # past the map: dropped
    for idx in (indices, stray, outside):
        np.testing.assert_array_equal(max_unpool(pooled, idx, (6, 8)), scatter(pooled, idx))
        grad = jax.grad(lambda p: jnp.sum(max_unpool(p, idx, (6, 8)) * weights))(pooled)
        flat = np.asarray(idx).reshape(2, 12, 3)
        expected = np.where(
            flat < 48, np.take_along_axis(np.asarray(weights).reshape(2, 48, 3), np.minimum(flat, 47), 1), 0
        )
        np.testing.assert_array_equal(grad, expected.reshape(pooled.shape))


# (window, stride, padding, ceil_mode, H, W): torch's padding is symmetric; our "SAME"
# equals torch's ceil mode without padding (GoogLeNet).
TORCH_GEOMETRIES = [
    (2, 2, 0, "", 8, 8),
    (2, 2, 0, "", 11, 9),
    (3, 2, 0, "", 13, 13),
    (3, 2, 1, "", 16, 16),
    (3, 2, 1, "", 15, 15),
    (3, 2, "SAME", "ceil", 14, 14),
    (3, 1, 1, "", 7, 7),
]


@pytest.mark.parametrize("window,stride,padding,ceil,h,w", TORCH_GEOMETRIES)
def test_pool_indices_and_unpool_match_torch(window, stride, padding, ceil, h, w):
    torch = require_module("torch")
    # Distinct values: with ties the implementations may legitimately pick another maximum.
    x = np.random.default_rng(7).permutation(2 * h * w * 3).reshape(2, h, w, 3).astype(np.float32)
    pooled, indices = max_pool(x, window, stride, padding, return_indices=True)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    torch_pad = 0 if padding == "SAME" else padding
    ref, ref_indices = torch.nn.functional.max_pool2d(
        xt, window, stride, torch_pad, ceil_mode=bool(ceil), return_indices=True
    )
    np.testing.assert_array_equal(pooled, ref.permute(0, 2, 3, 1).numpy())
    np.testing.assert_array_equal(indices, ref_indices.permute(0, 2, 3, 1).numpy())
    # Unpool the pooled maxima: where overlapping windows share an argmax torch keeps one
    # copy and we add them (the adjoint of the pool), so ours is torch's times the count.
    back = torch.nn.functional.max_unpool2d(ref, ref_indices, window, stride, torch_pad, output_size=(h, w))
    counts = max_unpool(jnp.ones_like(pooled), indices, (h, w))
    np.testing.assert_array_equal(max_unpool(pooled, indices, (h, w)), back.permute(0, 2, 3, 1).numpy() * counts)
    if window == stride:
        np.testing.assert_array_equal(counts.max(), 1.0)  # non-overlapping windows: exactly torch's


def test_pool_and_unpool_under_jit_vmap_and_grad():
    x = jnp.asarray(np.random.default_rng(8).standard_normal((3, 2, 6, 6, 4)), jnp.float32)

    def round_trip(x):  # (B, H, W, C) -> the SegNet pair: pool, then unpool at the argmax
        pooled, indices = max_pool(x, 2, return_indices=True)
        return max_unpool(pooled * 2.0, indices, x.shape)

    batched = jax.jit(jax.vmap(round_trip))(x)
    for i in range(x.shape[0]):
        np.testing.assert_array_equal(batched[i], round_trip(x[i]))
    pooled = max_pool(x[0], 2)
    # One non-zero cell per 2x2 window, holding twice the window's maximum.
    window_sum = lambda a: a.reshape(2, 3, 2, 3, 2, 4).sum(axis=(2, 4))  # noqa: E731
    np.testing.assert_array_equal(window_sum(batched[0]), 2 * pooled)
    np.testing.assert_array_equal(window_sum(batched[0] != 0), 1)
    # d/dx of sum(round_trip(x) * g) is 2 g at each argmax (through the pool's custom VJP).
    g = jnp.asarray(np.random.default_rng(9).standard_normal(x.shape[1:]), jnp.float32)
    dx = jax.jit(jax.grad(lambda x: jnp.vdot(round_trip(x), g)))(x[0])
    _, indices = max_pool(x[0], 2, return_indices=True)
    mask = max_unpool(jnp.ones_like(pooled), indices, x.shape[1:])
    np.testing.assert_allclose(dx, 2.0 * g * mask, rtol=1e-6)
    # The unpool is linear in its values: its gradient gathers the cotangent at the indices.
    dpooled = jax.grad(lambda p: jnp.vdot(max_unpool(p, indices, x.shape[1:]), g))(pooled)
    np.testing.assert_array_equal(dpooled, window_sum(g * mask))


def test_adaptive_avg_pool_matches_torch():
    torch = require_module("torch")
    a = np.random.default_rng(2).normal(size=(2, 13, 9, 3)).astype(np.float32)
    for size in [(6, 6), (13, 9), (4, 5)]:
        ref = torch.nn.AdaptiveAvgPool2d(size)(torch.from_numpy(a).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        np.testing.assert_allclose(adaptive_avg_pool(jnp.asarray(a), size), ref.numpy(), rtol=1e-5, atol=1e-6)


class PoolUnpoolVariantsTest(chex.TestCase):
    """The seed's round trip gives the same numbers traced (jit) and eager."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_seed_example_round_trip(self):
        x = jnp.asarray([[1, 2, 6, 3], [3, 5, 2, 1], [1, 2, 2, 1], [7, 3, 4, 8]], jnp.float32)[None, :, :, None]

        @self.variant
        def round_trip(x, values):
            _, indices = max_pool(x, 2, 2, return_indices=True)
            return max_unpool(values, indices, (4, 4))

        out = round_trip(x, jnp.asarray([[1, 2], [3, 4]], jnp.float32)[None, :, :, None])
        chex.assert_trees_all_equal(
            out[0, ..., 0], jnp.asarray([[0, 0, 2, 0], [0, 1, 0, 0], [0, 0, 0, 0], [3, 0, 0, 4]], jnp.float32)
        )


@pytest.mark.parametrize(
    "window,stride,padding,h,w", [(2, 2, 0, 8, 8), (2, 2, 0, 7, 9), (3, 2, 1, 9, 9), (3, 1, 1, 6, 6)]
)
def test_max_unpool_is_the_exact_adjoint_of_max_pool(window, stride, padding, h, w):
    # The pool's vjp for cotangent dy is max_unpool(dy, indices): bit for bit where windows
    # do not overlap; where they do, cells shared by windows sum in another order.
    x = jnp.asarray(_ties((2, h, w, 3), seed=11))
    for impl in ("xla", "slices"):
        pooled, vjp = jax.vjp(lambda x: max_pool(x, window, stride, padding, impl=impl), x)
        _, indices = max_pool(x, window, stride, padding, return_indices=True)
        dy = jnp.asarray(np.random.default_rng(12).standard_normal(pooled.shape), jnp.float32)
        if window == stride:
            np.testing.assert_array_equal(vjp(dy)[0], max_unpool(dy, indices, x.shape))
        else:
            np.testing.assert_allclose(vjp(dy)[0], max_unpool(dy, indices, x.shape), rtol=1e-6, atol=1e-6)
