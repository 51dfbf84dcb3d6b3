"""Sequence to sequence: encoder-decoder RNNs with Bahdanau and Luong attention, the RNN
autoencoder, and a character-level language model. Seeds: kang-lecture4 (Seq2seq, RNN:
Attention, RNN autoencoder) and surf2019-cha-rnn-hierarchical-a (the character model for
"Pneumonoultramicroscopicsilicovolcanoconiosis").

Everything recurrent reuses `zoo.nn.recurrence`: the encoder is a `StackedRNN`, the
decoder a stack of `make_cell` cells whose composed step teacher forcing runs with
`scan_cell`; greedy decoding feeds back its own outputs in its own ``lax.scan``. Modules
own weights and hand back pure functions (`Affine`, `Attention`, the cells), since Linen
submodules cannot be called inside a raw ``lax.scan``.

Tokens (zoo.nn.tokens): 0 padding, 1 unknown, 2 BOS, 3 EOS. A target ``y`` ends with EOS,
0-padded; the decoder reads ``[BOS, y_0, ..., y_{T-2}]`` and is scored on ``y``. Outputs
of `Seq2Seq` and `CharRNN`, a dict (the eval step needs both loss and exact match):
  logits               (B, T_out, V): teacher-forced given ``y``, else greedy
  attention            (B, T_out, T_in): that pass's weights (with attention); rows sum
                       to 1 over the valid source tokens
  predictions          (B, T_out) int32: greedy, when ``train=False`` or no ``y``; 0 after EOS
  predicted_attention  greedy decoding's weights, given ``y`` in inference mode

Attention: "none"; "bahdanau" (score v^T tanh(W_1 h_s + W_2 s_{t-1}) on the previous
state, context fed to the input, readout W_o [s_t; c_t]); Luong's "dot" h_t^T h_s,
"general" h_t^T W_a h_s and "concat" v^T tanh(W_a [h_t; h_s]) (the paper's; the slide's
v^T tanh(W_c [c_t; h_t]) is circular) on the current state h_t, attentional state
h~_t = tanh(W_c [c_t; h_t]), readout softmax(W_s h~_t); ``input_feeding`` feeds h~_{t-1}
to the next input. Kernels are (in, out): the paper's ``W x`` is ``x @ W`` here.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoo._choices import unknown_name_error
from zoo.metrics import corpus_bleu, exact_match
from zoo.models.recurrent import KANG, SURF
from zoo.nn import check_input
from zoo.nn.checks import check_count
from zoo.nn.recurrence import CellOptions, StackedRNN, carry_output, make_cell, scan_cell, validate_cell
from zoo.nn.tokens import BOS, EOS, PAD, strip_ids
from zoo.registry import register_model

ATTENTIONS = ("none", "bahdanau", "dot", "general", "concat")
LUONG = ("dot", "general", "concat")
SCORES = ("additive", "dot", "general", "concat")
SCORE_OF = {"bahdanau": "additive", "dot": "dot", "general": "general", "concat": "concat"}


# --- Attention: pure functions of the weights, and the module that owns them.


def project_keys(score: str, w: dict, memory):
    """The score's source-only part, once per sequence: memory (B, S, Dk) -> keys (B, S, K);
    dot h_s, general W_a h_s (K = Dq), additive W_1 h_s, concat W_a's h_s block (K = A)."""
    if score == "dot":
        return memory
    if score == "general":
        return memory @ w["W_a"].T  # w["W_a"]: (Dq, Dk), so h_t^T W_a h_s = h_t . (W_a h_s)
    if score == "additive":
        return memory @ w["W_1"]
    if score == "concat":
        return memory @ w["W_a"][w["W_a"].shape[0] - memory.shape[-1] :]
    raise ValueError(f"unknown attention score {score!r}; expected one of {SCORES}")


