"""zoo.nn.fastconv: every way of convolving equals the plain one (``lax.conv_general_dilated``,
``nn.Conv``) in values and gradients, and the CNNs that use it keep their variables and
numbers under every ``conv_impl`` (which also selects their max pool's way, see
tests/nn/test_pooling.py)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
import zoo.runtime
from zoo.nn import fastconv
from zoo.nn.shapes import conv_padding, pair

RTOL = 1e-5


def _close(a, b, rtol=RTOL):
    """``a`` equals ``b`` up to float summation order: |a - b| <= rtol * max|b| (+ tiny)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    scale = max(float(np.abs(b).max()), 1e-30)
    assert float(np.abs(a - b).max()) <= rtol * scale + 1e-12, (float(np.abs(a - b).max()), scale)


def _value_and_grads(fn, x, kernel, cotangent):
    return jax.jit(jax.value_and_grad(lambda x, k: jnp.vdot(jnp.tanh(fn(x, k)), cotangent), (0, 1)))(x, kernel)


# (batch, H, W, C_in, C_out, kernel, strides, padding): LeNet's and ResNet's shapes (shrunk),
# strided, SAME (asymmetric when strided), rectangular, pointwise.
CASES = [
    (4, 28, 28, 1, 6, (5, 5), 1, ((2, 2), (2, 2))),
    (4, 14, 14, 6, 16, (5, 5), 1, "VALID"),
    (2, 19, 19, 3, 8, (7, 7), 2, ((3, 3), (3, 3))),
    (2, 8, 8, 16, 12, (3, 3), 1, ((1, 1), (1, 1))),
    (2, 9, 9, 8, 16, (3, 3), 2, ((1, 1), (1, 1))),
    (2, 10, 7, 5, 4, (3, 2), (2, 1), "SAME"),
    (3, 6, 6, 4, 5, (1, 1), 2, "VALID"),
    (2, 5, 5, 32, 8, (1, 1), 1, 0),
    (2, 9, 8, 24, 20, (3, 3), 1, ((0, 2), (2, 1))),  # Winograd: odd size, uneven padding
    (2, 8, 8, 32, 32, (3, 3), 1, "SAME"),
]


@pytest.mark.parametrize("impl", ["im2col", "banded", "winograd", "auto"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[1]}x{c[2]}x{c[3]}-{c[4]}k{c[5][0]}s{c[6]}")
def test_conv2d_matches_lax_conv_values_and_gradients(case, impl):
    b, h, w, c, o, ksize, strides, padding = case
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((b, h, w, c), np.float32))
    kernel = jnp.asarray(rng.standard_normal((*ksize, c, o), np.float32) / np.sqrt(np.prod(ksize) * c))
    plain = lambda x, k: jax.lax.conv_general_dilated(  # noqa: E731
        x,
        k,
        pair(strides, "s"),
        conv_padding(padding, ksize, strides, (h, w)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    fast = lambda x, k: fastconv.conv2d(x, k, strides, padding, impl)  # noqa: E731
    y_ref = plain(x, kernel)
    _close(jax.jit(fast)(x, kernel), y_ref)
    g = jnp.asarray(rng.standard_normal(y_ref.shape, np.float32))
    (v_ref, (dx_ref, dk_ref)) = _value_and_grads(plain, x, kernel, g)
    (v, (dx, dk)) = _value_and_grads(fast, x, kernel, g)
    _close(v, v_ref)
    _close(dx, dx_ref)
    _close(dk, dk_ref)


@pytest.mark.parametrize("chunks", [2, 4])
def test_im2col_batch_chunks_change_nothing(chunks):
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((4, 9, 9, 8), np.float32))
    kernel = jnp.asarray(rng.standard_normal((3, 3, 8, 8), np.float32))
    g = jnp.asarray(rng.standard_normal((4, 9, 9, 8), np.float32))
    whole = _value_and_grads(lambda x, k: fastconv.conv2d_im2col(x, k, 1, "SAME", chunks=1), x, kernel, g)
    split = _value_and_grads(lambda x, k: fastconv.conv2d_im2col(x, k, 1, "SAME", chunks=chunks), x, kernel, g)
    for a, b in zip(jax.tree.leaves(split), jax.tree.leaves(whole)):
        _close(a, b)
    with pytest.raises(ValueError, match="does not divide"):
        fastconv.conv2d_im2col(x, kernel, 1, "SAME", chunks=3)


def test_im2col_chunks_follow_patch_size(monkeypatch):
    example = 9 * 9 * 72 * 4  # one example's patches, bytes
    monkeypatch.setattr(fastconv, "PATCH_CHUNK_BYTES", 2 * example)
    monkeypatch.setattr(fastconv, "PATCH_WHOLE_BYTES", 4 * example)
    assert fastconv._num_chunks((8, 9, 9, 8), (3, 3, 8, 8), (1, 1), ((1, 1), (1, 1)), 4) == 4
    assert fastconv._num_chunks((4, 9, 9, 8), (3, 3, 8, 8), (1, 1), ((1, 1), (1, 1)), 4) == 1  # fits whole
    assert fastconv._num_chunks((8, 9, 9, 8), (1, 1, 8, 8), (1, 1), ((0, 0), (0, 0)), 4) == 1  # no patches


# Stride 2 too: a window then spans more than one block step when block_w is small.
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("block_w", [1, 2, 3, 4, 7, 28])
def test_banded_block_widths_agree(block_w, stride):
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((2, 28, 28, 2), np.float32))
    kernel = jnp.asarray(rng.standard_normal((5, 5, 2, 3), np.float32))
    out = 28 // stride
    g = jnp.asarray(rng.standard_normal((2, out, out, 3), np.float32))
    ref = _value_and_grads(lambda x, k: fastconv.conv2d_xla(x, k, stride, 2), x, kernel, g)
    got = _value_and_grads(lambda x, k: fastconv.conv2d_banded(x, k, stride, 2, block_w=block_w), x, kernel, g)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
        _close(a, b)


