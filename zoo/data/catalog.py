"""The table of datasets: name -> loader, and `load_dataset` to call one by name."""

from __future__ import annotations

import inspect
import operator
import os
import types
from typing import Callable, Mapping

from zoo._choices import lookup
from zoo.nn.checks import check_like_default
from zoo.data import (
    imdb,
    sentiment,
    seq2seq_tasks,
    sequence_tasks,
    shapes,
    sources,
    synthetic,
    ujiindoorloc,
    vqa_scenes,
)
from zoo.data.base import Dataset

# Each loader's docstring describes its data: source, shapes, split, preprocessing.
# Loaders take keyword-only options; `seed` where the split or the data are drawn at
# random, `data_dir` where they read files.
DATASETS: Mapping[str, Callable[..., Dataset]] = types.MappingProxyType(
    {
        "digits": sources.load_digits,
        "diabetes": sources.load_diabetes,
        "breast_cancer": sources.load_breast_cancer,
        "xor": synthetic.xor,
        "circles": synthetic.circles,
        "mnist": sources.load_mnist,
        "fashion_mnist": sources.load_fashion_mnist,
        "cifar10": sources.load_cifar10,
        "cifar100": sources.load_cifar100,
        "svhn_cropped": sources.load_svhn_cropped,
        "sentiment": sentiment.sentiment,
        "imdb_reviews": imdb.load_imdb_reviews,
        "adding_problem": sequence_tasks.adding_problem,
        "moving_digits": sequence_tasks.moving_digits,
        "copy": seq2seq_tasks.copy_task,
        "reverse": seq2seq_tasks.reverse_task,
        "dates": seq2seq_tasks.dates,
        "long_word": seq2seq_tasks.long_word,
        "shapes": shapes.shapes,
        "salient_scenes": shapes.salient_scenes,
        "ujiindoorloc": ujiindoorloc.load_ujiindoorloc,
        "wifi_fingerprints": ujiindoorloc.wifi_fingerprints,
        "vqa_scenes": vqa_scenes.vqa_scenes,
        "caption_scenes": vqa_scenes.caption_scenes,
    }
)


def list_datasets() -> list[str]:
    """Names accepted by `load_dataset`, sorted."""
    return sorted(DATASETS)


def describe_dataset(name: str) -> str:
    """The loader's documentation of dataset ``name``: source, shapes, split, options."""
    loader = lookup(DATASETS, name, "dataset")
    return f"{name}{inspect.signature(loader)}\n\n{inspect.getdoc(loader)}"


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    image_size: int | tuple[int, int] | None = None,
    **kwargs,
) -> Dataset:
    """Load dataset ``name`` (see `list_datasets`) into memory as NumPy arrays.

    ``seed`` fixes every random choice (train/test split, synthetic draws); datasets with
    an official split ignore it. ``data_dir`` is a folder with the dataset's files, for
    the datasets that read files. Other keyword arguments are the loader's options,
    e.g. ``load_dataset("circles", noise=0.1)``; `describe_dataset` lists them.
    ``image_size`` (``S`` or ``(H, W)``) resizes the images of any image dataset, e.g.
    ``load_dataset("digits", image_size=28)`` for LeNet-5 (see `Dataset.resized`).

    Raises ValueError for an unknown name (with near matches), an unknown option or a
    bad value, and DatasetNotFoundError (a FileNotFoundError) when files are missing.
    """
    loader = lookup(DATASETS, name, "dataset")
    parameters = inspect.signature(loader).parameters
    options = sorted(set(parameters) - {"seed", "data_dir"})
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        accepted = ", ".join(options) if options else "none"
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for dataset {name!r}; its options: {accepted}")
    for key, value in kwargs.items():
        default = parameters[key].default
        if default is not inspect.Parameter.empty:
            kwargs[key] = check_like_default(f"dataset {name!r}: {key}", value, default)
    try:
        valid_seed = operator.index(seed) >= 0
    except TypeError:
        valid_seed = False
    if not valid_seed:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if "seed" in parameters:
        kwargs["seed"] = operator.index(seed)
    if data_dir is not None:
        if "data_dir" not in parameters:
            raise ValueError(f"dataset {name!r} is built in and reads no files; leave data_dir unset")
        kwargs["data_dir"] = data_dir
    try:
        data = loader(**kwargs)
    except TypeError as e:  # a value of a kind the loader cannot use
        raise ValueError(f"dataset {name!r}: bad option value ({e})") from e
    if image_size is not None:
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        data = data.resized(height, width)
    return data
