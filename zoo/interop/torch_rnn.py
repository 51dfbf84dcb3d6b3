"""PyTorch recurrent weights as `zoo.nn.recurrence` cell parameters.

One direction of one layer of ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` maps onto the cells'
fused layout, gate order unchanged: Elman and LSTM ``kernel = concat([weight_ih.T,
weight_hh.T])``, ``bias = bias_ih + bias_hh``; GRU ``input_kernel = weight_ih.T``,
``recurrent_kernel = weight_hh.T``, ``bias = bias_ih + [bias_hh_r, bias_hh_z, 0]``,
``recurrent_bias = bias_hh_n`` (inside ``r * (W_hn h + b_hn)``, it cannot be merged).
NumPy float32 arrays out, for ``params["layers_{k}"]["cell"]`` of a `StackedRNN` (or its
``forward_rnn`` / ``backward_rnn``).
"""

from __future__ import annotations

import numpy as np

from zoo.nn.recurrence import CELLS


def _array(a) -> np.ndarray:
    """A NumPy float32 copy of a NumPy array or a (CPU, detached) torch tensor."""
    return np.asarray(a, np.float32)


def from_torch(kind: str, weight_ih, weight_hh, bias_ih=None, bias_hh=None) -> dict[str, np.ndarray]:
    """One PyTorch direction/layer's weights (``weight_ih_l0`` ...) as the parameters of cell
    ``kind`` "rnn", "lstm" or "gru" (reset-after): weight_ih (G*H, I), weight_hh (G*H, H),
    biases (G*H,) or None (a layer built with ``bias=False``; the cell then has
    ``use_bias=False``), G = 1, 4, 3. Returns ``{name: float32 array}``."""
    w_ih, w_hh = _array(weight_ih), _array(weight_hh)
    if kind == "gru":
        H = w_hh.shape[1]
        out = {"input_kernel": w_ih.T, "recurrent_kernel": w_hh.T}
        if bias_ih is not None:
            b_ih, b_hh = _array(bias_ih), _array(bias_hh)
            out["bias"] = b_ih + np.concatenate([b_hh[: 2 * H], np.zeros(H, np.float32)])
            out["recurrent_bias"] = b_hh[2 * H :]
        return out
    if kind not in ("rnn", "lstm"):
        raise ValueError(f"unknown cell {kind!r}; expected one of {tuple(CELLS)}")
    out = {"kernel": np.concatenate([w_ih.T, w_hh.T], 0)}
    if bias_ih is not None:
        out["bias"] = _array(bias_ih) + _array(bias_hh)
    return out
