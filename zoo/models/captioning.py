"""Image captioning: a registered CNN encodes the image, an LSTM decoder writes the caption
word by word (kang-lecture4, "Image captioning", one-to-many; Vinyals et al. 2015, Show and
Tell), optionally with soft attention over the CNN's feature map at every word (Xu et al.
2015, Show, Attend and Tell, which the seed cites).

The decoder, its teacher forcing, greedy and beam decoding and its attention are those of
`zoo.models.seq2seq` (`Decoder`, `decode_tokens`, `beam_search_tokens`): the CNN's feature
map (B, h, w, K) is the memory an encoder's outputs are there, h*w "source positions".
As in Show, Attend and Tell the LSTM's initial state is computed from the mean of the
feature vectors, c_0 = tanh(W_c mean(a) + b), h_0 = tanh(W_h mean(a) + b); with attention
the context of the previous state is fed into each step's input (the seq2seq "bahdanau"
decoder: additive score on s_{t-1}, readout from [s_t; z_t]).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from zoo.models.seq2seq import Decoder, beam_search_tokens, decode_tokens
from zoo.nn import check_input
from zoo.nn.checks import check_count
from zoo.nn.tokens import BOS, EOS
from zoo.registry import create_model, get_spec, register_model

CAPTION_ATTENTIONS = ("none", "bahdanau")


class ImageCaptioner(nn.Module):
    """images (B, H, W, C) float, captions y (B, T) int or None -> the seq2seq output dict:
    "logits" (B, T, V) (teacher-forced given y, else greedy over ``output_length``
    steps), "predictions" (B, T) in inference mode, and with attention "attention" (B, T,
    h*w) (and "predicted_attention"), the weights of each word over the feature map.

    ``image_encoder``: a registered CNN (``image_config`` its overrides), read through
    ``feature_maps`` when it has them (attention needs them), else its flat
    ``forward_features`` as a single position.
    """

    input_shape: tuple = (32, 32, 3)
    vocab_size: int = 15
    output_length: int = 20
    image_encoder: str = "lenet5"
    image_config: dict | None = None
    embed_dim: int = 32
    hidden_size: int = 128
    attention: str = "none"
    attention_units: int | None = None
    bos_id: int = BOS
    eos_id: int = EOS

    def __post_init__(self):
        if len(self.input_shape) != 3 or any(int(d) <= 0 for d in self.input_shape):
            raise ValueError(f"ImageCaptioner: input_shape must be (H, W, C), got {tuple(self.input_shape)}")
        for what in ("output_length", "embed_dim", "hidden_size"):
            check_count(getattr(self, what), what, 1, "ImageCaptioner")
        check_count(self.vocab_size, "vocab_size", 4, "ImageCaptioner")  # PAD, UNK, BOS, EOS
        if self.attention not in CAPTION_ATTENTIONS:
            raise ValueError(f"ImageCaptioner: attention must be one of {CAPTION_ATTENTIONS}, got {self.attention!r}")
        spec = get_spec(self.image_encoder)
        if spec.family != "cnn" or len(spec.input_shape) != 3:
            raise ValueError(
                f"ImageCaptioner: image_encoder must be a registered image CNN, got {self.image_encoder!r}"
            )
        if self.attention != "none" and not hasattr(spec.module, "feature_maps"):
            raise ValueError(
                f"ImageCaptioner: attention needs a CNN with feature_maps; {self.image_encoder!r} has none"
            )
        super().__post_init__()

    @property
    def output_shape(self) -> tuple:
        return (self.output_length, self.vocab_size)

    def setup(self):
        self.cnn = create_model(self.image_encoder, input_shape=tuple(self.input_shape), **(self.image_config or {}))
        self.init_c = nn.Dense(self.hidden_size)
        self.init_h = nn.Dense(self.hidden_size)
        self.decoder = Decoder(
            vocab_size=self.vocab_size,
            embed_dim=self.embed_dim,
            cell="lstm",
            hidden_size=self.hidden_size,
            attention=self.attention,
            attention_units=self.attention_units,
        )

    def forward_features(self, x, train: bool = False) -> dict:
        """images (B, H, W, C) -> {"memory": (B, h*w, K) feature vectors, "mask": (B, h*w),
        "carry": the LSTM's initial (c_0, h_0)}; ``memory_shape`` (h, w) via `feature_grid`."""
        check_input(x, self.input_shape, model=f"ImageCaptioner(input_shape={tuple(self.input_shape)})")
        if hasattr(self.cnn, "feature_maps"):
            maps = self.cnn.feature_maps(x, train)
            memory = maps.reshape(maps.shape[0], -1, maps.shape[-1])
        else:
            memory = self.cnn.forward_features(x, train)[:, None, :]
        mean = memory.mean(1)
        carry = ((jnp.tanh(self.init_c(mean)), jnp.tanh(self.init_h(mean))),)
        return {"memory": memory, "mask": jnp.ones(memory.shape[:2], bool), "carry": carry}

    def feature_grid(self) -> tuple[int, int]:
        """(h, w) of the feature map the attention weights cover (reshape (B, T, h*w) to it)."""
        probe = jnp.zeros((1, *self.input_shape), jnp.float32)
        return tuple(self.cnn.feature_maps(probe).shape[1:3])

    def _ends(self) -> dict:
        return dict(output_length=self.output_length, bos_id=self.bos_id, eos_id=self.eos_id)

    def head(self, features: dict, y=None, train: bool = False) -> dict:
        """Decode the caption from `forward_features`' dict (teacher-forced on y if given)."""
        return decode_tokens(self.decoder, features, y, train, **self._ends())

    def beam_search(self, x, beam_size: int = 3) -> dict:
        """images (B, H, W, C) -> `zoo.models.seq2seq.beam_decode`'s dict."""
        return beam_search_tokens(self.decoder, self.forward_features(x), beam_size, **self._ends())

    def __call__(self, x, y=None, train: bool = False):
        return self.head(self.forward_features(x, train), y, train)


_TEST = {"input_shape": (16, 16, 3), "vocab_size": 7, "output_length": 5, "embed_dim": 3, "hidden_size": 4}
_PAPER = "kang-lecture4 (Pilsung Kang, Lecture 4), Image captioning"

register_model(
    "captioner",
    ImageCaptioner,
    family="multimodal",
    task="sequence_to_sequence",
    paper=f"Vinyals et al. 2015, Show and Tell (CNN encoder, LSTM decoder); {_PAPER}",
    test_config=_TEST,
    description="CNN (any registered one) -> initial LSTM state -> caption, word by word; greedy or beam decoding.",
)
register_model(
    "captioner_attention",
    ImageCaptioner,
    family="multimodal",
    task="sequence_to_sequence",
    paper=f"Xu et al. 2015, Show, Attend and Tell (soft attention over the CNN feature map); {_PAPER}",
    defaults={"attention": "bahdanau"},
    test_config=_TEST,
    description=(
        "Captioner whose LSTM attends over the CNN's feature map at every word (additive score on "
        "the previous state, context fed to the input); the weights show where each word looks."
    ),
)