def test_banded_kernel_is_block_toeplitz():
    kernel = jnp.arange(2 * 3 * 1 * 1, dtype=jnp.float32).reshape(2, 3, 1, 1) + 1
    t = np.asarray(fastconv.banded_kernel(kernel, block_w=2, stride_w=2)).reshape(2, 5, 2)
    assert t[0, :, 0].tolist() == [1, 2, 3, 0, 0]
    assert t[0, :, 1].tolist() == [0, 0, 1, 2, 3]
    assert t[1, :, 1].tolist() == [0, 0, 4, 5, 6]


def test_block_width_rule_picks_measured_widths():
    assert fastconv.choose_block_width((128, 28, 28, 1), (5, 5, 1, 6), 1, 2) == 4  # LeNet conv1
    assert fastconv.choose_block_width((128, 14, 14, 6), (5, 5, 6, 16)) == 5  # LeNet conv2


def test_winograd_kernel_transform():
    kernel = jnp.asarray(np.random.default_rng(7).standard_normal((3, 3, 2, 3), np.float32))
    g = np.asarray(fastconv._WINO_G)
    expected = np.einsum("ia,abco,jb->ijco", g, np.asarray(kernel), g).reshape(16, 2, 3)
    _close(jnp.stack(fastconv._winograd_kernel(kernel)), expected)