def attention_scores(score: str, w: dict, query, keys):
    """query (B, Dq), keys (B, S, K) from `project_keys` -> scores (B, S)."""
    if score in ("dot", "general"):
        return jnp.einsum("bsk,bk->bs", keys, query)
    if score == "additive":
        return jnp.tanh(keys + (query @ w["W_2"])[:, None, :]) @ w["v"]
    if score == "concat":
        query_block = w["W_a"][: query.shape[-1]]
        return jnp.tanh(keys + (query @ query_block)[:, None, :]) @ w["v"]
    raise ValueError(f"unknown attention score {score!r}; expected one of {SCORES}")


def attend(score: str, w: dict, memory, keys, mask, query):
    """One step's attention: query (B, Dq) -> (context (B, Dk), weights (B, S)); weights are
    exactly 0 where mask (B, S) is False (padding)."""
    scores = attention_scores(score, w, query, keys)
    scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
    weights = jnp.where(mask, jax.nn.softmax(scores, axis=-1), 0.0)
    return jnp.einsum("bs,bsd->bd", weights, memory), weights


class Attention(nn.Module):
    """The weights of one ``score`` (`SCORES`; ``units`` A defaults to Dq). Called with
    memory (B, S, Dk), mask (B, S) and Dq, returns the pure `attend` of a query (B, Dq).
    Parameters: general W_a (Dq, Dk); additive W_1 (Dk, A), W_2 (Dq, A), v (A,); concat
    W_a (Dq + Dk, A), v (A,); dot none (needs Dq == Dk)."""

    score: str = "general"
    units: int | None = None

    def __post_init__(self):
        if self.score not in SCORES:
            raise unknown_name_error("attention score", self.score, SCORES)
        super().__post_init__()

    @nn.compact
    def __call__(self, memory, mask, query_size: int) -> Callable:
        dk, units = memory.shape[-1], self.units or query_size
        init = nn.initializers.lecun_normal()
        if self.score == "dot":
            if dk != query_size:
                raise ValueError(
                    f"dot attention needs decoder states as wide as the encoder outputs, got {query_size} and {dk}"
                )
            w = {}
        elif self.score == "general":
            w = {"W_a": self.param("W_a", init, (query_size, dk))}
        elif self.score == "additive":
            w = {
                "W_1": self.param("W_1", init, (dk, units)),
                "W_2": self.param("W_2", init, (query_size, units)),
                "v": self.param("v", nn.initializers.normal(1.0 / units**0.5), (units,)),
            }
        else:
            w = {
                "W_a": self.param("W_a", init, (query_size + dk, units)),
                "v": self.param("v", nn.initializers.normal(1.0 / units**0.5), (units,)),
            }
        return functools.partial(attend, self.score, w, memory, project_keys(self.score, w, memory), mask)


def affine(kernel, bias, x):
    return x @ kernel if bias is None else x @ kernel + bias


