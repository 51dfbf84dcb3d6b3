"""Weights from other frameworks: PyTorch state dicts (torchvision key names) into zoo models.

    from zoo import interop
    variables = interop.import_torch_state_dict(model, variables,
                                                interop.load_torch_state_dict("resnet18.pth"))

Imports zoo.nn, zoo.models and the registry only, never the training engine; a new head
for another class count is `zoo.train.finetune.replace_head`.
"""

from zoo.interop.torch import import_torch_state_dict, load_torch_state_dict

__all__ = ["import_torch_state_dict", "load_torch_state_dict"]
