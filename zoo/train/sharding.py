"""Data parallelism: one mesh over the devices, batches split on its "data" axis. The same
code runs on 1 or N devices and, after `initialize_distributed`, on several processes:
each computes the same global batches and places the rows its devices own, so N processes
reach the parameters one process would.
"""

from __future__ import annotations

import collections
from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from zoo.nn.inputs import map_parts

DATA_AXIS = "data"


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout_seconds: int = 300,
) -> None:
    """Join a multi-process run, before anything touches a device: ``jax.distributed.initialize``
    with all three of ``coordinator_address`` ("HOST:PORT" of process 0), ``num_processes``
    and ``process_id``, or none (JAX detects them: SLURM, Open MPI, TPU pods)."""
    given = [coordinator_address is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ValueError(
            "give the coordinator address, the process count and the process id together "
            "(--coordinator, --num-processes, --process-id), or none of them to let "
            "jax.distributed.initialize() detect them (SLURM, Open MPI, TPU pods)"
        )
    if all(given):
        check_process_args(coordinator_address, num_processes, process_id)
    if timeout_seconds <= 0:
        raise ValueError(f"timeout_seconds (--distributed-timeout) must be positive, got {timeout_seconds}")
    import jax.distributed

    # CPU collectives between processes: gloo (JAX's default in recent versions; older ones
    # had none unless asked). Read when the CPU backend starts, i.e. after this call.
    if jax.config.jax_cpu_collectives_implementation is None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address, num_processes, process_id, initialization_timeout=timeout_seconds
        )
    except ValueError as e:
        if all(given):
            raise
        raise ValueError(
            f"no cluster detected to join ({e}); on one machine, or where JAX cannot "
            "detect the cluster, give --coordinator, --num-processes and --process-id"
        ) from e


def check_process_args(coordinator_address: str, num_processes: int, process_id: int) -> None:
    """Raise ValueError naming the option when a multi-process setting cannot work."""
    host, sep, port = str(coordinator_address).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"coordinator address (--coordinator) must be HOST:PORT with a port in "
            f"1..65535, e.g. 127.0.0.1:12355, got {coordinator_address!r}"
        )
    if num_processes < 1:
        raise ValueError(f"process count (--num-processes) must be at least 1, got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise ValueError(
            f"process id (--process-id) must be in 0..{num_processes - 1} "
            f"(--num-processes {num_processes}), got {process_id}"
        )


def select_devices(num_devices: int | None = None) -> list[jax.Device]:
    """The devices to train on: all of them (``None``) or the first ``num_devices``.

    Over several processes every process keeps the same number of its own devices, so
    ``num_devices`` must then be a multiple of the process count.
    """
    devices = jax.devices()
    if num_devices is None:
        return devices
    if isinstance(num_devices, bool) or not isinstance(num_devices, (int, np.integer)):
        raise ValueError(f"num_devices (--num-devices) must be an integer, got {num_devices!r}")
    available = f"{len(devices)} device{'s' * (len(devices) != 1)} available"
    if not 1 <= num_devices <= len(devices):
        raise ValueError(
            f"num_devices (--num-devices) must be between 1 and {len(devices)} "
            f"({available}: {devices[0].platform}), got {num_devices}"
        )
    by_process = collections.defaultdict(list)
    for d in devices:
        by_process[d.process_index].append(d)
    if num_devices % len(by_process):
        raise ValueError(
            f"num_devices (--num-devices) must be a multiple of the process count "
            f"{len(by_process)} ({available}), got {num_devices}"
        )
    per_process = num_devices // len(by_process)
    return [d for p in sorted(by_process) for d in by_process[p][:per_process]]


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
    pad = lambda v: np.concatenate([v, np.zeros((extra, *v.shape[1:]), v.dtype)])
    return {k: map_parts(pad, v) for k, v in batch.items()}


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """A global host batch -> arrays split over the mesh's data axis.

    Every process holds the same global batch (same seed, same order) and places the rows
    its own devices hold, wherever those devices sit in the mesh.
    """
    batch = pad_batch(batch, mesh.devices.size)
    sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    place = lambda v: jax.make_array_from_callback(v.shape, sharding, v.__getitem__)
    return {k: map_parts(place, v) for k, v in batch.items()}