class Affine(nn.Module):
    """``x W + b``; called with the input size, returns the pure ``x (..., in) -> (..., features)``."""

    features: int
    use_bias: bool = True

    @nn.compact
    def __call__(self, in_features: int) -> Callable:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (in_features, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
        return functools.partial(affine, kernel, bias)


# --- The decoder: one step function, run by teacher forcing (scan_cell) or greedily.


class DecoderFns(NamedTuple):
    """The decoder as pure functions: embed ids (...) -> (..., E); step (carry, e_t (B, E))
    -> (carry, (o_t (B, Do), a_t (B, S))); logits (..., Do) -> (..., V); S (0: no attention)."""

    embed: Callable
    step: Callable
    logits: Callable
    attention_size: int


def stacked_step(cell_steps, carries, x):
    """Stacked cells, one step: x (B, I) through each layer in turn -> (carries, top output)."""
    new = []
    for step, c in zip(cell_steps, carries):
        c, x = step(c, x)
        new.append(c)
    return tuple(new), x


def decoder_step(cell_steps, attend_fn, combine, kind: str, input_feeding: bool, carry, e_t):
    """carry = (per-layer carries, h~_{t-1} or (B, 0)), e_t (B, E) -> (carry, (o_t the
    readout's input, a_t (B, S) weights, (B, 0) without attention))."""
    layers, feed = carry
    x = e_t
    context = alpha = None
    if kind == "bahdanau":  # scored on the previous state s_{t-1}; context joins the input
        context, alpha = attend_fn(carry_output(layers[-1]))
        x = jnp.concatenate([x, context], -1)
    elif input_feeding:
        x = jnp.concatenate([x, feed], -1)
    new_layers, x = stacked_step(cell_steps, layers, x)
    if kind in LUONG:  # scored on the current state h_t
        context, alpha = attend_fn(x)
        out = jnp.tanh(combine(jnp.concatenate([context, x], -1)))  # h~_t = tanh(W_c [c_t; h_t])
        feed = out if input_feeding else feed
    elif kind == "bahdanau":
        out = jnp.concatenate([x, context], -1)
    else:
        out = x
    if alpha is None:
        alpha = jnp.zeros((x.shape[0], 0), x.dtype)
    return (new_layers, feed), (out, alpha)


def teacher_forced(fns: DecoderFns, carry, inputs):
    """inputs (B, T) int: the decoder's input tokens ([BOS, y_0, ...]) -> (logits
    (B, T, V), attention (B, T, S)), the decoder run by `scan_cell`."""

    def packed(c, e_t):  # scan_cell's steps emit one array: readout input and weights side by side
        c, (out, alpha) = fns.step(c, e_t)
        return c, jnp.concatenate([out, alpha], -1)

    _, ys = scan_cell(packed, carry, fns.embed(inputs))
    size = ys.shape[-1] - fns.attention_size
    return fns.logits(ys[..., :size]), ys[..., size:]


def greedy_decode(fns: DecoderFns, carry, first, length: int, eos_id: int = EOS) -> dict:
    """first (B,) int (BOS, or a word's first letter) -> {"predictions": (B, length) int32,
    "logits": (B, length, V), "attention": (B, length, S)}, each step fed its argmax; after
    ``eos_id`` predictions are 0 and attention rows zero."""

    def body(state, _):
        c, token, done = state
        c, (out, alpha) = fns.step(c, fns.embed(token))
        logits = fns.logits(out)
        token = jnp.where(done, PAD, jnp.argmax(logits, -1).astype(jnp.int32))
        alpha = jnp.where(done[:, None], 0.0, alpha)
        return (c, token, done | (token == eos_id)), (token, logits, alpha)

    done = jnp.zeros(first.shape, bool)
    _, (tokens, logits, alpha) = jax.lax.scan(body, (carry, first.astype(jnp.int32), done), None, length=length)
    t = lambda a: jnp.swapaxes(a, 0, 1)
    return {"predictions": t(tokens), "logits": t(logits), "attention": t(alpha)}


def beam_decode(fns: DecoderFns, carry, first, length: int, beam_size: int, eos_id: int = EOS) -> dict:
    """Beam search: the ``beam_size`` most probable continuations kept at each step, by
    the sum of their tokens' log-probabilities; a beam that emitted ``eos_id`` is finished
    and keeps its score (it extends only by padding).

    ``fns`` and ``carry`` are built for B * K rows, each example repeated K = beam_size
    times in a row (`repeat_beams` of the memory, mask and carry); first (B * K,) int.
    Returns {"predictions": (B, length) int32, the best beam, 0 after EOS; "scores": (B,)
    its log-probability; "beams": (B, K, length) and "beam_scores": (B, K), best first}.
    ``beam_size=1`` is `greedy_decode`.
    """
    K = int(beam_size)
    B = first.shape[0] // K
    neg = jnp.finfo(jnp.float32).min

    def body(state, t):
        c, token, scores, done, history = state
        c, (out, _) = fns.step(c, fns.embed(token))
        logp = jax.nn.log_softmax(fns.logits(out).astype(jnp.float32), -1)  # (B*K, V)
        V = logp.shape[-1]
        finished = jnp.full((V,), neg).at[PAD].set(0.0)  # a finished beam only pads, at no cost
        logp = jnp.where(done[:, None], finished, logp).reshape(B, K, V)
        total = (scores[:, :, None] + logp).reshape(B, K * V)
        scores, index = jax.lax.top_k(total, K)  # (B, K)
        parent, token = index // V, (index % V).astype(jnp.int32)
        rows = (jnp.arange(B)[:, None] * K + parent).reshape(-1)  # the parent beam's row
        c = jax.tree.map(lambda a: a[rows], c)
        history = jnp.take_along_axis(history, parent[:, :, None], 1).at[:, :, t].set(token)
        done = done[rows] | (token.reshape(-1) == eos_id)
        return (c, token.reshape(-1), scores, done, history), None

    # Only the first of an example's K identical beams starts, so the K survivors differ.
    scores = jnp.tile(jnp.asarray([0.0] + [neg] * (K - 1), jnp.float32), (B, 1))
    state = (carry, first.astype(jnp.int32), scores, jnp.zeros(first.shape, bool), jnp.zeros((B, K, length), jnp.int32))
    (_, _, scores, _, history), _ = jax.lax.scan(body, state, jnp.arange(length))
    order = jnp.argsort(-scores, axis=-1)
    beams = jnp.take_along_axis(history, order[:, :, None], 1)
    scores = jnp.take_along_axis(scores, order, 1)
    return {"predictions": beams[:, 0], "scores": scores[:, 0], "beams": beams, "beam_scores": scores}


def repeat_beams(tree, beam_size: int):
    """Every array of ``tree`` (B, ...) -> (B * K, ...), each row repeated K times in a row."""
    return jax.tree.map(lambda a: jnp.repeat(a, int(beam_size), axis=0), tree)


def decode_tokens(decoder: Decoder, features: dict, y, train: bool, *, output_length: int, bos_id: int, eos_id: int):
    """A token decoder over ``features`` = {"memory" (B, S, Dk), "mask" (B, S), "carry"
    the decoder cells' initial carries}: teacher forcing on y (B, T_out) int, plus greedy
    decoding in inference mode; greedy alone without y. Returns the output dict of the
    module docstring (attention entries when the decoder attends)."""
    attentive = decoder.attention != "none"
    memory = features["memory"]
    fns = decoder.functions(memory if attentive else None, features["mask"] if attentive else None)
    B = memory.shape[0]
    # The decoder starts from the given carries (and input feeding from h~_0 = 0).
    state = (features["carry"], decoder.initial_carry(B, memory.dtype)[1])
    start = jnp.full((B,), bos_id, jnp.int32)
    if y is None:
        out = greedy_decode(fns, state, start, output_length, eos_id)
        return out if attentive else {k: v for k, v in out.items() if k != "attention"}
    if y.ndim != 2 or y.shape[0] != B or jnp.issubdtype(y.dtype, jnp.floating):
        raise ValueError(f"expected targets y of shape (B, T_out) = ({B}, T_out), int, got {tuple(y.shape)} {y.dtype}")
    inputs = jnp.concatenate([start[:, None], y[:, :-1].astype(jnp.int32)], 1)
    logits, alpha = teacher_forced(fns, state, inputs)
    out = {"logits": logits}
    if attentive:
        out["attention"] = alpha
    if not train:
        greedy = greedy_decode(fns, state, start, y.shape[1], eos_id)
        out["predictions"] = greedy["predictions"]
        if attentive:
            out["predicted_attention"] = greedy["attention"]
    return out


def beam_search_tokens(
    decoder: Decoder, features: dict, beam_size: int, *, output_length: int, bos_id: int, eos_id: int
):
    """`beam_decode` over ``features`` (as in `decode_tokens`): each example's memory,
    mask and carry repeated ``beam_size`` times."""
    check_count(beam_size, "beam_size", 1)
    attentive = decoder.attention != "none"
    tiled = repeat_beams(features, beam_size)
    fns = decoder.functions(tiled["memory"] if attentive else None, tiled["mask"] if attentive else None)
    rows = tiled["memory"].shape[0]
    state = (tiled["carry"], decoder.initial_carry(rows, tiled["memory"].dtype)[1])
    return beam_decode(fns, state, jnp.full((rows,), bos_id, jnp.int32), output_length, beam_size, eos_id)


class Decoder(nn.Module):
    """Token embedding, ``num_layers`` cells of ``hidden_size``, optional attention over an
    encoder memory, and the output layer. `functions` returns it as `DecoderFns`."""

    vocab_size: int
    embed_dim: int = 32
    cell: str = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    attention: str = "none"
    attention_units: int | None = None
    input_feeding: bool = False
    cell_options: dict | None = None

    def setup(self):
        self.embedding = self.param("embedding", nn.linear.default_embed_init, (self.vocab_size, self.embed_dim))
        self.cells = [
            make_cell(self.cell, self.hidden_size, **(self.cell_options or {})) for _ in range(self.num_layers)
        ]
        if self.attention != "none":
            self.attend = Attention(score=SCORE_OF[self.attention], units=self.attention_units)
        if self.attention in LUONG:
            self.combine = Affine(self.hidden_size, use_bias=False)  # W_c (Luong has no bias)
        self.output = Affine(self.vocab_size)

    def initial_carry(self, batch_size: int, dtype=jnp.float32):
        """Zero state: (per-layer cell carries, input-feeding vector (B, H) or (B, 0))."""
        feed = jnp.zeros((batch_size, self.hidden_size if self.input_feeding else 0), dtype)
        return tuple(c.initial_carry(batch_size, dtype) for c in self.cells), feed

    def functions(self, memory=None, mask=None) -> DecoderFns:
        """The decoder over memory (B, S, Dk) with mask (B, S) (None without attention)."""
        H, dk = self.hidden_size, 0 if memory is None else memory.shape[-1]
        if (memory is None) != (self.attention == "none"):
            raise ValueError(f"attention {self.attention!r} needs an encoder memory exactly when it is not 'none'")
        in_size = self.embed_dim + (dk if self.attention == "bahdanau" else 0) + (H if self.input_feeding else 0)
        steps = [cell(in_size if i == 0 else H) for i, cell in enumerate(self.cells)]
        attend_fn = self.attend(memory, mask, H) if memory is not None else None
        combine = self.combine(dk + H) if self.attention in LUONG else None
        logits = self.output(H + (dk if self.attention == "bahdanau" else 0))
        embedding = self.embedding
        step = functools.partial(decoder_step, tuple(steps), attend_fn, combine, self.attention, self.input_feeding)
        return DecoderFns(
            lambda ids: jnp.take(embedding, ids, axis=0), step, logits, 0 if memory is None else memory.shape[1]
        )


# --- Encoder-decoder.


class Seq2Seq(CellOptions):
    """RNN encoder-decoder (Sutskever et al. 2014; Cho et al. 2014) with optional attention.

    Tokens (``vocab_size`` set): x (B, T_in) int (0-padded), y (B, T_out) int or None -> the
    output dict of the module docstring. Float sequences (``vocab_size=None``, the RNN
    autoencoder): x (B, T, F) -> reconstruction (B, T, F) by an unconditioned decoder
    (Srivastava et al. 2015: empty inputs, the state carries everything).

    The decoder's cells are as wide as the encoder's output (2H if bidirectional) and start
    from its final states. ``output_length``: greedy decoding's length without a target.
    ``impl`` chooses how the encoder runs; the decoder's composed step always scans.
    """

    input_shape: tuple = (10,)
    vocab_size: int | None = 24
    target_vocab_size: int | None = None  # default: vocab_size
    output_length: int = 11
    embed_dim: int = 32
    cell: str = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    attention: str = "none"
    attention_units: int | None = None
    input_feeding: bool = False
    dropout_rate: float = 0.0
    bos_id: int = BOS
    eos_id: int = EOS

    def __post_init__(self):
        if self.attention not in ATTENTIONS:
            raise unknown_name_error("attention", self.attention, ATTENTIONS)
        validate_cell(self.cell, self.hidden_size, self.cell_options())
        if self.tokens:
            check_count(self.vocab_size, "vocab_size", 1)
            if len(self.input_shape) != 1:
                raise ValueError(f"a token model's input_shape is (T_in,), got {tuple(self.input_shape)}")
        else:
            if len(self.input_shape) != 2:
                raise ValueError(f"a float-sequence model's input_shape is (T, F), got {tuple(self.input_shape)}")
            if self.attention != "none":
                raise ValueError(
                    "attention needs token targets: float sequences (vocab_size=None) take attention='none'"
                )
        if self.input_feeding and self.attention not in LUONG:
            raise ValueError(
                f"input_feeding feeds Luong's attentional state: it needs attention in {LUONG}, got {self.attention!r}"
            )
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1), got {self.dropout_rate}")
        check_count(self.output_length, "output_length", 1)
        check_count(self.embed_dim, "embed_dim", 1)
        check_count(self.num_layers, "num_layers", 1)
        super().__post_init__()

    @property
    def tokens(self) -> bool:
        return self.vocab_size is not None

    @property
    def output_shape(self) -> tuple:
        """One example's main output: logits (T_out, V), or the reconstruction (T, F)."""
        if self.tokens:
            return (self.output_length, self.target_vocab_size or self.vocab_size)
        return tuple(self.input_shape)

    def setup(self):
        if self.tokens:
            self.source_embedding = nn.Embed(self.vocab_size, self.embed_dim)
        self.encoder = StackedRNN(
            cell=self.cell,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout_rate=self.dropout_rate,
            cell_options=self.cell_options(),
        )
        width = self.hidden_size * (2 if self.bidirectional else 1)
        if self.tokens:
            self.decoder = Decoder(
                vocab_size=self.target_vocab_size or self.vocab_size,
                embed_dim=self.embed_dim,
                cell=self.cell,
                hidden_size=width,
                num_layers=self.num_layers,
                attention=self.attention,
                attention_units=self.attention_units,
                input_feeding=self.input_feeding,
                cell_options=self.cell_options(),
            )
        else:
            self.cells = [make_cell(self.cell, width, **self.cell_options()) for _ in range(self.num_layers)]
            self.output = Affine(self.input_shape[-1])

    def forward_features(self, x, train: bool = False) -> dict:
        """Encode: x (B, T_in) int or (B, T, F) float -> {"memory": (B, T_in, D*H) encoder
        outputs, "mask": (B, T_in) bool, "carry": the decoder's initial per-layer carries}."""
        name = f"Seq2Seq(cell={self.cell!r}, attention={self.attention!r})"
        check_input(x, self.input_shape, model=name, dtype_kind="int" if self.tokens else "float")
        if x.ndim != len(self.input_shape) + 1:
            shape = ", ".join("*" if d is None else str(d) for d in self.input_shape)
            raise ValueError(f"{name} expects input of shape (B, {shape}), got {tuple(x.shape)}")
        if self.tokens:
            mask = x != PAD
            carries, memory = self.encoder(self.source_embedding(x), lengths=jnp.sum(mask, -1), train=train)
        else:
            mask = jnp.ones(x.shape[:2], bool)
            carries, memory = self.encoder(x, train=train)
        if self.bidirectional:  # decoder width 2H: forward and backward final states side by side
            carries = [jax.tree.map(lambda f, b: jnp.concatenate([f, b], -1), *pair) for pair in carries]
        return {"memory": memory, "mask": mask, "carry": tuple(carries)}

    def head(self, features: dict, y=None, train: bool = False):
        """Decode the features of `forward_features`; y (B, T_out) int or None. Returns the
        output dict (tokens) or the reconstruction (B, T, F) (float sequences)."""
        carry = features["carry"]
        if not self.tokens:
            steps = [cell(0 if i == 0 else cell.hidden_size) for i, cell in enumerate(self.cells)]

            # Unconditioned: the input is empty, the state carries the sequence.
            B, T = features["memory"].shape[:2]
            step = functools.partial(stacked_step, steps)
            _, hs = scan_cell(step, carry, jnp.zeros((B, T, 0), features["memory"].dtype))
            return self.output(hs.shape[-1])(hs)

        # The decoder starts from the encoder's final states.
        ends = dict(output_length=self.output_length, bos_id=self.bos_id, eos_id=self.eos_id)
        return decode_tokens(self.decoder, features, y, train, **ends)

    def beam_search(self, x, beam_size: int = 4) -> dict:
        """x (B, T_in) int -> `beam_decode`'s dict over ``output_length`` steps."""
        if not self.tokens:
            raise ValueError("beam search decodes tokens: it needs vocab_size set")
        ends = dict(output_length=self.output_length, bos_id=self.bos_id, eos_id=self.eos_id)
        return beam_search_tokens(self.decoder, self.forward_features(x), beam_size, **ends)

    def __call__(self, x, y=None, train: bool = False):
        return self.head(self.forward_features(x, train), y, train)


