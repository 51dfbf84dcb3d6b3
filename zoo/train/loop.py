"""The training loop: `fit` and `evaluate`, shared by every model family.

    result = zoo.fit("mlp", zoo.data.load_dataset("digits"), epochs=20)
    result.test_metrics["accuracy"]

One loop serves gradient-trained models (one jit'd train step per task kind) and models
that learn by a rule (the registry's ``learning_rule``). Data order, dropout masks and
initial weights are pure functions of ``seed``, so a run resumed from a checkpoint ends
with exactly the parameters of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from zoo import optim, registry
from zoo.data import Dataset, iterate_batches, load_dataset, num_batches
from zoo.data.augment import augment_batch, check_images, parse_augment
from zoo.data.eda import augment_text_dataset
from zoo.nn.inputs import example_dtype
from zoo.nn.precision import check_dtype, with_precision
from zoo.train import finetune
from zoo.train.checkpoint import Checkpointer, workdir_lock, write_config
from zoo.train.sharding import make_mesh, replicate, select_devices, shard_batch
from zoo.runtime import run_once
from zoo.train.state import TrainState, create_train_state, example_inputs, step_rngs
from zoo.train.steps import make_eval_step, make_rule_step, make_train_step
from zoo.train.tensorboard import TensorBoardLog, is_image_batch
from zoo.train.tensorboard import available as tensorboard_available
from zoo.tasks import Task, get_task

logger = logging.getLogger("zoo")


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
    augment: str | None = None  # image augmentation of training batches, e.g. "flip,crop=4" (zoo.data.augment)
    eda: int = 0  # EDA copies of each training text, made after the validation split (zoo.data.eda)
    whiten: str | None = None  # "zca" or "pca": whiten inputs with training-split statistics (Dataset.whitened)
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
    # Engine options: an exponential moving average of the weights (its decay, e.g. 0.999),
    # evaluated and saved in place of the raw weights; gradients of this many micro-batches
    # averaged into one update (optax.MultiSteps).
    ema: float | None = None
    accumulate: int = 1
    # Mixed precision (zoo.nn.precision): compute dtype; parameters, optimizer state, loss
    # and batch-norm statistics stay float32; float16 adds dynamic loss scaling.
    dtype: str = "float32"

    def __post_init__(self):
        check_dtype("dtype", self.dtype)
        for name in ("trainable", "frozen"):  # "a,b" or ["a", "b"] -> ("a", "b")
            value = getattr(self, name)
            setattr(self, name, tuple(value.split(",")) if isinstance(value, str) else tuple(value or ()))
        if self.trainable and self.frozen:
            raise ValueError("give trainable (the rest frozen) or frozen (the rest trained), not both")
        if self.reset_head and self.init_from is None:
            raise ValueError("reset_head applies only when starting from a checkpoint (init_from)")
        if self.whiten not in (None, "zca", "pca"):
            raise ValueError(f"whiten must be 'zca' or 'pca', got {self.whiten!r}")
        if int(self.eda) < 0:
            raise ValueError(f"eda (augmented copies per text) must be >= 0, got {self.eda}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be at least 1, got {self.patience}")
        if self.ema is not None and not (isinstance(self.ema, (int, float)) and 0.0 < self.ema < 1.0):
            raise ValueError(f"ema (the moving average's decay) must be in (0, 1), e.g. 0.999, got {self.ema!r}")
        if isinstance(self.accumulate, bool) or not isinstance(self.accumulate, int) or self.accumulate < 1:
            raise ValueError(f"accumulate (micro-batches per update) must be an integer >= 1, got {self.accumulate!r}")


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
        """What was evaluated: the moving average of the weights when the run kept one."""
        return self.state.inference_variables


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message names the step."""


def _resolve_model(config: TrainConfig, model, data: Dataset):
    """(module, registry spec or None, fixed task or None)."""
    if not isinstance(model, str):
        return with_precision(model, config.dtype), None, None
    spec = registry.get_spec(model)
    overrides = registry.adapt_config(model, data.input_shape, data.num_outputs, data.model_config)
    if config.init is not None:
        if "kernel_init" not in spec.config:
            raise ValueError(f"model {model!r} takes no kernel_init, so --init does not apply")
        overrides["kernel_init"] = config.init
    overrides.update(config.model_overrides)
    fixed_task = None if spec.task in registry.DATA_DEFINED_TASKS else spec.task
    return registry.create_model(model, dtype=config.dtype, **overrides), spec, fixed_task


