"""zoo.optim: every optimizer form against a plain NumPy reference of its own equations,
the slide/paper relations, L1/L2 penalties, clipping, schedules and error messages.

Slides: kang-lecture4 "Gradient Descent Variations" and "Regularization".
"""

import numpy as np
import jax
import jax.numpy as jnp
import optax
import pytest

from zoo import optim

STEPS = 6
TOL = dict(rtol=1e-6, atol=1e-6)

# Test problem: J(w) = sum(a * w^2 + b * sin(w)) over a (3, 2) kernel and a (2,) bias,
# so grad J = 2 a w + b cos(w), elementwise. JAX differentiates J; the references use
# the hand-derived gradient on the flattened vector (keys in sorted order: bias, kernel).
A = {"kernel": np.array([[0.5, 1.0], [1.5, 0.2], [0.8, 2.0]], np.float32), "bias": np.array([0.3, 1.2], np.float32)}
B = {"kernel": np.array([[1.0, -0.5], [0.7, 2.0], [-1.2, 0.4]], np.float32), "bias": np.array([-0.8, 0.6], np.float32)}
W0 = {"kernel": np.array([[1.0, -0.7], [0.4, 1.3], [-1.1, 0.6]], np.float32), "bias": np.array([0.9, -0.5], np.float32)}


def flat(tree) -> np.ndarray:
    return np.concatenate([np.asarray(tree[k], np.float64).ravel() for k in sorted(tree)])


A_FLAT, B_FLAT, W0_FLAT = flat(A), flat(B), flat(W0)


def loss(params):
    return sum(jnp.sum(A[k] * params[k] ** 2 + B[k] * jnp.sin(params[k])) for k in params)


def grad_np(w):
    return 2.0 * A_FLAT * w + B_FLAT * np.cos(w)


def run(tx, steps=STEPS, params=None, dtype=jnp.float32):
    """Apply ``tx`` to gradients of `loss`; return the flattened params after each step."""
    params = jax.tree.map(lambda w: jnp.asarray(w, dtype), W0 if params is None else params)
    state = tx.init(params)
    trajectory = []
    for _ in range(steps):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, updates)
        trajectory.append(flat(params))
    return np.stack(trajectory), params, state


# ----------------------------------------------------------------- NumPy references
# Each takes the start point, the gradient function and the learning rate of every step,
# and returns the iterates. Written from the equations, not from optax.


def ref_gd(w, grad, etas):
    out = []
    for eta in etas:
        w = w - eta * grad(w)
        out.append(w)
    return out


def ref_momentum(w, grad, etas, momentum):
    trace, out = np.zeros_like(w), []
    for eta in etas:
        trace = momentum * trace + grad(w)
        w = w - eta * trace
        out.append(w)
    return out


def ref_momentum_slide(w, grad, etas, momentum):
    v, out = np.zeros_like(w), []
    for eta in etas:
        v = momentum * v + eta * grad(w)
        w = w - v
        out.append(w)
    return out


def ref_nesterov(w, grad, etas, momentum):
    trace, out = np.zeros_like(w), []
    for eta in etas:
        g = grad(w)
        trace = momentum * trace + g
        w = w - eta * (g + momentum * trace)
        out.append(w)
    return out


def ref_nesterov_slide_literal(w, grad, etas, momentum):
    """The slide's NAG as printed; returns (look-ahead points u = w - gamma v, weights w)."""
    v, looks, weights = np.zeros_like(w), [], []
    for eta in etas:
        v = momentum * v + eta * grad(w - momentum * v)
        w = w - v
        looks.append(w - momentum * v)
        weights.append(w)
    return looks, weights


def ref_nesterov_slide(w, grad, etas, momentum):
    return ref_nesterov_slide_literal(w, grad, etas, momentum)[0]


def ref_adagrad(w, grad, etas, eps, initial_accumulator):
    G, out = np.full_like(w, initial_accumulator), []
    for eta in etas:
        g = grad(w)
        G = G + g**2
        w = w - eta * g / (np.sqrt(G) + eps)
        out.append(w)
    return out


