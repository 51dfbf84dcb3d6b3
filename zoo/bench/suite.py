"""The benchmark suite: one table of entries, and the workload each one runs.

An entry names a registered zoo model and the overrides that size it, its default
shapes, and the references it is compared with: a hand-written PyTorch twin (a builder
in `zoo.bench.torch_models`, named by string so that torch is imported only when a
comparison asks for it) and a Flax stock-layer builder (`zoo.bench.flax_models`).
A model family that lands later adds (or edits) its entry in `SUITE`; nothing else in
the harness knows about particular models. An entry whose model is not registered yet
is reported as absent.

The model is called as its task says (``Task.inputs`` in `zoo.tasks`): a
sequence-to-sequence entry's batch holds the source ``x`` and the target ``y``, which the
decoder reads by teacher forcing.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from zoo.bench import flax_models

DTYPES = ("float32", "bfloat16")
MODES = ("train", "forward")


@dataclasses.dataclass(frozen=True)
class Workload:
    """What one benchmark step processes: ``batch_size`` examples, each an image of
    ``image_size``² pixels or a sequence of ``seq_len`` steps (None where it does not
    apply), in ``dtype``; ``mode`` is "train" (the engine's train step, optimizer update
    included) or "forward" (inference apply)."""

    batch_size: int
    seq_len: int | None = None
    image_size: int | None = None
    dtype: str = "float32"
    mode: str = "train"

    def __post_init__(self):
        if self.batch_size <= 0:
            raise ValueError(f"batch size must be positive, got {self.batch_size}")
        for name in ("seq_len", "image_size"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; expected one of {DTYPES}")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {MODES}")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One benchmark: model ``model`` built with ``config(workload)`` as overrides.

    batch_size / seq_len / image_size: the default workload; an entry with ``seq_len``
    is a sequence entry (throughput also in tokens/s), one with ``image_size`` an image
    entry. The model's ``input_shape`` (from its config) is one example's shape; a
    ``None`` axis in it takes ``seq_len``.
    input_vocab: the inputs are token ids in [0, input_vocab) instead of floats.
    torch_twin: name of a builder in `zoo.bench.torch_models`; flax_stock: a builder from
    `zoo.bench.flax_models`; both take the model's full config. None where none exists.
    analytic_flops: ``(config, workload) -> FLOPs per step``, for a model whose step XLA's
    cost analysis cannot count (a while loop of unknown trip count); scan loops are
    counted per trip automatically.
    contenders: ``(config, workload) -> {name: builder of a Contender}``, for a model the
    engine's train step does not train (a learning rule, not a gradient): the entry times
    these ("zoo" and its references, e.g. "sklearn") instead of the engine's step.
    """

    name: str
    model: str
    batch_size: int
    config: Callable[[Workload], Mapping[str, Any]] = lambda workload: {}
    seq_len: int | None = None
    image_size: int | None = None
    input_vocab: int | None = None
    torch_twin: str | None = None
    flax_stock: Callable[[Mapping[str, Any]], Any] | None = None
    analytic_flops: Callable[[Mapping[str, Any], Workload], float] | None = None
    description: str = ""
    contenders: Callable[[Mapping[str, Any], Workload], Mapping[str, Callable[[], Any]]] | None = None

    def workload(
        self, *, batch_size=None, seq_len=None, image_size=None, dtype="float32", mode="train", strict=True
    ) -> Workload:
        """This entry's default workload with the given values replacing the defaults.

        A ``seq_len`` for an entry without sequences (or ``image_size`` without images) is
        an error when ``strict``, and ignored otherwise (a suite run applies one command
        line to every entry)."""
        for name, value in (("seq_len", seq_len), ("image_size", image_size)):
            if value is not None and getattr(self, name) is None:
                if strict:
                    raise ValueError(f"--{name.replace('_', '-')} does not apply to benchmark {self.name!r}")
                value = None
        return Workload(
            batch_size=batch_size or self.batch_size,
            seq_len=self.seq_len if seq_len is None or self.seq_len is None else seq_len,
            image_size=self.image_size if image_size is None or self.image_size is None else image_size,
            dtype=dtype,
            mode=mode,
        )


def _square_image(channels: int, **extra):
    """Config of an image model: ``input_shape`` (S, S, channels) from the workload."""
    return lambda w: {"input_shape": (w.image_size, w.image_size, channels), **extra}


def _sequence(features: int, **extra):
    """Config of a sequence model over (T, features) inputs."""
    return lambda w: {"input_shape": (w.seq_len, features), **extra}


