"""Weights from other frameworks: PyTorch state dicts (torchvision key names) into zoo CNNs,
and torch.nn.RNN / LSTM / GRU weights into zoo recurrent layers. Imports zoo.nn,
zoo.models and the registry only, never the training engine.

    variables = interop.import_torch_state_dict(model, variables,
                                                interop.load_torch_state_dict("resnet18.pth"))
    params = interop.import_torch_rnn("lstm", lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
"""

from zoo.interop.torch import import_torch_state_dict, load_torch_state_dict
from zoo.interop.torch_rnn import from_torch as import_torch_rnn

__all__ = ["import_torch_state_dict", "import_torch_rnn", "load_torch_state_dict"]
