"""An example run config in the ml_collections style of the Flax examples and big_vision.

    python train.py --config configs/mlp_digits.py --workdir runs/mlp
    python train.py --config configs/mlp_digits.py --ema 0.999   # command-line options override

Keys are zoo.train.TrainConfig's fields.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = "mlp"
    config.dataset = "digits"
    config.model_overrides = {"hidden_sizes": (128,), "dropout_rate": 0.1}
    config.epochs = 20
    config.batch_size = 32
    config.optimizer = "adam"
    config.learning_rate = 3e-3
    config.optimizer_kwargs = {"schedule": "cosine"}
    config.ema = 0.99
    config.seed = 0
    return config
