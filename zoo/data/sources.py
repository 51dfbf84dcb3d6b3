"""Loaders for real datasets: scikit-learn's embedded sets, IDX files and TFDS.

scikit-learn and tensorflow_datasets are imported inside the loaders, so that
``import zoo.data`` stays fast and never imports TFDS (or, through it, TensorFlow).
"""

from __future__ import annotations

import os

import numpy as np

from zoo.data.base import Dataset, DatasetNotFoundError
from zoo.data.idx import IDX_FILES, find_idx_files, load_idx_folder

TEST_FRACTION = 0.2  # held-out share of the sets that ship without a test split

DIGIT_NAMES = tuple(str(d) for d in range(10))
FASHION_MNIST_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# Folders that system packages fill with the original IDX files, searched when no
# data_dir is given. Debian: `apt-get install dataset-fashion-mnist`.
SYSTEM_IDX_FOLDERS = {"fashion_mnist": ("/usr/share/datasets/fashion-mnist",)}


def _images_to_unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 images ``(N, H, W, C)`` -> float32 in [0, 1]."""
    return images.astype(np.float32) / np.float32(255)


# --- scikit-learn's embedded sets: always available, no files to fetch.


def load_digits(*, seed: int = 0) -> Dataset:
    """scikit-learn's handwritten digits (Alpaydin & Kaynak 1998), no download: x ``(N, 8, 8,
    1)`` float32 (grey levels 0..16 / 16), y ``(N,)`` int32; stratified 1,437 / 360 split by
    ``train_test_split(random_state=seed)``."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    x = (bunch.images[..., None] / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=TEST_FRACTION, random_state=seed, stratify=y)
    return Dataset(
        name="digits",
        task="classification",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=10,
        class_names=DIGIT_NAMES,
        description=(
            "scikit-learn load_digits (UCI optical recognition of handwritten digits, "
            "Alpaydin & Kaynak 1998): 8x8 images, grey levels 0..16 scaled by 1/16; "
            f"stratified {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} train/test split, seed {seed}."
        ),
    )


def load_breast_cancer(*, seed: int = 0) -> Dataset:
    """scikit-learn's breast cancer Wisconsin (diagnostic) set (Street, Wolberg & Mangasarian
    1993): 569 tumours, 30 features of cell nuclei from a fine-needle aspirate image;
    label 0 malignant, 1 benign. The seed's bioinformatics use of autoencoder features
    (cancer diagnosis), offline.

    x: ``(N, 30)`` float32 in [0, 1]: each feature min-max scaled with the training split's
    range (test values outside it clipped), so a sigmoid decoder can reconstruct them;
    y: ``(N,)`` int32. Split: stratified, 20% test (455 train / 114 test) by
    ``train_test_split(random_state=seed)``. Embedded in scikit-learn.
    """
    from sklearn.datasets import load_breast_cancer as sklearn_breast_cancer
    from sklearn.model_selection import train_test_split

    bunch = sklearn_breast_cancer()
    x, y = bunch.data.astype(np.float64), bunch.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=TEST_FRACTION, random_state=seed, stratify=y)
    low, span = x_train.min(0), np.maximum(np.ptp(x_train, 0), 1e-12)

    def scale(a):
        return np.clip((a - low) / span, 0.0, 1.0).astype(np.float32)

    return Dataset(
        name="breast_cancer",
        task="classification",
        x_train=scale(x_train),
        y_train=y_train,
        x_test=scale(x_test),
        y_test=y_test,
        num_classes=2,
        class_names=tuple(str(n) for n in bunch.target_names),
        description=(
            "scikit-learn load_breast_cancer (Wisconsin diagnostic, Street et al. 1993): 30 "
            "features min-max scaled to [0, 1] with training-split ranges; stratified "
            f"{1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} train/test split, seed {seed}."
        ),
    )


def load_diabetes(*, seed: int = 0) -> Dataset:
    """scikit-learn's diabetes regression set (Efron et al. 2004): x ``(N, 10)`` float32, y
    ``(N, 1)`` float32 (progression after a year); random 353 / 89 split by ``seed``.

    The raw features and the target are standardised with training-split statistics only
    (scikit-learn's ``scaled=True`` uses test rows); ``dataset.unscale_targets`` undoes it.
    """
    from sklearn.datasets import load_diabetes as sklearn_diabetes
    from sklearn.model_selection import train_test_split

    bunch = sklearn_diabetes(scaled=False)
    x = bunch.data.astype(np.float64)
    y = bunch.target.astype(np.float64)[:, None]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=TEST_FRACTION, random_state=seed)
    x_mean, x_std = x_train.mean(axis=0), x_train.std(axis=0)
    y_mean, y_std = y_train.mean(axis=0), y_train.std(axis=0)

    def standardise(a, mean, std):
        return ((a - mean) / std).astype(np.float32)

    return Dataset(
        name="diabetes",
        task="regression",
        x_train=standardise(x_train, x_mean, x_std),
        y_train=standardise(y_train, y_mean, y_std),
        x_test=standardise(x_test, x_mean, x_std),
        y_test=standardise(y_test, y_mean, y_std),
        target_mean=y_mean.astype(np.float32),
        target_std=y_std.astype(np.float32),
        description=(
            "scikit-learn load_diabetes (Efron, Hastie, Johnstone & Tibshirani 2004): "
            "10 raw features and the target standardised with training-split statistics "
            f"(target mean {y_mean[0]:.2f}, std {y_std[0]:.2f}; see target_mean/target_std); "
            f"random {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} train/test split, seed {seed}."
        ),
    )


