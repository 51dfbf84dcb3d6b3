"""Hamming network with MAXNET (khanzhina, "Hamming neural network"): first layer
``w_ik = x_i^k / 2``, ``T_k = n / 2`` (n minus the Hamming distance), MAXNET lateral
inhibition to one winner; the registered ``hamming`` model."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo.models.energy._common import (
    KHANZHINA,
    _check_classes,
    _check_patterns,
    _flat,
    _mask,
    _one_hot,
    _size,
    to_bipolar,
)
from zoo.nn import check_input
from zoo.registry import register_model


# --------------------------------------------------------------------------------------
# Hamming network with MAXNET (khanzhina).
# --------------------------------------------------------------------------------------


def hamming_scores(patterns, x):
    """The seed's first layer: ``y_k = sum_i (x_i^k / 2) x_i + n / 2 = n - d_H(x, x^k)``.

    patterns: (m, n) bipolar, x: (..., n) bipolar -> (..., m) float32.
    """
    n = patterns.shape[-1]
    return x @ (patterns / 2.0).T + n / 2.0


def maxnet(y, *, epsilon: float | None = None, max_steps: int = 10_000):
    """MAXNET: ``s_j(p+1) = y_j(p) - epsilon sum_{k != j} y_k(p)``, ``y = max(s, 0)``, repeated
    until at most one output is positive. y: (m,) non-negative; epsilon in (0, 1/m)
    (default 1/(2m)). Returns ``(outputs (m,), steps int32)``.

    The largest output always stays positive (epsilon < 1/m). Equal largest outputs fall
    together and would only shrink towards 0, so the loop also stops once every positive
    output is equal; the caller's argmax then picks the first of them.
    """
    m = y.shape[-1]
    eps = 1.0 / (2 * m) if epsilon is None else epsilon
    if not 0 < eps < 1.0 / m:
        raise ValueError(f"MAXNET needs 0 < epsilon < 1/m = {1.0 / m:.4g}, got {eps}")

    def settled(v):
        positive = v > 0
        return (jnp.sum(positive) <= 1) | (jnp.max(v) == jnp.min(jnp.where(positive, v, jnp.inf)))

    def cond(carry):
        v, steps = carry
        return (~settled(v)) & (steps < max_steps)

    def body(carry):
        v, steps = carry
        return jnp.maximum(v - eps * (jnp.sum(v) - v), 0.0), steps + 1

    return jax.lax.while_loop(cond, body, (jnp.asarray(y, jnp.float32), jnp.int32(0)))


def hamming_recall(patterns, x, *, epsilon: float | None = None, max_steps: int = 10_000):
    """Recall of one bipolar probe x (n,) against stored patterns (m, n): the first layer
    gives n - d_H, MAXNET picks the winner. Returns ``(index int32, distance float32,
    steps int32)``. vmap over probes for a batch (`hamming_recall_batch`)."""
    scores = hamming_scores(patterns, x)
    out, steps = maxnet(scores, epsilon=epsilon, max_steps=max_steps)
    index = jnp.argmax(out).astype(jnp.int32)
    return index, patterns.shape[-1] - scores[index], steps


def hamming_recall_batch(patterns, probes, *, epsilon: float | None = None):
    """`hamming_recall` of probes (B, n): (indices (B,), distances (B,), steps (B,))."""
    patterns = _check_patterns(patterns)
    return jax.vmap(lambda x: hamming_recall(patterns, x, epsilon=epsilon))(jnp.asarray(probes, jnp.float32))


class Hamming(nn.Module):
    """Hamming network with MAXNET: one stored bipolar prototype per class.

    params["sums"] (C, n) accumulates the bipolar examples of each class (Hebbian:
    ``dw_ik = x_i t_k``); the stored pattern of class k is sign(sums_k) (0 -> +1). The
    first layer has the seed's ``w_ik = x_i^k / 2``, ``T_k = n / 2``, so the scores (B, C)
    are n minus the Hamming distance to each prototype; ``recall`` runs MAXNET
    (``epsilon``, 0 = 1/(2C)) to a single winner: (index (B,), distance (B,)).
    """

    input_shape: tuple[int, ...] = (8, 8, 1)
    num_classes: int = 10
    threshold: float = 0.5
    epsilon: float = 0.0

    def __post_init__(self):
        _check_classes(self.num_classes, 1)
        if self.epsilon and not 0 < self.epsilon < 1.0 / self.num_classes:
            raise ValueError(f"MAXNET needs 0 < epsilon < 1/num_classes, got {self.epsilon}")
        super().__post_init__()

    def setup(self):
        self.sums = self.param("sums", nn.initializers.zeros, (self.num_classes, _size(self.input_shape)))

    def patterns(self):
        """The stored bipolar prototypes (C, n)."""
        return jnp.where(self.sums >= 0, 1.0, -1.0)

    def _bipolar(self, x):
        check_input(x, self.input_shape, model=f"Hamming(input_shape={tuple(self.input_shape)})")
        return to_bipolar(_flat(x, self.input_shape), self.threshold)

    def recall(self, x):
        """MAXNET winner and its Hamming distance: (index (B,) int32, distance (B,))."""
        patterns = self.patterns()
        index, distance, _ = jax.vmap(lambda p: hamming_recall(patterns, p, epsilon=self.epsilon or None))(
            self._bipolar(x)
        )
        return index, distance

    def __call__(self, x, train: bool = False):
        return hamming_scores(self.patterns(), self._bipolar(x))


def hamming_rule(variables, x, t, *, mask=None, model):
    """Adds each unmasked bipolar example to its class's sum (the prototype is its sign)."""
    xb = to_bipolar(_flat(jnp.asarray(x, jnp.float32), model.input_shape), model.threshold)
    sums = variables["params"]["sums"] + (_one_hot(t, model.num_classes) * _mask(mask, t)[:, None]).T @ xb
    return {**variables, "params": {**variables["params"], "sums": sums}}


register_model(
    "hamming",
    Hamming,
    family="energy",
    task="classification",
    learning="hebbian",
    learning_rule=hamming_rule,
    paper=f"Lippmann 1987; {KHANZHINA}, Hamming neural network (MAXNET second layer)",
    test_config={"input_shape": (6,), "num_classes": 3},
    description="Hamming network: n - Hamming distance to per-class prototypes, MAXNET winner-take-all.",
)
