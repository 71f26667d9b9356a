"""Reading MNIST IDX files, gzipped or not, and refusing broken ones."""
import gzip

import numpy as np
import pytest

from edge.core.errors import InputError
from edge.seeing.mnist import load_split, read_idx


def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.uint8: 0x08}[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_mnist(folder, count=12, gz=True):
    rng = np.random.default_rng(1)
    for prefix in ("train", "t10k"):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte"
            data = idx_bytes(array)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_round_trip(tmp_path, gz):
    images, labels = write_mnist(tmp_path, gz=gz)
    x, y = load_split(tmp_path, "test")
    assert x.shape == (12, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_truncated_and_bad_magic(tmp_path):
    data = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    (tmp_path / "cut").write_bytes(data[:-10])
    with pytest.raises(InputError, match="cut: truncated IDX"):
        read_idx(tmp_path / "cut")
    (tmp_path / "magic").write_bytes(b"\x12\x34" + data[2:])
    with pytest.raises(InputError, match="magic: not an IDX file"):
        read_idx(tmp_path / "magic")
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="bad.gz: cannot read IDX"):
        read_idx(tmp_path / "bad.gz")


def test_damaged_gzip_and_labels_that_are_not_digits(tmp_path):
    write_mnist(tmp_path)
    good = (tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(good[:20] + bytes(b ^ 0xFF for b in good[20:60]) + good[60:])
    with pytest.raises(InputError, match="t10k-images-idx3-ubyte.gz: cannot read IDX file"):
        load_split(tmp_path, "test")
    labels = (np.arange(12) % 10).astype(np.uint8)
    labels[3] = 42
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(InputError, match="train labels must be digits 0-9 \\(found 0 to 42\\)"):
        load_split(tmp_path, "train")


def test_folder_without_data(tmp_path):
    with pytest.raises(InputError, match="no MNIST file train-images"):
        load_split(tmp_path, "train")
    with pytest.raises(InputError, match="no such data folder"):
        load_split(tmp_path / "missing", "train")
