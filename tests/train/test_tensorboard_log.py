"""TensorBoard logs (tensorboardX, read back without TensorFlow) hold metrics.jsonl's numbers
under the same names and steps; histograms and images come on request; `--profile` writes
a jax.profiler trace (train.py and python -m zoo.bench)."""

import glob
import json
import os

import numpy as np
import pytest

from conftest import require_module
from zoo.train import fit

QUIET = dict(progress=False)
SMALL = {"hidden_sizes": (8,)}


def test_event_file_scalars_equal_metrics_jsonl(tmp_path):
    require_module("tensorboardX")
    from zoo.train.tensorboard import read_events, read_scalars

    fit(
        "mlp",
        "digits",
        epochs=2,
        batch_size=256,
        model_overrides=SMALL,
        optimizer_kwargs={"schedule": "cosine"},
        workdir=str(tmp_path),
        log_histograms=True,
        log_images=3,
        augment="flip",
        **QUIET,
    )
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    expected: dict[str, list] = {}
    last_step = 0
    for record in lines:
        step = record.get("step", last_step)
        last_step = step
        prefix = "test_" if record.get("event") == "test" else ""
        for key, value in record.items():
            if key not in ("event", "epoch", "step"):
                expected.setdefault(prefix + key, []).append((step, np.float32(value)))
    scalars = read_scalars(str(tmp_path))
    assert sorted(scalars) == sorted(expected)
    for name, points in expected.items():
        assert [(s, np.float32(v)) for s, v in scalars[name]] == points, name
    # The learning rate of every step, decaying over the run (12 steps).
    rates = [v for _, v in scalars["learning_rate"]]
    assert len(rates) == 12 and rates[0] == pytest.approx(1e-3) and rates[-1] < rates[0]

    kinds = {(v.tag, v.WhichOneof("value")) for e in read_events(str(tmp_path)) for v in e.summary.value}
    assert ("params/hidden_0/kernel", "histo") in kinds and ("params/out/bias", "histo") in kinds
    # Each epoch's first batch, at its step: 3 images of 8x8 side by side.
    images = [
        (e.step, v.image.width, v.image.height)
        for e in read_events(str(tmp_path))
        for v in e.summary.value
        if v.WhichOneof("value") == "image"
    ]
    assert images == [(1, 24, 8), (7, 24, 8)]


def test_no_tensorboard_writes_no_event_file(tmp_path):
    fit("mlp", "digits", epochs=1, batch_size=512, model_overrides=SMALL, workdir=str(tmp_path), tensorboard=False)
    assert not glob.glob(str(tmp_path / "events.out.tfevents.*"))
    with pytest.raises(ValueError, match="give a workdir"):
        fit("mlp", "digits", epochs=1, tensorboard=True, **QUIET)


def _trace_files(folder):
    return glob.glob(os.path.join(folder, "plugins", "profile", "*", "*.xplane.pb"))


def test_train_py_profile_writes_a_trace(tmp_path, capsys):
    import importlib.util
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("train_cli_profile", root / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    args = ["--no-progress", "--epochs", "1", "--batch-size", "256", "--set", "hidden_sizes=(8,)"]
    assert train.run([*args, "--profile", str(tmp_path / "trace")]) == 0
    assert _trace_files(str(tmp_path / "trace"))


def test_bench_profile_writes_a_trace(tmp_path, capsys):
    from zoo.bench.__main__ import main

    code = main(
        ["--model", "mlp", "--rounds", "1", "--steps", "1", "--warmup", "0", "--profile", str(tmp_path / "trace")]
    )
    assert code == 0 and _trace_files(str(tmp_path / "trace"))
