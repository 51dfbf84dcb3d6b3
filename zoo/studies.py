"""The seed's small training studies as pure functions (kang-lecture4, "Some Practical
Techniques"): a plain MLP as a list of (kernel, bias) arrays, trained for a fixed number
of steps by any `zoo.optim` transform inside one `lax.scan`, so that a whole study
(initialisations x seeds) is one `vmap`-ed, jit'd program.

    params = mlp_params(key, (2, 10, 5, 1), "he_normal")
    out = train_mlp(params, x, y, tx=zoo.optim.create("gd", 0.01), steps=15_000)

`init_study` is the seed's weight-initialisation experiment (scripts/init_study.py prints
its table); `trajectory` runs an optimizer on a 2-D test function (`rosenbrock`, `beale`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from zoo.nn.activations import get_activation
from zoo.nn.initializers import get_initializer

__all__ = ["mlp_params", "mlp_logits", "train_mlp", "init_study", "trajectory", "rosenbrock", "beale"]


def mlp_params(key, sizes, initializer: str, scale: float | None = None) -> list[dict]:
    """[{"kernel": (sizes[i], sizes[i+1]), "bias": (sizes[i+1],)}] with kernels drawn by the
    `zoo.nn.initializers` name ``initializer`` (``scale``: std of "normal") and zero biases,
    as in the seed's experiment (zero init sets both to 0)."""
    init = get_initializer(initializer, scale)
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"kernel": init(k, (m, n), jnp.float32), "bias": jnp.zeros((n,), jnp.float32)}
        for k, m, n in zip(keys, sizes[:-1], sizes[1:])
    ]


def mlp_logits(params, x, activation: str = "relu"):
    """x: (B, D) -> (B,) logits of a binary classifier (hidden layers ``activation``, last
    layer linear; the sigmoid lives in the loss)."""
    act = get_activation(activation)
    h = x
    for layer in params[:-1]:
        h = act(h @ layer["kernel"] + layer["bias"])
    return (h @ params[-1]["kernel"] + params[-1]["bias"])[:, 0]


def _loss(params, x, y, activation):
    # Cross-entropy on logits (log-sigmoid), not on clipped probabilities: clipping zeroes
    # the gradient of saturated units and leaves a large-variance init stuck.
    return jnp.mean(optax.sigmoid_binary_cross_entropy(mlp_logits(params, x, activation), y))


def _accuracy(params, x, y, activation):
    return jnp.mean((mlp_logits(params, x, activation) > 0) == (y > 0.5))


def train_mlp(
    params,
    x,
    y,
    *,
    tx: optax.GradientTransformation,
    steps: int,
    activation: str = "relu",
    batch_size: int | None = None,
    key=None,
    x_test=None,
    y_test=None,
) -> dict:
    """``steps`` updates of ``tx`` on the binary cross-entropy of `mlp_logits`, in one scan.

    x: (N, D) float32, y: (N,) {0, 1}. ``batch_size`` None: full-batch (gradient descent);
    else each step draws ``batch_size`` examples without replacement with ``key``.
    Returns {"params", "loss": (steps,) full training loss before each update,
    "grad_mean": (steps, L) mean |dLoss/dW| of each layer's kernel (full batch),
    "final_loss", "train_accuracy", and "test_accuracy" when x_test is given}.
    Pure: vmap it over initial params (and keys) to run a study as one program.
    """
    x, y = jnp.asarray(x), jnp.asarray(y, jnp.float32)
    full = functools.partial(_loss, x=x, y=y, activation=activation)

    def step(carry, step_key):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(full)(params)
        grad_mean = jnp.stack([jnp.mean(jnp.abs(g["kernel"])) for g in grads])
        if batch_size is not None:
            idx = jax.random.choice(step_key, x.shape[0], (batch_size,), replace=False)
            grads = jax.grad(_loss)(params, x[idx], y[idx], activation)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), (loss, grad_mean)

    keys = jax.random.split(jax.random.PRNGKey(0) if key is None else key, steps)
    (params, _), (losses, grad_mean) = jax.lax.scan(step, (params, tx.init(params)), keys)
    out = {
        "params": params,
        "loss": losses,
        "grad_mean": grad_mean,
        "final_loss": full(params),
        "train_accuracy": _accuracy(params, x, y, activation),
    }
    if x_test is not None:
        out["test_accuracy"] = _accuracy(params, x_test, y_test.astype(jnp.float32), activation)
    return out


def init_study(
    data, initializers: dict, *, seeds: int = 5, sizes=(2, 10, 5, 1), steps: int = 15_000, learning_rate: float = 0.01
) -> dict:
    """The seed's weight-initialisation study: every initialiser x ``seeds`` seeds trained
    full-batch by gradient descent for ``steps`` steps, as one jit'd, doubly vmapped call.

    data: a binary `zoo.data` Dataset (e.g. ``circles()``); initializers: {label: (name,
    scale or None)} of `zoo.nn.initializers`. Returns `train_mlp`'s outputs (params
    dropped) with leading axes (len(initializers), seeds).
    """
    from zoo import optim

    x, y, xt, yt = (jnp.asarray(a) for a in (data.x_train, data.y_train, data.x_test, data.y_test))
    tx = optim.create("gd", learning_rate)

    def one(p):
        out = train_mlp(p, x, y, tx=tx, steps=steps, x_test=xt, y_test=yt)
        del out["params"]
        return out

    @jax.jit
    def run(keys):
        # Each initialiser draws its (S, ...) params inside the program; stacked, they have
        # one shape, so the training is one vmap over initialisers and seeds.
        per_init = [jax.vmap(lambda k, n=n, s=s: mlp_params(k, sizes, n, s))(keys) for n, s in initializers.values()]
        return jax.vmap(jax.vmap(one))(jax.tree.map(lambda *p: jnp.stack(p), *per_init))

    return run(jax.random.split(jax.random.PRNGKey(0), seeds))


def rosenbrock(w):
    """(2,) -> scalar; minimum 0 at (1, 1) in a curved, flat-bottomed valley."""
    return (1.0 - w[0]) ** 2 + 100.0 * (w[1] - w[0] ** 2) ** 2


def beale(w):
    """(2,) -> scalar; minimum 0 at (3, 0.5)."""
    a, b = w[0], w[1]
    return (1.5 - a + a * b) ** 2 + (2.25 - a + a * b**2) ** 2 + (2.625 - a + a * b**3) ** 2


def trajectory(f, start, tx: optax.GradientTransformation, steps: int):
    """The points (steps + 1, 2) visited by ``tx`` minimising ``f`` from ``start`` (2,)."""

    def step(carry, _):
        w, state = carry
        updates, state = tx.update(jax.grad(f)(w), state, w)
        w = optax.apply_updates(w, updates)
        return (w, state), w

    start = jnp.asarray(start, jnp.float32)
    _, path = jax.lax.scan(step, (start, tx.init(start)), None, length=steps)
    return jnp.concatenate([start[None], path])
