"""Stage-wise training over resolution (seed: surf2019-cha-rnn-hierarchical-b, "Hierarchical
Deep Convolution Neural Network: give subsampling image step by step"): train on images
subsampled by 4, then 2, then at full size, each stage starting from the weights of the one
before. The model must not depend on the image size (a convolutional net with global
pooling, e.g. the CIFAR ResNets): the same variables serve every resolution.

    results = train_stagewise("resnet20", data, factors=(4, 2, 1), epochs=(4, 4, 4))
"""

from __future__ import annotations

from typing import Sequence

from zoo.data.base import Dataset
from zoo.train.loop import FitResult, fit


def train_stagewise(
    model: str, data: Dataset, *, factors: Sequence[int] = (4, 2, 1), epochs: Sequence[int] | int = 5, **fit_kwargs
) -> list[FitResult]:
    """Fit ``model`` on ``data`` subsampled by each of ``factors`` in turn (1 = full size),
    carrying all variables (weights and batch-norm statistics) from stage to stage.
    ``epochs``: per stage, or one number for every stage. Returns each stage's FitResult;
    the last one's test metrics are at full resolution when ``factors`` ends with 1."""
    if len(data.input_shape) != 3:
        raise ValueError(f"stage-wise training subsamples images (H, W, C); {data.name!r} has {data.input_shape}")
    epochs = [epochs] * len(factors) if isinstance(epochs, int) else list(epochs)
    if len(epochs) != len(factors):
        raise ValueError(f"{len(factors)} stages but {len(epochs)} epoch counts")
    height, width = data.input_shape[:2]
    overrides = dict(fit_kwargs.pop("model_overrides", {}))
    results, variables = [], None
    for factor, stage_epochs in zip(factors, epochs):
        if int(factor) < 1 or height % factor or width % factor:
            raise ValueError(f"subsampling factor {factor} must be >= 1 and divide the image size {height}x{width}")
        stage = data if factor == 1 else data.resized(height // factor, width // factor)
        result = fit(
            model, stage, model_overrides=overrides, initial_variables=variables, epochs=stage_epochs, **fit_kwargs
        )
        results.append(result)
        variables = result.variables
    return results
