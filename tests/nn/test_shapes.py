"""The one output-size formula (zoo.nn.shapes): floor((H + P_low + P_high - F) / S) + 1."""

import pytest

from zoo.nn.shapes import conv_output_size, conv_padding, conv_transpose_output_size


def test_conv_output_size_formula():
    assert conv_output_size(227, 11, 4) == 55
    assert conv_output_size(224, 11, 4, 2) == 55
    assert conv_output_size(224, 11, 4) == 54
    assert conv_output_size(5, 3) == 3


def test_conv_output_size_takes_asymmetric_padding_pairs():
    assert conv_output_size(9, 3, 1, (0, 2)) == 9
    assert conv_output_size(8, 3, 1, (2, 1)) == 9
    assert conv_output_size(112, 3, 2, (0, 1)) == 56  # GoogLeNet's "SAME" 3x3/2 pool
    assert conv_output_size(224, 11, 4, (2, 2)) == conv_output_size(224, 11, 4, 2)


@pytest.mark.parametrize("size, kernel, stride", [(112, 3, 2), (7, 3, 1), (10, 3, 2), (32, 2, 2), (9, 4, 3)])
def test_same_padding_keeps_ceil_of_size_over_stride(size, kernel, stride):
    pads = conv_padding("SAME", kernel, stride, (size, size))
    assert pads[0] == pads[1]
    assert conv_output_size(size, kernel, stride, pads[0]) == -(-size // stride)
    assert conv_padding("VALID", kernel, stride, (size, size)) == ((0, 0), (0, 0))
    assert conv_padding(1, kernel, stride, (size, size)) == ((1, 1), (1, 1))
    assert conv_padding(((0, 1), (2, 3)), kernel, stride, (size, size)) == ((0, 1), (2, 3))


def test_conv_padding_rejects_unknown_forms():
    with pytest.raises(ValueError, match="SAME, VALID"):
        conv_padding("CIRCULAR", 3, 1, (5, 5))
    with pytest.raises(ValueError, match="two entries"):
        conv_padding((1, 1, 1), 3, 1, (5, 5))


def test_conv_transpose_output_size_inverts_the_conv_formula():
    assert conv_transpose_output_size(3, 3, 2, 1) == 5  # kang-lecture4: 3x3 map, padding 1, stride 2
    assert conv_transpose_output_size(14, 2, 2, 0) == 28
    assert conv_transpose_output_size(14, 3, 2, (1, 1), 1) == 28
    assert conv_output_size(conv_transpose_output_size(9, 5, 3, 2, 2), 5, 3, 2) == 9
