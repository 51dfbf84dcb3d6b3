"""FLOP counting (zoo.bench.flops): XLA's cost analysis corrected for the trip counts of
scans, so that recurrent models' FLOPs grow linearly with sequence length."""

import jax
import jax.numpy as jnp
import pytest
from conftest import assert_affine, require

from zoo import bench
from zoo.bench import contenders, flax_models
from zoo.bench.suite import suite_entry


def _rnn_loss(weights, xs):
    def step(h, x):
        h = jnp.tanh(x @ weights["input"] + h @ weights["recurrent"])
        return h, h

    _, hs = jax.lax.scan(step, jnp.zeros((xs.shape[1], 32)), xs)
    return hs.sum()


def test_scan_flops_grow_linearly_with_sequence_length():
    weights = {"input": jnp.ones((16, 32)), "recurrent": jnp.ones((32, 32))}
    fn = jax.jit(jax.grad(_rnn_loss))
    lengths, counted, raw = (8, 16, 32), [], []
    for t in lengths:
        xs = jnp.ones((t, 4, 16))
        compiled = fn.lower(weights, xs).compile()
        flops, source = bench.count_step_flops(fn, compiled, weights, xs)
        counted.append(flops)
        raw.append(bench.xla_flops(compiled))
        assert "trip count" in source
    assert_affine(lengths, counted, rel=0.01)
    # Forward 2 matmuls per step, backward 4 (input and weight gradients).
    matmuls_per_step = 2 * 4 * (16 * 32 + 32 * 32) * 3
    assert counted[-1] / lengths[-1] == pytest.approx(matmuls_per_step, rel=0.25)
    # What the helper corrects: XLA alone counts the scan body once.
    assert raw[-1] < 2 * raw[0]


def test_nested_scans_multiply_both_trip_counts():
    def nested(x):
        def outer(c, _):
            inner = jax.lax.scan(lambda h, _: (h @ x, None), c, None, length=5)[0]
            return inner, None

        return jax.lax.scan(outer, x, None, length=3)[0]

    x = jnp.ones((16, 16))
    fn = jax.jit(nested)
    flops, _ = bench.count_step_flops(fn, fn.lower(x).compile(), x)
    assert flops == pytest.approx(3 * 5 * 2 * 16**3, rel=0.05)


def test_recurrent_train_step_flops_grow_with_sequence_length():
    """A recurrent model through the engine's train step, its scans found inside Flax's
    lifted transforms (the Flax stock LSTM standing in until the zoo's LSTM lands)."""
    entry = suite_entry("lstm")
    lengths, flops = (4, 16), []
    for t in lengths:
        workload = entry.workload(batch_size=4, seq_len=t)
        config = {**entry.config(workload), "hidden_size": 8}
        model = flax_models.lstm(config)
        host = contenders.make_host_batch(model, "classification", config["input_shape"], workload, None)
        contender = contenders.jax_contender(
            "flax", model, "classification", contenders.device_batch(host, workload), config["input_shape"], workload
        )
        flops.append(contender.flops)
        assert "trip count" in contender.flops_source
    # 4x the steps: nearly 4x the FLOPs (the SGD update and the head do not grow).
    assert 3.5 < flops[1] / flops[0] <= 4.0


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_native_kernels_are_counted_where_the_step_needs_them(cell):
    """XLA counts a custom call as nothing: the native kernels are counted from their
    matmuls, near what XLA counts for the same step in pure JAX, and the inputs' gradient
    (a separate call) only where the step uses it, as XLA then runs it."""
    from zoo import native
    from zoo.nn import fastrnn

    require(native.available(), f"zoo.native cannot run here: {native.unavailable_reason()}")
    B, T, I, H = 4, 16, 8, 32
    if cell == "lstm":
        w = {"kernel": jnp.full((I + H, 4 * H), 0.01), "bias": jnp.zeros(4 * H)}
        carry, gates, sequence = (jnp.zeros((B, H)), jnp.zeros((B, H))), 4 * H, fastrnn.lstm_sequence
    else:
        w = {"input_kernel": jnp.full((I, 3 * H), 0.01), "recurrent_kernel": jnp.full((H, 3 * H), 0.01)}
        carry, gates, sequence = jnp.zeros((B, H)), 3 * H, fastrnn.gru_sequence
    xs = jnp.ones((B, T, I))

    def count(kernel, argnums):
        loss = lambda w, xs: jnp.sum(sequence(w, carry, xs, native=kernel)[1])
        fn = jax.jit(jax.grad(loss, argnums=argnums))
        return bench.count_step_flops(fn, fn.lower(w, xs).compile(), w, xs)

    native_flops, source = count(True, 0)
    assert "zoo.native" in source and "undercount" not in source
    pure_flops, _ = count(False, 0)
    assert abs(native_flops / pure_flops - 1) < 0.1, (native_flops, pure_flops)
    with_inputs, _ = count(True, (0, 1))
    assert with_inputs - native_flops == pytest.approx(2 * T * B * I * gates, rel=1e-3)


def test_native_convolution_is_counted_as_xla_counts_its_own():
    """The native convolution's three calls (forward, input and kernel gradients) against
    XLA's count of the same step through its own convolution; the input's gradient only
    where the step uses it."""
    from zoo import native
    from zoo.nn import fastconv

    require(native.available(), f"zoo.native cannot run here: {native.unavailable_reason()}")
    x, kernel = jnp.ones((2, 10, 12, 16)), jnp.full((3, 3, 16, 8), 0.01)

    def count(impl, argnums):
        loss = lambda x, k: jnp.sum(fastconv.conv2d(x, k, 1, ((1, 0), (2, 1)), impl) ** 2)
        fn = jax.jit(jax.grad(loss, argnums=argnums))
        return bench.count_step_flops(fn, fn.lower(x, kernel).compile(), x, kernel)

    # One pass: the (output, tap) pairs inside the input, 8+9+9 rows by 11+12+12 columns
    # (a tap in the padding multiplies a zero and is not counted), C*O multiply-adds each.
    conv = 2 * 2 * (8 + 9 + 9) * (11 + 12 + 12) * 16 * 8
    native_flops, source = count("native", 1)
    assert "zoo.native" in source and "undercount" not in source
    xla_flops, _ = count("xla", 1)
    assert native_flops == pytest.approx(xla_flops, rel=1e-3)
    both, _ = count("native", (0, 1))
    assert both - native_flops == pytest.approx(conv, rel=1e-3)
    assert both == pytest.approx(count("xla", (0, 1))[0], rel=1e-2)  # elementwise ops differ a little
