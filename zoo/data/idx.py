"""The IDX file format of MNIST and Fashion-MNIST, and folders of the four original files.

IDX (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number ``00 00 TT DD`` (TT: the
element type code, DD: the number of dimensions), DD big-endian uint32 sizes, then the
elements in row-major order, big-endian. The files are often distributed gzipped.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

from zoo.data.base import DatasetNotFoundError

# IDX element type code -> big-endian NumPy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

# The four files of an MNIST-style dataset, by role, under their original names.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """One IDX file, plain or gzipped (by its magic bytes), as an array of its shape and
    type in native byte order (MNIST: images ``(N, 28, 28)`` uint8, labels ``(N,)`` uint8).
    ValueError naming the file when it is not IDX, truncated, too long or corrupt.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        content = f.read()
    if content[:2] == _GZIP_MAGIC:
        try:
            content = gzip.decompress(content)
        except (EOFError, OSError, zlib.error) as err:  # truncated or corrupt stream
            raise ValueError(f"{path}: corrupt or truncated gzip data ({err})") from None
    if len(content) < 4 or content[:2] != b"\x00\x00":
        raise ValueError(
            f"{path}: not an IDX file (an IDX file starts with the magic bytes "
            f"00 00 <type> <ndim>; this one starts with {content[:4].hex(' ') or 'nothing'})"
        )
    type_code, ndim = content[2], content[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: unknown IDX element type code 0x{type_code:02x}; expected one of "
            + ", ".join(f"0x{code:02x}" for code in _IDX_DTYPES)
        )
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise ValueError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header_size} bytes, the file has {len(content)}"
        )
    shape = tuple(int(size) for size in np.frombuffer(content, ">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    actual = len(content) - header_size
    if actual < expected:
        raise ValueError(
            f"{path}: truncated IDX data: shape {shape} of {dtype.name} needs "
            f"{expected} bytes after the header, the file has {actual}"
        )
    if actual > expected:
        raise ValueError(f"{path}: {actual - expected} unexpected bytes after the IDX data of shape {shape}")
    data = np.frombuffer(content, dtype, count=math.prod(shape), offset=header_size)
    return data.reshape(shape).astype(dtype.newbyteorder("="))  # a writable native-order copy


def find_idx_files(folder: str | os.PathLike) -> dict[str, str]:
    """Paths of the MNIST-style files in ``folder`` by role (`IDX_FILES`), plain or ``.gz``,
    also spelt ``train-images.idx3-ubyte``; roles without a file are left out."""
    found = {}
    for role, name in IDX_FILES.items():
        dotted = name.replace("-idx", ".idx", 1)
        for candidate in (name, name + ".gz", dotted, dotted + ".gz"):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                found[role] = path
                break
    return found


def load_idx_folder(folder: str | os.PathLike, num_classes: int) -> dict[str, np.ndarray]:
    """``{"x_train": (N, H, W, 1) uint8, "y_train": (N,) int32, "x_test", "y_test"}`` from
    the four files of ``folder``; DatasetNotFoundError listing missing files, ValueError
    naming a malformed one."""
    folder = os.fspath(folder)
    found = find_idx_files(folder)
    missing = [IDX_FILES[role] + "[.gz]" for role in IDX_FILES if role not in found]
    if missing:
        raise DatasetNotFoundError(
            f"{folder} lacks the IDX file(s) {', '.join(missing)}; an MNIST-style "
            f"folder holds all four of {', '.join(IDX_FILES.values())} "
            "(each may be gzipped)"
        )
    arrays = {}
    image_shape = None
    for split in ("train", "test"):
        images_path, labels_path = found[f"{split}_images"], found[f"{split}_labels"]
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"{images_path}: expected uint8 images of shape (N, rows, cols), "
                f"got {images.dtype} of shape {images.shape}"
            )
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise ValueError(
                f"{labels_path}: expected uint8 labels of shape (N,), got {labels.dtype} of shape {labels.shape}"
            )
        if len(images) != len(labels):
            raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
        if len(labels) and labels.max() >= num_classes:
            raise ValueError(f"{labels_path}: label {labels.max()} out of range; expected 0..{num_classes - 1}")
        if image_shape is not None and images.shape[1:] != image_shape:
            raise ValueError(
                f"{images_path}: images of size {images.shape[1:]} but the training images are {image_shape}"
            )
        image_shape = images.shape[1:]
        arrays[f"x_{split}"] = images[..., None]  # NHWC with one channel
        arrays[f"y_{split}"] = labels.astype(np.int32)
    return arrays
