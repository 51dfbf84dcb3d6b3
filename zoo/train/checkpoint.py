"""Checkpoints: the train state plus loop metadata, written atomically with orbax.

Layout of a work dir::

    workdir/config.json       the run's full config (written once, checked on resume)
    workdir/metrics.jsonl     one JSON object per epoch (and per evaluation)
    workdir/checkpoints/N/    orbax checkpoint after epoch N: "state" and "meta"

In a multi-process run the work dir is one folder that every process sees (a shared file
system across hosts): process 0 writes config.json and metrics.jsonl, and orbax
coordinates the processes' checkpoint writes.

orbax writes each checkpoint to a temporary directory and renames it when complete, so an
interrupted save never replaces a good checkpoint. Nothing here deletes a checkpoint
that cannot be read: the error says where it is.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np


class CheckpointError(RuntimeError):
    """A checkpoint or work dir that cannot be used; the message says which and why."""


def _ocp():
    # orbax is slow to import; only runs with a work dir pay for it.
    import orbax.checkpoint as ocp

    return ocp


class Checkpointer:
    """Saves and restores ``(state, meta)`` pairs under ``workdir/checkpoints``."""

    def __init__(self, workdir: str, max_to_keep: int | None = 3):
        ocp = _ocp()
        self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
            # Handlers named up front (not inferred from the first save or restore), so a
            # checkpoint's layout can be read before restoring it (`restore_variables`).
            item_handlers={"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()},
        )

    def latest_epoch(self) -> int | None:
        return self._manager.latest_step()

    def save(self, epoch: int, state, meta: dict[str, Any]) -> None:
        ocp = _ocp()
        self._manager.save(
            epoch,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
        )
        self._manager.wait_until_finished()

    def restore(self, target_state, epoch: int | None = None):
        """(state, meta) of checkpoint ``epoch`` (default: latest), laid out like ``target_state``."""
        ocp = _ocp()
        epoch = self.latest_epoch() if epoch is None else epoch
        if epoch is None:
            raise CheckpointError(f"no checkpoint to resume from in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target_state)
        try:
            restored = self._manager.restore(
                epoch,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                ),
            )
        except Exception as e:  # orbax raises many types for unreadable files
            raise CheckpointError(
                f"checkpoint {os.path.join(self.directory, str(epoch))} cannot be restored "
                f"({type(e).__name__}: {e}). It was left untouched; move it aside to resume "
                "from an earlier epoch, or start a new work dir."
            ) from e
        return restored["state"], restored["meta"]

    def restore_variables(self, epoch: int | None = None) -> dict:
        """The model variables ``{"params": ..., **model_state}`` of checkpoint ``epoch``
        (default: latest) as NumPy arrays, laid out as saved: no target state is needed,
        so another run (another head, another optimizer) can start from them."""
        ocp = _ocp()
        epoch = self.latest_epoch() if epoch is None else epoch
        if epoch is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        where = os.path.join(self.directory, str(epoch))
        try:
            saved = self._manager.item_metadata(epoch)["state"]
            # NumPy targets: read on any device count, whatever the saving run's sharding.
            target = jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), getattr(saved, "tree", saved))
            state = self._manager.restore(epoch, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target)))["state"]
        except Exception as e:  # orbax raises many types for unreadable files
            raise CheckpointError(f"checkpoint {where} cannot be read ({type(e).__name__}: {e}); "
                                  "it was left untouched") from e
        if not isinstance(state, dict) or "params" not in state or "model_state" not in state:
            raise CheckpointError(f"{where} is not a zoo training checkpoint (no params and model_state)")
        return {"params": state["params"], **state["model_state"]}

    def close(self) -> None:
        self._manager.close()


def read_variables(path: str) -> tuple[dict, str]:
    """The model variables a run saved, and the checkpoint folder they come from.

    ``path``: a work dir (its latest checkpoint), its ``checkpoints`` folder, or one
    checkpoint ``checkpoints/N``. Reads only: nothing is created or changed under ``path``.
    Raises CheckpointError when ``path`` does not exist, holds no checkpoint, or the
    checkpoint cannot be read.
    """
    path = os.path.abspath(os.fspath(path))
    layout = "a work dir written by zoo.fit / train.py --workdir, or its checkpoints/N"
    if not os.path.isdir(path):
        raise CheckpointError(f"{path} does not exist (expected {layout})")
    epoch = None
    if os.path.isdir(os.path.join(path, "checkpoints")):
        workdir = path
    elif os.path.basename(path) == "checkpoints":
        workdir = os.path.dirname(path)
    elif os.path.basename(path).isdigit() and os.path.basename(os.path.dirname(path)) == "checkpoints":
        workdir, epoch = os.path.dirname(os.path.dirname(path)), int(os.path.basename(path))
    else:
        raise CheckpointError(f"{path} holds no checkpoints (expected {layout})")
    # The checkpoints folder exists here, so the manager creates nothing.
    checkpointer = Checkpointer(workdir, max_to_keep=None)
    try:
        if checkpointer.latest_epoch() is None:
            raise CheckpointError(f"no checkpoint in {checkpointer.directory} (expected {layout})")
        epoch = checkpointer.latest_epoch() if epoch is None else epoch
        return checkpointer.restore_variables(epoch), os.path.join(checkpointer.directory, str(epoch))
    finally:
        checkpointer.close()


def write_config(workdir: str, config: dict[str, Any], *, resume: bool) -> None:
    """Write ``config.json``; on resume, insist the saved config matches ``config``.

    In a multi-process run every process calls this and process 0 alone writes (the work
    dir is one folder shared by all processes); the others raise when process 0 could not.
    """
    if jax.process_count() == 1:
        return _write_config(workdir, config, resume=resume)
    from jax.experimental import multihost_utils

    error = None
    if jax.process_index() == 0:
        try:
            _write_config(workdir, config, resume=resume)
        except Exception as e:  # noqa: BLE001 - re-raised below, once the others know
            error = e
    failed = int(multihost_utils.broadcast_one_to_all(np.int32(error is not None)))
    if error is not None:
        raise error
    if failed:
        raise CheckpointError(f"process 0 could not use the work dir {workdir} (its error says why)")


def _write_config(workdir: str, config: dict[str, Any], *, resume: bool) -> None:
    path = os.path.join(workdir, "config.json")
    os.makedirs(workdir, exist_ok=True)
    config = json.loads(json.dumps(config, default=str))  # compare as saved (tuples -> lists)
    if os.path.exists(path):
        with open(path) as f:
            try:
                saved = json.load(f)
            except json.JSONDecodeError as e:
                raise CheckpointError(f"{path} is not valid JSON ({e}); it was left untouched") from e
        if not resume:
            raise CheckpointError(
                f"work dir {workdir} already holds a run (config.json); pass resume=True "
                "(--resume) to continue it, or choose another work dir. Nothing was overwritten."
            )
        # The epoch budget may grow on resume; everything else must match.
        differ = sorted(k for k in set(saved) | set(config)
                        if k != "epochs" and saved.get(k) != config.get(k))
        if differ:
            raise CheckpointError(
                f"cannot resume {workdir}: config differs from the saved one in "
                + ", ".join(f"{k} (saved {saved.get(k)!r}, now {config.get(k)!r})" for k in differ)
            )
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
