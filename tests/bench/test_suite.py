"""The benchmark suite's table (zoo.bench.suite): every entry names its shapes, and
workload options that do not apply are rejected."""

import pytest

from zoo.bench.suite import SUITE, Workload, suite_entry


def test_every_suite_entry_names_its_shapes_and_references():
    assert len({e.name for e in SUITE}) == len(SUITE)
    assert {"mlp", "lenet5", "resnet18", "vgg11", "lstm", "gru", "seq2seq_bahdanau"} <= {e.name for e in SUITE}
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
