"""The RBM benchmark: the zoo's jit'd CD-1 step against scikit-learn's BernoulliRBM."""

from conftest import require_module

from zoo.bench import run_entry, suite_entry
from zoo.bench.energy import digit_bits


def test_rbm_entry_times_cd1_against_sklearn():
    require_module("sklearn")  # fails rather than skips under CI=true
    entry = suite_entry("rbm")
    result = run_entry(entry, entry.workload(batch_size=16), compare=("sklearn", "torch"), steps=2, rounds=5, warmup=1)
    assert result.status == "ok", result.traceback
    assert set(result.contenders) == {"zoo", "sklearn"} and "torch" in result.unavailable
    assert result.contenders["zoo"].params == result.contenders["sklearn"].params == 64 * 128 + 64 + 128
    assert result.ratios["sklearn"].median > 0


def test_rbm_batch_is_binarised_digits():
    bits = digit_bits(100, 64)
    assert bits.shape == (100, 64) and set(map(float, bits.ravel())) == {0.0, 1.0}
