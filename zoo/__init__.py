"""zoo: a JAX/Flax functional model zoo.

import zoo
model = zoo.create_model("mlp", hidden_sizes=(64,))
data = zoo.data.load_dataset("digits")
result = zoo.fit("mlp", data, epochs=5)
"""

from zoo.registry import create_model, list_models, model_info
from zoo import models  # noqa: F401  (registers every family: models import the registry, not back)

__version__ = "0.1.0"

# Heavier submodules load on first use, keeping `import zoo` fast.
_LAZY = {
    "fit": ("zoo.train", "fit"),
    "evaluate": ("zoo.train", "evaluate"),
    "data": ("zoo.data", None),
    "optim": ("zoo.optim", None),
    "train": ("zoo.train", None),
    "nn": ("zoo.nn", None),
    "explain": ("zoo.explain", None),
    "interop": ("zoo.interop", None),
    "finetune": ("zoo.train.finetune", None),
    "cam": ("zoo.explain", "cam"),
    "saliency": ("zoo.explain", "saliency"),
    "save_pretrained": ("zoo.pretrained", "save_pretrained"),
    "load_pretrained": ("zoo.pretrained", "load_pretrained"),
    "export": ("zoo.exporting", "export"),
    "features": ("zoo.intermediates", "features"),
    "feature_info": ("zoo.intermediates", "feature_info"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    import importlib

    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)


__all__ = [
    "create_model",
    "list_models",
    "model_info",
    "fit",
    "evaluate",
    "data",
    "optim",
    "explain",
    "cam",
    "saliency",
    "interop",
    "finetune",
    "save_pretrained",
    "load_pretrained",
    "export",
    "features",
    "feature_info",
]
