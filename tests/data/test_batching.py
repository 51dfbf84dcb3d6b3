"""Seeded mini-batches."""

import numpy as np
import pytest

from zoo.data import iterate_batches, num_batches

X = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # row i is all i


Y = np.arange(10, dtype=np.int32)


def _order(batches):
    return np.concatenate([b["y"][b["mask"] > 0] for b in batches]).tolist()


def test_each_example_once_per_epoch_and_x_y_stay_paired():
    batches = list(iterate_batches(X, Y, 3, seed=0, epoch=0))
    assert [len(b["x"]) for b in batches] == [3, 3, 3, 1]
    assert sorted(_order(batches)) == list(range(10))
    for b in batches:
        np.testing.assert_array_equal(b["x"][:, 0], b["y"])
        assert b["mask"].dtype == np.float32 and np.all(b["mask"] == 1)


def test_order_is_a_function_of_seed_and_epoch():
    def order(seed, epoch):
        return _order(iterate_batches(X, Y, 4, seed=seed, epoch=epoch))

    assert order(0, 5) == order(0, 5)
    assert order(0, 5) == np.random.default_rng([0, 5]).permutation(10).tolist()
    assert order(0, 5) != order(0, 6)
    assert order(0, 5) != order(1, 5)


def test_drop_remainder():
    batches = list(iterate_batches(X, Y, 4, seed=0, epoch=0, drop_remainder=True))
    assert [len(b["x"]) for b in batches] == [4, 4]
    assert len(set(_order(batches))) == 8


def test_pad_fills_the_last_batch_with_masked_zeros():
    batches = list(iterate_batches(X, Y, 4, seed=0, epoch=0, shuffle=False, pad=True))
    assert [b["x"].shape for b in batches] == [(4, 3)] * 3
    last = batches[-1]
    np.testing.assert_array_equal(last["mask"], [1, 1, 0, 0])
    np.testing.assert_array_equal(last["y"], [8, 9, 0, 0])
    np.testing.assert_array_equal(last["x"][2:], 0)
    assert last["x"].dtype == X.dtype and last["y"].dtype == Y.dtype
    # A batch larger than the data is padded too: one shape for every evaluation set.
    (only,) = iterate_batches(X, Y, 16, seed=0, epoch=0, shuffle=False, pad=True)
    assert only["x"].shape == (16, 3) and only["mask"].sum() == 10


@pytest.mark.parametrize("shuffle", [False, True])
def test_fill_completes_the_last_batch_with_the_epochs_first_examples_masked(shuffle):
    """The training loop's batches: one shape, each example counted once (mask 1), the last
    batch's other rows real examples from the epoch's start (what batch norm then sees)."""
    batches = list(iterate_batches(X, Y, 4, seed=3, epoch=1, shuffle=shuffle, fill=True))
    assert [b["x"].shape for b in batches] == [(4, 3)] * 3
    order = np.concatenate([b["y"] for b in batches]).tolist()
    first = np.random.default_rng([3, 1]).permutation(10).tolist() if shuffle else list(range(10))
    assert order == first + first[:2]
    np.testing.assert_array_equal(np.concatenate([b["mask"] for b in batches]), [1] * 10 + [0, 0])
    assert sorted(_order(batches)) == list(range(10))
    for b in batches:
        np.testing.assert_array_equal(b["x"][:, 0], b["y"])
    # Nothing to fill: batches that divide the data, and a batch larger than it.
    assert [b["mask"].sum() for b in iterate_batches(X, Y, 5, seed=0, epoch=0, fill=True)] == [5, 5]
    (only,) = iterate_batches(X, Y, 16, seed=0, epoch=0, fill=True)
    assert only["x"].shape == (10, 3) and only["mask"].sum() == 10


def test_batch_size_at_least_n_gives_one_full_batch():
    for drop_remainder in (False, True):
        (only,) = iterate_batches(X, Y, 10_000, seed=0, epoch=0, drop_remainder=drop_remainder)
        assert sorted(only["y"].tolist()) == list(range(10))


def test_shuffle_false_keeps_the_order():
    assert _order(iterate_batches(X, Y, 3, seed=0, epoch=7, shuffle=False)) == list(range(10))


def test_num_batches_matches_iterate_batches():
    for n in (0, 1, 9, 10, 11):
        for batch_size in (1, 3, 10, 12):
            for drop in (False, True):
                yielded = iterate_batches(np.arange(n), np.arange(n), batch_size, seed=0, epoch=0, drop_remainder=drop)
                assert num_batches(n, batch_size, drop) == len(list(yielded)), (n, batch_size, drop)


def test_iterate_batches_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        next(iterate_batches(X, Y, 0, seed=0, epoch=0))
    with pytest.raises(ValueError, match="x has 10 examples but y has 9"):
        next(iterate_batches(X, Y[:9], 2, seed=0, epoch=0))
    with pytest.raises(ValueError, match="seed"):
        next(iterate_batches(X, Y, 2, seed=-1, epoch=0))
