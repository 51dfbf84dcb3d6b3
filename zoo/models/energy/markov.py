"""Discrete Markov chain (kang-lecture4, Neural Network Zoo: MC): sampling and the
stationary distribution."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


# --------------------------------------------------------------------------------------
# Discrete Markov chain (the chart's MC).
# --------------------------------------------------------------------------------------


def check_transition_matrix(p) -> None:
    """ValueError unless p is a square row-stochastic matrix (concrete arrays only)."""
    if isinstance(p, jax.core.Tracer):
        return
    p = np.asarray(p)
    if p.ndim != 2 or p.shape[0] != p.shape[1] or (p < 0).any() or not np.allclose(p.sum(1), 1.0, atol=1e-5):
        raise ValueError(f"a transition matrix must be square (S, S) with rows summing to 1, got shape {p.shape}")


def markov_sample(p, x0, key, steps: int):
    """States x_1..x_steps of the chain with transition matrix p (S, S), p[i, j] =
    P(x_{t+1} = j | x_t = i), from state x0: (steps,) int32."""
    check_transition_matrix(p)
    logp = jnp.log(jnp.asarray(p, jnp.float32))

    def step(x, t):
        x = jax.random.categorical(jax.random.fold_in(key, t), logp[x]).astype(jnp.int32)
        return x, x

    return jax.lax.scan(step, jnp.int32(x0), jnp.arange(steps))[1]


def stationary_distribution(p):
    """pi with pi P = pi, sum pi = 1 (S,), solved as a linear system (unique for an
    irreducible chain)."""
    check_transition_matrix(p)
    p = jnp.asarray(p, jnp.float32)
    s = p.shape[0]
    # (P^T - I) pi = 0 has rank S-1; replacing one equation by sum(pi) = 1 fixes the scale.
    a = (p.T - jnp.eye(s)).at[-1].set(1.0)
    return jnp.linalg.solve(a, jnp.zeros(s).at[-1].set(1.0))
