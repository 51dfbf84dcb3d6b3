"""Training engine: train state, jit'd steps per task kind, the loop, checkpoints, sharding,
fine-tuning and freezing (`zoo.train.finetune`), config files (`zoo.train.config_files`),
TensorBoard logs (`zoo.train.tensorboard`)."""

from zoo.train.checkpoint import CheckpointError
from zoo.train.loop import EarlyStopping, FitResult, NonFiniteLossError, TrainConfig, TrainingInterrupted, evaluate, fit
from zoo.train.config_files import load_config
from zoo.train.state import TrainState, create_train_state
from zoo.tasks import TASKS, Task, get_task

__all__ = [
    "CheckpointError",
    "EarlyStopping",
    "FitResult",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainingInterrupted",
    "TrainState",
    "Task",
    "TASKS",
    "create_train_state",
    "evaluate",
    "fit",
    "get_task",
    "load_config",
]