def ref_adagrad_slide(w, grad, etas, eps, initial_accumulator):
    G, out = np.full_like(w, initial_accumulator), []
    for eta in etas:
        g = grad(w)
        G = G + g**2
        w = w - eta * g / np.sqrt(G + eps)
        out.append(w)
    return out


def ref_adadelta(w, grad, etas, rho, eps):
    Eg, Ed, out = np.zeros_like(w), np.zeros_like(w), []
    for eta in etas:
        g = grad(w)
        Eg = rho * Eg + (1 - rho) * g**2
        d = -np.sqrt(Ed + eps) / np.sqrt(Eg + eps) * g
        Ed = rho * Ed + (1 - rho) * d**2
        w = w + eta * d
        out.append(w)
    return out


def ref_rmsprop(w, grad, etas, rho, eps):
    E, out = np.zeros_like(w), []
    for eta in etas:
        g = grad(w)
        E = rho * E + (1 - rho) * g**2
        w = w - eta * g / np.sqrt(E + eps)
        out.append(w)
    return out


def ref_adam(w, grad, etas, beta1, beta2, eps):
    m, v, out = np.zeros_like(w), np.zeros_like(w), []
    for t, eta in enumerate(etas, start=1):
        g = grad(w)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        w = w - eta * m_hat / (np.sqrt(v_hat) + eps)
        out.append(w)
    return out


def ref_adam_slide(w, grad, etas, beta1, beta2, eps):
    m, v, out = np.zeros_like(w), np.zeros_like(w), []
    for t, eta in enumerate(etas, start=1):
        g = grad(w)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        w = w - eta * m_hat / np.sqrt(v_hat + eps)
        out.append(w)
    return out


def ref_adamw(w, grad, etas, beta1, beta2, eps, weight_decay):
    m, v, out = np.zeros_like(w), np.zeros_like(w), []
    for t, eta in enumerate(etas, start=1):
        g = grad(w)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        w = w - eta * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * w)
        out.append(w)
    return out


# name -> (reference, base learning rate, hyper-parameters for the test). The test's
# hyper-parameters are large where eps placement would otherwise hide below 1e-6.
CASES = {
    "gd": (ref_gd, 0.1, {}),
    "sgd": (ref_gd, 0.1, {}),
    "momentum": (ref_momentum, 0.1, {"momentum": 0.8}),
    "momentum_slide": (ref_momentum_slide, 0.1, {"momentum": 0.8}),
    "nesterov": (ref_nesterov, 0.1, {"momentum": 0.8}),
    "nesterov_slide": (ref_nesterov_slide, 0.1, {"momentum": 0.8}),
    "adagrad": (ref_adagrad, 0.1, {"eps": 0.1, "initial_accumulator": 0.0}),
    "adagrad_slide": (ref_adagrad_slide, 0.1, {"eps": 0.1, "initial_accumulator": 0.2}),
    "adadelta": (ref_adadelta, 1.0, {"rho": 0.9, "eps": 1e-3}),
    "rmsprop": (ref_rmsprop, 0.1, {"rho": 0.8, "eps": 0.1}),
    "rmsprop_slide": (ref_rmsprop, 0.1, {"rho": 0.8, "eps": 0.1}),
    "adadelta_slide": (ref_rmsprop, 0.1, {"rho": 0.8, "eps": 0.1}),
    "adam": (ref_adam, 0.1, {"beta1": 0.8, "beta2": 0.9, "eps": 0.1}),
    "adam_slide": (ref_adam_slide, 0.1, {"beta1": 0.8, "beta2": 0.9, "eps": 0.1}),
    "adamw": (ref_adamw, 0.1, {"beta1": 0.8, "beta2": 0.9, "eps": 0.1, "weight_decay": 0.5}),
}

