"""Dense layers with the zoo's CNN-head initialisation."""

from __future__ import annotations

import flax.linen as nn

from zoo.nn.initializers import dense_init, zeros_init


def dense(features: int, **kw):
    """nn.Dense with N(0, 1/fan_in) kernel and zero bias: (..., D) -> (..., features)."""
    return nn.Dense(features, kernel_init=dense_init, bias_init=zeros_init, **kw)


def dropout_relu_head(h, hidden, output, dropout, train: bool):
    """The AlexNet/VGG classifier: each of the ``hidden`` Dense layers followed by ReLU and
    ``dropout`` (active when ``train``), then ``output``: (B, D) -> (B, classes)."""
    for layer in hidden:
        h = dropout(nn.relu(layer(h)), deterministic=not train)
    return output(h)