# --- Character-level language model.


class CharRNN(CellOptions):
    """Next-token model: x (B, T) int -> {"logits": (B, T, V)} (logits[:, t] predict token
    t+1), plus in inference mode "predictions" (B, T), greedy from x[:, 0] until EOS.

    The seq2seq `Decoder` without encoder or attention, trained by the sequence_to_sequence
    task (y, x shifted left, is taken for the uniform ``model(x, y)`` and ignored).
    """

    input_shape: tuple = (45,)
    vocab_size: int = 30
    embed_dim: int = 16
    cell: str = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    eos_id: int = EOS

    def __post_init__(self):
        validate_cell(self.cell, self.hidden_size, self.cell_options())
        check_count(self.vocab_size, "vocab_size", 1)
        check_count(self.num_layers, "num_layers", 1)
        if len(self.input_shape) != 1:
            raise ValueError(f"CharRNN's input_shape is (T,), got {tuple(self.input_shape)}")
        super().__post_init__()

    @property
    def output_shape(self) -> tuple:
        return (self.input_shape[0], self.vocab_size)

    def setup(self):
        self.decoder = Decoder(
            vocab_size=self.vocab_size,
            embed_dim=self.embed_dim,
            cell=self.cell,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            cell_options=self.cell_options(),
        )

    def _start(self, batch_size: int):
        return self.decoder.initial_carry(batch_size)

    def forward_features(self, x, train: bool = False):
        """x (B, T) int -> the top layer's outputs (B, T, H)."""
        name = f"CharRNN(cell={self.cell!r})"
        check_input(x, self.input_shape, model=name, dtype_kind="int")
        if x.ndim != 2:
            raise ValueError(f"{name} expects input of shape (B, {self.input_shape[0]}), got {tuple(x.shape)}")
        fns = self.decoder.functions()

        def step(c, e_t):  # scan_cell's steps emit one array: the readout input (no attention here)
            c, (out, _) = fns.step(c, e_t)
            return c, out

        _, hs = scan_cell(step, self._start(x.shape[0]), fns.embed(x.astype(jnp.int32)))
        return hs

    def head(self, h):
        """(B, T, H) -> logits (B, T, V)."""
        return self.decoder.functions().logits(h)

    def generate(self, first, length: int) -> dict:
        """Greedy generation: first (B,) int -> `greedy_decode`'s dict for ``length`` steps."""
        fns = self.decoder.functions()
        return greedy_decode(fns, self._start(first.shape[0]), first, length, self.eos_id)

    def __call__(self, x, y=None, train: bool = False):
        out = {"logits": self.head(self.forward_features(x, train))}
        if not train:
            out["predictions"] = self.generate(x[:, 0], x.shape[1])["predictions"]
        return out


