"""python -m zoo.bench.conv_speed: per-layer convolution timing, every way and torch."""

import argparse

import pytest
from conftest import require_module

from zoo.bench import conv_speed


def test_layer_argument():
    assert conv_speed.parse_layer("2,8,8,4,6") == (2, 8, 8, 4, 6, 3)
    assert conv_speed.parse_layer("2,8,8,4,6,5") == (2, 8, 8, 4, 6, 5)
    for bad in ("2,8,8,4", "2,8,8,4,0", "a,b"):
        with pytest.raises((argparse.ArgumentTypeError, ValueError)):
            conv_speed.parse_layer(bad)


def test_times_each_way_beside_torch(capsys):
    require_module("torch")
    conv_speed.main(["--layer", "2,6,6,4,8", "--impls", "native,im2col,xla", "--rounds", "1", "--steps", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 2, 6x6, 4 -> 8, 3x3 |")]
    assert [row.split(" | ")[1] for row in rows] == ["native", "im2col", "xla", "torch"]
    assert all(float(row.split(" | ")[2].split()[0]) > 0 for row in rows)
    assert rows[-1].endswith("| - |")  # torch's own row has no ratio
