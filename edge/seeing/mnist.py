"""MNIST in the IDX format (as distributed, gzipped or not), read with numpy alone."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from edge.core.errors import InputError

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """One IDX file (optionally .gz) -> numpy array with the shape in its header."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: a damaged .gz
        raise InputError(f"{path}: cannot read IDX file ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise InputError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise InputError(f"{path}: truncated IDX file ({len(data) - header} bytes of data, header says {expected})")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def find_idx(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem, folder / stem.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    raise InputError(f"{folder}: no MNIST file {stem}[.gz]")


def load_split(folder: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """('train' | 'test') -> (images uint8 (N, 28, 28), labels int64 (N,))."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such data folder")
    images_stem, labels_stem = SPLIT_FILES[split]
    images = read_idx(find_idx(folder, images_stem))
    labels = read_idx(find_idx(folder, labels_stem)).astype(np.int64)
    if images.ndim != 3 or len(images) != len(labels):
        raise InputError(f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match")
    if labels.ndim != 1 or len(labels) == 0 or labels.min() < 0 or labels.max() > 9:
        raise InputError(f"{folder}: {split} labels must be digits 0-9 (found {labels.min() if len(labels) else 'none'}"
                         f" to {labels.max() if len(labels) else 'none'})")
    return images.astype(np.uint8), labels