# The papers' (and slides') defaults, as the module docstring states them.
PAPER_DEFAULTS = {
    "gd": {},
    "sgd": {},
    "momentum": {"momentum": 0.9},
    "momentum_slide": {"momentum": 0.9},
    "nesterov": {"momentum": 0.9},
    "nesterov_slide": {"momentum": 0.9},
    "adagrad": {"eps": 1e-8, "initial_accumulator": 0.0},
    "adagrad_slide": {"eps": 1e-8, "initial_accumulator": 0.0},
    "adadelta": {"rho": 0.95, "eps": 1e-6},
    "rmsprop": {"rho": 0.9, "eps": 1e-8},
    "rmsprop_slide": {"rho": 0.9, "eps": 1e-8},
    "adadelta_slide": {"rho": 0.9, "eps": 1e-8},
    "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "adam_slide": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "adamw": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-4},
}


def step_etas(base, steps=STEPS):
    """The learning rates of `step_schedule`, written out: base * 0.5^floor(t / 2)."""
    return [base * 0.5 ** (t // 2) for t in range(steps)]


def step_schedule(base):
    return optim.make_schedule("step", base, step_size=2, decay=0.5)


def reference(name, etas, hyper):
    ref = CASES[name][0]
    return np.stack(ref(W0_FLAT, grad_np, etas, **hyper))


# ----------------------------------------------------------------- every form


def test_every_name_has_a_reference():
    """Slide "Variations of Gradient Descent": every offered form is checked below."""
    assert set(optim.list_optimizers()) == set(CASES) == set(PAPER_DEFAULTS)
    for name in (
        "gd",
        "sgd",
        "momentum",
        "nesterov",
        "adagrad",
        "adadelta",
        "rmsprop",
        "adam",
        "adamw",
        "momentum_slide",
        "nesterov_slide",
        "adagrad_slide",
        "rmsprop_slide",
        "adadelta_slide",
        "adam_slide",
    ):
        assert name in optim.list_optimizers()


@pytest.mark.parametrize("name", optim.list_optimizers())
def test_optimizer_matches_numpy_reference_constant_lr(name):
    """Slides "Momentum" ... "Adam": each form's own equations, constant eta."""
    _, base, hyper = CASES[name]
    got, _, _ = run(optim.create(name, base, **hyper))
    np.testing.assert_allclose(got, reference(name, [base] * STEPS, hyper), **TOL)


@pytest.mark.parametrize("name", optim.list_optimizers())
def test_optimizer_matches_numpy_reference_under_step_schedule(name):
    """Slide "Challenges" (learning-rate scheduling): eta_t = schedule(t - 1) in each form."""
    _, base, hyper = CASES[name]
    got, _, _ = run(optim.create(name, step_schedule(base), **hyper))
    np.testing.assert_allclose(got, reference(name, step_etas(base), hyper), **TOL)


@pytest.mark.parametrize("name", optim.list_optimizers())
def test_default_hyper_parameters_are_the_papers(name):
    """Papers' defaults (slide "RMSProp": gamma 0.9): create(name) uses PAPER_DEFAULTS.

    Run in float64: in float32, Adam's 1 - 0.999^t is off by ~1e-5 relative (0.999 is
    not exact in float32), which would hide a wrong eps of 1e-8 versus 1e-7.
    """
    base = CASES[name][1]
    with jax.enable_x64(True):
        got, _, _ = run(optim.create(name, base), steps=5, dtype=jnp.float64)
    expected = reference(name, [base] * 5, PAPER_DEFAULTS[name])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_schedule_by_name_equals_schedule_object():
    """Slide "Challenges": create(schedule=...) builds the same eta_t as make_schedule."""
    by_name, _, _ = run(optim.create("momentum", 0.1, schedule="step", schedule_kwargs={"step_size": 2, "decay": 0.5}))
    by_object, _, _ = run(optim.create("momentum", step_schedule(0.1)))
    np.testing.assert_array_equal(by_name, by_object)


def test_jitted_update_matches_eager_for_every_optimizer():
    """All forms run under jax.jit (the trainer's step is jitted)."""
    params = jax.tree.map(jnp.asarray, W0)
    grads = jax.grad(loss)(params)
    for name in optim.list_optimizers():
        tx = optim.create(name, step_schedule(0.1))
        state = tx.init(params)
        eager, _ = tx.update(grads, state, params)
        jitted, _ = jax.jit(tx.update)(grads, state, params)
        np.testing.assert_allclose(flat(jitted), flat(eager), **TOL, err_msg=name)


# ----------------------------------------------------------------- slide vs paper


def test_momentum_slide_equals_momentum_at_constant_lr_but_not_under_schedule():
    """Slide "Momentum": v = gamma v + eta g equals optax's trace times eta only if eta is fixed."""
    constant = [run(optim.create(n, 0.1, momentum=0.8))[0] for n in ("momentum", "momentum_slide")]
    np.testing.assert_allclose(constant[0], constant[1], **TOL)
    scheduled = [run(optim.create(n, step_schedule(0.1), momentum=0.8))[0] for n in ("momentum", "momentum_slide")]
    assert np.max(np.abs(scheduled[0] - scheduled[1])) > 1e-3


def test_nesterov_slide_tracks_literal_look_ahead_algorithm_and_recovers_weights():
    """Slide "Nesterov Accelerated Gradient": gradient at w - gamma v; params are u = w - gamma v."""
    for lr, etas in ((0.1, [0.1] * STEPS), (step_schedule(0.1), step_etas(0.1))):
        tx = optim.create("nesterov_slide", lr, momentum=0.8)
        params = jax.tree.map(jnp.asarray, W0)
        state = tx.init(params)
        looks, weights = ref_nesterov_slide_literal(W0_FLAT, grad_np, etas, momentum=0.8)
        for t in range(STEPS):
            updates, state = tx.update(jax.grad(loss)(params), state, params)
            params = optax.apply_updates(params, updates)
            np.testing.assert_allclose(flat(params), looks[t], **TOL)
            recovered = optim.nesterov_slide_weights(params, state)
            np.testing.assert_allclose(flat(recovered), weights[t], **TOL)


def test_optax_nesterov_iterates_are_slide_look_ahead_points_at_constant_lr():
    """Slide "NAG": optax's nesterov x_t equals the slide's u_t = w_t - gamma v_{t-1}, v = eta T."""
    looks, weights = ref_nesterov_slide_literal(W0_FLAT, grad_np, [0.1] * STEPS, momentum=0.8)
    got, _, _ = run(optim.create("nesterov", 0.1, momentum=0.8))
    np.testing.assert_allclose(got, np.stack(looks), **TOL)
    assert np.max(np.abs(got - np.stack(weights))) > 1e-3  # they are not the weights w
    # Under a schedule the two forms part, as momentum's do.
    scheduled = [run(optim.create(n, step_schedule(0.1), momentum=0.8))[0] for n in ("nesterov", "nesterov_slide")]
    assert np.max(np.abs(scheduled[0] - scheduled[1])) > 1e-4


@pytest.mark.parametrize("paper, slide", [("adagrad", "adagrad_slide"), ("adam", "adam_slide")])
def test_eps_placement_distinguishes_paper_and_slide_forms(paper, slide):
    """Slides "Adagrad", "Adam": eps inside the square root, the papers put it outside."""
    hyper = {k: v for k, v in CASES[slide][2].items() if k != "initial_accumulator"}
    a, _, _ = run(optim.create(paper, 0.1, **hyper))
    b, _, _ = run(optim.create(slide, 0.1, **hyper))
    assert np.max(np.abs(a - b)) > 1e-3


def test_slide_adadelta_and_rmsprop_are_rmsprop():
    """Slides "Adadelta", "RMSProp": both print E = gamma E + (1 - gamma) g^2, eta g / sqrt(E + eps)."""
    runs = [run(optim.create(n, 0.1))[0] for n in ("rmsprop", "rmsprop_slide", "adadelta_slide")]
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])
    zeiler, _, _ = run(optim.create("adadelta", 0.1))
    assert np.max(np.abs(zeiler - runs[0])) > 1e-3
    assert "alias of rmsprop" in optim.describe("adadelta_slide")


