"""Activation functions by name (seed kang-lecture4, "Representative activation functions")."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from zoo._choices import lookup


def step(a):
    """Heaviside threshold unit: 1 if a >= 0 else 0 (Rosenblatt's perceptron)."""
    return (a >= 0).astype(a.dtype)


def sign(a):
    """Sign unit: 1 if a >= 0 else -1 (the seed's XOR network; sign(0) = +1 as on the slide)."""
    return jnp.where(a >= 0, 1.0, -1.0).astype(a.dtype)


def seed_sigmoid(a):
    """The backprop slide's activation 1 / (1 + e^a) (a sign slip for the sigmoid; DESIGN.md)."""
    return jax.nn.sigmoid(-a)


ACTIVATIONS: dict[str, Callable] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,  # slope 0.01
    "elu": jax.nn.elu,
    "gelu": jax.nn.gelu,
    "softplus": jax.nn.softplus,
    "identity": lambda a: a,
    "step": step,
    "sign": sign,
    "seed_sigmoid": seed_sigmoid,
}


def get_activation(name: str) -> Callable:
    return lookup(ACTIVATIONS, name, "activation")
