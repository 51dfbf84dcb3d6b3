"""Checkpoints: the train state plus loop metadata, written atomically with orbax.

Layout of a work dir::

    workdir/config.json       the run's full config (written once, checked on resume)
    workdir/metrics.jsonl     one JSON object per epoch (and per evaluation): the history
    workdir/checkpoints/N/    orbax checkpoint after epoch N: "state" and "meta"
    workdir/unreadable/N/     a checkpoint that could not be restored, moved aside on resume
    workdir/.lock             held (flock) by the one run writing to the work dir

Several processes share one work dir: process 0 writes config.json and metrics.jsonl,
orbax coordinates the checkpoint writes (to a temporary directory, renamed when complete).
An epoch's metrics line is written before its checkpoint and a resume cuts metrics.jsonl
back to the restored epoch, so the two agree after a kill at any point. Nothing here
deletes a checkpoint that cannot be read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
from typing import Any

import jax
import numpy as np

from zoo.nn.checks import free_memory_bytes


class CheckpointError(RuntimeError):
    """A checkpoint or work dir that cannot be used; the message says which and why."""


# Keys every checkpoint's meta holds (`zoo.train.loop`); a checkpoint without them is unusable.
META_KEYS = ("epoch", "early_stopping", "stopped")


def _first_line(e: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message``, cut to ``limit`` characters (orbax's errors
    run to dozens of lines of TensorStore specs)."""
    text = (str(e).strip().splitlines() or [""])[0]
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


@contextlib.contextmanager
def workdir_lock(workdir: str):
    """Make ``workdir`` (if needed) and hold an exclusive lock on it while the block runs:
    a second run into the same work dir is refused instead of interleaving its writes."""
    try:
        os.makedirs(workdir, exist_ok=True)
        handle = open(os.path.join(workdir, ".lock"), "a+")
    except OSError as e:
        raise CheckpointError(f"cannot use work dir {workdir}: {_first_line(e)}") from e
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise CheckpointError(
                f"work dir {workdir} is in use by another run ({holder}); wait for "
                "it to finish or choose another work dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock


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
            epoch, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        )
        self._manager.wait_until_finished()

    def epochs(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def restore(self, target_state, epoch: int | None = None):
        """(state, meta) of checkpoint ``epoch`` (default: latest), laid out like ``target_state``."""
        ocp = _ocp()
        epoch = self.latest_epoch() if epoch is None else epoch
        if epoch is None:
            raise CheckpointError(f"no checkpoint to resume from in {self.directory}")
        where = os.path.join(self.directory, str(epoch))
        target, absent = target_state, self._absent_empty_fields(target_state, epoch)
        if absent:  # saved before those (empty) fields existed: restore the others
            target = {f.name: getattr(target_state, f.name) for f in dataclasses.fields(target_state)}
            target = {k: v for k, v in target.items() if k not in absent}
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        try:
            restored = self._manager.restore(
                epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
            )
        except Exception as e:  # orbax raises many types for unreadable files
            raise CheckpointError(f"checkpoint {where} cannot be restored ({_first_line(e)})") from e
        meta = restored["meta"]
        missing = [k for k in META_KEYS if not isinstance(meta, dict) or k not in meta]
        if missing:
            raise CheckpointError(f"checkpoint {where} has no {', '.join(missing)} in its meta")
        state = target_state.replace(**restored["state"]) if absent else restored["state"]
        return state, meta

    def _absent_empty_fields(self, target_state, epoch: int) -> list[str]:
        """Fields of a dataclass ``target_state`` that are None there and absent from the
        checkpoint (e.g. ``ema_params`` of a checkpoint written before it existed)."""
        if not dataclasses.is_dataclass(target_state):
            return []
        empty = [f.name for f in dataclasses.fields(target_state) if getattr(target_state, f.name) is None]
        if not empty:
            return []
        try:
            saved = self._manager.item_metadata(epoch)["state"]
            saved = getattr(saved, "tree", saved)
        except Exception:  # noqa: BLE001 - the restore itself reports an unreadable checkpoint
            return []
        return [name for name in empty if isinstance(saved, dict) and name not in saved]

    def restore_latest_intact(self, target_state):
        """(state, meta, skipped) of the newest checkpoint that restores, ``skipped`` the
        ``(epoch, reason)`` of newer ones that failed; CheckpointError when none restores."""
        skipped = []
        for epoch in reversed(self.epochs()):
            try:
                state, meta = self.restore(target_state, epoch)
            except CheckpointError as e:
                skipped.append((epoch, str(e)))
                continue
            return state, meta, skipped
        raise CheckpointError(
            f"no checkpoint in {self.directory} can be restored, all were left "
            "untouched (start a new work dir): " + "; ".join(r for _, r in skipped)
        )

    def move_aside(self, epochs: list[int]) -> list[str]:
        """Move unreadable checkpoints to ``workdir/unreadable/N`` (never deleted, never
        overwritten by a later save of the same epoch); returns their new paths."""
        self._manager.wait_until_finished()
        aside = os.path.join(os.path.dirname(self.directory), "unreadable")
        moved = []
        for epoch in epochs:
            target = os.path.join(aside, str(epoch))
            suffix = 1
            while os.path.exists(target):
                target, suffix = os.path.join(aside, f"{epoch}.{suffix}"), suffix + 1
            os.makedirs(aside, exist_ok=True)
            shutil.move(os.path.join(self.directory, str(epoch)), target)
            moved.append(target)
        self._manager.reload()
        return moved

    def delete(self, epoch: int) -> None:
        self._manager.delete(epoch)

    def restore_variables(self, epoch: int | None = None, check=None) -> dict:
        """The variables ``{"params": ..., **model_state}`` of checkpoint ``epoch`` (default:
        latest) as NumPy arrays laid out as saved (no target state needed); of a run that kept
        a moving average of its weights (``fit(ema=...)``), those are the params, the weights
        it evaluated. Before anything
        is allocated the saved layout must fit in memory and pass ``check(abstract_variables,
        checkpoint_path)``, which raises to refuse it."""
        ocp = _ocp()
        epoch = self.latest_epoch() if epoch is None else epoch
        if epoch is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        where = os.path.join(self.directory, str(epoch))
        try:
            saved = self._manager.item_metadata(epoch)["state"]
            layout = jax.tree.map(
                lambda m: jax.ShapeDtypeStruct(tuple(m.shape), m.dtype), getattr(saved, "tree", saved)
            )
        except Exception as e:  # orbax raises many types for unreadable files
            raise CheckpointError(f"checkpoint {where} cannot be read ({_first_line(e)}); it was left untouched") from e
        if not isinstance(layout, dict) or "params" not in layout or "model_state" not in layout:
            raise CheckpointError(f"{where} is not a zoo training checkpoint (no params and model_state)")
        # The weights the run evaluated: the moving average when it kept one.
        weights = "ema_params" if layout.get("ema_params") else "params"
        variables_layout = {"params": layout[weights], **layout["model_state"]}
        needed = sum(
            np.prod(a.shape, dtype=np.int64) * np.dtype(a.dtype).itemsize for a in jax.tree.leaves(variables_layout)
        )
        available = free_memory_bytes()
        if needed > available:
            raise CheckpointError(
                f"checkpoint {where} holds {needed / 2**30:.1f} GiB of variables, more "
                f"than the {available / 2**30:.1f} GiB free here"
            )
        if check is not None:
            check(variables_layout, where)
        try:
            # NumPy targets: read on any device count, whatever the saving run's sharding.
            target = jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), layout)
            state = self._manager.restore(epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))[
                "state"
            ]
        except Exception as e:  # orbax raises many types for unreadable files
            raise CheckpointError(f"checkpoint {where} cannot be read ({_first_line(e)}); it was left untouched") from e
        return {"params": state[weights], **state["model_state"]}

    def close(self) -> None:
        self._manager.close()


