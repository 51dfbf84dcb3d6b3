"""The training loop: `fit` and `evaluate`, shared by every model family.

    result = zoo.fit("mlp", zoo.data.load_dataset("digits"), epochs=20)
    result.test_metrics["accuracy"]

One loop serves gradient-trained models (one jit'd train step per task kind) and models
that learn by a rule (the registry's ``learning_rule``). Data order, dropout masks and
initial weights are pure functions of ``seed``, so a run resumed from a checkpoint ends
with exactly the parameters of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import sys
import time
from typing import Any

import jax
import numpy as np

from zoo import optim, registry
from zoo.data import Dataset, iterate_batches, load_dataset, num_batches
from zoo.train import finetune
from zoo.train.checkpoint import Checkpointer, write_config
from zoo.train.sharding import make_mesh, replicate, shard_batch
from zoo.train.state import TrainState, create_train_state, example_inputs
from zoo.train.steps import make_eval_step, make_rule_step, make_train_step
from zoo.tasks import Task, get_task


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a run; saved as ``config.json`` beside its checkpoints."""

    model: str = "mlp"
    dataset: str = "digits"
    model_overrides: dict = dataclasses.field(default_factory=dict)
    dataset_kwargs: dict = dataclasses.field(default_factory=dict)
    task: str | None = None  # default: the dataset's, or the model's own fixed task
    epochs: int = 50
    batch_size: int = 32
    eval_batch_size: int = 512
    drop_remainder: bool = False
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    optimizer_kwargs: dict = dataclasses.field(default_factory=dict)  # see zoo.optim.create
    init: str | None = None  # kernel initializer by name, for models that take kernel_init
    seed: int = 0
    validation_fraction: float = 0.1
    # Early stopping (the seed's stopping criteria); all off by default.
    patience: int | None = None  # epochs without improvement of the monitored metric
    min_delta: float = 0.0
    target: float | None = None  # stop once the monitored validation metric reaches it
    min_weight_change: float | None = None  # stop when ||dw|| / ||w|| over an epoch is below it
    num_devices: int | None = None  # data-parallel devices (default: all)
    data_dir: str | None = None
    # Fine-tuning (zoo.train.finetune). Patterns select parameters by path, e.g. "fc" or
    # "layers_3_*"; give trainable (the rest frozen) or frozen (the rest trained).
    init_from: str | None = None  # an earlier run's work dir or checkpoints/N: start from its weights
    reset_head: bool = False  # with init_from: re-initialise the output layer even if its size fits
    trainable: tuple[str, ...] = ()
    frozen: tuple[str, ...] = ()

    def __post_init__(self):
        for name in ("trainable", "frozen"):  # "a,b" or ["a", "b"] -> ("a", "b")
            value = getattr(self, name)
            setattr(self, name, tuple(value.split(",")) if isinstance(value, str) else tuple(value or ()))
        if self.trainable and self.frozen:
            raise ValueError("give trainable (the rest frozen) or frozen (the rest trained), not both")
        if self.reset_head and self.init_from is None:
            raise ValueError("reset_head applies only when starting from a checkpoint (init_from)")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be at least 1, got {self.patience}")


@dataclasses.dataclass
class EarlyStopping:
    """The seed's stopping criteria ("Common criteria to stop updating"): the validation
    metric stopped improving for ``patience`` epochs, it reached ``target``, or the
    weights changed by less than ``min_weight_change`` (relative norm) in an epoch. The
    epoch limit is the loop's own."""

    mode: str  # "max" or "min"
    patience: int | None = None
    min_delta: float = 0.0
    target: float | None = None
    min_weight_change: float | None = None
    best: float | None = None
    best_epoch: int | None = None
    wait: int = 0

    def update(self, epoch: int, value: float | None, weight_change: float | None) -> str | None:
        """Record an epoch's monitored validation metric and relative weight change (None
        when not measured); return why to stop, or None."""
        sign = 1.0 if self.mode == "max" else -1.0
        if value is not None:
            if self.best is None or sign * (value - self.best) > self.min_delta:
                self.best, self.best_epoch, self.wait = value, epoch, 0
            else:
                self.wait += 1
            if self.target is not None and sign * (value - self.target) >= 0:
                return f"validation metric {value:.6g} reached the target {self.target}"
            if self.patience is not None and self.wait >= self.patience:
                return f"no improvement for {self.wait} epochs (best {self.best:.6g} at epoch {self.best_epoch})"
        if weight_change is not None and weight_change < self.min_weight_change:
            return f"weights changed by {weight_change:.3g} < {self.min_weight_change} (relative)"
        return None

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}


