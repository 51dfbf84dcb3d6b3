"""Shared building blocks: initializers, activations, input checks."""

from zoo.nn.activations import ACTIVATIONS, get_activation
from zoo.nn.checks import check_input
from zoo.nn.initializers import get_initializer, list_initializers

__all__ = ["ACTIVATIONS", "get_activation", "check_input", "get_initializer", "list_initializers"]

from zoo.nn.bridge import to_nnx  # noqa: E402

__all__ += ["to_nnx"]
