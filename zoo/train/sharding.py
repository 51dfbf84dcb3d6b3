"""Data parallelism: one mesh over the devices, batches split on its "data" axis.

The same code runs on 1 or N devices, and on several hosts after
``jax.distributed.initialize()``: each process contributes its slice of every global batch.
"""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over ``devices`` (default: every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicate(tree, mesh: Mesh):
    """Place ``tree`` (params, optimizer state ...) whole on every device of ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def pad_batch(batch: dict[str, np.ndarray], multiple: int) -> dict[str, np.ndarray]:
    """Pad rows (with mask 0) so the batch splits evenly over ``multiple`` devices."""
    n = len(batch["mask"])
    extra = -n % multiple
    if extra == 0:
        return batch
    return {k: np.concatenate([v, np.zeros((extra, *v.shape[1:]), v.dtype)]) for k, v in batch.items()}


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """A global host batch -> arrays split over the mesh's data axis.

    Every process holds the same global batch (same seed, same order) and contributes the
    rows its devices own.
    """
    batch = pad_batch(batch, mesh.devices.size)
    sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    n, procs, pid = len(batch["mask"]), jax.process_count(), jax.process_index()
    rows = slice(pid * n // procs, (pid + 1) * n // procs)
    return {
        k: jax.make_array_from_process_local_data(sharding, v[rows], (n, *v.shape[1:]))
        for k, v in batch.items()
    }
