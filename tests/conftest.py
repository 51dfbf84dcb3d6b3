"""Shared test helpers, imported by the test files as ``from conftest import ...``.

Tests that need an optional package or installed data call ``require(...)``: on a
user's machine they skip with the reason; under CI (``CI=true``) they fail, because
CI installs everything the suite reads.
"""

import importlib.util
import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# train.py and `python -m zoo.bench`, which many tests run in this process, turn on the
# persistent compilation cache and tune the allocator (zoo.runtime); the suite keeps its
# process as it is and writes nothing under ~/.cache. tests/test_runtime_cache.py sets
# its own.
os.environ.setdefault("ZOO_COMPILATION_CACHE", "0")
os.environ.setdefault("ZOO_TUNE_CPU", "0")


def require(condition: bool, reason: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true but a requirement is missing: {reason}")
    pytest.skip(reason)


def require_module(name: str):
    """Import and return module ``name``, or skip (fail under CI) when it is absent."""
    require(importlib.util.find_spec(name) is not None, f"package {name!r} is not installed")
    return importlib.import_module(name)


def fast_compile(name: str) -> dict:
    """XLA's convolutions where the model offers a choice: the same variables and
    numbers (zoo.nn.fastconv), compiled several times faster on CPU than the default."""
    import zoo

    return {"conv_impl": "xla"} if "conv_impl" in zoo.model_info(name)["config"] else {}


def assert_affine(xs, ys, rel=0.05):
    """ys grows linearly in xs (a constant offset allowed): equal increments per unit."""
    import numpy as np

    slopes = np.diff(ys) / np.diff(xs)
    assert np.all(slopes > 0), ys
    assert np.ptp(slopes) <= rel * slopes.mean(), (xs, ys)


@pytest.fixture
def tfds(monkeypatch):
    """tensorflow_datasets, with the batched reads of its `mock_data` repaired.

    In tensorflow-datasets 4.9.10, `mock_data` gives the mocked array_record source
    ``__getitems__ = functools.partial(_getitems, generator=...)``: an instance attribute,
    which Python does not bind, so ``source.__getitems__(keys)`` passes the keys as
    `self` and raises TypeError (TFDS's own mock test only reads ``source[i]``). The
    replacement takes the call with or without `self`; data_source reads never ask for
    serialized records, which is all the original adds.
    """
    tfds = require_module("tensorflow_datasets")
    from tensorflow_datasets.testing import mocking

    def getitems(*self_and_keys, generator, serialized=False):
        assert not serialized
        return [generator[key] for key in self_and_keys[-1]]

    monkeypatch.setattr(mocking, "_getitems", getitems)
    return tfds