@dataclasses.dataclass
class FitResult:
    model: Any  # the flax module
    state: TrainState
    history: list[dict]  # one record per epoch
    test_metrics: dict | None
    stop_reason: str
    task: Task
    config: TrainConfig

    @property
    def variables(self) -> dict:
        return self.state.variables


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message names the step."""


def _resolve_model(config: TrainConfig, model, data: Dataset):
    """(module, registry spec or None, fixed task or None)."""
    if not isinstance(model, str):
        return model, None, None
    spec = registry.get_spec(model)
    overrides = registry.adapt_config(model, data.input_shape, data.num_outputs, data.model_config)
    if config.init is not None:
        if "kernel_init" not in spec.config:
            raise ValueError(f"model {model!r} takes no kernel_init, so --init does not apply")
        overrides["kernel_init"] = config.init
    overrides.update(config.model_overrides)
    fixed_task = None if spec.task in registry.DATA_DEFINED_TASKS else spec.task
    return registry.create_model(model, **overrides), spec, fixed_task


def _learning_rule_step(spec, model, task, config: TrainConfig):
    rule = spec.learning_rule
    params = inspect.signature(rule).parameters
    hparams = {"learning_rate": config.learning_rate} if "learning_rate" in params else {}
    return make_rule_step(model, task, rule, **hparams)


def _epoch_metrics(sums: list[dict], prefix: str) -> dict:
    """Sum per-batch metric sums on the host and divide by the example count."""
    total = jax.tree.map(lambda *xs: float(np.sum(xs)), *jax.device_get(sums))
    count = max(total.pop("count"), 1.0)
    return {f"{prefix}{k}": v / count for k, v in total.items()}


def _check_finite(batch_sums: list[dict], first_step: int, epoch: int) -> None:
    losses = np.asarray([float(s["loss"]) / max(float(s["count"]), 1.0) for s in jax.device_get(batch_sums)])
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        i = int(bad[0])
        raise NonFiniteLossError(
            f"non-finite training loss ({losses[i]}) at step {first_step + i + 1} "
            f"(epoch {epoch}, batch {i + 1}); training stopped. Try a smaller learning rate, "
            "gradient clipping (clip_norm) or another initializer. Checkpoints of earlier "
            "epochs, if any, are kept."
        )


def _relative_change(new, old) -> float:
    diff = sum(float(np.sum((a - b) ** 2)) for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(old)))
    norm = sum(float(np.sum(b**2)) for b in jax.tree.leaves(old))
    return math.sqrt(diff / norm) if norm > 0 else math.sqrt(diff)


def evaluate(model, variables, x, y, *, task: str | Task = "classification",
             batch_size: int = 512, mesh=None) -> dict:
    """Mean metrics of ``model`` with ``variables`` on ``(x, y)`` in inference mode.

    x: (N, *input_shape); y: (N,) labels, (N, K) targets or (N, T) target tokens (the
    task says whether the model also sees y: ``Task.inputs``). Returns e.g.
    ``{"loss": ..., "accuracy": ...}``.
    """
    task = get_task(task) if isinstance(task, str) else task
    mesh = make_mesh() if mesh is None else mesh
    return _eval(make_eval_step(model, task), replicate(variables, mesh), x, y, batch_size, mesh)


def _eval(eval_step, variables, x, y, batch_size: int, mesh, prefix: str = "") -> dict:
    sums = [
        eval_step(variables, shard_batch(b, mesh))
        for b in iterate_batches(x, y, batch_size, seed=0, epoch=0, shuffle=False, pad=True)
    ]
    return _epoch_metrics(sums, prefix)


def _log(path: str | None, record: dict) -> None:
    if path is not None:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")


def fit(model="mlp", data: Dataset | str | None = None, *, config: TrainConfig | None = None,
        workdir: str | None = None, resume: bool = False, progress: bool = True,
        **overrides) -> FitResult:
    """Train ``model`` (a registered name or a flax module) on ``data``.

    Keyword ``overrides`` replace fields of ``config`` (a `TrainConfig`), e.g.
    ``fit("mlp", data, epochs=5, optimizer="sgd", learning_rate=0.1)``. With ``workdir`` the
    run writes ``config.json``, ``metrics.jsonl`` and a checkpoint each epoch there;
    ``resume=True`` continues from the latest checkpoint.
    """
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    # config.json must name what was trained: a registered name, or the module's class.
    config = dataclasses.replace(config, model=model if isinstance(model, str) else type(model).__name__)
    if data is None or isinstance(data, str):
        data = load_dataset(data or config.dataset, seed=config.seed, data_dir=config.data_dir,
                            **config.dataset_kwargs)
    config = dataclasses.replace(config, dataset=data.name)
    if config.validation_fraction > 0 and data.x_val is None:
        data = data.with_validation(config.validation_fraction, seed=config.seed)

    module, spec, fixed_task = _resolve_model(config, model, data)
    task = get_task(config.task or fixed_task or data.task)
    devices = jax.devices()[: config.num_devices] if config.num_devices else None
    mesh = make_mesh(devices)

    n_train = len(data.x_train)
    steps_per_epoch = num_batches(n_train, config.batch_size, config.drop_remainder)
    optimizer_kwargs = dict(config.optimizer_kwargs)
    if optimizer_kwargs.get("schedule") in ("cosine", "warmup_cosine"):
        # The run knows its length: decay over all of it unless told otherwise.
        optimizer_kwargs["schedule_kwargs"] = {"decay_steps": config.epochs * steps_per_epoch,
                                               **(optimizer_kwargs.get("schedule_kwargs") or {})}
    tx = optim.create(config.optimizer, config.learning_rate, num_examples=n_train, **optimizer_kwargs)
    if config.trainable or config.frozen:
        # Frozen parameters get zero updates; a pattern matching nothing fails in tx.init.
        tx = finetune.freeze(tx, trainable=config.trainable or None, frozen=config.frozen or None)
    # Initialised on what the task feeds the model (x, or x and y for teacher forcing).
    inputs = example_inputs(task, data.input_shape, data.x_train.dtype, data.y_train.shape[1:],
                            data.y_train.dtype)
    state = create_train_state(module, tx, data.input_shape, seed=config.seed, inputs=inputs)
    if config.init_from is not None:
        # Read before the work dir is touched: a bad source leaves no half-made run behind.
        variables = finetune.init_from_checkpoint(module, state.variables, config.init_from,
                                                  reset_head=config.reset_head)
        params = variables.pop("params")
        state = state.replace(params=params, model_state=variables, opt_state=tx.init(params))
    learns_by_rule = spec is not None and not spec.learns_by_gradient
    if learns_by_rule and (config.trainable or config.frozen):
        raise ValueError(f"model {spec.name!r} learns by a rule, not an optimizer: trainable/frozen do not apply")
    if learns_by_rule and spec.learning_rule is None:
        raise ValueError(f"model {spec.name!r} has hand-wired weights; there is nothing to fit")
    keep_state = (finetune.frozen_state({k: state.model_state[k] for k in state.mutable},
                                        trainable=config.trainable or None, frozen=config.frozen or None)
                  if config.trainable or config.frozen else None)
    train_step = (_learning_rule_step(spec, module, task, config) if learns_by_rule
                  else make_train_step(module, task, tx, keep_state))
    eval_step = make_eval_step(module, task)

    stopper = EarlyStopping(task.mode, config.patience, config.min_delta, config.target,
                            config.min_weight_change)
    history: list[dict] = []
    start_epoch, stop_reason = 1, "epoch limit reached"
    metrics_path = checkpointer = None
    if workdir is not None:
        write_config(workdir, {**dataclasses.asdict(config), "module": repr(module)}, resume=resume)
        metrics_path = os.path.join(workdir, "metrics.jsonl")
        checkpointer = Checkpointer(workdir)
        if resume and checkpointer.latest_epoch() is not None:
            state, meta = checkpointer.restore(state)
            start_epoch = meta["epoch"] + 1
            history = meta["history"]
            for k, v in meta["early_stopping"].items():
                setattr(stopper, k, v)
            stop_reason = meta.get("stop_reason") or stop_reason
            if meta.get("stopped"):
                start_epoch = config.epochs + 1  # it had finished; just report
    elif resume:
        raise ValueError("resume=True needs a workdir to resume from")

    state = replicate(state, mesh)
    bar = _progress_bar(progress, config.epochs, steps_per_epoch, start_epoch)
    try:
        for epoch in range(start_epoch, config.epochs + 1):
            t0 = time.perf_counter()
            # A host copy of the weights only when a stopping rule needs their change.
            old_params = jax.device_get(state.params) if config.min_weight_change is not None else None
            first_step = int(state.step)
            sums = []
            for b in iterate_batches(data.x_train, data.y_train, config.batch_size, seed=config.seed,
                                     epoch=epoch, drop_remainder=config.drop_remainder):
                state, s = train_step(state, shard_batch(b, mesh))
                sums.append(s)
                if bar is not None:
                    bar.update(1)
                    if len(sums) % 10 == 1:
                        bar.set_postfix(epoch=epoch, loss=f"{float(s['loss'] / s['count']):.4f}")
            _check_finite(sums, first_step, epoch)
            record = {"epoch": epoch, "step": int(state.step), **_epoch_metrics(sums, "train_")}
            if data.x_val is not None:
                record.update(_eval(eval_step, state.variables, data.x_val, data.y_val,
                                     config.eval_batch_size, mesh, "val_"))
            record["epoch_seconds"] = time.perf_counter() - t0
            history.append(record)
            if bar is not None:
                bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k.startswith(("train_loss", "val_"))})
            weight_change = (None if old_params is None
                             else _relative_change(jax.device_get(state.params), old_params))
            reason = stopper.update(epoch, record.get(f"val_{task.monitor}"), weight_change)
            if checkpointer is not None:
                checkpointer.save(epoch, state, {
                    "epoch": epoch, "history": history, "early_stopping": stopper.state_dict(),
                    "stopped": reason is not None, "stop_reason": reason,
                })
            # Logged once saved: a resumed run repeats no line of metrics.jsonl.
            _log(metrics_path, record)
            if reason is not None:
                stop_reason = reason
                break
    finally:
        if bar is not None:
            bar.close()
        if checkpointer is not None:
            checkpointer.close()

    test_metrics = None
    if data.x_test is not None and len(data.x_test):
        test_metrics = _eval(eval_step, state.variables, data.x_test, data.y_test,
                             config.eval_batch_size, mesh)
        _log(metrics_path, {"event": "test", **test_metrics})
    return FitResult(module, state, history, test_metrics, stop_reason, task, config)


def _progress_bar(enabled: bool, epochs: int, steps_per_epoch: int, start_epoch: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=epochs * steps_per_epoch, initial=(start_epoch - 1) * steps_per_epoch,
                unit="step", file=sys.stderr, dynamic_ncols=True, desc="train")
