"""Hierarchical auxiliary learning (HAL): a classifier that also predicts a superclass and
feeds those scores to its final layer.

Seed: surf2019-cha-rnn-hierarchical-b, "Hierarchical Auxiliary Learning": superclass cases
per dataset (the table below, exactly as the seed gives it, with its "deep" read as
"deer") and the error table (MNIST baseline 0.93 vs 0.43 with Case1). The published
description places an auxiliary block between the last block and the classifier and feeds
its superclass scores to the final classifier (DESIGN.md): pooled features ``h`` ->
auxiliary logits ``a = Dense(S)(h)``; final logits ``Dense([h, softmax(a)])``; loss
``CE(fine) + aux_weight * CE(superclass)`` (the "hierarchical_classification" task of
`zoo.tasks`, which reads the superclass of each label from the model's output).
"""

from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoo.nn import check_input
from zoo.registry import create_model, get_spec, register_model

SEED = "surf2019-cha-rnn-hierarchical-b (Cha, Hierarchical architectures), Hierarchical Auxiliary Learning"

DIGIT_CASES: Mapping[str, tuple[tuple[int, ...], ...]] = {
    "case1": ((5, 6, 7, 8, 9), (0, 1, 2, 3, 4)),  # >= 5
    "case2": ((1, 3, 5, 7, 9), (0, 2, 4, 6, 8)),  # mod 2
    "case3": ((2, 3, 5, 7), (0, 1, 4, 6, 8, 9)),  # prime
    "case4": ((0, 6, 8, 9), (2, 3, 5), (1, 4, 7)),  # circle / curve / straight line
}
# CIFAR-10: airplane, car, bird, cat, deer, dog, frog, horse, ship, truck.
CIFAR10_CASES: Mapping[str, tuple[tuple[int, ...], ...]] = {
    "case1": ((5, 6, 7, 8, 9), (0, 1, 2, 3, 4)),  # none (the digits' >= 5)
    "case2": ((1, 3, 5, 7, 9), (0, 2, 4, 6, 8)),  # none (odd / even)
    "case3": ((2, 3, 4, 5, 6, 7), (0, 1, 8, 9)),  # animal / transportation
    "case4": ((1, 9), (3, 5), (4, 7), (0, 8), (2, 6)),  # car / small animal / big animal / craft / others
}
# Not in the seed: Fashion-MNIST (T-shirt/top, trouser, pullover, dress, coat, sandal,
# shirt, sneaker, bag, ankle boot) grouped by what the garment is for.
FASHION_CASES: Mapping[str, tuple[tuple[int, ...], ...]] = {
    "semantic": ((0, 2, 4, 6), (1, 3), (5, 7, 9), (8,))  # tops / bottoms and dresses / footwear / bags
}
SUPERCLASS_CASES: Mapping[str, Mapping[str, tuple[tuple[int, ...], ...]]] = {
    "mnist": DIGIT_CASES,
    "svhn": DIGIT_CASES,
    "digits": DIGIT_CASES,
    "cifar10": CIFAR10_CASES,
    "fashion_mnist": FASHION_CASES,
}


def superclass_of(table: str, case: str, num_classes: int = 10) -> np.ndarray:
    """``(num_classes,)`` int32: the superclass of each class in ``case`` of ``table`` (a
    key of `SUPERCLASS_CASES`). Raises ValueError unless every class is in exactly one
    superclass."""
    if table not in SUPERCLASS_CASES:
        raise ValueError(f"no superclass table for {table!r}; tables: {sorted(SUPERCLASS_CASES)}")
    cases = SUPERCLASS_CASES[table]
    if case not in cases:
        raise ValueError(f"superclass table {table!r} has no case {case!r}; cases: {sorted(cases)}")
    covered = max(c for group in cases[case] for c in group) + 1
    if covered > num_classes:
        raise ValueError(
            f"superclass case {table} {case} covers classes 0 to {covered - 1}, but the model has {num_classes} classes"
        )
    mapping = np.full(num_classes, -1, np.int32)
    for group, classes in enumerate(cases[case]):
        for c in classes:
            if mapping[c] != -1:
                raise ValueError(f"{table} {case}: class {c} is in two superclasses")
            mapping[c] = group
    if (mapping < 0).any():
        raise ValueError(f"{table} {case}: classes {np.flatnonzero(mapping < 0).tolist()} have no superclass")
    return mapping