# Tasks trained on class labels, whose model's num_classes must cover the data's.
_LABEL_TASKS = ("classification", "hierarchical_classification", "building_floor", "segmentation")


def _check_data_fits(data: Dataset, task: Task, module, model_name: str) -> None:
    """Raise ValueError when ``data`` cannot train ``module`` on ``task`` as asked: values
    that are not finite or labels out of range (`Dataset.check_values`), a binary model on
    multi-class labels, a classifier on regression targets or the reverse, or a model
    with fewer outputs than the data has classes."""
    data.check_values()
    what = f"model {model_name!r} ({task.name})"
    if task.name == "binary_classification":
        labels = np.unique(np.concatenate([np.asarray(y).reshape(-1) for _, _, y in data.splits()]))
        if (data.num_classes is not None and data.num_classes != 2) or not set(labels.tolist()) <= {0, 1}:
            raise ValueError(
                f"{what} has one output unit for two classes (labels 0 and 1), but dataset "
                f"{data.name!r} has {data.num_classes or len(labels)} classes (labels "
                f"{labels.min():g} to {labels.max():g}): choose a 2-class dataset (xor, circles) or "
                "a multi-class model (mlp)"
            )
    elif task.name in _LABEL_TASKS and data.task != (
        "segmentation" if task.name == "segmentation" else "classification"
    ):
        raise ValueError(f"{what} predicts class labels, but dataset {data.name!r} has {data.task} targets")
    elif task.name == "reconstruction":
        _check_reconstructable(data, what, getattr(module, "reconstruction_loss", "cross_entropy"))
    elif task.name == "regression" and data.task == "classification":
        raise ValueError(
            f"{what} predicts real-valued targets, but dataset {data.name!r} has class "
            "labels: choose a classifier or a regression dataset"
        )
    outputs = next(
        (getattr(module, k) for k in ("num_classes", "num_outputs") if isinstance(getattr(module, k, None), int)), None
    )
    if task.name in _LABEL_TASKS and isinstance(outputs, int) and data.num_classes > outputs:
        raise ValueError(
            f"{what} has {outputs} outputs, but dataset {data.name!r} has "
            f"{data.num_classes} classes (labels up to {data.num_classes - 1})"
        )


def _check_reconstructable(data: Dataset, what: str, loss: str) -> None:
    """A model that reconstructs its input needs real-valued inputs, and in [0, 1] when
    its loss is binary cross-entropy (a sigmoid decoder)."""
    for split, x, _ in data.splits():
        if not np.issubdtype(np.asarray(x).dtype, np.floating):
            raise ValueError(f"{what} reconstructs real-valued inputs, but dataset {data.name!r} holds {x.dtype} ids")
        if loss == "cross_entropy" and x.size and (x.min() < 0 or x.max() > 1):
            raise ValueError(
                f"{what} reconstructs through a sigmoid (binary cross-entropy), but dataset "
                f"{data.name!r}'s x_{split} ranges over [{x.min():g}, {x.max():g}], not [0, 1]: "
                "scale the data or use reconstruction_loss='squared_error'"
            )