def test_choose_conv_impl():
    assert fastconv.choose_conv_impl((1, 8, 8, 64), (3, 3, 64, 64), 1, platform="gpu") == "xla"
    assert fastconv.choose_conv_impl((1, 8, 8, 64), (3, 3, 64, 64), 1, platform="tpu") == "xla"
    assert fastconv.choose_conv_impl((128, 28, 28, 1), (5, 5, 1, 6), 1, platform="cpu") == "banded"
    assert fastconv.choose_conv_impl((16, 32, 32, 64), (3, 3, 64, 64), 1, platform="cpu") == "winograd"
    assert fastconv.choose_conv_impl((16, 32, 32, 64), (3, 3, 64, 128), 2, platform="cpu") == "im2col"
    assert fastconv.choose_conv_impl((16, 4, 4, 512), (3, 3, 512, 512), 1, platform="cpu") == "im2col"
    # Narrow channels: Winograd only while the input stays in cache (1 MiB here, 4 MiB and 8 MiB below).
    assert fastconv.choose_conv_impl((16, 32, 32, 16), (3, 3, 16, 32), 1, platform="cpu") == "winograd"
    assert fastconv.choose_conv_impl((16, 32, 32, 16), (3, 3, 16, 16), 1, platform="cpu") == "xla"
    assert fastconv.choose_conv_impl((64, 32, 32, 16), (3, 3, 16, 16), 1, platform="cpu") == "xla"
    assert fastconv.choose_conv_impl((64, 32, 32, 32), (3, 3, 32, 32), 1, platform="cpu") == "xla"
    assert fastconv.choose_conv_impl((16, 64, 64, 64), (3, 3, 64, 64), 1, platform="cpu") == "winograd"
    # With zoo.runtime.tune_cpu's allocator Winograd's temporaries are cheap: from 32 channels.
    assert fastconv.choose_conv_impl((16, 32, 32, 64), (3, 3, 64, 32), 1, platform="cpu", cpu_tuned=False) == "xla"
    assert fastconv.choose_conv_impl((16, 32, 32, 64), (3, 3, 64, 32), 1, platform="cpu", cpu_tuned=True) == "winograd"
    assert fastconv.choose_conv_impl((64, 32, 32, 16), (3, 3, 16, 16), 1, platform="cpu", cpu_tuned=True) == "xla"
    # A few output channels (a decoder's last conv): Winograd whatever the map's size.
    assert fastconv.choose_conv_impl((64, 32, 32, 16), (3, 3, 16, 1), 1, platform="cpu") == "winograd"
    assert fastconv.choose_conv_impl((64, 32, 32, 16), (3, 3, 16, 5), 1, platform="cpu") == "xla"


def test_conv2d_rejects_bad_arguments():
    x, k = jnp.zeros((1, 8, 8, 3)), jnp.zeros((3, 3, 3, 4))
    with pytest.raises(ValueError, match="unknown conv impl"):
        fastconv.conv2d(x, k, impl="fft")
    with pytest.raises(ValueError, match="matching channels"):
        fastconv.conv2d(x, jnp.zeros((3, 3, 2, 4)))
    with pytest.raises(ValueError, match="SAME, VALID"):
        fastconv.conv2d(x, k, padding="CIRCULAR")


# --------------------------------------------------------------------------- Conv module


@pytest.mark.parametrize("impl", ["xla", "im2col", "banded", "winograd", "auto"])
@pytest.mark.parametrize(
    "kw",
    [
        dict(strides=2, padding=((3, 3), (3, 3)), use_bias=False),
        dict(padding="SAME"),
        dict(padding="VALID", strides=(1, 2)),
    ],
)
def test_conv_module_is_nn_conv(impl, kw):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((2, 15, 15, 3), np.float32))
    ref = nn.Conv(8, (7, 7), **kw)
    fast = fastconv.Conv(8, (7, 7), conv_impl=impl, **kw)
    variables = ref.init(jax.random.PRNGKey(0), x)
    fast_variables = fast.init(jax.random.PRNGKey(0), x)
    assert jax.tree.map(jnp.shape, fast_variables) == jax.tree.map(jnp.shape, variables)
    for a, b in zip(jax.tree.leaves(fast_variables), jax.tree.leaves(variables)):
        np.testing.assert_array_equal(a, b)  # same initialisers, same names -> same draws
    _close(fast.apply(variables, x), ref.apply(variables, x))
    # jit: op by op, im2col's backward compiled each of its many small ops on its own (5 s).
    grads = lambda m: jax.jit(jax.grad(lambda v: jnp.sum(jnp.sin(m.apply(v, x)))))(variables)  # noqa: E731
    for a, b in zip(jax.tree.leaves(grads(fast)), jax.tree.leaves(grads(ref))):
        _close(a, b)
    # Unbatched (H, W, C) inputs, as nn.Conv accepts them.
    _close(jax.jit(fast.apply)(variables, x[0]), ref.apply(variables, x)[0])


