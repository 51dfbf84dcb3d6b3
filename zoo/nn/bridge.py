"""NNX users get any zoo model through Flax's Linen -> NNX bridge."""

from __future__ import annotations


def to_nnx(model, sample_input, *, seed: int = 0):
    """Wrap a zoo (Linen) ``model`` as an initialised ``flax.nnx`` module.

    ``sample_input``: a batch of the model's input, e.g. ``jnp.zeros((1, *input_shape))``.
    The result is called as ``nnx_model(x)``, or in training as
    ``nnx_model(x, train=True, mutable=["batch_stats"])`` (dropout draws from its "dropout"
    stream; batch statistics update in place).
    """
    from flax import nnx

    wrapped = nnx.bridge.ToNNX(model, rngs=nnx.Rngs(seed, dropout=seed + 1, sample=seed + 2, noise=seed + 3))
    nnx.bridge.lazy_init(wrapped, sample_input)
    return wrapped