def _does_not_fit(error: Exception, model_name: str, spec, data: Dataset) -> ValueError:
    """The error of a model that cannot be built on the data's examples, in one line, with a
    hint when the model was defined for images of another size."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    message = (
        f"model {model_name!r} cannot run on dataset {data.name!r}'s examples of shape "
        f"{data.input_shape} ({type(error).__name__}: {first})"
    )
    defined = None if spec is None else tuple(spec.input_shape)
    if defined and len(defined) == 3 and len(data.input_shape) == 3 and defined != data.input_shape:
        message += (
            f"; it is defined on {defined[0]}x{defined[1]} images: resize the data, e.g. --data image_size={defined[0]}"
        )
    elif defined and defined != data.input_shape:
        message += f"; it is defined on examples of shape {defined}"
    return ValueError(message)


def _learning_rule_step(spec, model, task, config: TrainConfig):
    rule = spec.learning_rule
    params = inspect.signature(rule).parameters
    hparams = {"learning_rate": config.learning_rate} if "learning_rate" in params else {}
    return make_rule_step(model, task, rule, **hparams)


def _epoch_metrics(sums: list[dict], task: Task, prefix: str) -> dict:
    """Sum per-batch metric sums on the host, divide by the example count, and let the task
    form what is not a mean (`Task.summarize`)."""
    total = jax.tree.map(lambda *xs: float(np.sum(xs)), *jax.device_get(sums))
    count = max(total.pop("count"), 1.0)
    return {f"{prefix}{k}": v for k, v in task.summarize({k: v / count for k, v in total.items()}).items()}


def _check_finite(batch_sums: list[dict], first_step: int, epoch: int) -> None:
    losses = np.asarray([float(s["loss"]) / max(float(s["count"]), 1.0) for s in jax.device_get(batch_sums)])
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        i = int(bad[0])
        raise NonFiniteLossError(
            f"non-finite training loss ({losses[i]}) at step {first_step + i + 1} "
            f"(epoch {epoch}, batch {i + 1}); training stopped. The data was checked (finite "
            "inputs, labels in range), so the likely cause is the optimisation: try a smaller "
            "learning rate, gradient clipping (clip_norm) or another initializer. Checkpoints "
            "of earlier epochs, if any, are kept."
        )


def _relative_change(new, old) -> float:
    diff = sum(float(np.sum((a - b) ** 2)) for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(old)))
    norm = sum(float(np.sum(b**2)) for b in jax.tree.leaves(old))
    return math.sqrt(diff / norm) if norm > 0 else math.sqrt(diff)


def evaluate(model, variables, x, y, *, task: str | Task = "classification", batch_size: int = 512, mesh=None) -> dict:
    """Mean metrics of ``model`` with ``variables`` on ``(x, y)`` in inference mode.

    x: (N, *input_shape); y: (N,) labels, (N, K) targets or (N, T) target tokens (the
    task says whether the model also sees y: ``Task.inputs``). Returns e.g.
    ``{"loss": ..., "accuracy": ...}``.
    """
    task = get_task(task) if isinstance(task, str) else task
    mesh = make_mesh() if mesh is None else mesh
    return _eval(make_eval_step(model, task), task, replicate(variables, mesh), x, y, batch_size, mesh)


def _eval(eval_step, task: Task, variables, x, y, batch_size: int, mesh, prefix: str = "") -> dict:
    sums = [
        eval_step(variables, shard_batch(b, mesh))
        for b in iterate_batches(x, y, batch_size, seed=0, epoch=0, shuffle=False, pad=True)
    ]
    return _epoch_metrics(sums, task, prefix)


def fit(
    model="mlp",
    data: Dataset | str | None = None,
    *,
    config: TrainConfig | None = None,
    workdir: str | None = None,
    resume: bool = False,
    progress: bool = True,
    initial_variables: dict | None = None,
    tensorboard: bool | None = None,
    log_histograms: bool = False,
    log_images: int = 0,
    profile: str | None = None,
    **overrides,
) -> FitResult:
    """Train ``model`` (a registered name or a flax module) on ``data``.

    ``initial_variables``: variables to start from (e.g. layer-wise pretrained weights,
    `zoo.train.pretrain`); each one given replaces the fresh initialisation and must have
    its shape, the rest stay as initialised. (``config.init_from`` does the same from a
    checkpoint on disk.)

    Keyword ``overrides`` replace fields of ``config`` (a `TrainConfig`), e.g.
    ``fit("mlp", data, epochs=5, optimizer="sgd", learning_rate=0.1)``. With ``workdir`` the
    run writes ``config.json``, ``metrics.jsonl`` and a checkpoint each epoch there;
    ``resume=True`` continues from the latest checkpoint.

    Logging (`zoo.train.tensorboard`): ``tensorboard`` writes TensorBoard event files into
    ``workdir`` (default: when there is a work dir and tensorboardX is installed);
    ``log_histograms`` adds the parameters' histograms each epoch, ``log_images`` that many
    training images of each epoch's first batch as the model sees them (augmented).
    ``profile``: a folder for a `jax.profiler` trace of `PROFILE_STEPS` train steps (from
    the second step on: the first compiles), viewable in TensorBoard or Perfetto.
    """
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    tensorboard = _check_logging(tensorboard, log_histograms, log_images, workdir)
    # config.json must name what was trained: a registered name, or the module's class.
    config = dataclasses.replace(config, model=model if isinstance(model, str) else type(model).__name__)
    if data is None or isinstance(data, str):
        data = load_dataset(data or config.dataset, seed=config.seed, data_dir=config.data_dir, **config.dataset_kwargs)
    config = dataclasses.replace(config, dataset=data.name)
    if config.validation_fraction > 0 and data.x_val is None:
        data = data.with_validation(config.validation_fraction, seed=config.seed)
    if config.eda:  # after the split: no copy of a validation text may land in training
        data = augment_text_dataset(data, num_aug=config.eda, seed=config.seed)
    if config.whiten:  # after the split too: validation inputs must not shape the statistics
        data = data.whitened(config.whiten)

    module, spec, fixed_task = _resolve_model(config, model, data)
    task = get_task(config.task or fixed_task or data.task)
    _check_data_fits(data, task, module, config.model)
    learns_by_rule = spec is not None and not spec.learns_by_gradient
    if learns_by_rule and (config.trainable or config.frozen):
        raise ValueError(f"model {spec.name!r} learns by a rule, not an optimizer: trainable/frozen do not apply")
    augment = parse_augment(config.augment)
    check_images(data.input_shape, augment)
    if learns_by_rule and augment:
        raise ValueError(f"model {spec.name!r} learns by a rule, which takes no augmentation")
    if learns_by_rule and config.dtype != "float32":
        raise ValueError(f"model {spec.name!r} learns by a rule, which runs in float32: dtype does not apply")
    if learns_by_rule and spec.learning_rule is None:
        raise ValueError(f"model {spec.name!r} has hand-wired weights; there is nothing to fit")
    if learns_by_rule and (config.ema is not None or config.accumulate > 1):
        raise ValueError(f"model {spec.name!r} learns by a rule, not an optimizer: ema and accumulate do not apply")
    mesh = make_mesh(select_devices(config.num_devices))

    n_train = data.num_train
    steps_per_epoch = num_batches(n_train, config.batch_size, config.drop_remainder)
    # Optimizer updates in the run: one per `accumulate` micro-batches (steps).
    run_updates = config.epochs * steps_per_epoch // config.accumulate
    if run_updates < 1:
        raise ValueError(
            f"accumulate={config.accumulate} micro-batches per update, but the run has only "
            f"{config.epochs * steps_per_epoch} steps: no update would be made"
        )
    optimizer_kwargs = dict(config.optimizer_kwargs)
    schedule_length = None  # updates, when the schedule's length follows from config.epochs
    schedule_kwargs = optimizer_kwargs.get("schedule_kwargs") or {}
    if optimizer_kwargs.get("schedule") in ("cosine", "warmup_cosine") and "decay_steps" not in schedule_kwargs:
        # The run knows its length: decay over all of it unless told otherwise.
        schedule_length = run_updates
        optimizer_kwargs["schedule_kwargs"] = {"decay_steps": schedule_length, **schedule_kwargs}
    tx = optim.create(config.optimizer, config.learning_rate, num_examples=n_train, **optimizer_kwargs)
    # The learning rate of each update, as the optimizer evaluates it: logged per step.
    learning_rate = optim.learning_rate_schedule(
        config.learning_rate, optimizer_kwargs.get("schedule"), optimizer_kwargs.get("schedule_kwargs")
    )
    if config.trainable or config.frozen:
        # Frozen parameters get zero updates; a pattern matching nothing fails in tx.init.
        tx = finetune.freeze(tx, trainable=config.trainable or None, frozen=config.frozen or None)
    if config.dtype == "float16":  # the train step reads the scale from opt_state (zoo.optim.loss_scale_of)
        tx = optim.dynamic_loss_scale(tx)
    if config.accumulate > 1:
        # Averages the gradients of `accumulate` steps, then makes one update with them;
        # the optimizer's own count (and so its schedule) advances once per update.
        tx = optax.MultiSteps(tx, every_k_schedule=config.accumulate)
    # Initialised on what the task feeds the model (x, or x and y for teacher forcing).
    inputs = example_inputs(
        task, data.input_shape, example_dtype(data.x_train), data.y_train.shape[1:], data.y_train.dtype
    )
    try:
        state = run_once(lambda: create_train_state(module, tx, data.input_shape, seed=config.seed, inputs=inputs))
    except (TypeError, ZeroDivisionError, IndexError) as e:  # ValueErrors already say what is wrong
        raise _does_not_fit(e, config.model, spec, data) from e
    if config.init_from is not None or initial_variables is not None:
        # Read before the work dir is touched: a bad source leaves no half-made run behind.
        variables = (
            finetune.init_from_variables(module, state.variables, initial_variables)
            if initial_variables is not None
            else finetune.init_from_checkpoint(module, state.variables, config.init_from, reset_head=config.reset_head)
        )
        params = variables.pop("params")
        state = state.replace(params=params, model_state=variables, opt_state=tx.init(params))
    if config.ema is not None:  # the average starts at the initial weights (a copy: the step donates both)
        state = state.replace(ema_params=jax.tree.map(jnp.copy, state.params))
    keep_state = (
        finetune.frozen_state(
            {k: state.model_state[k] for k in state.mutable},
            trainable=config.trainable or None,
            frozen=config.frozen or None,
        )
        if config.trainable or config.frozen
        else None
    )
    train_step = (
        _learning_rule_step(spec, module, task, config)
        if learns_by_rule
        else make_train_step(module, task, tx, keep_state, augment, ema_decay=config.ema, accumulate=config.accumulate)
    )
    eval_step = make_eval_step(module, task)

    stopper = EarlyStopping(task.mode, config.patience, config.min_delta, config.target, config.min_weight_change)
    if resume and workdir is None:
        raise ValueError("resume=True needs a workdir to resume from")
    logs = _Logs(
        learning_rate=None if learns_by_rule else learning_rate,
        accumulate=config.accumulate,
        tensorboard=tensorboard,
        histograms=log_histograms,
        images=log_images if is_image_batch(data.x_train[:1]) else 0,
        augment=augment,
    )
    run = _Run(workdir, config, module, resume, schedule_length, logs)
    profiler = _Profiler(profile) if profile is not None else None
    # Ctrl-C from here on stops at the next step boundary, with a checkpoint.
    with run.lock():
        try:
            with _Interrupt() as interrupt:
                bar = None
                try:
                    state, stopper, start = run.start(state, stopper)
                    state = replicate(state, mesh)
                    bar = _progress_bar(progress, config.epochs, steps_per_epoch, start.epoch, start.batches)
                    state, stop_reason = _train_epochs(
                        state,
                        train_step,
                        eval_step,
                        data,
                        config,
                        mesh,
                        task,
                        stopper,
                        run,
                        start,
                        bar,
                        interrupt,
                        profiler,
                    )
                finally:
                    if bar is not None:
                        bar.close()
                    if profiler is not None:
                        profiler.close()
                    run.close()

            test_metrics = None
            if data.x_test is not None and data.num_test:
                test_metrics = _eval(
                    eval_step, task, state.inference_variables, data.x_test, data.y_test, config.eval_batch_size, mesh
                )
                run.log({"event": "test", **test_metrics})
                run.log_scalars(int(state.step), {f"test_{k}": v for k, v in test_metrics.items()})
        finally:
            run.close_tensorboard()
    return FitResult(module, state, run.history, test_metrics, stop_reason, task, config)


# Train steps a `fit(profile=...)` trace covers.
PROFILE_STEPS = 5


class _Profiler:
    """A `jax.profiler` trace into ``logdir`` of `PROFILE_STEPS` train steps, starting
    after the run's first step (which compiles) has finished."""

    def __init__(self, logdir: str, steps: int = PROFILE_STEPS):
        self.logdir, self.steps, self.active, self.done = os.fspath(logdir), steps, False, False

    def after_step(self, steps_run: int, state) -> None:
        """Called after each step with the number of steps this call of `fit` has run."""
        if self.done:
            return
        if steps_run == 1:
            jax.block_until_ready(state)
            jax.profiler.start_trace(self.logdir)
            self.active = True
        elif steps_run == 1 + self.steps:
            jax.block_until_ready(state)
            self.close()

    def close(self) -> None:
        if self.active:
            jax.profiler.stop_trace()
            self.active = False
        self.done = True