# --- TFDS image classification sets, read through tfds.data_source (array_record files,
# random access, no TensorFlow at run time).

_CITATIONS = {
    "mnist": "MNIST (LeCun, Bottou, Bengio & Haffner 1998)",
    "fashion_mnist": "Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747)",
    "cifar10": "CIFAR-10 (Krizhevsky 2009, Learning Multiple Layers of Features from Tiny Images)",
    "cifar100": "CIFAR-100 (Krizhevsky 2009), the 100 fine labels",
    "svhn_cropped": "SVHN cropped digits (Netzer et al. 2011), train and test splits (not 'extra')",
}

_READ_CHUNK = 1024  # records per batched read; a chunk of decoded CIFAR images is ~3 MB


def _how_to_get(name: str) -> str:
    advice = (
        f"To prepare it, once: `tfds build {name} --file_format=array_record [--data_dir DIR]`, "
        "which needs network access and TensorFlow (the tfds command and its image encoding "
        "import it: `pip install tensorflow`; reading the prepared files does not), then pass "
        "data_dir=DIR (train.py: --data-dir DIR)."
    )
    if name in ("mnist", "fashion_mnist"):
        advice += (
            " Or point data_dir at a folder with the four original IDX files ("
            + ", ".join(file + "[.gz]" for file in IDX_FILES.values())
            + ")."
        )
    if name == "fashion_mnist":
        advice += (
            " On Debian/Ubuntu, `apt-get install dataset-fashion-mnist` puts them in "
            "/usr/share/datasets/fashion-mnist, which is searched automatically."
        )
    return advice


def read_tfds_splits(name: str, data_dir: str | None, read_split, how_to_get: str):
    """``({"train": read_split(source, name), "test": ...}, dataset_info)`` from TFDS's
    prepared ``name`` through ``tfds.data_source`` (no TensorFlow, never downloads).
    Raises DatasetNotFoundError ending in ``how_to_get`` when the data is not readable."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DatasetNotFoundError(
            f"reading {name!r} needs tensorflow-datasets: `pip install tensorflow-datasets`. {how_to_get}"
        ) from None
    splits = {}
    for split in ("train", "test"):
        try:
            source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
        except Exception as err:  # TFDS raises several kinds; diagnose from the files instead
            raise _tfds_not_readable(tfds, name, data_dir, err, how_to_get) from err
        splits[split] = read_split(source, name)
    return splits, source.dataset_info


def load_tfds_image_classification(name: str, data_dir: str | None = None) -> Dataset:
    """TFDS's prepared train and test splits of ``name`` (in ``data_dir`` or TFDS's default;
    never downloaded): x ``(N, H, W, C)`` float32 in [0, 1], y ``(N,)`` int32.
    DatasetNotFoundError, saying how to get the data, when it is not prepared."""
    splits, info = read_tfds_splits(name, data_dir, _read_image_source, _how_to_get(name))
    label_feature = info.features["label"]
    return Dataset(
        name=name,
        task="classification",
        x_train=_images_to_unit_float(splits["train"][0]),
        y_train=splits["train"][1],
        x_test=_images_to_unit_float(splits["test"][0]),
        y_test=splits["test"][1],
        num_classes=label_feature.num_classes,
        class_names=tuple(label_feature.names),
        description=(
            f"{_CITATIONS[name]}, read from tensorflow-datasets' prepared '{name}' "
            "(official train/test split); pixels scaled by 1/255."
        ),
    )


def _tfds_not_readable(tfds, name: str, data_dir: str | None, err: Exception, how_to_get: str) -> Exception:
    """The error to raise when ``tfds.data_source`` failed: missing, or the wrong format;
    ``how_to_get`` is the loader's own advice (image and text sets differ)."""
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        return DatasetNotFoundError(
            f"dataset {name!r} is not prepared in {builder.data_dir}; zoo reads "
            f"prepared data and never downloads. {how_to_get}"
        )
    return ValueError(
        f"dataset {name!r} is prepared in {builder.data_dir} but cannot be read by "
        f"random access ({err}). Prepare it again with --file_format=array_record. "
        f"{how_to_get}"
    )