def test_gd_and_sgd_are_one_update():
    """Slide "Gradient Descent revisited": batch/stochastic/mini-batch differ only in the batch."""
    np.testing.assert_array_equal(run(optim.create("gd", 0.1))[0], run(optim.create("sgd", 0.1))[0])


def test_nesterov_slide_weights_rejects_other_states():
    """Slide "NAG": only nesterov_slide holds look-ahead params."""
    params = jax.tree.map(jnp.asarray, W0)
    with pytest.raises(ValueError, match="nesterov_slide"):
        optim.nesterov_slide_weights(params, optim.create("nesterov", 0.1).init(params))


# ----------------------------------------------------------------- regularization

LAM, M = 0.6, 5


def _grads():
    return jax.grad(loss)(jax.tree.map(jnp.asarray, W0))


def _apply(tx, grads, params=W0):
    params = jax.tree.map(jnp.asarray, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    return updates


def test_l2_penalty_adds_lambda_over_m_times_w_to_weights_only():
    """Slide "Regularization": d/dw [lambda / (2m) sum w^2] = (lambda / m) w; biases unpenalised."""
    grads = _grads()
    got = _apply(optim.l2_penalty(LAM, M), grads)
    np.testing.assert_allclose(got["kernel"], grads["kernel"] + LAM / M * W0["kernel"], **TOL)
    np.testing.assert_allclose(got["bias"], grads["bias"], **TOL)


def test_l1_penalty_adds_lambda_over_2m_times_sign_w_to_weights_only():
    """Slide "Regularization": d/dw [lambda / (2m) sum |w|] = (lambda / (2m)) sign(w)."""
    grads = _grads()
    got = _apply(optim.l1_penalty(LAM, M), grads)
    np.testing.assert_allclose(got["kernel"], grads["kernel"] + LAM / (2 * M) * np.sign(W0["kernel"]), **TOL)
    np.testing.assert_allclose(got["bias"], grads["bias"], **TOL)


def test_penalties_equal_jax_grad_of_regularized_cost():
    """Slide "Regularization": Cost = Loss + lambda1/(2m) sum |w| + lambda2/(2m) sum w^2."""
    lam1, lam2 = 0.4, 0.6

    def cost(params):
        w = params["kernel"]  # the default mask: arrays with ndim >= 2
        return loss(params) + lam1 / (2 * M) * jnp.sum(jnp.abs(w)) + lam2 / (2 * M) * jnp.sum(w**2)

    params = jax.tree.map(jnp.asarray, W0)
    expected = jax.grad(cost)(params)
    # Through create: gd with eta = 1 steps by exactly minus the transformed gradient.
    updates = _apply(optim.create("gd", 1.0, l1=lam1, l2=lam2, num_examples=M), _grads())
    np.testing.assert_allclose(flat(updates), -flat(expected), **TOL)


def test_penalty_mask_can_include_biases():
    """Slide "Regularization" sums over every w_i when the mask says so."""
    everything = {"kernel": True, "bias": True}
    grads = _grads()
    got = _apply(optim.create("gd", 1.0, l2=LAM, num_examples=M, penalty_mask=everything), grads)
    np.testing.assert_allclose(flat(got), -(flat(grads) + LAM / M * W0_FLAT), **TOL)


def test_penalties_need_num_examples_and_nonnegative_strength():
    """Slide "Regularization": m, the number of training examples, is part of the term."""
    with pytest.raises(ValueError, match="num_examples"):
        optim.create("adam", l2=0.1)
    with pytest.raises(ValueError, match="num_examples"):
        optim.create("adam", l1=0.1)
    with pytest.raises(ValueError, match=">= 0"):
        optim.create("adam", l1=-0.1, num_examples=10)
    with pytest.raises(ValueError, match="positive integer"):
        optim.l2_penalty(0.1, 0)
    optim.create("adam", num_examples=None)  # no penalty: m not needed


# ----------------------------------------------------------------- clipping


def test_clip_value_clips_each_element_before_the_optimizer():
    """Gradient clipping by value: each g_i into [-c, c], then w <- w - eta g."""
    grads = _grads()
    got = _apply(optim.create("gd", 0.5, clip_value=0.3), grads)
    np.testing.assert_allclose(flat(got), -0.5 * np.clip(flat(grads), -0.3, 0.3), **TOL)


def test_clip_norm_rescales_global_norm_only_when_above():
    """Gradient clipping by global norm: g * min(1, c / ||g||)."""
    grads = _grads()
    norm = np.linalg.norm(flat(grads))
    got = _apply(optim.create("gd", 1.0, clip_norm=norm / 4), grads)
    np.testing.assert_allclose(flat(got), -flat(grads) / 4, **TOL)
    got = _apply(optim.create("gd", 1.0, clip_norm=norm * 2), grads)
    np.testing.assert_allclose(flat(got), -flat(grads), **TOL)


def test_clipping_acts_on_loss_gradient_then_penalty_is_added():
    """Assembly chain(clip, L1/L2, optimizer): the penalty's gradient is not clipped."""
    grads = _grads()
    got = _apply(optim.create("gd", 1.0, clip_value=0.1, l2=LAM, num_examples=M), grads)
    expected = np.clip(flat(grads), -0.1, 0.1) + LAM / M * flat({"bias": np.zeros(2), "kernel": W0["kernel"]})
    np.testing.assert_allclose(flat(got), -expected, **TOL)


def test_clip_thresholds_must_be_positive():
    """Gradient clipping: a threshold of 0 would zero every step."""
    with pytest.raises(ValueError, match="clip_norm"):
        optim.create("sgd", clip_norm=0.0)
    with pytest.raises(ValueError, match="clip_value"):
        optim.create("sgd", clip_value=-1.0)


# ----------------------------------------------------------------- schedules


def _values(schedule, steps):
    return [float(schedule(t)) for t in steps]


@pytest.mark.parametrize(
    "kind, kwargs, steps, expected",
    [
        ("constant", {}, [0, 1, 100], [1.0, 1.0, 1.0]),
        ("step", {"step_size": 3, "decay": 0.5}, [0, 2, 3, 5, 6, 9], [1, 1, 0.5, 0.5, 0.25, 0.125]),
        ("step", {"boundaries": [2, 5], "decay": 0.1}, [0, 1, 2, 4, 5, 9], [1, 1, 0.1, 0.1, 0.01, 0.01]),
        ("cosine", {"decay_steps": 10}, [0, 5, 10, 20], [1.0, 0.5, 0.0, 0.0]),
        ("cosine", {"decay_steps": 10, "alpha": 0.2}, [0, 5, 10], [1.0, 0.6, 0.2]),
        ("warmup", {"warmup_steps": 4}, [0, 2, 4, 100], [0.0, 0.5, 1.0, 1.0]),
        ("warmup", {"warmup_steps": 4, "init_value": 0.06}, [0, 2, 4], [0.2, 0.6, 1.0]),
        ("warmup_cosine", {"warmup_steps": 4, "decay_steps": 14}, [0, 2, 4, 9, 14, 30], [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]),
        ("warmup_cosine", {"warmup_steps": 4, "decay_steps": 14, "end_value": 0.03}, [4, 14], [1.0, 0.1]),
    ],
)
def test_schedule_values_at_given_steps(kind, kwargs, steps, expected):
    """Slide "Challenges": eta large early, decreased later (t = updates already made).

    ``expected`` is in units of lr = 0.3; init_value and end_value are absolute rates.
    """
    lr = 0.3
    got = _values(optim.make_schedule(kind, lr, **kwargs), steps)
    np.testing.assert_allclose(got, lr * np.asarray(expected, np.float64), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "kind, kwargs, match",
    [
        ("cosin", {}, "Did you mean: cosine"),
        ("cosine", {}, "needs decay_steps"),
        ("cosine", {"decay_steps": 10, "steps": 3}, "unknown keyword.*steps.*valid: decay_steps"),
        ("step", {}, "exactly one of step_size"),
        ("step", {"step_size": 2, "boundaries": [3]}, "exactly one of step_size"),
        ("step", {"step_size": 0}, "step_size must be a positive integer"),
        ("step", {"boundaries": [0, 3]}, "distinct positive"),
        ("warmup", {"warmup_steps": -1}, "warmup_steps must be a positive integer"),
        ("warmup_cosine", {"warmup_steps": 5, "decay_steps": 5}, "must exceed warmup_steps"),
    ],
)
def test_bad_schedule_arguments_raise(kind, kwargs, match):
    """Schedules: every bad kind or keyword names what is valid."""
    with pytest.raises(ValueError, match=match):
        optim.make_schedule(kind, 0.1, **kwargs)


def test_schedule_arguments_conflicting_with_a_schedule_object_raise():
    """Schedules: a learning_rate that is already a schedule takes no schedule kind."""
    with pytest.raises(ValueError, match="already a schedule"):
        optim.create("sgd", step_schedule(0.1), schedule="cosine", schedule_kwargs={"decay_steps": 3})
    with pytest.raises(ValueError, match="without a schedule"):
        optim.create("sgd", 0.1, schedule_kwargs={"decay_steps": 3})


# ----------------------------------------------------------------- names and hyper


def test_unknown_optimizer_lists_valid_names_and_close_matches():
    """Slide "Variations of Gradient Descent": names are the forms offered."""
    with pytest.raises(ValueError) as info:
        optim.create("adma")
    message = str(info.value)
    assert "Did you mean: adam" in message
    for name in optim.list_optimizers():
        assert name in message
    with pytest.raises(ValueError, match="nesterov_slide"):
        optim.create("nesterov_slid")


def test_unknown_hyper_parameter_names_valid_keys():
    """Each optimizer takes only its own equation's hyper-parameters."""
    with pytest.raises(ValueError, match=r"beta.*valid for 'adam': beta1, beta2, eps, weight_decay, amsgrad"):
        optim.create("adam", beta=0.9)
    with pytest.raises(ValueError, match=r"momentum.*valid for 'sgd': weight_decay"):
        optim.create("sgd", momentum=0.9)
    with pytest.raises(ValueError, match=r"rho.*valid for 'adagrad': eps, initial_accumulator"):
        optim.create("adagrad", rho=0.9)


def test_describe_gives_equation_reference_and_defaults():
    """Module table: each name's equation, paper and slide difference."""
    text = optim.describe("adam_slide")
    assert "sqrt(v_hat + eps)" in text and "slide 'Adam'" in text and "eps=1e-08" in text
    assert "learning_rate=1.0" in optim.describe("adadelta")


@pytest.mark.parametrize(
    "name, hyper, message",
    [
        ("adam", {"beta1": 1.5}, r"beta1 must be a number in \[0, 1\), got 1.5"),
        ("adam", {"beta2": 1.0}, r"beta2 must be a number in \[0, 1\), got 1.0"),
        ("adam", {"eps": -1}, "eps must be a number > 0, got -1"),
        ("adagrad", {"eps": 0}, "eps must be a number > 0, got 0"),
        ("momentum", {"momentum": -5}, r"momentum must be a number in \[0, 1\), got -5"),
        ("rmsprop", {"rho": "abc"}, "rho must be a number.*got 'abc'"),
        ("adamw", {"weight_decay": -0.1}, "weight_decay must be a number >= 0"),
    ],
)
def test_hyper_parameters_out_of_range_are_refused(name, hyper, message):
    with pytest.raises(ValueError, match=message):
        optim.create(name, 1e-3, **hyper)


@pytest.mark.parametrize("learning_rate", [0.0, -0.1, float("nan"), float("inf"), "fast", True])
def test_learning_rate_must_be_positive_and_finite(learning_rate):
    with pytest.raises(ValueError, match="learning rate must be a positive"):
        optim.create("sgd", learning_rate)


def test_range_edges_that_are_valid_are_accepted():
    optim.create("momentum", 1e-3, momentum=0.0)
    optim.create("adagrad", 1e-3, initial_accumulator=0.0)
    optim.create("adamw", 1e-3, weight_decay=0.0, beta1=0.0)


# ----------------------------------------------------------------- torch.optim options

TORCH_STEPS = 50


def _torch_and_zoo_weights(torch, torch_cls, torch_kwargs, zoo_name, zoo_lr, zoo_hyper):
    """Weights after TORCH_STEPS updates of torch.optim and of zoo.optim fed one stream of
    gradients (drawn once, independent of the weights; weight decay adds its own term)."""
    rng = np.random.default_rng(0)
    w0 = {"kernel": rng.standard_normal((3, 4)).astype(np.float32), "bias": rng.standard_normal(4).astype(np.float32)}
    stream = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in w0.items()} for _ in range(TORCH_STEPS)]
    tensors = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in w0.items()}
    opt = torch_cls(list(tensors.values()), **torch_kwargs)
    tx = optim.create(zoo_name, zoo_lr, **zoo_hyper)
    w = jax.tree.map(jnp.asarray, w0)
    state = tx.init(w)
    for g in stream:
        for k, t in tensors.items():
            t.grad = torch.tensor(g[k])
        opt.step()
        updates, state = tx.update(jax.tree.map(jnp.asarray, g), state, w)
        w = optax.apply_updates(w, updates)
    return flat({k: t.detach().numpy() for k, t in tensors.items()}), flat(w)


