"""Dataset values are checked when a dataset is built and when `zoo.fit` receives one: a
NaN pixel or an out-of-range label is an error that names the split, never a result."""

import dataclasses

import numpy as np
import pytest

import zoo
from zoo.data import Dataset, load_dataset
from zoo.data.text import Vocabulary, load_word_vectors

QUIET = dict(progress=False, epochs=1)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize(
    "split, label, message",
    [
        ("y_train", -1, r"y_train labels must be in \[0, 10\).*from -1"),
        ("y_train", 10, r"y_train labels must be in \[0, 10\).*to 10"),
        ("y_test", 99, r"y_test labels must be in \[0, 10\).*to 99"),
    ],
)
def test_labels_outside_the_classes_are_refused(digits, split, label, message):
    y = getattr(digits, split).copy()
    y[0] = label
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(digits, **{split: y})


def test_non_integer_labels_are_refused(digits):
    y = digits.y_train.astype(np.float32)
    y[3] = 2.5
    with pytest.raises(ValueError, match="integer class labels.*2.5"):
        dataclasses.replace(digits, y_train=y)


@pytest.mark.parametrize("split", ["x_train", "x_test"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_inputs_are_refused(digits, split, value):
    x = getattr(digits, split).copy()
    x[7, 2, 3, 0] = value
    with pytest.raises(ValueError, match=f"{split} holds 1 non-finite value.*example 7"):
        dataclasses.replace(digits, **{split: x})


def test_fit_rechecks_arrays_changed_in_place():
    data = load_dataset("digits").with_validation(0.1, seed=0)
    data.x_val[4] = np.nan  # after construction: only fit can see it
    with pytest.raises(ValueError, match="x_val holds 64 non-finite"):
        zoo.fit("mlp", data, **QUIET)


def test_a_binary_model_on_multi_class_labels_is_refused(digits):
    with pytest.raises(ValueError, match=r"one output unit for two classes.*'digits' has 10 classes"):
        zoo.fit("perceptron", digits, **QUIET)
    zoo.fit("perceptron", "xor", **QUIET)  # two classes: fine


def test_a_model_with_fewer_outputs_than_classes_is_refused(digits):
    with pytest.raises(ValueError, match="has 5 outputs, but dataset 'digits' has 10 classes"):
        zoo.fit("mlp", digits, model_overrides={"num_outputs": 5}, **QUIET)


def test_a_classifier_on_regression_targets_is_refused():
    data = load_dataset("diabetes")
    with pytest.raises(ValueError, match="perceptron.*two classes|predicts class labels"):
        zoo.fit("perceptron", data, **QUIET)


def test_resizing_beyond_memory_is_refused_before_allocating(digits):
    with pytest.raises(ValueError, match=r"needs \d+.* GiB .* choose a smaller image size"):
        digits.resized(100_000, 100_000)


@pytest.mark.parametrize(
    "name, options",
    [
        ("copy", {"length": 10**6}),
        ("reverse", {"num_examples": 10**9}),
        ("adding_problem", {"length": 10**6}),
        ("sentiment", {"max_length": 10**8}),
        ("dates", {"max_length": 10**6}),
        ("moving_digits", {"canvas_size": 10**4}),
        ("shapes", {"size": 10**5}),
        ("vqa_scenes", {"size": 10**5}),
    ],
)
def test_a_generated_dataset_beyond_memory_is_refused_before_allocating(name, options):
    """A size no machine holds is one clear error, not a process killed part way through
    (which the property test over the constructors' options ran into)."""
    with pytest.raises(ValueError, match=rf"^{name} needs \d+.* GiB for its \d+ examples; .* fewer or smaller"):
        load_dataset(name, **options)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e39"])
def test_word_vectors_must_be_finite(tmp_path, value):
    path = tmp_path / "vectors.txt"
    path.write_text(f"good 0.1 0.2\nbad 0.3 {value}\n")
    with pytest.raises(ValueError, match=f"line 2.*'{value}' is not a finite number"):
        load_word_vectors(str(path), Vocabulary.build(["good bad"]))


def test_a_hand_made_dataset_with_good_values_is_accepted():
    x = np.zeros((4, 2), np.float32)
    Dataset(
        name="tiny",
        task="classification",
        x_train=x,
        y_train=np.array([0, 1, 1, 0]),
        x_test=x,
        y_test=np.array([1, 1, 0, 0]),
        num_classes=2,
    )


def test_dataset_checks_its_arrays():
    x, y = np.zeros((4, 2), np.float32), np.zeros(3, np.int32)
    with pytest.raises(ValueError, match="x_train has 4 examples but y_train has 3"):
        Dataset(name="bad", task="classification", x_train=x, y_train=y, x_test=x, y_test=y, num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):
        Dataset(
            name="bad",
            task="classification",
            x_train=x,
            y_train=np.zeros(4, np.int32),
            x_test=x,
            y_test=np.zeros(4, np.int32),
        )
    assert "train=1437" in repr(load_dataset("digits"))


def test_with_validation_is_disjoint_complete_and_seeded():
    data = load_dataset("digits")
    # Tag every training example with its index to follow it through the split.
    tagged = Dataset(
        name="tagged",
        task="classification",
        x_train=np.arange(data.num_train)[:, None],
        y_train=data.y_train,
        x_test=data.x_test,
        y_test=data.y_test,
        num_classes=10,
    )
    split = tagged.with_validation(0.1, seed=0)
    train, val = split.x_train[:, 0], split.x_val[:, 0]
    assert len(val) == 144 and len(train) == 1437 - 144  # ceil(0.1 * 1437)
    assert not set(train) & set(val)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(1437))
    np.testing.assert_array_equal(split.y_val, data.y_train[val])
    np.testing.assert_array_equal(tagged.with_validation(0.1, seed=0).x_val, split.x_val)
    assert not np.array_equal(tagged.with_validation(0.1, seed=1).x_val, split.x_val)
    assert split.num_val == 144 and split.x_test is tagged.x_test


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_with_validation_rejects_fractions_outside_0_1(fraction):
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        load_dataset("digits").with_validation(fraction, seed=0)


def test_with_validation_rejects_empty_parts_and_a_second_split():
    with pytest.raises(ValueError, match="leaves no training examples"):
        load_dataset("xor").with_validation(0.9, seed=0)  # ceil(3.6) = 4 of 4
    assert load_dataset("xor").with_validation(0.1, seed=0).num_val == 1
    with pytest.raises(ValueError, match="already has a validation split"):
        load_dataset("digits").with_validation(0.1, seed=0).with_validation(0.1, seed=0)


@pytest.mark.parametrize("method", ["zca", "pca"])
def test_whitening_decorrelates_the_training_inputs_with_their_own_statistics(method):
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(3, 3)) + 3 * np.eye(3)
    x = (rng.normal(size=(4000, 3)) @ mixing + [5.0, -2.0, 1.0]).astype(np.float32)
    data = Dataset("toy", "classification", x[:3000], np.zeros(3000, int), x[3000:], np.zeros(1000, int), 2)
    white = data.whitened(method, epsilon=1e-9)
    covariance = np.cov(white.x_train, rowvar=False, bias=True)
    np.testing.assert_allclose(white.x_train.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(covariance, np.eye(3), atol=1e-4)
    # The test split goes through the training split's transform: nearly, not exactly, white.
    assert 0 < np.abs(white.x_test.mean(0)).max() < 0.2
    # ZCA is the symmetric whitening matrix, the one closest to the identity: it keeps each
    # coordinate on its own axis, so whitened and original inputs stay strongly correlated.
    own_axis = [np.corrcoef(white.x_train[:, i], x[:3000, i])[0, 1] for i in range(3)]
    assert (min(own_axis) > 0.8) == (method == "zca")


def test_whitening_keeps_image_shapes_and_is_a_train_option(digits):
    white = digits.whitened("zca")
    assert white.x_train.shape == digits.x_train.shape and white.x_test.dtype == np.float32
    result = zoo.fit("mlp", digits, whiten="zca", validation_fraction=0.1, **QUIET)
    assert result.test_metrics["accuracy"] > 0.8
    with pytest.raises(ValueError, match="whitening method must be 'pca' or 'zca'"):
        digits.whitened("pcaa")
    with pytest.raises(ValueError, match="whiten must be 'zca' or 'pca'"):
        zoo.fit("mlp", digits, whiten="yes", **QUIET)
