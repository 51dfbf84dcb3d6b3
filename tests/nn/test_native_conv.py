"""zoo.native's convolution equals ``lax.conv_general_dilated`` (output and both gradients,
to 1e-5 of each array's scale) for every block shape its kernels take: one and two vector
panels, part-filled panels and pixel blocks, a few output channels (the narrow path), 5-15
output channels or one input channel (on planes), channel counts that are not whole
vectors, other kernel sizes and uneven padding; on one thread and several; "auto" takes it
for narrow 2x2 to 5x5 convs on the CPU; "native" says why it cannot run; exported programs
never hold it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require

import zoo
from zoo import native
from zoo.exporting import load_exported
from zoo.nn import fastconv

TOL = 1e-5


@pytest.fixture(autouse=True)
def _kernels_built():
    require(native.available(), f"zoo.native cannot run here: {native.unavailable_reason()}")


def _reference(x, kernel, pads):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _close(expected, actual):
    for p, q in zip(jax.tree.leaves(expected), jax.tree.leaves(actual), strict=True):
        p, q = np.asarray(p), np.asarray(q)
        assert p.shape == q.shape
        np.testing.assert_allclose(q, p, rtol=0, atol=TOL * max(1.0, float(np.abs(p).max())))


def _problem(b, h, w, c, o, k, seed=0):
    keys = jax.random.split(jax.random.PRNGKey(seed), 2)
    kh, kw = (k, k) if isinstance(k, int) else k
    return jax.random.normal(keys[0], (b, h, w, c)), jax.random.normal(keys[1], (kh, kw, c, o)) / np.sqrt(kh * kw * c)


def _check(x, kernel, pads, epilogue=False):
    """Output and gradients; with ``epilogue``, of relu(conv + bias) (the bias's gradient too)."""
    bias = jax.random.normal(jax.random.PRNGKey(7), kernel.shape[-1:]) if epilogue else jnp.zeros(kernel.shape[-1:])
    finish = jax.nn.relu if epilogue else (lambda y: y)
    reference = lambda x, k, b: finish(_reference(x, k, pads) + b)
    fused = lambda x, k, b: native.conv2d(x, k, pads, b if epilogue else None, epilogue)
    y_ref = reference(x, kernel, bias)
    cotangent = jax.random.normal(jax.random.PRNGKey(9), y_ref.shape)
    loss = lambda conv: lambda *operands: jnp.sum(conv(*operands) * cotangent)
    _close(y_ref, jax.jit(fused)(x, kernel, bias))
    wrt = (0, 1, 2) if epilogue else (0, 1)
    expected = jax.grad(loss(reference), wrt)(x, kernel, bias)
    _close(expected, jax.jit(jax.grad(loss(fused), wrt))(x, kernel, bias))


GEOMETRIES = [
    # (B, H, W, C, O, kernel, pads)
    ((2, 6, 6, 16, 16, 3, ((1, 1), (1, 1)))),  # one-vector panel, 3 wide: all taps in one block, part-filled
    ((2, 6, 9, 12, 16, (2, 3), ((1, 0), (2, 0)))),  # the same with 2 kernel rows and uneven padding
    ((1, 5, 6, 64, 16, 3, ((1, 1), (1, 1)))),  # one-vector panel whose taps go in groups (tap by tap)
    ((3, 9, 11, 20, 40, 3, ((0, 2), (1, 0)))),  # two-vector panels, a part-filled one; uneven padding
    ((1, 5, 6, 64, 40, 3, ((1, 1), (1, 1)))),  # taps in three groups (a panel's part per group fits L1)
    ((2, 5, 7, 3, 5, 3, ((1, 1), (1, 1)))),  # a few input channels
    ((2, 8, 8, 33, 17, 1, ((0, 0), (0, 0)))),  # 1x1, two panels, the second with one column
    ((1, 10, 12, 8, 6, 5, ((2, 2), (4, 1)))),  # 5x5, padding up to kernel size - 1
    ((2, 7, 5, 24, 8, (3, 1), ((2, 0), (0, 0)))),  # a non-square kernel
    ((2, 6, 7, 16, 1, 3, ((1, 1), (1, 1)))),  # narrow: one output channel
    ((2, 5, 6, 20, 3, 3, ((1, 1), (0, 2)))),  # narrow, channels not a whole vector
    ((3, 4, 9, 3, 4, 3, ((2, 0), (1, 1)))),  # narrow, fewer channels than a vector
    ((1, 3, 3, 4, 2, 3, ((0, 0), (0, 0)))),  # a single output pixel
    # On planes: 5-15 output channels (forward, and the input gradient to 5-15 channels),
    # one input channel or up to 8 outputs (kernel gradient).
    ((3, 12, 12, 1, 6, 5, ((2, 2), (2, 2)))),  # LeNet's first layer; images not a multiple of 4
    ((2, 30, 30, 1, 6, 5, ((2, 2), (2, 2)))),  # two items of positions per image
    ((2, 9, 10, 1, 16, 3, ((1, 1), (1, 1)))),  # one input channel, 8 outputs per gradient block
    ((2, 7, 9, 6, 12, 5, ((2, 2), (0, 1)))),  # 12 outputs in two groups of 6; the input gradient to 6
    ((2, 8, 11, 1, 7, (3, 7), ((0, 2), (3, 3)))),  # 7 outputs; a kernel 7 wide in runs of 5 and 2 taps
    ((1, 6, 8, 16, 9, (4, 4), ((1, 2), (3, 0)))),  # 9 outputs in groups of 4 and 5
]


@pytest.mark.parametrize("epilogue", [False, True], ids=["plain", "bias_relu"])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_conv_equals_lax_with_both_gradients(geometry, epilogue):
    """With ``epilogue``, the bias and ReLU the kernel adds as it stores (after the last
    group of taps, where there are several)."""
    b, h, w, c, o, k, pads = geometry
    x, kernel = _problem(b, h, w, c, o, k)
    _check(x, kernel, pads, epilogue)


@pytest.mark.parametrize("threads", ["1", "3"])
def test_one_thread_and_more_give_the_same(threads, monkeypatch):
    """Big enough that the work is shared (~2^20 multiply-adds per thread)."""
    monkeypatch.setenv("ZOO_NATIVE_THREADS", threads)
    x, kernel = _problem(8, 24, 24, 16, 32, 3, seed=1)
    _check(x, kernel, ((1, 1), (1, 1)))
    x, kernel = _problem(8, 24, 24, 16, 2, 3, seed=2)
    _check(x, kernel, ((1, 1), (1, 1)))
    x, kernel = _problem(32, 24, 24, 1, 6, 5, seed=3)  # on planes
    _check(x, kernel, ((2, 2), (2, 2)))
    x, kernel = _problem(16, 16, 16, 6, 16, 5, seed=4)  # the input gradient on planes
    _check(x, kernel, ((2, 2), (2, 2)))


@pytest.mark.parametrize("c, o, k", [(16, 32, 3), (1, 6, 5)], ids=["panels", "planes"])
def test_the_kernel_gradient_repeats_bit_for_bit_on_any_number_of_threads(c, o, k, monkeypatch):
    """Threads claim the batch's items as they come; the sums must not depend on which took
    which (a training run repeats exactly, and `--resume` continues it)."""
    x, kernel = _problem(64, 32, 32, c, o, k, seed=5)
    pads = ((k // 2, k // 2),) * 2
    grad = jax.jit(jax.grad(lambda kernel: jnp.sum(native.conv2d(x, kernel, pads) ** 2)))
    results = []
    for threads in ("1", "2", "3", "3"):
        monkeypatch.setenv("ZOO_NATIVE_THREADS", threads)
        results.append(np.asarray(grad(kernel)))
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


def test_under_vmap():
    x, kernel = _problem(2, 6, 6, 16, 8, 3)
    xs = jnp.stack([x, 2 * x, -x])
    pads = ((1, 1), (1, 1))
    _close(jax.vmap(lambda x: _reference(x, kernel, pads))(xs), jax.vmap(lambda x: native.conv2d(x, kernel, pads))(xs))


@pytest.mark.parametrize("o", [16, 1, 6])
def test_a_nan_reaches_only_the_outputs_whose_window_holds_it(o):
    """The blocks read past a pixel's channels and past a row's end (on planes, 6 outputs:
    into the next row); nothing read there may reach an output (0 * NaN would)."""
    x, kernel = _problem(1, 6, 6, 20, o, 3)
    x = x.at[0, 2, 3, 5].set(jnp.nan)
    pads = ((1, 1), (1, 1))
    np.testing.assert_array_equal(np.isnan(native.conv2d(x, kernel, pads)), np.isnan(_reference(x, kernel, pads)))
    # The fused ReLU keeps a NaN, as jax.nn.relu does: max(NaN, 0) is not a clean 0.
    bias = jnp.ones(o)
    fused = native.conv2d(x, kernel, pads, bias, relu=True)
    np.testing.assert_array_equal(np.isnan(fused), np.isnan(jax.nn.relu(_reference(x, kernel, pads) + bias)))


@pytest.mark.parametrize("impl", ["native", "xla", "winograd"])
def test_conv_layer_relu_is_relu_of_the_layer(impl):
    """fastconv.Conv(relu=True): the native kernel adds bias and ReLU as it stores; the other
    ways after the convolution; the same layer either way, in value and gradient."""
    x, _ = _problem(2, 8, 8, 16, 16, 3, seed=3)
    plain = fastconv.Conv(16, (3, 3), conv_impl="xla", bias_init=jax.nn.initializers.normal(1.0))
    variables = plain.init(jax.random.PRNGKey(0), x)
    fused = plain.clone(conv_impl=impl, relu=True)
    loss = lambda module: lambda v: jnp.sum(module.apply(v, x) ** 2)
    _close(jax.nn.relu(plain.apply(variables, x)), fused.apply(variables, x))
    relu_of_plain = lambda v: jnp.sum(jax.nn.relu(plain.apply(v, x)) ** 2)
    _close(jax.grad(relu_of_plain)(variables), jax.grad(loss(fused))(variables))
    assert ("zoo_conv_forward" in jax.jit(lambda v: fused.apply(v, x)).lower(variables).as_text()) == (impl == "native")


def test_auto_takes_the_kernel_for_narrow_convs_up_to_5x5():
    assert fastconv.choose_conv_impl((64, 32, 32, 16), (3, 3, 16, 16), 1, platform="cpu", native_ok=True) == "native"
    assert fastconv.choose_conv_impl((16, 64, 64, 1), (3, 3, 1, 16), 1, platform="cpu", native_ok=True) == "native"
    assert fastconv.choose_conv_impl((64, 32, 32, 64), (3, 3, 64, 1), 1, platform="cpu", native_ok=True) == "native"
    assert fastconv.choose_conv_impl((16, 32, 32, 16), (3, 3, 16, 64), 1, platform="cpu", native_ok=True) == "native"
    assert fastconv.choose_conv_impl((16, 32, 32, 32), (3, 3, 32, 32), 1, platform="cpu", native_ok=True) == "native"
    # 2x2 kernels (a transposed conv's phases) of up to 64 channels each way; 3x3 ones that
    # wide go to zoo's Winograd kernel (tests/nn/test_native_winograd.py).
    assert fastconv.choose_conv_impl((16, 32, 32, 64), (2, 2, 64, 64), 1, platform="cpu", native_ok=True) == "native"
    assert fastconv.choose_conv_impl((16, 32, 32, 64), (3, 3, 64, 64), 1, platform="cpu", native_ok=True) == "winograd"
    # LeNet's two 5x5 convs.
    assert fastconv.choose_conv_impl((128, 28, 28, 1), (5, 5, 1, 6), 1, platform="cpu", native_ok=True) == "native"
    assert fastconv.choose_conv_impl((128, 14, 14, 6), (5, 5, 6, 16), 1, platform="cpu", native_ok=True) == "native"
    # Strides, wider kernels, 1x1 and other platforms never go native.
    assert fastconv.choose_conv_impl((16, 32, 32, 16), (3, 3, 16, 16), 2, platform="cpu", native_ok=True) == "im2col"
    assert fastconv.choose_conv_impl((16, 32, 32, 3), (7, 7, 3, 64), 1, platform="cpu", native_ok=True) == "banded"
    assert fastconv.choose_conv_impl((16, 32, 32, 16), (1, 1, 16, 16), 1, platform="cpu", native_ok=True) == "im2col"
    assert fastconv.choose_conv_impl((64, 32, 32, 16), (3, 3, 16, 16), 1, platform="gpu", native_ok=True) == "xla"
    asked = []
    fastconv.choose_conv_impl((16, 16, 16, 128), (3, 3, 128, 128), 2, platform="cpu", native_ok=lambda: asked.append(1))
    fastconv.choose_conv_impl((16, 16, 16, 128), (5, 5, 128, 128), 1, platform="cpu", native_ok=lambda: asked.append(1))
    assert not asked  # the kernels are built only for a conv that would take them

    x, kernel = _problem(2, 8, 8, 16, 16, 3)
    lowered = jax.jit(lambda x, k: fastconv.conv2d(x, k, 1, "SAME")).lower(x, kernel).as_text()
    assert "zoo_conv_forward" in lowered
    with native.disabled():
        lowered = jax.jit(lambda x, k: fastconv.conv2d(x, k, 1, "SAME")).lower(x, kernel).as_text()
    assert "zoo_conv" not in lowered


def test_native_impl_falls_back_for_other_shapes_and_says_why_it_cannot_run():
    x, kernel = _problem(2, 8, 8, 16, 16, 3)
    strided = fastconv.conv2d(x, kernel, 2, "SAME", impl="native")  # stride 2: "auto"'s other ways
    _close(fastconv.conv2d(x, kernel, 2, "SAME", impl="xla"), strided)
    with pytest.raises(ValueError, match=r"conv_impl='native': the native convolution runs float32"):
        fastconv.conv2d(x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16), 1, "SAME", impl="native")
    with native.disabled(), pytest.raises(ValueError, match=r"zoo.native cannot run: they are turned off here"):
        fastconv.conv2d(x, kernel, 1, "SAME", impl="native")
    assert not native.conv2d_supports(x.shape, kernel.shape, ((3, 0), (1, 1)))  # padding >= kernel size


def test_exported_programs_hold_no_native_conv(tmp_path):
    model = zoo.create_model("conv_autoencoder", input_shape=(8, 8, 1), features=(16, 4))
    x = jax.random.uniform(jax.random.PRNGKey(1), (2, 8, 8, 1))
    variables = model.init(jax.random.PRNGKey(0), x)
    apply = lambda x: model.apply(variables, x)["reconstruction_logits"]
    assert "zoo_conv_forward" in jax.jit(apply).lower(x).as_text()  # in this process it runs the kernel
    exported = load_exported(zoo.export(model, variables, x, tmp_path / "ae.jax"))
    assert "zoo_" not in exported.mlir_module()
    _close(apply(x), exported.call(x)["reconstruction_logits"])


def test_weight_gradient_of_a_long_contraction_into_a_small_output():
    """fastconv.weight_gradient: a^T b through zoo's matmul for a small output over many
    rows (XLA's dot is slow there), XLA's dot otherwise; the same values either way."""
    keys = jax.random.split(jax.random.PRNGKey(4), 2)
    for k, m, n, takes_native in ((70000, 16, 4, True), (70000, 64, 64, False), (300, 16, 4, False)):
        a, b = jax.random.normal(keys[0], (k, m)), jax.random.normal(keys[1], (k, n))
        lowered = jax.jit(fastconv.weight_gradient).lower(a, b).as_text()
        assert ("zoo_matmul" in lowered) == takes_native
        expected = np.asarray(a, np.float64).T @ np.asarray(b, np.float64)
        np.testing.assert_allclose(fastconv.weight_gradient(a, b), expected, rtol=0, atol=1e-5 * np.abs(expected).max())
