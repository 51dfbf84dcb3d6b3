"""Building and floor from a Wi-Fi fingerprint: Kim, Lee & Huang 2018, "A scalable deep
neural network architecture for multi-building and multi-floor indoor localization based
on Wi-Fi fingerprinting" (Big Data Analytics 3:4), and the hierarchical variant of the
seed (surf2019-cha-rnn-hierarchical-b, "Hierarchical Auxiliary Learning": shared layers,
building-independent layers, one set of floor-independent layers per building).

Both models encode the 520 strengths with a stacked-autoencoder encoder 520-256-128-64
(parameters ``encoder_0..2``, pretrainable layer by layer with
`zoo.train.pretrain.pretrain_layerwise` and `stacked_variables(results, {"encoder_0":
"encoder_{}"})`), then:

- ``building_floor_dnn`` (the paper): a classifier 64-128-128 with dropout and one
  multi-label output layer, the building one-hot and the floor one-hot as sigmoid units
  (the paper's third part, the location label, is not modelled);
- ``building_floor_hierarchical``: a building branch (128-128, softmax over buildings) and
  per building a floor branch of its own (128-128, softmax over that building's floors),
  every branch on the shared code.

Output (the "building_floor" task of `zoo.tasks`): ``building_logits`` (B, NB),
``floor_logits`` (B, NB, F) (row b: building b's floor scores; the multi-label model's
one floor classifier repeated; floors a building lacks at -1e9), ``building_of`` /
``floor_of`` (C,), ``multilabel`` (), and ``logits`` (B, C): the joint score of each
building-floor class, ``log p(building) + log p(floor)`` of the heads (sigmoid or
softmax probabilities).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoo.nn import check_input, get_activation
from zoo.registry import register_model

PAPER = (
    "Kim, Lee & Huang 2018, A scalable deep neural network architecture for multi-building and "
    "multi-floor indoor localization based on Wi-Fi fingerprinting"
)
SEED = "surf2019-cha-rnn-hierarchical-b (Cha), shared / building / per-floor independent layers"
HEADS = ("multilabel", "hierarchical")
_ABSENT_FLOOR = -1e9  # the score of a floor the building does not have: never predicted


class PerBuildingDense(nn.Module):
    """One dense layer per building, applied at once: (B, D) (every building reads the same
    input) or (B, NB, D) -> (B, NB, features)."""

    buildings: int
    features: int

    @nn.compact
    def __call__(self, h):
        d = h.shape[-1]
        kernel = self.param(
            "kernel", nn.initializers.xavier_uniform(batch_axis=(0,)), (self.buildings, d, self.features)
        )
        bias = self.param("bias", nn.initializers.zeros, (self.buildings, self.features))
        if h.ndim == 2:
            return jnp.einsum("bd,kdf->bkf", h, kernel) + bias
        return jnp.einsum("bkd,kdf->bkf", h, kernel) + bias


class BuildingFloorNet(nn.Module):
    """Fingerprint (B, 520) -> building and floor scores; see the module docstring.

    ``floors_per_building``: the floors of each building (UJIIndoorLoc: 4, 4, 5), which fix
    the heads and the building-floor classes (``num_classes`` must be their sum; the
    datasets of `zoo.data.ujiindoorloc` set both). ``heads``: "multilabel" (the paper) or
    "hierarchical". ``encoder_sizes``: the stacked-autoencoder encoder; ``hidden_sizes``:
    each classifier branch; ``dropout_rate`` after every classifier hidden layer.
    """

    input_shape: tuple[int, ...] = (520,)
    num_classes: int = 13
    floors_per_building: tuple[int, ...] = (4, 4, 5)
    heads: str = "multilabel"
    encoder_sizes: tuple[int, ...] = (256, 128, 64)
    hidden_sizes: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    dropout_rate: float = 0.2

    def __post_init__(self):
        if self.heads not in HEADS:
            raise ValueError(f"heads must be one of {HEADS}, got {self.heads!r}")
        if not self.floors_per_building or any(int(f) < 1 for f in self.floors_per_building):
            raise ValueError(f"floors_per_building must be positive floor counts, got {self.floors_per_building!r}")
        if self.num_classes != sum(self.floors_per_building):
            raise ValueError(
                f"num_classes ({self.num_classes}) must be the number of building-floors, "
                f"sum(floors_per_building) = {sum(self.floors_per_building)}"
            )
        if any(int(n) < 1 for n in (*self.encoder_sizes, *self.hidden_sizes)) or not self.encoder_sizes:
            raise ValueError(f"layer sizes must be positive, got {self.encoder_sizes} and {self.hidden_sizes}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")
        get_activation(self.activation)
        super().__post_init__()

    def setup(self):
        counts = np.asarray(self.floors_per_building)
        buildings, floors = len(counts), int(counts.max())
        self.building_of = np.repeat(np.arange(buildings), counts)  # (C,)
        self.floor_of = np.concatenate([np.arange(c) for c in counts])  # (C,)
        self.floor_exists = np.arange(floors)[None, :] < counts[:, None]  # (NB, F)
        self.encoder = [nn.Dense(int(n)) for n in self.encoder_sizes]
        self.dropout = nn.Dropout(self.dropout_rate)
        if self.heads == "multilabel":
            self.classifier = [nn.Dense(int(n)) for n in self.hidden_sizes]
            self.out = nn.Dense(buildings + floors)
        else:
            self.building_branch = [nn.Dense(int(n)) for n in self.hidden_sizes]
            self.building_out = nn.Dense(buildings)
            self.floor_branches = [PerBuildingDense(buildings, int(n)) for n in self.hidden_sizes]
            self.floor_out = PerBuildingDense(buildings, floors)

    def forward_features(self, x, train: bool = False):
        """(B, 520) -> the stacked-autoencoder code (B, encoder_sizes[-1])."""
        check_input(x, self.input_shape, model=f"BuildingFloorNet(input_shape={tuple(self.input_shape)})")
        h = x.reshape(x.shape[0], -1)
        for layer in self.encoder:
            h = get_activation(self.activation)(layer(h))
        return h

    def _branch(self, layers, h, train: bool):
        for layer in layers:
            h = self.dropout(get_activation(self.activation)(layer(h)), deterministic=not train)
        return h

    def head(self, h, train: bool = False):
        """The code (B, D) -> the outputs of the module docstring."""
        buildings = len(self.floors_per_building)
        if self.heads == "multilabel":
            scores = self.out(self._branch(self.classifier, h, train))
            building_logits, floor_logits = scores[:, :buildings], scores[:, buildings:]
            floor_logits = jnp.broadcast_to(floor_logits[:, None, :], (h.shape[0], buildings, floor_logits.shape[-1]))
            log_building, log_floor = jax.nn.log_sigmoid(building_logits), jax.nn.log_sigmoid(floor_logits)
        else:
            building_logits = self.building_out(self._branch(self.building_branch, h, train))
            floor_logits = self.floor_out(self._branch(self.floor_branches, h, train))
            floor_logits = jnp.where(self.floor_exists, floor_logits, _ABSENT_FLOOR)
            log_building, log_floor = jax.nn.log_softmax(building_logits), jax.nn.log_softmax(floor_logits)
        joint = log_building[:, self.building_of] + log_floor[:, self.building_of, self.floor_of]
        return {
            "logits": joint,
            "building_logits": building_logits,
            "floor_logits": floor_logits,
            "building_of": jnp.asarray(self.building_of),
            "floor_of": jnp.asarray(self.floor_of),
            "multilabel": jnp.asarray(self.heads == "multilabel"),
        }

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train), train)


_TEST = {
    "input_shape": (6,),
    "encoder_sizes": (5, 4),
    "hidden_sizes": (4,),
    "floors_per_building": (2, 3),
    "num_classes": 5,
}

register_model(
    "building_floor_dnn",
    BuildingFloorNet,
    family="hierarchical",
    task="building_floor",
    paper=PAPER,
    defaults={"heads": "multilabel"},
    test_config=_TEST,
    description="Stacked-autoencoder encoder and a multi-label building / floor classifier (sigmoid one-hots).",
)
register_model(
    "building_floor_hierarchical",
    BuildingFloorNet,
    family="hierarchical",
    task="building_floor",
    paper=f"{SEED}; {PAPER}",
    defaults={"heads": "hierarchical"},
    test_config=_TEST,
    description="Shared stacked-autoencoder layers, a building branch and one floor branch per building.",
)
