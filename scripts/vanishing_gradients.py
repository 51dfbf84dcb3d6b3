"""Vanishing gradients across depth (kang-lecture4, "Gradient Vanishing/Exploding
Problem"): the norm of the loss gradient for each layer's weights of a 12 x 32 MLP at
initialisation, on 128 digits, for sigmoid units, ReLU with He weights, and batch norm
before the sigmoid (`zoo.explain.gradient_norms_per_layer`).

    python scripts/vanishing_gradients.py
"""

from __future__ import annotations

import jax

import zoo

NETS = {
    "sigmoid": {"activation": "sigmoid"},
    "ReLU + He": {"activation": "relu", "kernel_init": "he_normal"},
    "sigmoid + batch norm": {"activation": "sigmoid", "batch_norm": True},
}
LAYERS = ("hidden_0", "hidden_3", "hidden_7", "hidden_11", "out")


def gradient_norms(depth: int = 12, width: int = 32, examples: int = 128) -> dict[str, dict[str, float]]:
    """{net label: {layer: ||dLoss/dW||}} at initialisation (key 0)."""
    digits = zoo.data.load_dataset("digits")
    x, y = digits.x_train[:examples], digits.y_train[:examples]
    out = {}
    for label, config in NETS.items():
        model = zoo.create_model("mlp", hidden_sizes=(width,) * depth, **config)
        norms = zoo.explain.gradient_norms_per_layer(model, model.init(jax.random.PRNGKey(0), x), x, y)
        out[label] = {k: float(v) for k, v in norms.items()}
    return out


def main() -> dict:
    norms = gradient_norms()
    print("| 12 x 32 MLP at init | " + " | ".join(LAYERS) + " | first / last hidden |")
    print("|---|" + "---|" * (len(LAYERS) + 1))
    for label, by_layer in norms.items():
        cells = " | ".join(f"{by_layer[k]:.1e}" for k in LAYERS)
        print(f"| {label} | {cells} | {by_layer['hidden_0'] / by_layer['hidden_11']:.1e} |")
    return norms


if __name__ == "__main__":
    main()