# The standard suite (`python -m zoo.bench --all`).
SUITE: tuple[Entry, ...] = (
    Entry(
        "mlp",
        model="mlp",
        batch_size=128,
        image_size=28,
        config=_square_image(1, hidden_sizes=(256, 256), num_outputs=10),
        torch_twin="mlp",
        flax_stock=flax_models.mlp,
        description="784-256-256-10 ReLU MLP on 28x28x1 images",
    ),
    Entry(
        "lenet5",
        model="lenet5",
        batch_size=128,
        image_size=28,
        config=_square_image(1, num_classes=10),
        torch_twin="lenet5",
        flax_stock=flax_models.lenet5,
        description="modern LeNet-5 (conv1 padding 2, max pool, ReLU), 61,706 parameters",
    ),
    Entry(
        "resnet18",
        model="resnet18",
        batch_size=16,
        image_size=128,
        config=_square_image(3, num_classes=1000),
        torch_twin="resnet18",
        flax_stock=flax_models.resnet18,
        description="ResNet-18, 1000 classes",
    ),
    Entry(
        "vgg11",
        model="vgg11",
        batch_size=16,
        image_size=64,
        config=_square_image(3, num_classes=1000),
        torch_twin="vgg11",
        flax_stock=flax_models.vgg11,
        description="VGG-11 (configuration A), 1000 classes",
    ),
    Entry(
        "lstm",
        model="lstm",
        batch_size=64,
        seq_len=128,
        config=_sequence(64, hidden_size=256, num_classes=10),
        torch_twin="lstm",
        flax_stock=flax_models.lstm,
        description="LSTM I=64 H=256, dense head on the last step",
    ),
    Entry(
        "gru",
        model="gru",
        batch_size=64,
        seq_len=128,
        config=_sequence(64, hidden_size=256, num_classes=10),
        torch_twin="gru",
        flax_stock=flax_models.gru,
        description="GRU I=64 H=256, dense head on the last step",
    ),
    Entry(
        "seq2seq_bahdanau",
        model="seq2seq_bahdanau",
        batch_size=64,
        seq_len=32,
        input_vocab=1000,
        config=lambda w: {
            "input_shape": (w.seq_len,),
            "output_length": w.seq_len,
            "vocab_size": 1000,
            "embed_dim": 128,
            "hidden_size": 256,
        },
        torch_twin="seq2seq_bahdanau",
        flax_stock=flax_models.seq2seq_bahdanau,
        description="Bahdanau encoder-decoder: bidirectional GRU encoder H=256, additive attention, "
        "vocab 1000, E=128, teacher forcing over 32 target tokens",
    ),
    Entry(
        "conv_autoencoder",
        model="conv_autoencoder",
        batch_size=64,
        image_size=32,
        config=_square_image(1),
        torch_twin="conv_autoencoder",
        description="convolutional autoencoder 16-32, max-unpooling decoder (MaxUnpool2d), BCE on logits",
    ),
    Entry(
        "conv_autoencoder_transposed",
        model="conv_autoencoder_transposed",
        batch_size=64,
        image_size=32,
        config=_square_image(1),
        torch_twin="conv_autoencoder",
        description="convolutional autoencoder 16-32, 3x3/2 transposed-convolution decoder (ConvTranspose2d)",
    ),
    Entry(
        "unet",
        model="unet",
        batch_size=16,
        image_size=64,
        config=_square_image(1, num_classes=4),
        torch_twin="unet",
        description="U-Net 16-32-64-128, padded convs, 2x2/2 up-convs (ConvTranspose2d), 4 classes per pixel",
    ),
    Entry(
        "rbm",
        model="rbm",
        batch_size=64,
        image_size=8,
        config=_square_image(1, num_hidden=128, use_labels=False),
        contenders=lambda config, workload: _energy().rbm_contenders(config, workload),
        description="RBM 64-128, one CD-1 step (gradient + update) on binarised digits; "
        "reference: scikit-learn BernoulliRBM.partial_fit",
    ),
)


def _energy():
    from zoo.bench import energy  # imports zoo.bench.contenders, which imports this module

    return energy


def suite_entry(name: str) -> Entry | None:
    """The suite entry called ``name``, or None."""
    return next((e for e in SUITE if e.name == name), None)


def registry_entry(model: str, spec) -> Entry:
    """An entry for a registered model the suite does not list: its registry defaults,
    batch 32, sequences of 32 where its input shape has a free axis, no references."""
    free_axis = any(d is None for d in spec.input_shape)
    vocab = next((int(v) for k, v in spec.config.items() if "vocab" in k and isinstance(v, int)), None)
    return Entry(
        name=model,
        model=model,
        batch_size=32,
        seq_len=32 if free_axis else None,
        input_vocab=(vocab or 2) if spec.input_dtype.startswith("int") else None,
        description=f"registry defaults of {model!r}",
    )
