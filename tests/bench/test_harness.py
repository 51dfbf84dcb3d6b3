"""The benchmark runner (zoo.bench.harness) on tiny shapes: its numbers are positive and
consistent, the references are timed beside the zoo, absent models stay absent, and a
sequence-to-sequence model is fed its source and target."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_affine, require_module

import zoo
from zoo import bench
from zoo.bench import contenders, harness
from zoo.bench.suite import SUITE, Entry, Workload, suite_entry

# The suite's MLP entry shrunk: 8x8x1 images, one hidden layer of 16.
TINY = {"hidden_sizes": (16,)}


def tiny_mlp_workload(batch_size=8, **kw):
    return suite_entry("mlp").workload(batch_size=batch_size, image_size=8, **kw)


def jax_contender_for(entry, workload, overrides=None, model=None):
    """A zoo (or given ``model``) contender for ``entry`` built as run_entry builds it."""
    given, config = harness.model_config(entry, workload, overrides)
    model = model or zoo.create_model(entry.model, **given)
    shape = harness.example_shape_of(config, workload)
    host = contenders.make_host_batch(model, "classification", shape, workload, entry.input_vocab)
    batch = contenders.device_batch(host, workload)
    return contenders.jax_contender("zoo", model, "classification", batch, shape, workload)


# ------------------------------------------------------------------------------ numbers


@pytest.fixture(scope="module")
def mlp_result():
    entry = suite_entry("mlp")
    return bench.run_entry(
        entry, tiny_mlp_workload(), overrides=TINY, steps=3, rounds=5, warmup=1, compare=("torch", "flax")
    )


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


def test_bfloat16_runs_mixed_precision_and_casts_inputs():
    contender = jax_contender_for(suite_entry("mlp"), tiny_mlp_workload(dtype="bfloat16"), TINY)
    contender.run_step()
    assert contender.flops > 0
    batch = contenders.device_batch({"x": np.ones((2, 3), np.float32)}, Workload(2, dtype="bfloat16"))
    assert batch["x"].dtype == jnp.bfloat16


def test_unregistered_models_are_reported_absent():
    absent = [e for e in SUITE if e.model not in zoo.list_models()]
    fake = Entry("not_yet", model="no_such_model_yet", batch_size=4)
    results = [bench.run_entry(e, e.workload()) for e in (*absent, fake)]
    assert all(r.status == "absent" and "not registered" in r.reason for r in results)
    assert all(not r.contenders and not r.ratios for r in results)
    table = bench.summary_table(results)
    assert table.count("**absent**") == len(results)


def test_seq2seq_is_fed_source_and_target():
    """The Bahdanau encoder-decoder entry, shrunk: the train step and the forward apply
    call the model with (x, y), the targets shaped after its decoder's output, and its
    torch and Flax references are timed beside it."""
    entry = dataclasses.replace(suite_entry("seq2seq_bahdanau"), input_vocab=11)
    overrides = {"vocab_size": 11, "embed_dim": 4, "hidden_size": 8}
    workload = entry.workload(batch_size=4, seq_len=6)
    given, config = harness.model_config(entry, workload, overrides)
    model = zoo.create_model(entry.model, **given)
    host = contenders.make_host_batch(model, "sequence_to_sequence", (6,), workload, entry.input_vocab)
    assert host["x"].shape == (4, 6) and host["y"].shape == (4, 6) and host["y"].max() < 11
    for mode, compare in (("train", ("torch", "flax")), ("forward", ())):
        if compare:
            require_module("torch")
        result = bench.run_entry(
            entry,
            entry.workload(batch_size=4, seq_len=6, mode=mode),
            overrides=overrides,
            compare=compare,
            steps=1,
            rounds=5,
            warmup=1,
        )
        assert result.status == "ok", result.traceback
        assert not result.unavailable, result.unavailable
        assert set(result.ratios) == set(compare)
        assert result.zoo.flops_per_step > 0 and "trip count" in result.zoo.flops_source
        assert result.zoo.tokens_per_s == pytest.approx(4 * 6 / result.zoo.step.median_s)
