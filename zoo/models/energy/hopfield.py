"""Hopfield network (khanzhina, "Hopfield neural network"): Hebbian storage with zero
diagonal, sign units, synchronous and asynchronous recall, energy; the registered
``hopfield`` model."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo.models.energy._common import (
    KANG,
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
# Hopfield network (khanzhina: Hebbian weights, sign activation, recall until stable).
# --------------------------------------------------------------------------------------


def hebbian_weights(patterns, *, weights=None, scale: bool = False):
    """The seed's storage rule ``w_ij = sum_k x_i^k x_j^k`` (i != j), ``w_ii = 0``.

    patterns: (P, n) bipolar; weights: optional (P,) per-pattern factors (0 skips a
    pattern). ``scale`` divides by n (Hopfield's 1/N), which leaves recall unchanged and
    makes the energy comparable across sizes. Returns (n, n) float32, symmetric.
    """
    patterns = _check_patterns(patterns)
    n = patterns.shape[1]
    weighted = patterns if weights is None else patterns * jnp.asarray(weights, jnp.float32)[:, None]
    w = weighted.T @ patterns
    # No self-connection: with w_ii > 0 a unit would vote for its own state, which breaks
    # the energy argument for convergence and adds spurious fixed points.
    w = w * (1.0 - jnp.eye(n, dtype=w.dtype))
    return w / n if scale else w


def hopfield_energy(w, s):
    """E(s) = -1/2 s^T W s: w (n, n), s (..., n) -> (...)."""
    return -0.5 * jnp.einsum("...i,ij,...j->...", s, w, s)


def _sign(h, s):
    """Bipolar sign of the local field ``h``; a unit whose field is exactly 0 keeps its
    state ``s`` (so an update never raises the energy)."""
    return jnp.where(h > 0, 1.0, jnp.where(h < 0, -1.0, s))


def hopfield_step(w, s):
    """One synchronous update ``y_j(p+1) = f(sum_i w_ij y_i(p))``: s (..., n) -> (..., n)."""
    return _sign(s @ w, s)


def hopfield_recall(w, probe, *, max_steps: int = 100, free=None):
    """Synchronous recall of one probe (n,) until the state stops changing (the seed's step
    3) or ``max_steps`` updates. Returns ``(state (n,), steps int32, stable bool)``;
    ``stable`` is False when the limit was hit (a synchronous net may enter a 2-cycle).
    Entries 0 in the probe are unknown units; they take a sign at the first update.
    ``free`` (n,) bool: only these units update, the others stay clamped to the probe
    (pattern completion from known units); default all."""

    def cond(carry):
        _, steps, stable = carry
        return (~stable) & (steps < max_steps)

    def body(carry):
        s, steps, _ = carry
        new = hopfield_step(w, s)
        if free is not None:
            new = jnp.where(free, new, s)
        return new, steps + 1, jnp.all(new == s)

    w, s0 = jnp.asarray(w, jnp.float32), jnp.asarray(probe, jnp.float32)
    return jax.lax.while_loop(cond, body, (s0, jnp.int32(0), jnp.bool_(False)))


def hopfield_recall_batch(w, probes, *, max_steps: int = 100, free=None):
    """`hopfield_recall` of probes (B, n) in one call: (states (B, n), steps (B,), stable (B,))."""
    recall = lambda p: hopfield_recall(w, p, max_steps=max_steps, free=free)
    return jax.vmap(recall)(jnp.asarray(probes, jnp.float32))


def hopfield_async_sweep(w, s, key):
    """Update every unit once, one at a time, in a random order drawn from ``key``.

    Returns ``(state (n,), energies (n,))``: the energy after each single-unit update,
    kept incrementally (``dE = -(s_i' - s_i) h_i``, valid because w_ii = 0), so a sweep
    costs O(n^2).
    """
    w, s = jnp.asarray(w, jnp.float32), jnp.asarray(s, jnp.float32)
    n = s.shape[-1]

    def visit(carry, i):
        s, e = carry
        h = w[i] @ s
        new = _sign(h, s[i])
        e = e - (new - s[i]) * h
        return (s.at[i].set(new), e), e

    (s, _), energies = jax.lax.scan(visit, (s, hopfield_energy(w, s)), jax.random.permutation(key, n))
    return s, energies


def hopfield_recall_async(w, probe, key, *, max_sweeps: int = 100):
    """Asynchronous recall: random-order sweeps (`hopfield_async_sweep`) until a whole sweep
    changes no unit, or ``max_sweeps``. Unlike synchronous recall it always ends in a fixed
    point (the energy falls at every change and is bounded). Returns ``(state (n,), sweeps
    int32, stable bool)``."""

    def cond(carry):
        _, sweeps, stable = carry
        return (~stable) & (sweeps < max_sweeps)

    def body(carry):
        s, sweeps, _ = carry
        new, _ = hopfield_async_sweep(w, s, jax.random.fold_in(key, sweeps))
        return new, sweeps + 1, jnp.all(new == s)

    w, s0 = jnp.asarray(w, jnp.float32), jnp.asarray(probe, jnp.float32)
    return jax.lax.while_loop(cond, body, (s0, jnp.int32(0), jnp.bool_(False)))


def flip_bits(patterns, fraction: float, key):
    """Bipolar patterns (P, n) with ``round(fraction * n)`` distinct units of each flipped
    (noisy probes for recall experiments)."""
    p, n = patterns.shape
    k = int(round(fraction * n))
    ranks = jnp.argsort(jax.random.uniform(key, (p, n)), axis=1).argsort(axis=1)
    return jnp.where(ranks < k, -patterns, patterns)


class Hopfield(nn.Module):
    """Hopfield net over the binarised input plus ``num_classes`` label units.

    Neurons: n = prod(input_shape) pixel units then C label units (one-of-C bipolar code:
    +1 for the class, -1 for the others); weights (n + C, n + C) in params["weights"].
    Storing an example is the seed's Hebbian sum over the pattern [x, code(label)]. Recall
    starts from [x, 0] (labels unknown), runs synchronous updates until stable or
    ``max_steps``; the class scores (B, C) are the label units' local fields in the
    recalled state. With ``clamp_input`` the pixel units stay fixed to the probe and only
    the label units update (pattern completion): a memory holding far more than ~0.15n
    examples, as a whole training set is, otherwise drifts to one spurious attractor for
    every probe. With C = 0 it is the plain associative memory (scores (B, 0)).
    """

    input_shape: tuple[int, ...] = (8, 8, 1)
    num_classes: int = 10
    threshold: float = 0.5
    scale: bool = False
    max_steps: int = 10
    clamp_input: bool = True

    def __post_init__(self):
        _check_classes(self.num_classes, 0)
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")
        super().__post_init__()

    def setup(self):
        size = _size(self.input_shape) + self.num_classes
        self.weights = self.param("weights", nn.initializers.zeros, (size, size))

    def probe(self, x):
        """x (B, *input_shape) -> the recall's start [bipolar(x), 0...0]: (B, n + C)."""
        check_input(x, self.input_shape, model=f"Hopfield(input_shape={tuple(self.input_shape)})")
        xb = to_bipolar(_flat(x, self.input_shape), self.threshold)
        return jnp.concatenate([xb, jnp.zeros(xb.shape[:-1] + (self.num_classes,), xb.dtype)], -1)

    def recall(self, x):
        """Synchronous recall: (states (B, n + C), steps (B,), stable (B,))."""
        n = _size(self.input_shape)
        free = jnp.arange(n + self.num_classes) >= n if self.clamp_input else None
        return hopfield_recall_batch(self.weights, self.probe(x), max_steps=self.max_steps, free=free)

    def __call__(self, x, train: bool = False):
        states, _, _ = self.recall(x)
        n = _size(self.input_shape)
        return states @ self.weights[:, n:]


def hopfield_rule(variables, x, t, *, mask=None, model):
    """Hebbian storage of each unmasked example: ``W += sum_k [x^k, code(t^k)] [x^k,
    code(t^k)]^T`` off the diagonal (divided by the neuron count if ``model.scale``)."""
    xb = to_bipolar(_flat(jnp.asarray(x, jnp.float32), model.input_shape), model.threshold)
    patterns = jnp.concatenate([xb, 2.0 * _one_hot(t, model.num_classes) - 1.0], -1)
    w = variables["params"]["weights"]
    w = w + hebbian_weights(patterns, weights=_mask(mask, t), scale=model.scale)
    return {**variables, "params": {**variables["params"], "weights": w}}


register_model(
    "hopfield",
    Hopfield,
    family="energy",
    task="classification",
    learning="hebbian",
    learning_rule=hopfield_rule,
    paper=f"Hopfield 1982; {KHANZHINA}, Hopfield neural network; {KANG} (HN)",
    test_config={"input_shape": (6,), "num_classes": 3},
    description="Hopfield associative memory (Hebbian storage, sign units) with label units read after recall.",
)