@pytest.mark.parametrize("dtype", [None, jnp.bfloat16])
def test_conv_module_dtype_and_bad_impl(dtype):
    x = jnp.ones((1, 6, 6, 2), jnp.bfloat16)
    m = fastconv.Conv(3, (3, 3), conv_impl="im2col", dtype=dtype)
    variables = m.init(jax.random.PRNGKey(0), x)
    assert variables["params"]["kernel"].dtype == jnp.float32
    # Dtype promotion as nn.Conv does it.
    assert m.apply(variables, x).dtype == nn.Conv(3, (3, 3), dtype=dtype).apply(variables, x).dtype
    with pytest.raises(ValueError, match="conv_impl"):
        fastconv.Conv(3, (3, 3), conv_impl="fast")


def test_conv_composes_with_vmap_and_jit():
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((3, 2, 8, 8, 4), np.float32))
    k = jnp.asarray(rng.standard_normal((3, 3, 4, 5), np.float32))
    f = jax.jit(jax.vmap(lambda xb: fastconv.conv2d(xb, k, 1, "SAME", "im2col")))
    g = jax.vmap(lambda xb: fastconv.conv2d_xla(xb, k, 1, "SAME"))
    _close(f(x), g(x))


# --------------------------------------------------------------------------- models


def _model_outputs_and_grads(name, config, impl, x, train):
    model = zoo.create_model(name, **config, conv_impl=impl)
    # Both programs run once: zoo.runtime.run_once compiles them for that (on CPU, XLA's backend
    # unoptimised: the same numbers up to rounding, compiled several times faster). The
    # optimised programs of every impl are checked conv by conv above.
    variables = zoo.runtime.run_once(
        lambda: model.init({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}, x)
    )

    def loss(params):
        out = model.apply(
            {**variables, "params": params},
            x,
            train=train,
            mutable=["batch_stats"] if train else False,
            rngs={"dropout": jax.random.PRNGKey(2)},
        )
        out = out[0] if train else out
        return jnp.sum(jnp.tanh(out)), out

    (value, out), grads = zoo.runtime.run_once(lambda: jax.value_and_grad(loss, has_aux=True)(variables["params"]))
    return variables, out, grads


# Every path is checked conv by conv above; here each model runs the paths its convs can
# take under "auto" (banded for few input channels, Winograd for 3x3 stride-1, im2col
# otherwise) forced on every conv, and "auto" itself.
@pytest.mark.parametrize(
    "name,config,shape,train,impls",
    [
        ("lenet5", {}, (4, 28, 28, 1), False, ("im2col", "banded", "auto")),
        (
            "resnet18",
            {"input_shape": (32, 32, 3), "num_classes": 7, "width": 8, "stage_sizes": (1, 1)},
            (4, 32, 32, 3),
            True,
            ("im2col", "winograd", "auto"),
        ),
        (
            "resnet20",
            {"input_shape": (16, 16, 3), "num_classes": 3, "stage_sizes": (1, 1, 1)},
            (2, 16, 16, 3),
            True,
            ("winograd", "auto"),
        ),
        (
            "vgg11",
            {"input_shape": (32, 32, 3), "num_classes": 5, "width_divisor": 16, "fc_size": 16},
            (2, 32, 32, 3),
            False,
            ("winograd", "auto"),
        ),
    ],
)
def test_models_same_under_every_conv_impl(name, config, shape, train, impls):
    x = jnp.asarray(np.random.default_rng(6).standard_normal(shape, np.float32))
    ref_vars, ref_out, ref_grads = _model_outputs_and_grads(name, config, "xla", x, train)
    for impl in impls:
        variables, out, grads = _model_outputs_and_grads(name, config, impl, x, train)
        assert jax.tree.map(jnp.shape, variables) == jax.tree.map(jnp.shape, ref_vars)
        _close(out, ref_out, 1e-4)
        for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
            _close(a, b, 1e-4)


def test_models_reject_unknown_conv_impl():
    for name in ("lenet5", "resnet18", "vgg11"):
        with pytest.raises(ValueError, match="conv_impl"):
            zoo.create_model(name, conv_impl="not_an_impl")