def read_variables(path: str, check=None) -> tuple[dict, str]:
    """The model variables a run saved, and their checkpoint folder, read-only from ``path``:
    a work dir (its latest), its ``checkpoints`` folder, or one ``checkpoints/N``. ``check``
    as in `restore_variables`. CheckpointError when there is no readable checkpoint."""
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
        return (checkpointer.restore_variables(epoch, check), os.path.join(checkpointer.directory, str(epoch)))
    finally:
        checkpointer.close()


def write_config(workdir: str, config: dict[str, Any], *, resume: bool, defaults: dict | None = None) -> None:
    """Write ``config.json``; on resume, insist the saved config matches ``config``. A key
    the saved config lacks (written before the option existed) matches its value in
    ``defaults``. Every process calls this, process 0 alone writes; the others raise when
    it could not."""
    if jax.process_count() == 1:
        return _write_config(workdir, config, resume=resume, defaults=defaults)
    from jax.experimental import multihost_utils

    error = None
    if jax.process_index() == 0:
        try:
            _write_config(workdir, config, resume=resume, defaults=defaults)
        except Exception as e:  # noqa: BLE001 - re-raised below, once the others know
            error = e
    failed = int(multihost_utils.broadcast_one_to_all(np.int32(error is not None)))
    if error is not None:
        raise error
    if failed:
        raise CheckpointError(f"process 0 could not use the work dir {workdir} (its error says why)")


def _write_config(workdir: str, config: dict[str, Any], *, resume: bool, defaults: dict | None = None) -> None:
    path = os.path.join(workdir, "config.json")
    config = json.loads(json.dumps(config, default=str))  # compare as saved (tuples -> lists)
    defaults = json.loads(json.dumps(defaults or {}, default=str))
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
        saved = {**{k: v for k, v in defaults.items() if k not in saved}, **saved}
        differ = sorted(k for k in set(saved) | set(config) if k != "epochs" and saved.get(k) != config.get(k))
        if differ:
            hint = (
                "; the schedule decays over the run's length, which --epochs sets: resume with "
                "the saved epochs, or fix the length in both runs with "
                "schedule_kwargs={'decay_steps': N}"
                if "schedule_length" in differ
                else ""
            )
            raise CheckpointError(
                f"cannot resume {workdir}: config differs from the saved one in "
                + ", ".join(f"{k} (saved {saved.get(k)!r}, now {config.get(k)!r})" for k in differ)
                + hint
            )
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
