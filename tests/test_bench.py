"""The benchmark harness (zoo.bench) on tiny shapes: its numbers are positive and
consistent, the references are the same architectures, absent models stay absent."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import require_module

import zoo
from zoo import bench
from zoo.bench import flax_models, harness
from zoo.bench.suite import SUITE, Entry, Workload, suite_entry

REPO = pathlib.Path(__file__).resolve().parents[1]
# The suite's MLP entry shrunk: 8x8x1 images, one hidden layer of 16.
TINY = {"hidden_sizes": (16,)}


def tiny_mlp_workload(batch_size=8, **kw):
    return suite_entry("mlp").workload(batch_size=batch_size, image_size=8, **kw)


def jax_contender_for(entry, workload, overrides=None, model=None):
    """A zoo (or given ``model``) contender for ``entry`` built as run_entry builds it."""
    given, config = harness.model_config(entry, workload, overrides)
    model = model or zoo.create_model(entry.model, **given)
    shape = harness.example_shape_of(config, workload)
    host = harness.make_host_batch(model, "classification", shape, workload, entry.input_vocab)
    return harness.jax_contender("zoo", model, "classification", harness.device_batch(host, workload), shape, workload)


def assert_affine(xs, ys, rel=0.05):
    """ys grows linearly in xs (a constant offset allowed): equal increments per unit."""
    slopes = np.diff(ys) / np.diff(xs)
    assert np.all(slopes > 0), ys
    assert np.ptp(slopes) <= rel * slopes.mean(), (xs, ys)


# ------------------------------------------------------------------------------ numbers


@pytest.fixture(scope="module")
def mlp_result():
    entry = suite_entry("mlp")
    return bench.run_entry(entry, tiny_mlp_workload(), overrides=TINY, steps=3, rounds=5, warmup=1,
                           compare=("torch", "flax"))


def test_numbers_are_positive_and_consistent(mlp_result):
    r = mlp_result
    assert r.status == "ok", r.traceback
    z = r.zoo
    assert z.step.samples == 15 and z.step.min_s > 0
    assert z.step.min_s <= z.step.q1_s <= z.step.median_s <= z.step.q3_s <= z.step.max_s
    assert z.compile_s > 0 and z.flops_per_step > 0 and z.flops_per_s > 0
    assert z.examples_per_s == pytest.approx(8 / z.step.median_s)
    assert z.tokens_per_s is None  # not a sequence entry
    assert 0 < z.mfu <= 1
    assert z.mfu == pytest.approx(z.flops_per_s / r.peak_flops_per_s)
    assert z.memory_bytes > 0 and z.memory_source


def test_parameter_count_is_the_sum_of_parameter_sizes(mlp_result):
    model = zoo.create_model("mlp", input_shape=(8, 8, 1), num_outputs=10, **TINY)
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)))["params"]
    assert mlp_result.zoo.params == sum(p.size for p in jax.tree.leaves(params)) == 64 * 16 + 16 + 16 * 10 + 10


def test_torch_and_flax_ratios_have_a_spread(mlp_result):
    require_module("torch")
    assert not mlp_result.unavailable, mlp_result.unavailable
    for reference in ("torch", "flax"):
        ratio = mlp_result.ratios[reference]
        assert len(ratio.per_round) == 5
        assert 0 < ratio.min <= ratio.median <= ratio.max
        assert mlp_result.contenders[reference].params == mlp_result.zoo.params


def test_flops_scale_linearly_with_batch():
    batches = (8, 16, 32)
    flops = [jax_contender_for(suite_entry("mlp"), tiny_mlp_workload(b), TINY).flops for b in batches]
    assert_affine(batches, flops)
    # The optimizer update is the only part that does not grow with the batch.
    assert flops[2] / flops[0] > 3.0


def test_bfloat16_casts_parameters_and_inputs():
    contender = jax_contender_for(suite_entry("mlp"), tiny_mlp_workload(dtype="bfloat16"), TINY)
    contender.run_step()
    assert contender.flops > 0
    batch = harness.device_batch({"x": np.ones((2, 3), np.float32)}, Workload(2, dtype="bfloat16"))
    assert batch["x"].dtype == jnp.bfloat16


# ------------------------------------------------------------------ loops and FLOPs


def _rnn_loss(weights, xs):
    def step(h, x):
        h = jnp.tanh(x @ weights["input"] + h @ weights["recurrent"])
        return h, h

    _, hs = jax.lax.scan(step, jnp.zeros((xs.shape[1], 32)), xs)
    return hs.sum()


def test_scan_flops_grow_linearly_with_sequence_length():
    weights = {"input": jnp.ones((16, 32)), "recurrent": jnp.ones((32, 32))}
    fn = jax.jit(jax.grad(_rnn_loss))
    lengths, counted, raw = (8, 16, 32), [], []
    for t in lengths:
        xs = jnp.ones((t, 4, 16))
        compiled = fn.lower(weights, xs).compile()
        flops, source = bench.count_step_flops(fn, compiled, weights, xs)
        counted.append(flops)
        raw.append(bench.xla_flops(compiled))
        assert "trip count" in source
    assert_affine(lengths, counted, rel=0.01)
    # Forward 2 matmuls per step, backward 4 (input and weight gradients).
    matmuls_per_step = 2 * 4 * (16 * 32 + 32 * 32) * 3
    assert counted[-1] / lengths[-1] == pytest.approx(matmuls_per_step, rel=0.25)
    # What the helper corrects: XLA alone counts the scan body once.
    assert raw[-1] < 2 * raw[0]


def test_nested_scans_multiply_both_trip_counts():
    def nested(x):
        def outer(c, _):
            inner = jax.lax.scan(lambda h, _: (h @ x, None), c, None, length=5)[0]
            return inner, None

        return jax.lax.scan(outer, x, None, length=3)[0]

    x = jnp.ones((16, 16))
    fn = jax.jit(nested)
    flops, _ = bench.count_step_flops(fn, fn.lower(x).compile(), x)
    assert flops == pytest.approx(3 * 5 * 2 * 16**3, rel=0.05)


def test_recurrent_train_step_flops_grow_with_sequence_length():
    """A recurrent model through the engine's train step, its scans found inside Flax's
    lifted transforms (the Flax stock LSTM standing in until the zoo's LSTM lands)."""
    entry = suite_entry("lstm")
    lengths, flops = (4, 16), []
    for t in lengths:
        workload = entry.workload(batch_size=4, seq_len=t)
        config = {**entry.config(workload), "hidden_size": 8}
        model = flax_models.lstm(config)
        host = harness.make_host_batch(model, "classification", config["input_shape"], workload, None)
        contender = harness.jax_contender("flax", model, "classification", harness.device_batch(host, workload),
                                          config["input_shape"], workload)
        flops.append(contender.flops)
        assert "trip count" in contender.flops_source
    # 4x the steps: nearly 4x the FLOPs (the SGD update and the head do not grow).
    assert 3.5 < flops[1] / flops[0] <= 4.0


# --------------------------------------------------------------- references and suite


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
    return harness.parameter_count(variables["params"])


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
SMALL_CONFIG = {"num_classes": 10, "hidden_size": 16, "embed_dim": 8, "src_vocab_size": 20, "tgt_vocab_size": 20}


@pytest.mark.parametrize("entry", [e for e in SUITE if e.torch_twin and e.flax_stock], ids=lambda e: e.name)
def test_references_run_and_agree_on_shapes(entry):
    """Each entry's torch twin and Flax stock model take the same batch and give outputs
    of the same shape; the twin runs a train step through the harness. (The Flax stock
    models run through the same `jax_contender` as the zoo's: see the MLP and LSTM tests.)"""
    torch = require_module("torch")
    from zoo.bench import torch_models

    workload = entry.workload(strict=False, **SMALL)
    given = entry.config(workload)
    config = {**given, **{k: v for k, v in SMALL_CONFIG.items() if k in given}}
    vocab = SMALL_CONFIG["src_vocab_size"] if entry.input_vocab else None
    shape = harness.example_shape_of(config, workload)
    stock = entry.flax_stock(config)
    host = harness.make_host_batch(stock, "classification", shape, workload, vocab)
    flax_out = jax.eval_shape(lambda: stock.init_with_output(jax.random.PRNGKey(0), jnp.asarray(host["x"]))[0])

    twin = getattr(torch_models, entry.torch_twin)(config)
    x = torch.from_numpy(host["x"])
    x = x.permute(0, 3, 1, 2) if getattr(twin, "input_layout", None) == "NCHW" else x
    with torch.no_grad():
        torch_out = twin(x.long() if vocab else x)
    assert tuple(torch_out.shape) == flax_out.shape

    harness.torch_contender(entry.torch_twin, config, "classification", host, workload).run_step()


def test_unregistered_models_are_reported_absent():
    absent = [e for e in SUITE if e.model not in zoo.list_models()]
    fake = Entry("not_yet", model="no_such_model_yet", batch_size=4)
    results = [bench.run_entry(e, e.workload()) for e in (*absent, fake)]
    assert all(r.status == "absent" and "not registered" in r.reason for r in results)
    assert all(not r.contenders and not r.ratios for r in results)
    table = bench.summary_table(results)
    assert table.count("**absent**") == len(results)


def test_every_suite_entry_names_its_shapes_and_references():
    assert len({e.name for e in SUITE}) == len(SUITE)
    assert {"mlp", "lenet5", "resnet18", "vgg11", "lstm", "gru", "seq2seq_attention"} <= {e.name for e in SUITE}
    for entry in SUITE:
        workload = entry.workload()
        assert "input_shape" in entry.config(workload)
        assert (entry.seq_len is None) != (entry.image_size is None)


def test_workload_options_that_do_not_apply_are_rejected():
    with pytest.raises(ValueError, match="--seq-len"):
        suite_entry("mlp").workload(seq_len=10)
    assert suite_entry("mlp").workload(seq_len=10, strict=False).seq_len is None
    with pytest.raises(ValueError, match="dtype"):
        Workload(4, dtype="float16")


# ------------------------------------------------------------------------------- CLI


def test_cli_writes_valid_json(tmp_path, capsys):
    from zoo.bench.__main__ import main

    out = tmp_path / "bench.json"
    argv = ["--model", "mlp", "--image-size", "8", "--batch-size", "8", "--set", "hidden_sizes=(16,)",
            "--steps", "2", "--rounds", "1", "--warmup", "1", "--json", str(out)]
    assert main(argv) == 0
    data = json.loads(out.read_text())
    (result,) = data["results"]
    assert result["status"] == "ok" and result["contenders"]["zoo"]["params"] == 64 * 16 + 16 + 16 * 10 + 10
    assert result["config"]["hidden_sizes"] == [16]
    assert data["metadata"]["command"].startswith("python -m zoo.bench --model mlp")
    assert data["metadata"]["matmul_peak_flops_per_s"]["float32"] > 0
    assert "| mlp | train | float32 | 8 |" in capsys.readouterr().out


def test_cli_unknown_model_exits_2_with_one_error_line():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "zoo.bench", "--model", "mlpp"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown model 'mlpp'") and "mlp" in lines[0]


def test_cli_bad_options_exit_2(capsys):
    from zoo.bench.__main__ import main

    assert main(["--model", "mlp", "--compare", "tensorflow"]) == 2
    assert main(["--model", "mlp", "--seq-len", "8"]) == 2
    assert main(["--model", "mlp", "--set", "hidden_sizez=3", "--steps", "1", "--rounds", "1"]) == 2
    assert main(["--model", "mlp", "--compare", "torch", "--rounds", "3"]) == 2  # a ratio needs 5 rounds
    errors = capsys.readouterr().err.strip().splitlines()
    assert [line.split(" ")[0] for line in errors if line.startswith("error")] == ["error:"] * 4
