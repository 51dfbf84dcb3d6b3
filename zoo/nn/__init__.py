"""Building blocks below every model family; nothing here imports the rest of zoo.

One file per concern: `activations`, `initializers`, `checks` (input shapes, counts, config
values), `tokens` (ids shared by text data and models), `linear`, `normalization`,
`pooling` (the one max pool, with argmax indices, and max-unpool), `shapes` (the one
output-size formula), `conv` (the seeds' worked examples), `fastconv` (convolutions for
CPU), `conv_transpose` (transposed convolution), `recurrence` (cells, the one scan runner,
recurrent layers, attention pooling), `fastrnn` (the fast LSTM/GRU sequence), `cudnn_lstm`
(the LSTM through cuDNN), `precision` (mixed precision for any module), `bridge` (Linen -> NNX).
"""

from zoo.nn.activations import ACTIVATIONS, get_activation
from zoo.nn.bridge import to_nnx
from zoo.nn.checks import check_input
from zoo.nn.initializers import get_initializer, list_initializers

__all__ = ["ACTIVATIONS", "get_activation", "check_input", "get_initializer", "list_initializers", "to_nnx"]
