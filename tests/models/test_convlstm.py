"""ConvLSTM (Shi et al. 2015): the cell and the encoder-forecaster against a plain NumPy loop
of the paper's equations (with a NumPy convolution written here), gradients through the
scan, configuration errors, and a short real run on moving digits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import zoo
from zoo.models import convlstm as C

B, T, H, W, CIN, F, K = 2, 4, 5, 6, 2, 3, 3


def _x(shape, seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)


def _random_params(model, x, seed=1):
    """Every variable drawn from N(0, 0.5^2), so the peepholes (zero at init) matter; shapes
    from an abstract init (no compilation)."""
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.asarray(x))
    rng = np.random.default_rng(seed)  # NumPy: eager jax.random would compile once per shape
    return jax.tree.map(lambda s: jnp.asarray(0.5 * rng.normal(size=s.shape), jnp.float32), shapes)


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _np_conv_same(x, kernel):
    """Cross-correlation with 'same' zero padding, by explicit sums over the kernel window:
    x (B, H, W, C), kernel (k, k, C, F) -> (B, H, W, F)."""
    k = kernel.shape[0]
    p = k // 2
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],), np.float64)
    for di in range(k):
        for dj in range(k):
            window = padded[:, di : di + x.shape[1], dj : dj + x.shape[2], :]
            out += np.einsum("bhwc,cf->bhwf", window, kernel[di, dj])
    return out


def _np_convlstm(w, xs, c, h):
    """Shi et al. 2015, equation 3, one step at a time: xs (B, T, H, W, Cin) -> hs, (c, h)."""
    F = h.shape[-1]
    Cin = xs.shape[-1]
    Wx, Wh = w["kernel"][:, :, :Cin], w["kernel"][:, :, Cin:]
    b = w["bias"]
    hs = []
    for t in range(xs.shape[1]):
        pre = _np_conv_same(xs[:, t], Wx) + _np_conv_same(h, Wh) + b  # blocks (i, f, c, o)
        pre_i, pre_f, pre_c, pre_o = (pre[..., g * F : (g + 1) * F] for g in range(4))
        i = _sigmoid(pre_i + w["peephole_i"] * c)
        f = _sigmoid(pre_f + w["peephole_f"] * c)
        c = f * c + i * np.tanh(pre_c)
        o = _sigmoid(pre_o + w["peephole_o"] * c)
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs, 1), (c, h)


def test_encoder_forecaster_matches_numpy_equations():
    """Each ConvLSTM layer against the NumPy loop of Shi et al.'s equations (per-position
    Hadamard peepholes); encoder states copied into the forecaster layer by layer (so a
    non-zero initial state is covered); the first forecaster layer has no input; all
    forecaster states concatenated -> 1x1 convolution -> sigmoid."""
    x = _x((B, T, H, W, CIN), seed=3)
    model = C.ConvLSTMForecaster(input_shape=(T, H, W, CIN), output_frames=2, features=(3, 2))
    variables = _random_params(model, x, seed=4)
    y = jax.jit(model.apply)(variables, jnp.asarray(x))
    assert y.shape == (B, 2, H, W, CIN)

    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    assert p["encoder_0"]["cell"]["peephole_i"].shape == (H, W, 3)  # per position
    seq, carries = x.astype(np.float64), []
    for i, f in enumerate((3, 2)):
        zeros = np.zeros((B, H, W, f))
        seq, carry = _np_convlstm(p[f"encoder_{i}"]["cell"], seq, zeros, zeros)
        carries.append(carry)
    seq, states = np.zeros((B, 2, H, W, 0)), []
    for i, (c, h) in enumerate(carries):
        seq, _ = _np_convlstm(p[f"forecaster_{i}"]["cell"], seq, c, h)
        states.append(seq)
    readout = p["readout"]
    logits = np.einsum("bthwf,fc->bthwc", np.concatenate(states, -1), readout["kernel"][0, 0]) + readout["bias"]
    np.testing.assert_allclose(y, _sigmoid(logits), rtol=1e-4, atol=1e-5)


def test_gradients_through_the_convlstm_scan():
    x = jnp.asarray(_x((1, 2, 3, 3, 1)))
    model = C.ConvLSTMForecaster(input_shape=(2, 3, 3, 1), output_frames=1, features=(2,))
    variables = _random_params(model, x, seed=5)
    check_grads(jax.jit(model.apply), (variables, x), order=1, modes=["rev"], atol=2e-2, rtol=2e-2)


def test_gradient_norms_through_time_reach_convlstm_states():
    x = jnp.asarray(_x((2, 3, 4, 4, 1)))
    model = zoo.create_model("convlstm", input_shape=(3, 4, 4, 1), output_frames=2, features=(2,))
    variables = _random_params(model, x)
    norms = zoo.explain.gradient_norms_through_time(model, variables, x, jnp.zeros((2, 2, 4, 4, 1)), loss="regression")
    assert set(norms) == {"encoder_0", "forecaster_0"}
    assert norms["encoder_0"].shape == (3,) and norms["forecaster_0"].shape == (2,)
    assert all(bool(jnp.all(n > 0)) for n in norms.values())


def test_configuration_and_input_errors_name_the_valid_choices():
    with pytest.raises(ValueError, match="kernel_size must be a positive odd number"):
        zoo.create_model("convlstm", kernel_size=4)
    with pytest.raises(ValueError, match="features must be positive"):
        zoo.create_model("convlstm", features=(8, 0))
    with pytest.raises(ValueError, match=r"input_shape must be \(T_in, H, W, C\)"):
        zoo.create_model("convlstm", input_shape=(5, 24, 24))
    model = zoo.create_model("convlstm", input_shape=(3, 6, 6, 1), output_frames=1, features=(2,))
    variables = _random_params(model, jnp.zeros((1, 3, 6, 6, 1)))
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 3, 6, 6, 1\)"):
        jax.eval_shape(model.apply, variables, jnp.zeros((1, 3, 6, 5, 1)))  # fails while tracing


def test_moving_digits_frames_bounce_inside_the_canvas():
    from zoo.data import load_dataset
    from zoo.data.sequence_tasks import copy_last_frame_mse

    data = load_dataset(
        "moving_digits",
        num_examples=20,
        num_test_examples=10,
        canvas_size=16,
        input_frames=4,
        output_frames=3,
        max_speed=2.0,
    )
    assert data.x_train.shape == (20, 4, 16, 16, 1) and data.y_train.shape == (20, 3, 16, 16, 1)
    assert data.x_train.dtype == np.float32 and 0 <= data.x_train.min() and data.x_train.max() <= 1
    assert data.task == "regression" and data.model_config == {"output_frames": 3}
    again = load_dataset(
        "moving_digits", num_examples=20, num_test_examples=10, canvas_size=16, input_frames=4, output_frames=3
    )
    np.testing.assert_array_equal(again.x_train, data.x_train)  # seeded
    video = np.concatenate([data.x_train, data.y_train], 1)
    assert np.all(video.reshape(20, 7, -1).max(-1) > 0.5)  # a digit in every frame
    assert np.mean(np.abs(np.diff(video, axis=1)) > 0) > 0.01  # and the digits move
    assert copy_last_frame_mse(data.x_train, data.y_train) > 0
    with pytest.raises(ValueError, match="canvas_size must be an integer >= 8"):
        load_dataset("moving_digits", canvas_size=6)


def test_convlstm_trains_on_moving_digits():
    """A short real run of the training engine: the forecaster's test MSE falls below
    the MSE of predicting blank frames (a model that learned nothing about the digits)."""
    from zoo.data import load_dataset

    data = load_dataset(
        "moving_digits",
        num_examples=256,
        num_test_examples=64,
        canvas_size=12,
        num_digits=1,
        input_frames=3,
        output_frames=1,
        max_speed=1.0,
    )
    # conv_impl="xla": on maps this small XLA's convolution compiles faster than the matmul
    # paths and its slow backward pass inside a scan costs little.
    result = zoo.fit(
        "convlstm",
        data,
        epochs=3,
        batch_size=16,
        learning_rate=1e-2,
        model_overrides={"features": (8,), "conv_impl": "xla"},
        progress=False,
    )
    blank = float(np.mean(data.y_test**2))
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.test_metrics["mse"] < 0.7 * blank
