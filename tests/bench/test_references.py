"""The benchmark's references: the hand-written PyTorch twins (zoo.bench.torch_models)
and the Flax stock-layer models (zoo.bench.flax_models) are the suite's architectures,
with the published parameter counts, and run a step through the contenders."""

import jax
import jax.numpy as jnp
import pytest
from conftest import require_module

import zoo
from zoo.bench import contenders, flax_models, flops, harness
from zoo.bench.suite import SUITE, suite_entry
from zoo.tasks import get_task


def test_torch_mlp_twin_matches_the_zoo_mlp():
    require_module("torch")
    from zoo.bench import torch_models

    entry = suite_entry("mlp")
    given, config = harness.model_config(entry, entry.workload())
    model = zoo.create_model("mlp", **given)
    count = _flax_count(model, (28, 28, 1))
    assert count == 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    assert torch_models.parameter_count(torch_models.mlp(config)) == count
    assert _flax_count(flax_models.mlp(config), (28, 28, 1)) == count


def _flax_count(module, shape, dtype=jnp.float32):
    variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), jnp.zeros((1, *shape), dtype))
    return flops.parameter_count(variables["params"])


@pytest.mark.parametrize(
    "builder, config, expected",
    [
        ("lenet5", {"input_shape": (28, 28, 1), "num_classes": 10}, 61_706),
        ("resnet18", {"input_shape": (224, 224, 3), "num_classes": 1000}, 11_689_512),
        ("resnet50", {"input_shape": (224, 224, 3), "num_classes": 1000}, 25_557_032),
        ("vgg11", {"input_shape": (224, 224, 3), "num_classes": 1000}, 132_863_336),
    ],
)
def test_reference_parameter_counts(builder, config, expected):
    """The twins and the Flax stock models hold the published parameter counts."""
    torch = require_module("torch")
    from zoo.bench import torch_models

    with torch.device("meta"):  # shapes only: no 130M-parameter initialisation
        assert torch_models.parameter_count(getattr(torch_models, builder)(config)) == expected
    assert _flax_count(getattr(flax_models, builder)(config), config["input_shape"]) == expected


# Shrunk workloads on which each suite entry's two references run one train step.
SMALL = {"batch_size": 2, "image_size": 32, "seq_len": 5}
SMALL_CONFIG = {"num_classes": 10, "hidden_size": 16, "embed_dim": 8, "vocab_size": 20}


@pytest.mark.parametrize("entry", [e for e in SUITE if e.torch_twin and e.flax_stock], ids=lambda e: e.name)
def test_references_run_and_agree_on_shapes(entry):
    """Each entry's torch twin and Flax stock model take the same batch, called as the
    model's task says (``(x,)``, or ``(x, y)`` for sequence to sequence), and give outputs
    of the same shape; the twin runs a train step through the harness. (The Flax stock
    models run through the same `jax_contender` as the zoo's: see the MLP and LSTM tests.)"""
    torch = require_module("torch")
    from zoo.bench import torch_models

    workload = entry.workload(strict=False, **SMALL)
    given = entry.config(workload)
    config = {**given, **{k: v for k, v in SMALL_CONFIG.items() if k in given}}
    vocab = SMALL_CONFIG["vocab_size"] if entry.input_vocab else None
    shape = harness.example_shape_of(config, workload)
    task = get_task(zoo.model_info(entry.model)["task"])
    # The batch as the harness makes it: targets shaped after the zoo model's output.
    host = contenders.make_host_batch(zoo.create_model(entry.model, **config), task.name, shape, workload, vocab)
    stock = entry.flax_stock(config)
    inputs = task.inputs(jax.tree.map(jnp.asarray, host))
    flax_out = jax.eval_shape(lambda: stock.init_with_output(jax.random.PRNGKey(0), *inputs)[0])

    twin = getattr(torch_models, entry.torch_twin)(config)
    x = torch.from_numpy(host["x"])
    x = x.permute(0, 3, 1, 2) if getattr(twin, "input_layout", None) == "NCHW" else x
    with torch.no_grad():
        torch_out = twin(*task.inputs({"x": x.long() if vocab else x, "y": torch.from_numpy(host["y"]).long()}))
    assert tuple(torch_out.shape) == flax_out.shape

    contenders.torch_contender(entry.torch_twin, config, task.name, host, workload).run_step()


def test_seq2seq_references_are_the_zoo_architecture():
    """The Bahdanau references hold the zoo model's parameters: the Flax stock model
    exactly; the torch twin 2 x width more per GRU cell (torch keeps two 3 x width bias
    vectors, the zoo one and the reset-after b_hn of width), so 8H more over two encoder
    cells of width H and a decoder cell of width 2H."""
    require_module("torch")
    from zoo.bench import torch_models

    small = {"input_shape": (6,), "output_length": 5, "vocab_size": 11, "embed_dim": 4, "hidden_size": 8}
    config = {**zoo.model_info("seq2seq_bahdanau")["config"], **small}
    x, y = jnp.ones((2, 6), jnp.int32), jnp.ones((2, 5), jnp.int32)

    def count(module):
        return flops.parameter_count(jax.eval_shape(module.init, jax.random.PRNGKey(0), x, y)["params"])

    zoo_count = count(zoo.create_model("seq2seq_bahdanau", **small))
    assert count(flax_models.seq2seq_bahdanau(config)) == zoo_count
    assert torch_models.parameter_count(torch_models.seq2seq_bahdanau(config)) == zoo_count + 8 * 8
