"""zoo.native's Winograd convolution equals ``lax.conv_general_dilated`` (output and both
gradients, to 1e-5 of each array's scale) on both of its forward paths (chunks of tiles per
thread, blocks of tiles shared by plane and column panel), across several blocks, for every
padding in [0, 2] and odd outputs (tiles past the map's edge), channel counts that are not
whole vectors, on one thread and several, under vmap; the transposed call is the input's
gradient; "winograd" and "auto" take it on the CPU; the bench counts its FLOPs; bad
arguments fail with one clear line."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require

from zoo import bench, native
from zoo.nn import fastconv

TOL = 1e-5


@pytest.fixture(autouse=True)
def _kernels_built():
    require(native.available(), f"zoo.native cannot run here: {native.unavailable_reason()}")


def _reference(x, kernel, pads):
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"), precision="highest"
    )


def _close(expected, actual):
    for p, q in zip(jax.tree.leaves(expected), jax.tree.leaves(actual), strict=True):
        p, q = np.asarray(p), np.asarray(q)
        assert p.shape == q.shape
        np.testing.assert_allclose(q, p, rtol=0, atol=TOL * max(1.0, float(np.abs(p).max())))


def _problem(b, h, w, c, o, seed=0):
    keys = jax.random.split(jax.random.PRNGKey(seed), 2)
    return jax.random.normal(keys[0], (b, h, w, c)), jax.random.normal(keys[1], (3, 3, c, o)) / np.sqrt(9 * c)


def _check(x, kernel, pads):
    """The forward and both gradients of conv2d_winograd (on zoo's kernels) against lax's."""
    native_conv = lambda x, k: fastconv.conv2d_winograd(x, k, 1, pads)
    assert "zoo_winograd_forward" in jax.jit(native_conv).lower(x, kernel).as_text()
    y_ref = _reference(x, kernel, pads)
    cotangent = jax.random.normal(jax.random.PRNGKey(9), y_ref.shape)
    loss = lambda conv: lambda x, k: jnp.sum(conv(x, k) * cotangent)
    _close(y_ref, jax.jit(native_conv)(x, kernel))
    expected = jax.grad(loss(lambda x, k: _reference(x, k, pads)), (0, 1))(x, kernel)
    _close(expected, jax.jit(jax.grad(loss(native_conv), (0, 1)))(x, kernel))


GEOMETRIES = [
    # (B, H, W, C, O, pads)
    (2, 6, 6, 16, 16, ((1, 1), (1, 1))),  # SAME, whole tiles
    (3, 7, 9, 20, 40, ((0, 2), (1, 0))),  # uneven padding, odd outputs: tiles past the edge
    (2, 5, 6, 33, 17, ((2, 2), (2, 0))),  # padding 2 (a full correlation's), channels not whole vectors
    (1, 3, 3, 5, 3, ((0, 0), (0, 0))),  # one output pixel, a few channels
    (2, 4, 5, 64, 96, ((1, 1), (0, 1))),  # two-vector panels over several panels
    (8, 16, 16, 32, 48, ((1, 1), (1, 1))),  # chunks: 512 tiles of 32 -> 48, C x O <= 128^2
    (5, 16, 16, 250, 260, ((1, 1), (1, 1))),  # blocks: 320 tiles in two (256 per block at 250 + 260 channels)
]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_winograd_equals_lax_with_both_gradients(geometry):
    b, h, w, c, o, pads = geometry
    x, kernel = _problem(b, h, w, c, o)
    _check(x, kernel, pads)


def test_transposed_call_is_the_input_gradient():
    """winograd_conv(dy, kernel, back, transposed=True) is the correlation of dy with the
    flipped kernel, its channels swapped."""
    dy, kernel = _problem(2, 6, 7, 24, 40)  # dy has O = 24 channels; the kernel maps C = 40 -> O = 24
    kernel = kernel.reshape(3, 3, 24, 40).transpose(0, 1, 3, 2)
    pads = ((2, 1), (0, 2))
    expected = _reference(dy, jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2), pads)
    _close(expected, native.winograd_conv(dy, kernel, pads, transposed=True))


@pytest.mark.parametrize("threads", ["1", "3"])
def test_one_thread_and_more_give_the_same(threads, monkeypatch):
    """Both forward paths and the kernel gradient with their work shared or not."""
    monkeypatch.setenv("ZOO_NATIVE_THREADS", threads)
    for b, h, w, c, o in ((8, 16, 16, 32, 48), (2, 12, 12, 160, 144)):
        x, kernel = _problem(b, h, w, c, o, seed=1)
        _check(x, kernel, ((1, 1), (1, 1)))


def test_under_vmap():
    x, kernel = _problem(2, 6, 6, 16, 8)
    xs = jnp.stack([x, 2 * x, -x])
    pads = ((1, 1), (1, 1))
    _close(
        jax.vmap(lambda x: _reference(x, kernel, pads))(xs),
        jax.vmap(lambda x: native.winograd_conv(x, kernel, pads))(xs),
    )


def test_auto_takes_it_for_wide_3x3_convs_and_winograd_off_the_kernels_is_the_same():
    assert fastconv.choose_conv_impl((16, 32, 32, 64), (3, 3, 64, 64), 1, platform="cpu", native_ok=True) == "winograd"
    assert fastconv.choose_conv_impl((16, 4, 4, 256), (3, 3, 256, 256), 1, platform="cpu", native_ok=True) == "winograd"
    # 32 -> 32 ties with the direct kernel, which keeps it; a 2x2 map goes to im2col.
    assert fastconv.choose_conv_impl((16, 32, 32, 32), (3, 3, 32, 32), 1, platform="cpu", native_ok=True) == "native"
    assert fastconv.choose_conv_impl((16, 2, 2, 512), (3, 3, 512, 512), 1, platform="cpu", native_ok=True) == "im2col"
    assert fastconv.choose_conv_impl((16, 8, 8, 64), (3, 3, 64, 64), 2, platform="cpu", native_ok=True) == "im2col"
    x, kernel = _problem(2, 8, 8, 32, 64)
    lowered = jax.jit(lambda x, k: fastconv.conv2d(x, k, 1, "SAME")).lower(x, kernel).as_text()
    assert "zoo_winograd_forward" in lowered
    with native.disabled():  # XLA's own operations: the same Winograd written in JAX
        lowered = jax.jit(lambda x, k: fastconv.conv2d(x, k, 1, "SAME", "winograd")).lower(x, kernel).as_text()
        assert "zoo_" not in lowered
        _check_jax = jax.jit(
            jax.grad(lambda x, k: jnp.sum(jnp.sin(fastconv.conv2d(x, k, 1, "SAME", "winograd"))), (0, 1))
        )
        off = _check_jax(x, kernel)
    on = jax.jit(jax.grad(lambda x, k: jnp.sum(jnp.sin(fastconv.conv2d(x, k, 1, "SAME", "winograd"))), (0, 1)))(
        x, kernel
    )
    _close(off, on)


def test_flops_are_the_16_products_per_tile():
    """Each call counts 2 x 16 x tiles x C x O, as XLA counts the same products written in JAX."""
    x, kernel = jnp.ones((2, 9, 10, 16)), jnp.full((3, 3, 16, 8), 0.01)
    pads = ((1, 0), (2, 1))  # 8 x 11 outputs: 4 x 6 tiles

    def count(argnums):
        loss = lambda x, k: jnp.sum(fastconv.conv2d(x, k, 1, pads, "winograd") ** 2)
        fn = jax.jit(jax.grad(loss, argnums=argnums))
        return bench.count_step_flops(fn, fn.lower(x, kernel).compile(), x, kernel)

    per_call = 2 * 16 * (2 * 4 * 6) * 16 * 8  # forward, kernel gradient
    input_gradient = 2 * 16 * (2 * 5 * 5) * 8 * 16  # dy's 8 x 11 to x's 9 x 10: 5 x 5 tiles
    kernel_only, source = count(1)
    assert "zoo.native" in source and "undercount" not in source
    both, _ = count((0, 1))
    assert both - kernel_only == pytest.approx(input_gradient, rel=1e-3)
    assert kernel_only == pytest.approx(2 * per_call, rel=0.05)  # and a few elementwise ops


def test_bad_arguments_fail_with_one_line():
    x, kernel = _problem(1, 6, 6, 8, 4)
    with pytest.raises(Exception, match="each padding must lie in \\[0, 2\\]"):
        jax.block_until_ready(native.winograd_conv(x, kernel, ((3, 0), (1, 1))))
    with pytest.raises(Exception, match="the kernel must be \\(3, 3, C, O\\)"):
        jax.block_until_ready(native.winograd_conv(x, jnp.zeros((5, 5, 8, 4)), ((1, 1), (1, 1))))
    with pytest.raises(Exception, match="input must be \\(B, H, W, C\\)"):
        jax.block_until_ready(native.winograd_conv(x, jnp.zeros((3, 3, 7, 4)), ((1, 1), (1, 1))))