def _read_image_source(source, name: str) -> tuple[np.ndarray, np.ndarray]:
    """All records of a TFDS data source: images ``(N, H, W, C)`` uint8, labels ``(N,)`` int32."""
    num_examples = len(source)
    if num_examples == 0:
        raise ValueError(f"the prepared {name!r} split {source.split!r} holds no examples")
    images = labels = None
    for start in range(0, num_examples, _READ_CHUNK):
        stop = min(start + _READ_CHUNK, num_examples)
        try:
            # Batched reads: array_record fetches the records of a batch in parallel,
            # twice as fast as one `source[i]` at a time on MNIST-sized files.
            examples = source.__getitems__(list(range(start, stop)))
        except ImportError as err:  # TFDS decodes PNG/JPEG with OpenCV or Pillow
            raise ImportError(
                f"decoding the images of {name!r} needs Pillow or OpenCV: `pip install pillow` ({err})"
            ) from err
        if images is None:
            images = np.empty((num_examples, *np.shape(examples[0]["image"])), np.uint8)
            labels = np.empty(num_examples, np.int32)
        images[start:stop] = np.stack([example["image"] for example in examples])
        labels[start:stop] = [example["label"] for example in examples]
    return images, labels


def load_image_classification(
    name: str, data_dir: str | None, idx_class_names: tuple[str, ...] | None = None
) -> Dataset:
    """An image classification set from IDX files (``idx_class_names`` given) or TFDS: with
    ``data_dir``, its IDX files, else its TFDS data; without, `SYSTEM_IDX_FOLDERS`, else
    TFDS's default data dir."""
    if data_dir is not None:
        data_dir = os.fspath(data_dir)
        # A URL (gs://...) is TFDS's business; a local folder must exist.
        if "://" not in data_dir and not os.path.isdir(data_dir):
            raise DatasetNotFoundError(
                f"data_dir {data_dir!r} for dataset {name!r} is not a folder. {_how_to_get(name)}"
            )
        if idx_class_names is not None and find_idx_files(data_dir):
            # Some IDX files present: the user meant this folder; a missing one is an error.
            return _load_idx(name, data_dir, idx_class_names)
        return load_tfds_image_classification(name, data_dir)
    if idx_class_names is not None:
        for folder in SYSTEM_IDX_FOLDERS.get(name, ()):
            if len(find_idx_files(folder)) == len(IDX_FILES):
                return _load_idx(name, folder, idx_class_names)
    return load_tfds_image_classification(name, None)


def _load_idx(name: str, folder: str, class_names: tuple[str, ...]) -> Dataset:
    arrays = load_idx_folder(folder, num_classes=len(class_names))
    return Dataset(
        name=name,
        task="classification",
        x_train=_images_to_unit_float(arrays["x_train"]),
        y_train=arrays["y_train"],
        x_test=_images_to_unit_float(arrays["x_test"]),
        y_test=arrays["y_test"],
        num_classes=len(class_names),
        class_names=class_names,
        description=(
            f"{_CITATIONS[name]}, read from the original IDX files in {folder} "
            "(official train/test split); pixels scaled by 1/255."
        ),
    )


def load_mnist(*, data_dir: str | None = None) -> Dataset:
    """MNIST (LeCun et al. 1998), 60,000 / 10,000: x ``(N, 28, 28, 1)`` float32 in [0, 1], y
    ``(N,)`` int32; from IDX files or TFDS (`load_image_classification`)."""
    return load_image_classification("mnist", data_dir, DIGIT_NAMES)


def load_fashion_mnist(*, data_dir: str | None = None) -> Dataset:
    """Fashion-MNIST (Xiao et al. 2017), as `load_mnist` (also searched: Debian's
    ``dataset-fashion-mnist`` in /usr/share/datasets/fashion-mnist)."""
    return load_image_classification("fashion_mnist", data_dir, FASHION_MNIST_NAMES)


def load_cifar10(*, data_dir: str | None = None) -> Dataset:
    """CIFAR-10 from TFDS, 50,000 / 10,000: x ``(N, 32, 32, 3)`` float32 in [0, 1], y ``(N,)`` int32."""
    return load_image_classification("cifar10", data_dir)


def load_cifar100(*, data_dir: str | None = None) -> Dataset:
    """CIFAR-100 from TFDS, as `load_cifar10`, the 100 fine labels."""
    return load_image_classification("cifar100", data_dir)


def load_svhn_cropped(*, data_dir: str | None = None) -> Dataset:
    """SVHN cropped digits from TFDS, 73,257 / 26,032 (not 'extra'), as `load_cifar10`."""
    return load_image_classification("svhn_cropped", data_dir)
