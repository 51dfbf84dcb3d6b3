"""Intermediate features of any zoo model, as timm's ``features_only`` / ``forward_intermediates``
and Keras' ``include_top=False`` give them, read with Flax's ``capture_intermediates``: no
model file declares anything.

    maps = zoo.features(model, variables, x)                      # the last map at each resolution
    maps = zoo.features(model, variables, x, layers=["conv1", -1])  # by name or index
    zoo.feature_info(model, variables, x)                        # [(name, shape), ...] to choose from

A candidate is the output of a submodule's ``__call__`` that keeps the batch axis and has
at least one axis between batch and channels: a convolution's ``(B, H, W, C)`` map, a
recurrent layer's per-step hidden states ``(B, T, H)``, a ConvLSTM's ``(B, T, H, W, C)``.
Candidates come in the order the calls finish, each once (a module that returns its child's
output adds nothing). The name is the module's path, ``layers_1_0/conv2``, with ``[k]`` for
its k-th call or the k-th array of a tuple output when there are several.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax

from zoo._choices import listing

__all__ = ["feature_info", "features"]


def _intermediates(model, variables, inputs, kwargs) -> tuple[list[str], list[jax.Array]]:
    """Every candidate feature of one forward pass: (names, arrays), in call order."""
    finished: list[tuple[str, ...]] = []

    def record(module, method_name: str) -> bool:
        # Flax asks after each method call returns, so the list is in the order calls finish.
        keep = method_name == "__call__" and bool(module.path)
        if keep:
            finished.append(tuple(module.path))
        return keep

    _, state = model.apply(variables, *inputs, capture_intermediates=record, mutable=["intermediates"], **kwargs)
    captured = state["intermediates"]
    batch = jax.tree.leaves(inputs)[0].shape[0]
    calls: dict[tuple[str, ...], int] = {}
    names, arrays, seen = [], [], set()
    for path in finished:
        scope = captured
        for key in path:
            scope = scope[key]
        outputs = scope["__call__"]
        k = calls.get(path, 0)
        calls[path] = k + 1
        leaves = [leaf for leaf in jax.tree.leaves(outputs[k]) if hasattr(leaf, "shape")]
        for i, leaf in enumerate(leaves):
            if leaf.ndim < 3 or leaf.shape[0] != batch or id(leaf) in seen:
                continue
            seen.add(id(leaf))
            index = [n for n, many in ((k, len(outputs) > 1), (i, len(leaves) > 1)) if many]
            names.append("/".join(path) + "".join(f"[{n}]" for n in index))
            arrays.append(leaf)
    return names, arrays


def _stages(arrays) -> list[int]:
    """Indices of the last candidate at each resolution (the axes between batch and
    channels), in order: a CNN's stage outputs, a recurrent net's last layer."""
    last = {}
    for i, a in enumerate(arrays):
        last[tuple(a.shape[1:-1])] = i
    return sorted(last.values())


def features(model, variables, *inputs, layers: Sequence[str | int] | str | None = None, **kwargs) -> list[jax.Array]:
    """Intermediate feature maps of ``model.apply(variables, *inputs, **kwargs)``.

    ``layers``: ``None`` (default) the last map at each resolution, in order (timm's
    ``features_only`` stages: ``(B, H_i, W_i, C_i)`` for a CNN; for a recurrent net the last
    layer's per-step hidden states ``(B, T, H)``); ``"all"`` every candidate; or a list of
    candidate names and indices (negative from the end), as `feature_info` lists them.
    ``kwargs`` go to ``apply`` (e.g. ``train=False``). Pure and jit-able; ValueError for an
    unknown name or index.
    """
    names, arrays = _intermediates(model, variables, inputs, kwargs)
    if not arrays:
        raise ValueError(
            f"{type(model).__name__} has no intermediate maps (no submodule output with a spatial or time axis)"
        )
    if layers is None:
        return [arrays[i] for i in _stages(arrays)]
    if isinstance(layers, str):
        if layers != "all":
            raise ValueError(f"layers must be None, 'all' or a list of names and indices, got {layers!r}")
        return list(arrays)
    chosen = []
    for layer in layers:
        if isinstance(layer, int) and -len(arrays) <= layer < len(arrays):
            chosen.append(arrays[layer])
        elif isinstance(layer, str) and layer in names:
            chosen.append(arrays[names.index(layer)])
        else:
            raise ValueError(
                f"unknown layer {layer!r} of {type(model).__name__}: give a name or an index "
                f"(0 .. {len(arrays) - 1}) of {listing(names, limit=40)}"
            )
    return chosen


def feature_info(model, variables, *inputs, **kwargs) -> list[tuple[str, tuple[int, ...]]]:
    """Every candidate `features` can return, ``[(name, shape), ...]`` in order (shapes
    only: the forward pass runs under ``jax.eval_shape``)."""
    names = []

    def shapes(variables, *inputs):
        found, arrays = _intermediates(model, variables, inputs, kwargs)
        names.extend(found)
        return arrays

    arrays = jax.eval_shape(shapes, variables, *inputs)
    return [(n, tuple(a.shape)) for n, a in zip(names, arrays)]