def coarse_categories(confusion, num_groups: int, *, seed: int = 0) -> np.ndarray:
    """HD-CNN's coarse categories (Yan et al. 2015, section 4.1): classes a classifier
    confuses with each other share a superclass. ``confusion`` (C, C): counts or rates,
    row = true class, column = predicted; its symmetrised ``(F + F^T) / 2`` is the
    affinity of spectral clustering (scikit-learn ``SpectralClustering``,
    ``affinity="precomputed"``) into ``num_groups`` groups. Returns ``(C,)`` int32 in
    `superclass_of`'s form, groups numbered in order of their smallest class, for
    ``create_model("hdcnn", superclass_map=tuple(...))``."""
    from sklearn.cluster import SpectralClustering

    f = np.asarray(confusion, np.float64)
    if f.ndim != 2 or f.shape[0] != f.shape[1] or (f < 0).any() or not np.isfinite(f).all():
        raise ValueError(f"confusion must be a square matrix of non-negative counts, got shape {f.shape}")
    if not 2 <= int(num_groups) < f.shape[0]:
        raise ValueError(f"num_groups must be in [2, {f.shape[0]}) for {f.shape[0]} classes, got {num_groups}")
    affinity = (f + f.T) / 2
    labels = SpectralClustering(int(num_groups), affinity="precomputed", random_state=seed).fit_predict(affinity)
    first_class = {group: np.flatnonzero(labels == group)[0] for group in np.unique(labels)}
    order = {group: rank for rank, group in enumerate(sorted(first_class, key=first_class.get))}
    return np.array([order[g] for g in labels], np.int32)


def _mapping(table: str, case: str, num_classes: int, superclass_map: tuple) -> np.ndarray:
    """The superclass of each class: ``superclass_map`` when given, else `superclass_of`."""
    if not superclass_map:
        return superclass_of(table, case, num_classes)
    if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in superclass_map):
        raise ValueError(f"superclass_map must hold integer superclasses, got {tuple(superclass_map)}")
    mapping = np.asarray(superclass_map, np.int32)
    if mapping.shape != (num_classes,) or sorted(set(mapping.tolist())) != list(range(mapping.max() + 1)):
        raise ValueError(
            f"superclass_map must give each of the {num_classes} classes a superclass 0..K-1 "
            f"(every superclass used), got {tuple(superclass_map)}"
        )
    return mapping


class HAL(nn.Module):
    """Any registered backbone's ``forward_features`` -> auxiliary superclass head -> final
    classifier on the features and the auxiliary scores: (B, *input_shape) ->
    ``{"logits": (B, num_classes), "aux_logits": (B, S), "superclass_of": (num_classes,),
    "aux_weight": ()}``.

    ``backbone``: a registered model name (``backbone_config``: its overrides as
    ``((key, value), ...)``); ``superclasses``/``case``: the superclass table and case
    (`SUPERCLASS_CASES`), or ``superclass_map`` (each class's superclass, e.g. from
    `coarse_categories`) in their place; ``fusion``: "softmax" (the scores as
    probabilities, the seed's reading) or "logits"; ``aux_weight``: lambda of the
    superclass loss.
    """

    input_shape: tuple[int, ...] = (8, 8, 1)
    num_classes: int = 10
    backbone: str = "mlp"
    backbone_config: tuple = ()
    superclasses: str = "digits"
    case: str = "case1"
    superclass_map: tuple[int, ...] = ()
    fusion: str = "softmax"
    aux_weight: float = 1.0

    def __post_init__(self):
        get_spec(self.backbone)
        _mapping(self.superclasses, self.case, self.num_classes, self.superclass_map)
        if self.fusion not in ("softmax", "logits"):
            raise ValueError(f"fusion must be 'softmax' or 'logits', got {self.fusion!r}")
        if not self.aux_weight >= 0:
            raise ValueError(f"aux_weight must be >= 0, got {self.aux_weight}")
        super().__post_init__()

    def setup(self):
        overrides: dict[str, Any] = {**dict(self.backbone_config), "input_shape": tuple(self.input_shape)}
        self.features = create_model(self.backbone, **overrides)
        self.mapping = _mapping(self.superclasses, self.case, self.num_classes, self.superclass_map)
        self.aux = nn.Dense(int(self.mapping.max()) + 1)
        self.classifier = nn.Dense(self.num_classes)

    def forward_features(self, x, train: bool = False):
        """(B, *input_shape) -> the backbone's pooled features (B, D)."""
        check_input(x, self.input_shape, model=f"HAL(input_shape={tuple(self.input_shape)})")
        return self.features.forward_features(x, train)

    def head(self, h, train: bool = False):
        """(B, D) -> the auxiliary superclass logits and the final logits on [h, scores]."""
        aux = self.aux(h)
        scores = jax.nn.softmax(aux) if self.fusion == "softmax" else aux
        return {
            "logits": self.classifier(jnp.concatenate([h, scores], -1)),
            "aux_logits": aux,
            "superclass_of": jnp.asarray(self.mapping),
            "aux_weight": jnp.asarray(self.aux_weight, jnp.float32),
        }

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train), train)


