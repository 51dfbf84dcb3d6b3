"""Recurrent classifiers (many-to-one): a stacked, optionally bidirectional Elman RNN, LSTM
or GRU encoder (`zoo.nn.recurrence`), pooled over time, then a dense layer; float features
or token ids. Seeds: surf2019-cha-rnn-hierarchical-a and kang-lecture4.

One module, `SequenceClassifier`, registered under several names (``rnn``, ``lstm``,
``peephole_lstm``, ``gru``, ``gru_seed``, ``gru_kang``, ``attention_lstm``) that differ in
their defaults. ``pooling="last"`` takes the last valid output, ``"attention"`` Raffel &
Ellis's feed-forward attention (`AttentionPooling`). With ``vocab_size`` it reads token
ids of `zoo.data.text.Vocabulary` (0-padded: lengths follow from the padding).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoo.nn import check_input
from zoo.nn.recurrence import CellOptions, AttentionPooling, StackedRNN, lengths_from_padding, validate_cell
from zoo.registry import register_model

SURF = "surf2019-cha-rnn-hierarchical-a (Cha, Recurrent Neural Networks)"
KANG = "kang-lecture4 (Pilsung Kang, Lecture 4: Neural Networks)"

POOLINGS = ("last", "attention")


class SequenceClassifier(CellOptions):
    """Recurrent encoder, pooling over time, then a dense layer: x (B, T, *F) float32 ->
    (B, num_classes) logits, or with ``vocab_size`` token ids (B, T) int (0-padded, embedded
    to ``embedding_dim``; lengths from the padding unless ``lengths`` (B,) is given).

    ``input_shape`` is (T, *F) (T may be None), F flattened per step (digits (8, 8, 1): 8
    steps of 8 pixels). ``pooling``: "last" (the last valid output; bidirectional: forward's
    last and backward's at t = 0) or "attention" (`AttentionPooling`; `attention_weights`
    gives the weights). Cell options as in `CellOptions`; an option of another cell than
    ``cell`` must stay at its default.
    """

    input_shape: tuple = (8, 8)
    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    merge: str = "concat"
    dropout_rate: float = 0.0
    remat: bool = False
    num_classes: int = 10
    pooling: str = "last"
    attention_size: int | None = None
    vocab_size: int | None = None
    embedding_dim: int = 64

    def __post_init__(self):
        if self.vocab_size is None and len(self.input_shape) < 2:
            raise ValueError(
                f"input_shape must be (T, features...), got {tuple(self.input_shape)} (token ids (T,) need vocab_size)"
            )
        if self.vocab_size is not None:
            if len(self.input_shape) != 1:
                raise ValueError(
                    f"with vocab_size the input is token ids: input_shape must be (T,), got {tuple(self.input_shape)}"
                )
            if int(self.vocab_size) < 2 or int(self.embedding_dim) <= 0:
                raise ValueError(
                    f"vocab_size must be >= 2 (padding and unknown ids) and embedding_dim "
                    f"positive, got {self.vocab_size} and {self.embedding_dim}"
                )
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")
        if int(self.num_classes) <= 0:
            raise ValueError(f"num_classes must be positive, got {self.num_classes}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.attention_size is not None and int(self.attention_size) <= 0:
            raise ValueError(f"attention_size must be positive or None, got {self.attention_size}")
        validate_cell(self.cell, self.hidden_size, self.cell_options())
        super().__post_init__()

    def setup(self):
        attend = self.pooling == "attention"
        if self.vocab_size is not None:
            self.embed = nn.Embed(int(self.vocab_size), int(self.embedding_dim))
        self.encoder = StackedRNN(
            cell=self.cell,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            merge=self.merge,
            dropout_rate=self.dropout_rate,
            remat=self.remat,
            return_sequences=attend,
            cell_options=self.cell_options(),
        )
        if attend:
            self.attention = AttentionPooling(self.attention_size)
        self.out = nn.Dense(self.num_classes)

    def _inputs(self, x, lengths):
        """Checked input -> ((B, T, F) float steps, lengths or None)."""
        name = f"SequenceClassifier(cell={self.cell!r}, input_shape={tuple(self.input_shape)})"
        text = self.vocab_size is not None
        x = jnp.asarray(x)
        if text and jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.int32)  # ids that travelled as floats (e.g. an init on float zeros)
        check_input(x, self.input_shape, model=name, dtype_kind="int" if text else "float")
        if x.ndim != len(self.input_shape) + 1:
            shape = ", ".join("*" if d is None else str(d) for d in self.input_shape)
            raise ValueError(f"{name} expects input of shape (B, {shape}), got {tuple(x.shape)}")
        if not text:
            return x.reshape(x.shape[:2] + (-1,)), lengths
        if not isinstance(x, jax.core.Tracer) and x.size:
            # Concrete ids (eager calls, or arrays closed over by a jit'd function) are checked
            # on the host; under tracing an out-of-range id reads as NaN (JAX's gather).
            ids = np.asarray(x)
            low, high = int(ids.min()), int(ids.max())
            if low < 0 or high >= self.vocab_size:
                raise ValueError(
                    f"{name}: token ids must be in [0, {self.vocab_size}) (vocab_size), got ids from {low} to {high}"
                )
        return self.embed(x), lengths_from_padding(x) if lengths is None else lengths

    def _encode(self, x, train, lengths):
        """-> (pooled features (B, D*H), attention weights (B, T) or None)."""
        x, lengths = self._inputs(x, lengths)
        _, outputs = self.encoder(x, lengths=lengths, train=train)
        if self.pooling == "last":
            return outputs, None
        valid = None if lengths is None else jnp.arange(x.shape[1])[None, :] < jnp.asarray(lengths)[:, None]
        return self.attention(outputs, valid)

    def forward_features(self, x, train: bool = False, lengths=None):
        """(B, T, *F) or (B, T) ids -> (B, D*H): the pooled encoder outputs."""
        return self._encode(x, train, lengths)[0]

    def attention_weights(self, x, lengths=None):
        """(B, T, *F) or (B, T) ids -> (B, T) float32 attention weights (inference mode): each
        row sums to 1 over the valid steps and is 0 on padding. Needs pooling="attention"."""
        if self.pooling != "attention":
            raise ValueError(
                f"attention weights need pooling='attention'; this classifier pools "
                f"{self.pooling!r} (valid poolings: {POOLINGS})"
            )
        return self._encode(x, False, lengths)[1]

    def head(self, h):
        """(B, D*H) -> (B, num_classes)."""
        return self.out(h)

    def __call__(self, x, train: bool = False, lengths=None):
        return self.head(self.forward_features(x, train, lengths))


_TEST = {
    "input_shape": (5, 3),
    "hidden_size": 4,
    "num_layers": 2,
    "bidirectional": True,
    "dropout_rate": 0.1,
    "num_classes": 3,
}

register_model(
    "rnn",
    SequenceClassifier,
    family="recurrent",
    task="classification",
    paper=f"Elman 1990; {SURF}, s_t = f(W x_t + U s_(t-1) + b); {KANG}, RNN basics",
    defaults={"cell": "rnn"},
    test_config=_TEST,
    description="Elman RNN classifier (torch.nn.RNN's cell); dense head on the last valid output.",
)
register_model(
    "lstm",
    SequenceClassifier,
    family="recurrent",
    task="classification",
    paper=f"Hochreiter & Schmidhuber 1997; {SURF}, LSTM; {KANG}, RNN Basic: LSTM",
    defaults={"cell": "lstm"},
    test_config=_TEST,
    description=(
        "LSTM classifier, C_t = a*i + f*C_(t-1), h_t = tanh(C_t)*o (torch.nn.LSTM's cell); "
        '``pooling`` "last" (the last valid output) or "attention" (Raffel & Ellis); '
        "``forget_bias`` added to the forget gate's initial bias."
    ),
)
register_model(
    "peephole_lstm",
    SequenceClassifier,
    family="recurrent",
    task="classification",
    paper=(
        f"Gers & Schmidhuber 2000; {SURF}, LSTM with Peephole Connection (full matrices "
        "C P; peephole='diagonal' gives Gers & Schmidhuber's element-wise form)"
    ),
    defaults={"cell": "lstm", "peephole": "full"},
    test_config={**_TEST, "peephole": "diagonal"},
    description='Peephole LSTM: f, i see C_(t-1), o sees C_t; peephole "full" (seed) or "diagonal".',
)
register_model(
    "gru",
    SequenceClassifier,
    family="recurrent",
    task="classification",
    paper="Cho et al. 2014; PyTorch/cuDNN form, reset gate applied after the recurrent product",
    defaults={"cell": "gru"},
    test_config=_TEST,
    description=(
        "GRU classifier (torch.nn.GRU's cell by default): n = tanh(W_in x + b_in + "
        "r*(W_hn h + b_hn)), h' = (1-z)*n + z*h."
    ),
)
register_model(
    "gru_seed",
    SequenceClassifier,
    family="recurrent",
    task="classification",
    paper=(
        f"{SURF}, GRU: a_t = tanh(W_a x_t + U_a (r_t*C_(t-1)) + b_a), "
        "C_t = (1-z_t)*a_t + z_t*C_(t-1) (reset before the product, Cho et al. 2014)"
    ),
    defaults={"cell": "gru", "reset_after": False},
    test_config=_TEST,
    description="GRU in the surf2019 seed's form (state C, z keeps the old state).",
)
register_model(
    "gru_kang",
    SequenceClassifier,
    family="recurrent",
    task="classification",
    paper=(
        f"{KANG}, RNN Basic: GRU: h~ = tanh(W [r*h, x]), h_t = (1-z)*h_(t-1) + z*h~ (no biases; z takes the candidate)"
    ),
    defaults={"cell": "gru", "reset_after": False, "update_convention": "take", "use_bias": False},
    test_config=_TEST,
    description="GRU in the kang-lecture4 seed's form (no biases, z gates the candidate).",
)
register_model(
    "attention_lstm",
    SequenceClassifier,
    family="recurrent",
    task="classification",
    input_dtype="int32",
    paper=(
        "Raffel & Ellis 2015, feed-forward attention e_t = v^T tanh(W h_t + b), c = sum_t "
        f"alpha_t h_t; {KANG}, attention for document classification"
    ),
    defaults={
        "input_shape": (20,),
        "vocab_size": 20_000,
        "embedding_dim": 64,
        "hidden_size": 64,
        "bidirectional": True,
        "num_classes": 2,
        "cell": "lstm",
        "pooling": "attention",
    },
    test_config={
        "input_shape": (7,),
        "vocab_size": 30,
        "embedding_dim": 6,
        "hidden_size": 4,
        "num_layers": 2,
        "bidirectional": True,
        "dropout_rate": 0.1,
        "num_classes": 3,
        "attention_size": 5,
    },
    description=(
        "Text classifier: token ids (B, T) int (`zoo.data.text` ids, 0 = padding at the end) -> "
        'embedding -> bidirectional LSTM (or ``cell`` "gru"/"rnn") -> feed-forward attention '
        "pooling over the valid steps -> dense ``num_classes``. `zoo.explain.attention_weights` "
        "shows which words decided the class. Bidirectional by default (as in attention document "
        "classifiers, e.g. Yang et al. 2016): each step's state then sees the words on both sides; "
        'with one forward direction the state at "not" in "not good" cannot know the adjective '
        "yet (the README compares the two on the generated sentiment task)."
    ),
)