TORCH_CASES = [
    ("RMSprop", {"lr": 0.01, "alpha": 0.99}, "rmsprop", {"rho": 0.99, "eps_in_sqrt": False}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "centered": True}, "rmsprop", {"centered": True, "eps_in_sqrt": False}),
    (
        "RMSprop",
        {"lr": 0.01, "alpha": 0.99, "momentum": 0.9},
        "rmsprop",
        {"rho": 0.99, "momentum": 0.9, "eps_in_sqrt": False},
    ),
    (
        "RMSprop",
        {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True},
        "rmsprop",
        {"momentum": 0.5, "centered": True, "eps_in_sqrt": False},
    ),
    ("Adam", {"lr": 0.01, "amsgrad": True}, "adam", {"amsgrad": True}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "betas": (0.8, 0.9)}, "adam", {"amsgrad": True, "beta1": 0.8, "beta2": 0.9}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}, "adam", {"weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "weight_decay": 0.1}, "sgd", {"weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1}, "momentum", {"weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}, "nesterov", {"weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}, "adamw", {"weight_decay": 0.1}),
]


@pytest.mark.parametrize("torch_name, torch_kwargs, zoo_name, zoo_hyper", TORCH_CASES)
def test_options_match_torch_optim_on_one_gradient_stream(torch_name, torch_kwargs, zoo_name, zoo_hyper):
    """torch.optim's RMSprop (eps outside the root, centered, momentum), Adam's amsgrad and
    coupled weight_decay, SGD's weight_decay: the same weights after 50 steps."""
    from conftest import require_module

    torch = require_module("torch")
    kwargs = dict(torch_kwargs)
    lr = kwargs.pop("lr")
    expected, got = _torch_and_zoo_weights(
        torch, getattr(torch.optim, torch_name), {"lr": lr, **kwargs}, zoo_name, lr, zoo_hyper
    )
    # float32 rounding: plain optax.adam against torch.optim.Adam differs by 1.1e-6 here.
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=2e-6)


@pytest.mark.parametrize(
    "name, hyper, message",
    [
        ("adam", {"betas": (0.9, 0.99)}, "'betas' is PyTorch's name; zoo spells it beta1, beta2"),
        ("rmsprop", {"alpha": 0.99}, "'alpha' is PyTorch's name; zoo spells it rho"),
        ("sgd", {"lr": 0.1}, "'lr' is PyTorch's name; zoo spells it learning_rate"),
        ("rmsprop", {"centered": 1}, "centered must be True or False, got 1"),
        ("adam", {"amsgrad": "yes"}, "amsgrad must be True or False"),
    ],
)
def test_torch_spellings_and_bad_flags_are_refused(name, hyper, message):
    with pytest.raises(ValueError, match=message):
        optim.create(name, 1e-3, **hyper)