class HDCNN(nn.Module):
    """Hierarchical deep CNN (Yan et al. 2015, HD-CNN): shared layers (a registered
    backbone's ``forward_features``), a coarse classifier over the K superclasses of a case,
    and K fine classifiers; the prediction averages the fine ones by the coarse
    probabilities, ``p(j) = sum_k B_k p_k(j)``. Output: ``{"logits": log p (B, C),
    "aux_logits": coarse logits (B, K), "superclass_of", "aux_weight", "penalties":
    {"consistency": (B,)}}``: the task's loss is the negative log-likelihood of ``p`` plus
    ``aux_weight`` times the coarse cross-entropy (the coarse classifier learns the
    superclasses, as HD-CNN pretrains it) plus the coarse-category consistency term
    ``consistency_weight / 2 * sum_k (t_k - mean_i B_ik)^2`` with ``t_k`` the share of
    classes in superclass k (the paper's target proportions), computed on the batch.
    The coarse categories: a case of `SUPERCLASS_CASES` (``superclasses``, ``case``), or
    ``superclass_map``, e.g. the paper's spectral clustering of a confusion matrix
    (`coarse_categories`).
    """

    input_shape: tuple[int, ...] = (8, 8, 1)
    num_classes: int = 10
    backbone: str = "mlp"
    backbone_config: tuple = ()
    superclasses: str = "digits"
    case: str = "case4"
    superclass_map: tuple[int, ...] = ()
    aux_weight: float = 1.0
    consistency_weight: float = 1.0

    def __post_init__(self):
        get_spec(self.backbone)
        _mapping(self.superclasses, self.case, self.num_classes, self.superclass_map)
        if not (self.aux_weight >= 0 and self.consistency_weight >= 0):
            raise ValueError("aux_weight and consistency_weight must be >= 0")
        super().__post_init__()

    def setup(self):
        overrides: dict[str, Any] = {**dict(self.backbone_config), "input_shape": tuple(self.input_shape)}
        self.features = create_model(self.backbone, **overrides)
        self.mapping = _mapping(self.superclasses, self.case, self.num_classes, self.superclass_map)
        groups = int(self.mapping.max()) + 1
        self.coarse = nn.Dense(groups)
        # K fine branches as one batched layer: (D, K * C).
        self.fine = nn.Dense(groups * self.num_classes)

    def forward_features(self, x, train: bool = False):
        """(B, *input_shape) -> the shared layers' features (B, D)."""
        check_input(x, self.input_shape, model=f"HDCNN(input_shape={tuple(self.input_shape)})")
        return self.features.forward_features(x, train)

    def head(self, h, train: bool = False):
        coarse = self.coarse(h)
        groups = coarse.shape[-1]
        log_b = jax.nn.log_softmax(coarse)  # (B, K)
        log_p_k = jax.nn.log_softmax(self.fine(h).reshape(h.shape[0], groups, self.num_classes))  # (B, K, C)
        log_p = jax.nn.logsumexp(log_b[..., None] + log_p_k, axis=1)  # log sum_k B_k p_k(j)
        share = jnp.asarray(np.bincount(self.mapping, minlength=groups) / self.num_classes, jnp.float32)
        consistency = 0.5 * self.consistency_weight * jnp.sum((share - jnp.mean(jnp.exp(log_b), 0)) ** 2)
        return {
            "logits": log_p,
            "aux_logits": coarse,
            "superclass_of": jnp.asarray(self.mapping),
            "aux_weight": jnp.asarray(self.aux_weight, jnp.float32),
            "penalties": {"consistency": jnp.full(h.shape[:1], consistency)},
        }

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train), train)


register_model(
    "hdcnn",
    HDCNN,
    family="hierarchical",
    task="hierarchical_classification",
    paper="Yan et al. 2015, HD-CNN: hierarchical deep convolutional neural networks; " + SEED.split(",")[0],
    test_config={"backbone_config": (("hidden_sizes", (8,)),), "input_shape": (4,)},
    description="HD-CNN: coarse classifier, one fine classifier per superclass, probabilistic averaging.",
)

register_model(
    "hal",
    HAL,
    family="hierarchical",
    task="hierarchical_classification",
    paper=f"{SEED}; auxiliary block between the last block and the classifier",
    test_config={"backbone_config": (("hidden_sizes", (8,)),), "input_shape": (4,)},
    description="Hierarchical auxiliary learning: a superclass head whose scores feed the final classifier.",
)
