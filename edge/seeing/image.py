"""Image loading and MNIST-style preprocessing, shared by training, classify-image and read-digits.

The MNIST convention: a white digit on black, its bounding box fitted into 20x20 keeping the aspect
ratio, then placed in a 28x28 canvas so that its centre of mass sits at the centre. Pixels stay
0..255; scaling to [0, 1] happens inside the Keras model, so nothing is scaled twice.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from edge.core.errors import InputError

MNIST_SIZE = 28
MNIST_FIT = 20
#: Pixels brighter than this share of the crop's maximum count as ink when finding the bounding box.
INK_FRACTION = 0.25
#: Visible pixels of a transparent image whose luma spreads wider than this (1st to 99th percentile,
#: 0..255) form a picture of their own; narrower, they are the ink of a drawing (`flatten_transparency`).
PICTURE_CONTRAST = INK_FRACTION * 255


def load_gray(path: str | Path) -> np.ndarray:
    """Any Pillow-readable image (RGB, RGBA, L, 16-bit, palette, CMYK...) -> uint8 grayscale array.

    Images with transparency are flattened so that their ink stays visible (`flatten_transparency`);
    16-bit and float images are scaled by their own range. Errors name the file: not an image,
    empty, too large (decompression bomb).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                image = ImageOps.exif_transpose(opened)
                image.load()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{path}: image too large (over Pillow's {Image.MAX_IMAGE_PIXELS} pixel limit)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: corrupt or truncated image ({exc})") from None
    if image.width == 0 or image.height == 0:
        raise InputError(f"{path}: image has zero size")
    return to_gray_array(image)


def to_gray_array(image: Image.Image) -> np.ndarray:
    """A Pillow image in any mode -> uint8 grayscale numpy array."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = np.zeros_like(values) if high <= low else (values - low) * (255.0 / (high - low))
        return np.round(scaled).astype(np.uint8)
    if image.has_transparency_data:
        return flatten_transparency(image)
    return np.asarray(image.convert("L"), dtype=np.uint8)


def flatten_transparency(image: Image.Image) -> np.ndarray:
    """An image with transparency data (an alpha band, a transparent palette entry or colour key) -> uint8
    grayscale array of the same size.

    A drawing canvas exports strokes of one colour, often white, on a fully transparent canvas: the
    alpha carries the digit. Such alpha is read as ink at full contrast, whatever the colour: white
    on black when the strokes are light (median luma above 127), black on white when dark. When the
    visible pixels carry contrast of their own (a digit on a paper cut-out with a transparent
    surround), they are kept and the transparent area takes their median luma, the paper's. Alpha
    is scaled by its maximum first, so semi-transparent strokes read like opaque ones. A fully
    transparent image is blank (all 255). Luma is Pillow's ITU-R 601-2 conversion.
    """
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"), np.float32)
    luma = np.asarray(rgba.convert("L"), np.float32)
    peak = float(alpha.max())
    if peak == 0:
        return np.full(luma.shape, 255, np.uint8)
    alpha /= peak
    visible = luma[alpha >= 0.5]
    low, middle, high = np.percentile(visible, [1, 50, 99])
    if high - low > PICTURE_CONTRAST:
        ink, background = luma, middle
    else:
        ink = 255.0 if middle > 127 else 0.0
        background = 255.0 - ink
    return np.round(alpha * ink + (1 - alpha) * background).astype(np.uint8)


def has_light_background(gray: np.ndarray) -> bool:
    """True when the border of the image is mostly bright (a dark digit on paper)."""
    border = np.concatenate([gray[0, :], gray[-1, :], gray[:, 0], gray[:, -1]])
    return float(np.median(border)) > 127


def to_mnist(gray: np.ndarray, invert: bool | None = None) -> np.ndarray:
    """One digit (uint8 2-D array) -> 28x28 uint8 in the MNIST convention.

    `invert=None` decides the polarity from the border. Raises InputError when there is no ink.
    """
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.size == 0:
        raise InputError(f"expected a non-empty 2-D grayscale array, got shape {gray.shape}")
    if invert is None:
        invert = has_light_background(gray)
    ink = (255 - gray if invert else gray).astype(np.float32)
    ink -= float(np.median(ink)) if ink.size > 4 else float(ink.min())
    np.clip(ink, 0, None, out=ink)
    peak = float(ink.max())
    if peak <= 0:
        raise InputError("no digit found: the image is blank")
    ink *= 255.0 / peak
    rows, cols = np.nonzero(ink > INK_FRACTION * 255.0)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = MNIST_FIT / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    fitted = np.asarray(Image.fromarray(crop.astype(np.uint8)).resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    canvas = np.zeros((MNIST_SIZE, MNIST_SIZE), np.float32)
    top, left = (MNIST_SIZE - fitted.shape[0]) // 2, (MNIST_SIZE - fitted.shape[1]) // 2
    canvas[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    centre_y, centre_x = ndimage.center_of_mass(canvas)
    shift = (np.clip(round(MNIST_SIZE / 2 - centre_y), -top, top), np.clip(round(MNIST_SIZE / 2 - centre_x), -left, left))
    canvas = ndimage.shift(canvas, shift, order=0, mode="constant", cval=0.0)
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)
