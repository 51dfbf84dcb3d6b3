"""Visual question answering: a registered CNN encodes the image, a bag of words or a
registered LSTM encodes the question, the two are fused and classified over a closed set
of answers. Seeds: khanzhina (VQA: CNN + LSTM, BOW + CNN, language-only baselines) and
duan (the DAQUAR examples; "LSTM+CNN 47.80, BOW+CNN 44.30, LSTM language only 42.51").

One module, `VQAClassifier`, registered under four names that differ in defaults:

* ``vqa_question_lstm``: the question alone (LSTM), the language-only baseline;
* ``vqa_bow_cnn``: bag-of-words question + CNN image features, concatenated (Zhou et al.
  2015, "Simple Baseline for Visual Question Answering");
* ``vqa_lstm_cnn``: LSTM question x CNN image features, element-wise product (Antol et
  al. 2015, "deeper LSTM Q + norm I");
* ``vqa_attention``: the same with soft attention over the CNN's feature map, the
  question as the query (Yang et al. 2016's stacked attention, one hop; the additive
  score of `zoo.models.seq2seq.Attention`).

The input is one example of two parts (`zoo.nn.inputs`): ``x = (images (B, H, W, C)
float, questions (B, T) int token ids, 0-padded)``; ``input_shape = ((H, W, C), (T,))``.
The image encoder is any registered CNN, by name (``image_encoder``, with overrides in
``image_config``), run through its ``forward_features`` (or ``feature_maps`` for
attention); the LSTM question encoder is the registered ``lstm`` classifier's
``forward_features``. Their heads are never called, so they own no parameters here.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from zoo._choices import unknown_name_error
from zoo.models.seq2seq import Attention
from zoo.nn import check_input
from zoo.nn.checks import check_count
from zoo.nn.inputs import is_multipart
from zoo.nn.tokens import PAD
from zoo.registry import create_model, get_spec, register_model

QUESTION_ENCODERS = ("bow", "lstm")
FUSIONS = ("product", "concat")
SEEDS = "khanzhina (VQA: CNN + LSTM / BOW); duan (DAQUAR: LSTM+CNN 47.80, BOW+CNN 44.30, LSTM language only 42.51)"


class VQAClassifier(nn.Module):
    """(images (B, H, W, C) float, questions (B, T) int) -> answer logits (B, num_classes).

    Question: ``"lstm"`` (the registered ``lstm`` over word embeddings of
    ``embed_dim``, last valid state, ``hidden_size`` wide) or ``"bow"`` (a bag of words:
    the sum of the question's word vectors, ``hidden_size`` wide, then tanh).
    Image (``image_encoder`` a registered CNN, or None for a question-only model): its
    features, through a dense layer to ``hidden_size`` and tanh. With ``attention`` the
    CNN's feature map (B, h, w, K) is attended to by the question (additive score, h*w
    weights summing to 1) and the weighted sum of its K-vectors is the image feature.
    Fusion: ``"product"`` (element-wise, (B, hidden_size)) or ``"concat"`` (B,
    2 * hidden_size). Head: dense ``hidden_size`` + ReLU, dropout, dense ``num_classes``.
    """

    input_shape: tuple = ((32, 32, 3), (7,))
    num_classes: int = 15
    vocab_size: int = 32
    image_encoder: str | None = "lenet5"
    image_config: dict | None = None
    question_encoder: str = "lstm"
    embed_dim: int = 32
    hidden_size: int = 128
    fusion: str = "product"
    attention: bool = False
    dropout_rate: float = 0.0

    def __post_init__(self):
        if not (is_multipart(self.input_shape) and len(self.input_shape) == 2):
            raise ValueError(
                f"VQAClassifier: input_shape must be ((H, W, C), (T,)) (image and question), got {self.input_shape!r}"
            )
        image, question = self.input_shape
        if len(image) != 3 or len(question) != 1 or any(int(d) <= 0 for d in (*image, *question)):
            raise ValueError(
                f"VQAClassifier: input_shape must be ((H, W, C), (T,)) with positive sizes, got {self.input_shape!r}"
            )
        for what in ("num_classes", "embed_dim", "hidden_size"):
            check_count(getattr(self, what), what, 1, "VQAClassifier")
        check_count(self.vocab_size, "vocab_size", 2, "VQAClassifier")  # padding and unknown ids
        if self.question_encoder not in QUESTION_ENCODERS:
            raise unknown_name_error("question encoder", self.question_encoder, QUESTION_ENCODERS)
        if self.fusion not in FUSIONS:
            raise unknown_name_error("fusion", self.fusion, FUSIONS)
        if self.image_encoder is not None:
            spec = get_spec(self.image_encoder)
            if spec.family != "cnn" or len(spec.input_shape) != 3:
                raise ValueError(
                    f"VQAClassifier: image_encoder must be a registered image CNN, got {self.image_encoder!r} "
                    f"(family {spec.family!r}, input_shape {spec.input_shape})"
                )
            if self.attention and not hasattr(spec.module, "feature_maps"):
                raise ValueError(
                    f"VQAClassifier: attention needs a CNN with feature_maps (e.g. lenet5, resnet20); "
                    f"{self.image_encoder!r} has none"
                )
        elif self.attention or self.image_config:
            raise ValueError("VQAClassifier: attention and image_config need an image_encoder")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError(f"VQAClassifier: dropout_rate must be in [0, 1), got {self.dropout_rate}")
        super().__post_init__()

    def setup(self):
        image_shape, question_shape = (tuple(s) for s in self.input_shape)
        if self.image_encoder is not None:
            self.cnn = create_model(self.image_encoder, input_shape=image_shape, **(self.image_config or {}))
            self.image_projection = nn.Dense(self.hidden_size)
            if self.attention:
                self.attend = Attention(score="additive", units=self.hidden_size)
        if self.question_encoder == "lstm":
            self.lstm = create_model(
                "lstm",
                input_shape=question_shape,
                vocab_size=self.vocab_size,
                embedding_dim=self.embed_dim,
                hidden_size=self.hidden_size,
            )
        else:
            self.bag_of_words = nn.Embed(self.vocab_size, self.hidden_size)
        self.hidden = nn.Dense(self.hidden_size)
        self.dropout = nn.Dropout(self.dropout_rate)
        self.out = nn.Dense(self.num_classes)

    def _checked(self, x):
        if not (isinstance(x, (tuple, list)) and len(x) == 2):
            raise ValueError(f"VQAClassifier expects x = (images, questions), got {type(x).__name__}")
        images, questions = x
        name = f"VQAClassifier(input_shape={tuple(self.input_shape)})"
        check_input(images, self.input_shape[0], model=name)
        questions = jnp.asarray(questions)
        if jnp.issubdtype(questions.dtype, jnp.floating):
            questions = questions.astype(jnp.int32)  # ids that travelled as floats
        check_input(questions, self.input_shape[1], model=name, dtype_kind="int")
        if images.shape[0] != questions.shape[0]:
            raise ValueError(f"{name}: {images.shape[0]} images but {questions.shape[0]} questions")
        return images, questions

    def encode_question(self, questions, train: bool = False):
        """(B, T) int -> (B, hidden_size)."""
        if self.question_encoder == "lstm":
            return self.lstm.forward_features(questions, train)
        counts = (questions != PAD)[..., None]  # padding is no word of the bag
        return jnp.tanh(jnp.sum(self.bag_of_words(questions) * counts, axis=1))

    def _image(self, images, q, train: bool):
        """-> (image features (B, hidden_size), attention weights (B, h, w) or None)."""
        if not self.attention:
            return jnp.tanh(self.image_projection(self.cnn.forward_features(images, train))), None
        maps = self.cnn.feature_maps(images, train)  # (B, h, w, K)
        B, h, w, K = maps.shape
        memory = maps.reshape(B, h * w, K)
        context, weights = self.attend(memory, jnp.ones((B, h * w), bool), q.shape[-1])(q)
        return jnp.tanh(self.image_projection(context)), weights.reshape(B, h, w)

    def _features(self, x, train: bool):
        images, questions = self._checked(x)
        q = self.encode_question(questions, train)
        if self.image_encoder is None:
            return q, None
        v, weights = self._image(images, q, train)
        return (v * q if self.fusion == "product" else jnp.concatenate([v, q], -1)), weights

    def forward_features(self, x, train: bool = False):
        """x = (images, questions) -> the fused features (B, hidden_size), or (B, 2 *
        hidden_size) with ``fusion="concat"``."""
        return self._features(x, train)[0]

    def attention_map(self, x):
        """x = (images, questions) -> (B, h, w) attention weights over the CNN's feature
        map (inference mode), summing to 1 per example. Needs ``attention=True``."""
        if not self.attention:
            raise ValueError("attention_map needs a model with attention=True (e.g. vqa_attention)")
        return self._features(x, False)[1]

    def head(self, h, train: bool = False):
        """Fused features -> (B, num_classes) answer logits."""
        return self.out(self.dropout(nn.relu(self.hidden(h)), deterministic=not train))

    def __call__(self, x, train: bool = False):
        return self.head(self.forward_features(x, train), train)


_TEST = {
    "input_shape": ((16, 16, 3), (5,)),
    "num_classes": 4,
    "vocab_size": 11,
    "embed_dim": 3,
    "hidden_size": 4,
    "dropout_rate": 0.1,
}
_REGISTER = dict(family="multimodal", task="classification", input_dtype=("float32", "int32"))

register_model(
    "vqa_question_lstm",
    VQAClassifier,
    paper=f"Antol et al. 2015 (language-only baseline); {SEEDS}",
    defaults={"image_encoder": None},
    test_config=_TEST,
    description="Question-only VQA baseline: the question's LSTM state -> MLP over answers; the image is ignored.",
    **_REGISTER,
)
register_model(
    "vqa_bow_cnn",
    VQAClassifier,
    paper=f"Zhou et al. 2015, Simple Baseline for VQA (BOW + CNN features, concatenated); {SEEDS}",
    defaults={"question_encoder": "bow", "fusion": "concat"},
    test_config=_TEST,
    description="Bag-of-words question and CNN image features (any registered CNN), concatenated -> MLP.",
    **_REGISTER,
)
register_model(
    "vqa_lstm_cnn",
    VQAClassifier,
    paper=f"Antol et al. 2015, VQA (LSTM Q x norm I, element-wise product); {SEEDS}",
    test_config=_TEST,
    description="LSTM question state times CNN image features (any registered CNN), element-wise -> MLP.",
    **_REGISTER,
)
register_model(
    "vqa_attention",
    VQAClassifier,
    paper=f"Yang et al. 2016, Stacked Attention Networks (one hop); Xu et al. 2015 soft attention; {SEEDS}",
    defaults={"attention": True},
    test_config=_TEST,
    description=(
        "LSTM question attends over the CNN's feature map (additive score); the attended image "
        "vector times the question state -> MLP. `attention_map` gives the weights."
    ),
    **_REGISTER,
)
