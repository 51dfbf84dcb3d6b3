"""TensorBoard logs of a run, written by tensorboardX (no TensorFlow) beside metrics.jsonl.

    tensorboard --logdir runs          # every work dir under runs/ is one run

`fit` writes them when it has a work dir and tensorboardX is installed (``pip install
zoo[tensorboard]``), unless told not to (``tensorboard=False``, ``--no-tensorboard``):
per step the training loss and the learning rate, per epoch every number of the epoch's
metrics.jsonl line (losses, metrics, throughput) and the test metrics at the end; on
request, histograms of the parameters and images of the training inputs each epoch. The
scalars are those of metrics.jsonl, value for value, under the same names and steps.
`read_scalars` and `read_events` read them back without TensorFlow or TensorBoard.
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import os
import struct
import sys

import numpy as np


def available() -> bool:
    """Whether tensorboardX is installed."""
    return importlib.util.find_spec("tensorboardX") is not None


def _import_tensorboardx(name: str = "tensorboardX"):
    """Import ``name`` from tensorboardX without torch. tensorboardX imports torch whenever
    it is installed, only to accept torch tensors; zoo hands it NumPy arrays, and the
    import would cost seconds and ~200 MB of resident memory in every run. Unless torch is
    already loaded, it is hidden for the duration of the import (``import torch`` raises
    ImportError, which tensorboardX handles)."""
    if "torch" in sys.modules:
        return importlib.import_module(name)
    sys.modules["torch"] = None
    try:
        return importlib.import_module(name)
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]


class TensorBoardLog:
    """An event file in ``logdir``. ``purge_step``: on resume, the first step written
    again, so TensorBoard drops the events of the steps the run is redoing."""

    def __init__(self, logdir: str, purge_step: int | None = None):
        writer = _import_tensorboardx().SummaryWriter
        self._writer = writer(logdir, purge_step=purge_step, flush_secs=30)

    def scalars(self, step: int, values: dict) -> None:
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(name, value, step)

    def histograms(self, step: int, tree, prefix: str = "params") -> None:
        """One histogram per array of ``tree`` (a nested dict of arrays), named by its path."""
        for path, array in _flat(tree, prefix):
            self._writer.add_histogram(path, np.asarray(array, np.float32).ravel(), step)

    def images(self, step: int, name: str, images) -> None:
        """images: (N, H, W, C) with C 1 or 3, any range: each scaled into [0, 1] on its own."""
        images = np.asarray(images, np.float32)
        low = images.min(axis=(1, 2, 3), keepdims=True)
        span = np.maximum(images.max(axis=(1, 2, 3), keepdims=True) - low, 1e-12)
        self._writer.add_images(name, (images - low) / span, step, dataformats="NHWC")

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def _flat(tree, prefix: str):
    if isinstance(tree, dict) or hasattr(tree, "items"):
        for key, value in tree.items():
            yield from _flat(value, f"{prefix}/{key}")
    else:
        yield prefix, tree


def is_image_batch(x) -> bool:
    """(N, H, W, C) with C 1 or 3: what TensorBoard can show as images."""
    return np.ndim(x) == 4 and np.shape(x)[-1] in (1, 3)


def read_events(logdir: str) -> list:
    """Every event of the event files in ``logdir``, in the order written, as tensorboardX's
    ``Event`` protos. Reads the TFRecord framing itself (length, its CRC, the record, its
    CRC), so neither TensorFlow nor TensorBoard is needed."""
    event_pb2 = _import_tensorboardx("tensorboardX.proto.event_pb2")
    events = []
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        with open(path, "rb") as f:
            data = f.read()
        offset = 0
        while offset + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            events.append(event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length]))
            offset += 12 + length + 4
    return events


def read_scalars(logdir: str) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files of ``logdir``: name -> [(step, value), ...] in the
    order written (values are float32, as TensorBoard stores them)."""
    scalars: dict[str, list[tuple[int, float]]] = {}
    for event in read_events(logdir):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars
