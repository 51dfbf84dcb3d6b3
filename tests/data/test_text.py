"""zoo.data.text: the tokenizer, the vocabulary (build, encode, pad, truncate, decode) and the
word-vector loader (GloVe and word2vec text formats, malformed files)."""

import numpy as np
import pytest

from zoo.data.text import PAD, UNK, Vocabulary, load_word_vectors, pad_or_truncate, tokenize


def test_tokenize():
    assert tokenize("It's NOT good, 10/10!") == ["it's", "not", "good", "10", "10"]
    assert tokenize("Café -- naïve_word") == ["café", "naïve", "word"]
    assert tokenize("") == []
    with pytest.raises(ValueError, match="expects a str"):
        tokenize(b"bytes")


def test_vocabulary_build_order_min_count_and_max_size():
    texts = ["b a c a", "a b d", "e"]
    vocab = Vocabulary.build(texts)
    # a:3, b:2, then c, d, e once each in alphabetical order.
    assert vocab.tokens == ("<pad>", "<unk>", "a", "b", "c", "d", "e")
    assert Vocabulary.build(texts, min_count=2).tokens == ("<pad>", "<unk>", "a", "b")
    assert Vocabulary.build(texts, max_size=4).tokens == ("<pad>", "<unk>", "a", "b")
    assert len(Vocabulary.build(texts, max_size=4)) == 4  # the specials count
    assert Vocabulary(vocab.tokens).tokens == vocab.tokens
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.build(texts, min_count=0)
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary.build(texts, max_size=2)
    with pytest.raises(ValueError, match="appears twice"):
        Vocabulary(("<pad>", "<unk>", "a", "a"))
    with pytest.raises(ValueError, match="starts with"):
        Vocabulary(("a", "b"))


def test_vocabulary_encode_pad_truncate_decode():
    vocab = Vocabulary.build(["the movie was good", "the movie was bad"])
    assert (PAD, UNK) == (0, 1)
    ids = vocab.encode("The movie was GREAT")
    assert ids.dtype == np.int32
    assert ids.tolist() == [vocab.token_id("the"), vocab.token_id("movie"), vocab.token_id("was"), UNK]
    assert vocab.decode(ids) == "the movie was <unk>"
    padded = vocab.encode("the movie", length=4)
    assert padded.tolist() == [vocab.token_id("the"), vocab.token_id("movie"), PAD, PAD]
    assert vocab.decode(padded) == "the movie"
    assert vocab.decode(padded, skip_padding=False) == "the movie <pad> <pad>"
    assert vocab.encode("the movie was good", length=2).tolist() == vocab.encode("the movie").tolist()
    batch = vocab.encode_batch(["good", "the movie was bad indeed"], 3)
    assert batch.shape == (2, 3) and batch.dtype == np.int32
    assert [vocab.decode(row) for row in batch] == ["good", "the movie was"]
    assert pad_or_truncate([5, 6], 4).tolist() == [5, 6, 0, 0]
    with pytest.raises(ValueError, match="out of range"):
        vocab.decode([len(vocab)])
    with pytest.raises(ValueError, match="length"):
        vocab.encode_batch(["good"], 0)


def test_load_word_vectors_glove_format(tmp_path):
    vocab = Vocabulary.build(["good bad movie", "good unseen"])  # good, bad, movie, unseen
    path = tmp_path / "glove.txt"
    path.write_text("good 0.5 1.0 -1.5\nbad -0.5 -1.0 1.5\nMovie 2 3 4\nmovie 7 8 9\nother 1 1 1\n\n")
    matrix = load_word_vectors(path, vocab, dim=3, seed=1)
    assert matrix.shape == (len(vocab), 3) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix[vocab.token_id("good")], [0.5, 1.0, -1.5])
    np.testing.assert_array_equal(matrix[vocab.token_id("bad")], [-0.5, -1.0, 1.5])
    np.testing.assert_array_equal(matrix[vocab.token_id("movie")], [7, 8, 9])  # exact spelling wins
    np.testing.assert_array_equal(matrix[PAD], 0)
    unseen = matrix[[UNK, vocab.token_id("unseen")]]
    assert np.all(np.abs(unseen) <= 0.25) and np.all(unseen != 0)  # U[-0.25, 0.25], Kim
    np.testing.assert_array_equal(load_word_vectors(path, vocab, seed=1), matrix)  # seeded
    zero = load_word_vectors(path, vocab, unknown="zero")
    np.testing.assert_array_equal(zero[[UNK, vocab.token_id("unseen")]], 0)


def test_load_word_vectors_word2vec_header_and_case_folding(tmp_path):
    vocab = Vocabulary.build(["good movie"])
    path = tmp_path / "w2v.txt"
    path.write_text("2 2\nGood 1 2\nMovie 3 4\n")  # GoogleNews vectors are cased
    matrix = load_word_vectors(path, vocab, unknown="zero")
    np.testing.assert_array_equal(matrix[vocab.token_id("good")], [1, 2])
    np.testing.assert_array_equal(matrix[vocab.token_id("movie")], [3, 4])


@pytest.mark.parametrize(
    "content, message",
    [
        ("good 1 2 3\nbad 1 2\n", "line 2: expected a word and 3 numbers, found 3 fields"),
        ("good 1 2 3\nbad 1 2 3 4\n", "line 2: 4 numbers after the word, expected 3"),
        ("good 1 2 3\nbad 1 x 3\n", "line 2: 'x' is not a number"),
        ("3 2\ngood 1 2\nbad 3 4\n", "header announces 3 vectors but the file holds 2"),
        ("good\n", "line 1: a word without a vector"),
        ("", "no word vectors"),
    ],
)
def test_load_word_vectors_rejects_malformed_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        load_word_vectors(path, Vocabulary.build(["good bad"]))
    assert str(path) in str(info.value)


def test_load_word_vectors_dimension_binary_and_missing(tmp_path):
    vocab = Vocabulary.build(["good"])
    path = tmp_path / "v.txt"
    path.write_text("good 1 2 3\n")
    with pytest.raises(ValueError, match="holds 3-dimensional vectors, expected dim=300"):
        load_word_vectors(path, vocab, dim=300)
    binary = tmp_path / "v.bin"
    binary.write_bytes(b"1 3\ngood \x00\x00\x80?\x00\x00\x00@\x00\x00@@\n")
    with pytest.raises(ValueError, match="line 2: binary data"):
        load_word_vectors(binary, vocab)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_word_vectors(tmp_path / "nowhere.txt", vocab)
    with pytest.raises(ValueError, match="unknown must be"):
        load_word_vectors(path, vocab, unknown="mean")