def _check_logging(tensorboard: bool | None, log_histograms: bool, log_images: int, workdir) -> bool:
    """Whether to write TensorBoard logs; ValueError when what was asked cannot be done."""
    if tensorboard is None:
        tensorboard = workdir is not None and tensorboard_available()
    if tensorboard and workdir is None:
        raise ValueError("TensorBoard logs are written into the work dir: give a workdir (--workdir)")
    if tensorboard and not tensorboard_available():
        raise ValueError("TensorBoard logs need tensorboardX: pip install tensorboardX (or zoo[tensorboard])")
    if (log_histograms or log_images) and not tensorboard:
        raise ValueError("histograms and images are TensorBoard logs: they need tensorboard on and a workdir")
    if isinstance(log_images, bool) or not isinstance(log_images, int) or log_images < 0:
        raise ValueError(f"log_images (images per epoch) must be an integer >= 0, got {log_images!r}")
    return bool(tensorboard)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during `fit`: the run stopped at a step boundary; the message says
    what was saved and how to resume."""


class _Interrupt:
    """While active (main thread only), SIGINT sets a flag the loop reads between steps,
    instead of raising wherever Python happens to be (mid-save, inside a jit'd call)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


@dataclasses.dataclass
class _Start:
    epoch: int = 1  # the first epoch to run
    batches: int = 0  # batches of that epoch already done (a run interrupted mid-epoch)
    sums: list = dataclasses.field(default_factory=list)  # their metric sums
    stop_reason: str = "epoch limit reached"
    stopped: bool = False


@dataclasses.dataclass
class _Logs:
    """What a run logs besides its epoch metrics."""

    learning_rate: Any = None  # optax schedule of the update count; None for learning rules
    accumulate: int = 1  # steps per optimizer update
    tensorboard: bool = False
    histograms: bool = False
    images: int = 0  # training images per epoch, when the inputs are images
    augment: Any = ()  # the augmentation pipeline, to show images as the model sees them

    def step_records(self, epoch: int, first_step: int, sums: list) -> list[dict]:
        """One metrics.jsonl line per step of ``sums`` (host copies of the steps' metric
        sums), the first being step ``first_step + 1``: its training loss and, for a
        gradient-trained model, the learning rate of the update it takes part in."""
        records = []
        for i, s in enumerate(sums):
            step = first_step + i + 1
            record = {"event": "step", "epoch": epoch, "step": step, "batch_loss": float(s["loss"] / s["count"])}
            if self.learning_rate is not None:
                record["learning_rate"] = float(self.learning_rate((step - 1) // self.accumulate))
            records.append(record)
        return records


class _Run:
    """A run's work dir: config, lock, checkpoints and the metrics log, kept in agreement.

    The metrics log is the history: an epoch's line is written before its checkpoint, and
    resuming cuts the log back to the restored epoch, so a kill between the two, or a
    fallback to an older checkpoint, never leaves a line without its checkpoint or the
    reverse. Per-step lines ("event": "step") are written with their epoch's line and cut
    back with it. TensorBoard events mirror the log (a resumed run purges the steps it
    redoes). Without a work dir every method is a no-op and the history lives in memory.
    """

    def __init__(self, workdir, config, module, resume, schedule_length, logs: _Logs | None = None):
        self.workdir, self.config, self.resume = workdir, config, resume
        self.logs = logs or _Logs()
        self.board: TensorBoardLog | None = None
        self.saved_config = {**dataclasses.asdict(config), "module": repr(module), "schedule_length": schedule_length}
        self.history: list[dict] = []
        self.checkpointer = None
        # Every process of a multi-process run saves its shards of the checkpoints; process 0
        # alone holds the lock and writes the log.
        self.leader = jax.process_index() == 0
        self.metrics_path = os.path.join(workdir, "metrics.jsonl") if workdir is not None and self.leader else None

    def lock(self):
        return workdir_lock(self.workdir) if self.workdir is not None and self.leader else contextlib.nullcontext()

    def start(self, state, stopper):
        """(state, stopper, _Start): fresh, or restored from the newest intact checkpoint."""
        start = _Start()
        if self.workdir is None:
            return state, stopper, start
        write_config(self.workdir, self.saved_config, resume=self.resume, defaults=dataclasses.asdict(TrainConfig()))
        self.checkpointer = Checkpointer(self.workdir)
        if not self.resume or not self.checkpointer.epochs():
            self._rewrite_log(last_epoch=0)
            self._open_tensorboard(purge_step=None)
            return state, stopper, start
        state, meta, skipped = self.checkpointer.restore_latest_intact(state)
        self._open_tensorboard(purge_step=int(state.step) + 1)
        if skipped and self.leader:  # one process moves them; every process skipped them
            moved = self.checkpointer.move_aside([epoch for epoch, _ in skipped])
            for (epoch, reason), path in zip(skipped, moved):
                logger.warning(
                    "resume: skipped checkpoint of epoch %d (%s); moved to %s",
                    epoch,
                    reason.split(" cannot be restored ")[-1],
                    path,
                )
        for k, v in meta["early_stopping"].items():
            setattr(stopper, k, v)
        partial = meta.get("partial")
        if partial:
            # The step sums are float32 on the device: summing them as float32 again keeps the
            # epoch's metrics those of an uninterrupted run, bit for bit.
            sums = [{k: np.float32(v) for k, v in batch.items()} for batch in partial["sums"]]
            start = _Start(partial["epoch"], partial["batches"], sums)
        else:
            start = _Start(meta["epoch"] + 1)
        if meta["stopped"]:
            start = _Start(
                self.config.epochs + 1, stop_reason=meta.get("stop_reason") or start.stop_reason, stopped=True
            )
        self._rewrite_log(last_epoch=meta["epoch"])
        return state, stopper, start

    def _rewrite_log(self, last_epoch: int) -> None:
        """Keep the log's epoch lines up to ``last_epoch`` (the history), drop the rest."""
        kept = []
        if self.metrics_path is None:
            return
        if os.path.exists(self.metrics_path):
            with open(self.metrics_path) as f:
                for line in f:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a kill mid-write
                    if (
                        isinstance(record, dict)
                        and isinstance(record.get("epoch"), int)
                        and record["epoch"] <= last_epoch
                    ):
                        kept.append(record)
        self.history = [r for r in kept if "event" not in r]
        tmp = self.metrics_path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)
        os.replace(tmp, self.metrics_path)

    def log(self, record: dict) -> None:
        self.log_lines([record])

    def log_lines(self, records: list[dict]) -> None:
        if self.metrics_path is not None:
            with open(self.metrics_path, "a") as f:
                f.writelines(json.dumps(r) + "\n" for r in records)

    def _open_tensorboard(self, purge_step: int | None) -> None:
        if self.logs.tensorboard and self.leader:
            self.board = TensorBoardLog(self.workdir, purge_step=purge_step)

    def log_scalars(self, step: int, values: dict) -> None:
        if self.board is not None:
            self.board.scalars(step, values)

    def end_steps(self, epoch: int, first_step: int, sums: list, state, first_batch) -> None:
        """Log an epoch's steps (``sums`` on the host); ``first_batch``: the epoch's first
        batch and its step number, for images (None on a resumed epoch)."""
        records = self.logs.step_records(epoch, first_step, sums)
        self.log_lines(records)
        if self.board is None:
            return
        for record in records:
            self.board.scalars(record["step"], {k: v for k, v in record.items() if k not in ("event", "epoch", "step")})
        if self.logs.images and first_batch is not None:
            batch, step = first_batch
            x = batch["x"]
            if self.logs.augment:  # the step's own augmentation key: the images the model saw
                x = augment_batch(step_rngs(state.rng, step)["augment"], x, self.logs.augment)
            self.board.images(step + 1, "train_inputs", np.asarray(x)[: self.logs.images])

    def _save(self, epoch: int, state, meta: dict) -> None:
        """Checkpoint ``epoch``, replacing the partial save of an interrupted ``epoch``."""
        if epoch in self.checkpointer.epochs():
            self.checkpointer.delete(epoch)
        self.checkpointer.save(epoch, state, meta)

    def end_epoch(self, record: dict, state, stopper, reason) -> None:
        self.history.append(record)
        self.log(record)  # before the checkpoint: see the class docstring
        if self.board is not None:
            self.board.scalars(record["step"], {k: v for k, v in record.items() if k not in ("epoch", "step")})
            if self.logs.histograms:
                self.board.histograms(record["step"], jax.device_get(state.params))
                if state.ema_params is not None:
                    self.board.histograms(record["step"], jax.device_get(state.ema_params), prefix="ema_params")
            self.board.flush()
        if self.checkpointer is not None:
            epoch = record["epoch"]
            meta = {"epoch": epoch, "early_stopping": stopper.state_dict(), "stopped": reason is not None}
            self._save(epoch, state, {**meta, "stop_reason": reason})

    def save_partial(self, epoch: int, batches: int, sums: list, state, stopper) -> str:
        """Checkpoint a run stopped after ``batches`` steps of ``epoch``; returns what to tell
        the user."""
        if self.checkpointer is None:
            return "no work dir, so nothing was saved"
        host_sums = [{k: float(v) for k, v in s.items()} for s in jax.device_get(sums)]
        partial = {"epoch": epoch, "batches": batches, "sums": host_sums}
        meta = {"epoch": epoch - 1, "early_stopping": stopper.state_dict(), "stopped": False}
        self._save(epoch, state, {**meta, "stop_reason": None, "partial": partial})
        return (
            f"checkpoint saved after step {int(state.step)} (epoch {epoch}, batch {batches}); "
            f"continue with: train.py ... --workdir {self.workdir} --resume"
        )

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()

    def close_tensorboard(self) -> None:
        if self.board is not None:
            self.board.close()
            self.board = None


def _train_epochs(
    state, train_step, eval_step, data, config, mesh, task, stopper, run, start, bar, interrupt, profiler=None
):
    """The epoch loop; returns (state, stop reason)."""
    if start.stopped:
        return state, start.stop_reason
    steps_run = 0
    for epoch in range(start.epoch, config.epochs + 1):
        t0 = time.perf_counter()
        # A host copy of the weights only when a stopping rule needs their change.
        old_params = jax.device_get(state.params) if config.min_weight_change is not None else None
        skip = start.batches if epoch == start.epoch else 0
        sums = list(start.sums) if skip else []
        first_step = int(state.step) - skip
        batches = iterate_batches(
            data.x_train,
            data.y_train,
            config.batch_size,
            seed=config.seed,
            epoch=epoch,
            drop_remainder=config.drop_remainder,
            fill=True,  # every step one shape: one train step compiled, not a second for the last
        )
        first_batch = None
        for b in itertools.islice(batches, skip, None):
            if not sums and run.logs.images:
                first_batch = (b, int(state.step))
            state, s = train_step(state, shard_batch(b, mesh))
            sums.append(s)
            steps_run += 1
            if profiler is not None:
                profiler.after_step(steps_run, state)
            if bar is not None:
                bar.update(1)
                if len(sums) % 10 == 1:
                    bar.set_postfix(epoch=epoch, loss=f"{float(s['loss'] / s['count']):.4f}")
            if interrupt.requested:
                raise TrainingInterrupted("interrupted: " + run.save_partial(epoch, len(sums), sums, state, stopper))
        sums = jax.device_get(sums)  # waits for the epoch's steps
        train_seconds = time.perf_counter() - t0
        _check_finite(sums, first_step, epoch)
        run.end_steps(epoch, first_step, sums, state, first_batch)
        record = {"epoch": epoch, "step": int(state.step), **_epoch_metrics(sums, task, "train_")}
        if data.x_val is not None:
            record.update(
                _eval(
                    eval_step,
                    task,
                    state.inference_variables,
                    data.x_val,
                    data.y_val,
                    config.eval_batch_size,
                    mesh,
                    "val_",
                )
            )
        record["epoch_seconds"] = time.perf_counter() - t0
        # Training throughput: the epoch's examples over the time its steps took (a resumed
        # epoch counts only the steps run now).
        record["examples_per_second"] = float(sum(float(s["count"]) for s in sums[skip:])) / max(train_seconds, 1e-9)
        if bar is not None:
            bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k.startswith(("train_loss", "val_"))})
        weight_change = None if old_params is None else _relative_change(jax.device_get(state.params), old_params)
        reason = stopper.update(epoch, record.get(f"val_{task.monitor}"), weight_change)
        run.end_epoch(record, state, stopper, reason)
        if reason is not None:
            return state, reason
    return state, "epoch limit reached"


def _progress_bar(enabled: bool, epochs: int, steps_per_epoch: int, start_epoch: int, done: int = 0):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=epochs * steps_per_epoch,
        initial=(start_epoch - 1) * steps_per_epoch + done,
        unit="step",
        file=sys.stderr,
        dynamic_ncols=True,
        desc="train",
    )