# --- Registry.

_PAPERS = {
    "none": "Sutskever et al. 2014; Cho et al. 2014",
    "bahdanau": "Bahdanau et al. 2015 (additive attention)",
    "luong": "Luong et al. 2015 (global attention: dot, general, concat)",
}
_TEST = {
    "input_shape": (5,),
    "vocab_size": 7,
    "output_length": 6,
    "embed_dim": 3,
    "hidden_size": 4,
    "num_layers": 2,
    "bidirectional": True,
}


class LuongSeq2Seq(Seq2Seq):
    """`Seq2Seq` with Luong et al.'s global attention only, input feeding by default."""

    attention: str = "general"
    input_feeding: bool = True

    def __post_init__(self):
        if self.attention not in LUONG:
            raise unknown_name_error("Luong attention score", self.attention, LUONG)
        super().__post_init__()


register_model(
    "seq2seq",
    Seq2Seq,
    family="recurrent",
    task="sequence_to_sequence",
    input_dtype="int32",
    paper=f"{_PAPERS['none']}; {KANG}, Sequence to Sequence (Seq2seq), RNN: Attention",
    test_config={**_TEST, "attention": "concat", "input_feeding": True},
    description='RNN encoder-decoder; attention "none", "bahdanau", or Luong\'s "dot", "general", "concat".',
)
register_model(
    "seq2seq_bahdanau",
    Seq2Seq,
    family="recurrent",
    task="sequence_to_sequence",
    input_dtype="int32",
    paper=f"{_PAPERS['bahdanau']}: v^T tanh(W_1 h_s + W_2 s_(t-1)); {KANG}, Bahdanau attention",
    defaults={"cell": "gru", "bidirectional": True, "attention": "bahdanau"},
    test_config=_TEST,
    description=(
        "Bahdanau et al.: bidirectional GRU encoder, additive attention on s_(t-1), context fed "
        "to the decoder input; readout W_o [s_t; c_t]."
    ),
)
register_model(
    "seq2seq_luong",
    LuongSeq2Seq,
    family="recurrent",
    task="sequence_to_sequence",
    input_dtype="int32",
    paper=(
        f"{_PAPERS['luong']}: h~_t = tanh(W_c [c_t; h_t]), p = softmax(W_s h~_t); {KANG}, Luong "
        "attention (the slide's concat score v^T tanh(W_c [c_t; h_t]) is circular; the paper's "
        "v^T tanh(W_a [h_t; h_s]) is used)"
    ),
    test_config={**_TEST, "attention": "dot"},
    description=(
        'Luong et al.: global attention on the current state h_t (score "dot", "general" or '
        '"concat"), attentional state h~_t, input feeding.'
    ),
)
register_model(
    "rnn_autoencoder",
    Seq2Seq,
    family="recurrent",
    task="regression",
    paper=(
        f"{KANG}, RNN autoencoder (encoder's final state -> decoder reconstructs the input); "
        "Srivastava et al. 2015 (unconditioned decoder)"
    ),
    defaults={"input_shape": (10, 1), "vocab_size": None},
    test_config={"input_shape": (5, 2), "hidden_size": 4, "num_layers": 2},
    description=(
        "Sequence in, reconstruction out, through the encoder's final state alone (attention "
        '"none"). Float sequences (vocab_size None): x (B, T, F) -> (B, T, F), trained on the '
        '"regression" task (MSE). Tokens (vocab_size set, as a token dataset\'s model_config '
        "does): a seq2seq model without attention, trained on a copy task (the sequence to itself)."
    ),
)
register_model(
    "char_rnn",
    CharRNN,
    family="recurrent",
    task="sequence_to_sequence",
    input_dtype="int32",
    paper=(
        f"{SURF}, RNNs: 'What if words are so long? e.g., Pneumonoultramicroscopicsilicovolcanoconiosis' "
        "(character-level next-token model)"
    ),
    test_config={"input_shape": (6,), "vocab_size": 7, "embed_dim": 3, "hidden_size": 4, "num_layers": 2},
    description='Character-level RNN (cell "rnn", "lstm" or "gru"): predicts each next character.',
)


# --- Scoring decoded outputs.


def translate(model, variables, x, *, batch_size: int = 256):
    """Greedy decoding of x (N, T_in) int, batch by batch: (N, output_length) int32 numpy."""
    run = jax.jit(lambda v, xb: model.apply(v, xb)["predictions"])
    return np.concatenate([np.asarray(run(variables, x[i : i + batch_size])) for i in range(0, len(x), batch_size)])


def score_translations(predictions, targets) -> dict:
    """{"exact_match", "bleu"} of predictions against targets, both (N, T) int, up to EOS."""
    hyps = [strip_ids(p) for p in predictions]
    refs = [strip_ids(t) for t in targets]
    return {"exact_match": exact_match(refs, hyps), "bleu": corpus_bleu([[r] for r in refs], hyps)}
