"""Greedy layer-wise pretraining (Hinton, Osindero & Teh 2006; Bengio et al. 2007; seed
kang-lecture4, "Layer-wise training": train one layer at a time, first to last, with an
unsupervised criterion, the earlier layers fixed and viewed as feature extractors).

    results = pretrain_layerwise([("autoencoder", {"hidden_sizes": (48,)}),
                                  ("autoencoder", {"hidden_sizes": (24,)})], data, epochs=20)
    init = stacked_variables(results, {"encoder_0": "hidden_{}"})
    fit("mlp", data, model_overrides={"hidden_sizes": (48, 24), "activation": "sigmoid"},
        initial_variables=init)

Any registered model with an ``encode(x)`` method serves as a layer: the autoencoders, and
the RBM of a deep belief network.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from zoo.data.base import Dataset
from zoo.train.loop import FitResult, fit


def encode(result: FitResult, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The trained layer's codes of ``x`` (N, ...) -> (N, code), in batches."""
    apply = jax.jit(lambda v, xb: result.model.apply(v, xb, method="encode"))
    return np.concatenate(
        [np.asarray(apply(result.variables, x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    )


def encoded(data: Dataset, result: FitResult, depth: int) -> Dataset:
    """``data`` with every split's inputs replaced by ``result``'s codes of them."""
    codes = {f"x_{split}": encode(result, x) for split, x, _ in data.splits()}
    return dataclasses.replace(data, name=f"{data.name}:codes{depth}", **codes)


def pretrain_layerwise(layers: Sequence[tuple[str, Mapping[str, Any]]], data: Dataset, **fit_kwargs) -> list[FitResult]:
    """Fit each ``(model name, config overrides)`` of ``layers`` with `zoo.fit` on the codes
    the layers before it give of ``data`` (the first on ``data`` itself); earlier layers stay
    fixed. ``fit_kwargs`` go to every `fit` (epochs, optimizer, ...; a ``workdir`` gets one
    subfolder per layer). Returns the layers' FitResults, first to last."""
    results = []
    workdir = fit_kwargs.pop("workdir", None)
    for depth, (name, overrides) in enumerate(layers):
        layer_dir = None if workdir is None else f"{workdir}/layer_{depth}"
        result = fit(name, data, model_overrides=dict(overrides), workdir=layer_dir, **fit_kwargs)
        results.append(result)
        if depth + 1 < len(layers):
            data = encoded(data, result, depth + 1)
    return results


def stacked_variables(results: Sequence[FitResult], rename: Mapping[str, str]) -> dict:
    """The pretrained layers as variables of one deep model, for ``fit(...,
    initial_variables=...)``: parameter ``source`` of layer ``i`` becomes ``target.format(i)``
    for each ``source: target`` of ``rename``, e.g. ``{"encoder_0": "hidden_{}"}`` puts each
    autoencoder's encoder in the MLP's hidden layer ``i``."""
    params = {}
    for i, result in enumerate(results):
        for source, target in rename.items():
            params[target.format(i)] = result.variables["params"][source]
    return {"params": params}
