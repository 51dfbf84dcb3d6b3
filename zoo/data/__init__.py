"""Datasets as in-memory NumPy arrays, and the mini-batches the training engine reads.

    from zoo.data import load_dataset, iterate_batches
    data = load_dataset("digits")            # Dataset: x_train (1437, 8, 8, 1) float32 ...
    for batch in iterate_batches(data.x_train, data.y_train, 32, seed=0, epoch=0):
        batch["x"], batch["y"], batch["mask"]

Modules: `base` (the Dataset record), `catalog` (name -> loader), `sources` (scikit-learn,
IDX and TFDS loaders), `idx` (the IDX file format), `synthetic` (generated tasks),
`batching` (epoch order and batches), `text` (tokenizer, vocabulary, word vectors),
`sentiment` (the generated sentiment task), `imdb` (IMDB reviews from TFDS),
`ujiindoorloc` (Wi-Fi fingerprints: the UJIIndoorLoc CSV files and generated ones). Importing
this package imports neither scikit-learn nor tensorflow_datasets; the loaders do, when
called.
"""

from zoo.data.base import Dataset, DatasetNotFoundError
from zoo.data.batching import epoch_order, iterate_batches, num_batches
from zoo.data.catalog import DATASETS, describe_dataset, list_datasets, load_dataset
from zoo.data.idx import read_idx

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetNotFoundError",
    "describe_dataset",
    "epoch_order",
    "iterate_batches",
    "list_datasets",
    "load_dataset",
    "num_batches",
    "read_idx",
]
