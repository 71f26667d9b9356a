"""Digits rendered from the fonts on this machine, degraded the way a camera sees them.

MNIST is handwriting; meters, labels and displays use printed or seven-segment digits. Rendering
0-9 from every installed face (DejaVu, FreeFont, Liberation, DSEG seven/fourteen-segment, ...) and
degrading them with perspective, lighting, blur, sensor noise and JPEG gives a second training
source. Crops are cut by the reader's own `edge.seeing.digit_reader.locate` (which ends in
`edge.seeing.image.to_mnist`), so training and serving see identical preprocessing.
"""
from __future__ import annotations

import functools
import logging
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from edge.seeing.digit_reader import ReaderConfig, locate
from edge.core.errors import InputError
from edge.seeing.image import to_mnist

log = logging.getLogger(__name__)

DIGITS = "0123456789"
FONT_SUFFIXES = (".ttf", ".otf")
FONT_FOLDERS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts")
#: Faces whose digit glyphs are not plain digits: pictures (weather icons, digits with faces drawn
#: in, dingbats), digits cut out of a filled box (OCR-B's E and X faces) or hollow outlines (OCRBF).
NOT_DIGIT_FACES = ("DSEGWeather", "SEGGCHAN", "D050000L", "OCRBE", "OCRBX", "OCRBF")
#: Share of printed digits drawn in seven- and fourteen-segment (DSEG) faces: a quarter, their share
#: when DejaVu, FreeFont, Liberation and DSEG were the four packages `make setup` installed.
SEGMENT_SHARE = 0.25
#: Glyph size used to check that a face renders the ten digits.
PROBE_SIZE = 32
#: Renderings tried per sample before falling back to cropping the whole picture.
RETRIES = 20


def installed_fonts() -> list[Path]:
    """Font files from fontconfig (`fc-list`), or a walk of the usual folders when it is missing."""
    files: set[Path] = set()
    if shutil.which("fc-list"):
        listing = subprocess.run(["fc-list", "--format", "%{file}\n"], capture_output=True, text=True, check=False)
        files.update(Path(line) for line in listing.stdout.splitlines() if line.strip())
    else:
        for folder in FONT_FOLDERS:
            files.update(Path(folder).expanduser().rglob("*"))
    return sorted(path for path in files if path.suffix.lower() in FONT_SUFFIXES and path.is_file())


@functools.lru_cache(maxsize=4)
def digit_fonts() -> tuple[Path, ...]:
    """Installed faces that render all ten digits as distinct, non-empty glyphs."""
    usable = []
    for path in installed_fonts():
        if any(name in path.name for name in NOT_DIGIT_FACES):
            continue
        try:
            font = ImageFont.truetype(str(path), PROBE_SIZE)
        except OSError:
            continue
        masks = [glyph_mask(font, digit).tobytes() for digit in DIGITS]
        if all(any(mask) for mask in masks) and len(set(masks)) == len(DIGITS):
            usable.append(path)
    log.debug("%d font faces render digits", len(usable))
    return tuple(usable)


def glyph_mask(font: ImageFont.FreeTypeFont, text: str, stroke: int = 0) -> np.ndarray:
    """Anti-aliased coverage (uint8, tight bounding box) of `text` drawn in `font`."""
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    width, height = max(1, right - left), max(1, bottom - top)
    image = Image.new("L", (width, height), 0)
    ImageDraw.Draw(image).text((-left, -top), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    return np.asarray(image)


@functools.lru_cache(maxsize=512)
def sized_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """A font at one pixel size, opened once: FreeType parses the face file on every open."""
    return ImageFont.truetype(path, size)


def render_glyph(digit: int, font_path: Path, height: int, rng: np.random.Generator) -> np.ndarray:
    """One digit as ink coverage in [0, 1] (float32, tight box) about `height` pixels tall.

    A random stroke widening imitates bolder weights than the face has.
    """
    font = sized_font(str(font_path), max(8, int(height * 1.35)))
    stroke = int(rng.integers(0, max(1, height // 18) + 1)) if rng.random() < 0.3 else 0
    mask = glyph_mask(font, DIGITS[digit], stroke)
    scale = height / mask.shape[0]
    size = (max(1, round(mask.shape[1] * scale)), height)
    return cv2.resize(mask, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


# -- camera-like degradations (shared with trainer.scenes) -------------------------------------
def perspective(image: np.ndarray, rng: np.random.Generator, amount: float,
                border: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Random homography moving each corner by up to `amount` of the image size; returns (image, matrix).

    Uncovered corners get the value `border`, or repeat the edge pixels when it is None.
    """
    height, width = image.shape[:2]
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    moved = corners + rng.uniform(-amount, amount, (4, 2)).astype(np.float32) * np.float32([width, height])
    matrix = cv2.getPerspectiveTransform(corners, moved)
    mode = cv2.BORDER_REPLICATE if border is None else cv2.BORDER_CONSTANT
    warped = cv2.warpPerspective(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=mode,
                                 borderValue=0.0 if border is None else border)
    return warped, matrix


def lighting(shape: tuple[int, int], rng: np.random.Generator, depth: float) -> np.ndarray:
    """A multiplicative illumination field: a linear gradient plus a soft shadow blob, in (0, 1]."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height + 1.0) / 2.0
    field = 1.0 - depth * rng.uniform(0.3, 1.0) * ramp
    centre = rng.uniform(0, 1, 2) * (width, height)
    radius = rng.uniform(0.2, 0.6) * max(width, height)
    blob = np.exp(-(((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * radius**2)))
    field *= 1.0 - depth * rng.uniform(0.0, 0.6) * blob
    return np.clip(field, 0.05, 1.0).astype(np.float32)


def sensor(image: np.ndarray, rng: np.random.Generator, blur: float, noise: float) -> np.ndarray:
    """Optical blur and Gaussian sensor noise on a float image in 0..255 -> uint8."""
    if blur > 0.05:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    image = image + rng.normal(0.0, noise, image.shape).astype(np.float32)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes at `quality` (blocking and ringing artefacts like a camera's encoder)."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode JPEG")
    return data.tobytes()


# -- training samples -------------------------------------------------------------------------
def camera_digit(digit: int, font_path: Path, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """One printed digit as a camera picture (uint8 gray, dark ink on light) and the glyph's height.

    Light-on-dark displays need no samples of their own: the reader flips them to dark-on-light.
    """
    height = int(rng.integers(16, 44))  # camera digits are small; to_mnist scales to 20 px anyway
    ink = render_glyph(digit, font_path, height, rng)
    margin = 2 * height  # the reader's background kernel is 1/8 of the picture: wider than any stroke
    padded = cv2.copyMakeBorder(ink, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0)
    centre = (padded.shape[1] / 2, padded.shape[0] / 2)
    transform = cv2.getRotationMatrix2D(centre, rng.uniform(-8, 8), 1.0)
    shear = rng.uniform(-0.15, 0.15)  # italic-ish and a tilted camera, about the centre
    transform[0, 1] += shear
    transform[0, 2] -= shear * centre[1]
    padded = cv2.warpAffine(padded, transform, (padded.shape[1], padded.shape[0]))
    padded, _ = perspective(padded, rng, 0.06, 0.0)
    paper = rng.uniform(150, 255)
    ink_level = rng.uniform(0, min(110, paper - 60))
    image = paper - (paper - ink_level) * padded
    image *= lighting(image.shape, rng, 0.4)
    gray = sensor(image, rng, blur=rng.uniform(0, height / 40), noise=rng.uniform(0, 8))
    return cv2.imdecode(np.frombuffer(jpeg(gray, int(rng.integers(30, 95))), np.uint8), cv2.IMREAD_GRAYSCALE), height


def is_segment_face(path: Path) -> bool:
    """A DSEG seven- or fourteen-segment face (fonts-dseg)."""
    return path.name.startswith("DSEG")


def font_package(path: Path) -> str:
    """The package a face comes from: the folder under truetype/ or opentype/
    (`.../truetype/roboto/unhinted/RobotoTTF/Roboto-Bold.ttf` -> "roboto"), else its own folder."""
    parts = path.parts[:-1]
    for kind in ("truetype", "opentype"):
        if kind in parts[:-1]:
            return parts[parts.index(kind) + 1]
    return str(path.parent)


def printed_digits(count: int, seed: int, fonts: tuple[Path, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`count` degraded font-rendered digits in the MNIST convention: (uint8 (N, 28, 28), int64 labels).

    Labels are balanced; a seven- or fourteen-segment (DSEG) face is drawn `SEGMENT_SHARE` of the
    time, otherwise a font package (dejavu, freefont, roboto, ...) uniformly and then a face inside
    it, so neither 48 DSEG faces nor 34 URW ones crowd out the rest. Each crop is cut by the reader's
    own `locate()`, exactly as a camera frame would be; a rendering the reader would not see as
    one whole digit (several boxes, or only a piece of the glyph) is drawn again.
    """
    fonts = digit_fonts() if fonts is None else fonts
    if not fonts:
        raise InputError("no installed font renders digits (install fonts-dejavu or fonts-freefont)")
    segment = [font for font in fonts if is_segment_face(font)]
    packages: dict[str, list[Path]] = {}
    for font in fonts:
        if not is_segment_face(font):
            packages.setdefault(font_package(font), []).append(font)
    groups = list(packages.values())
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % 10).astype(np.int64)
    images = np.empty((count, 28, 28), np.uint8)
    config = ReaderConfig(polarity="dark")
    for i, digit in enumerate(labels):
        for _ in range(RETRIES):
            group = segment if segment and (not groups or rng.random() < SEGMENT_SHARE) else \
                groups[int(rng.integers(len(groups)))]
            gray, height = camera_digit(int(digit), group[int(rng.integers(len(group)))], rng)
            located = locate(gray, config)
            if len(located.boxes) == 1 and located.boxes[0][3] >= 0.8 * height:
                images[i] = located.crops[0]
                break
        else:
            images[i] = to_mnist(gray, invert=True)
    return images, labels


def mix_printed(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Add printed digits so that they make up `fraction` of the returned training set."""
    if not 0.0 <= fraction < 1.0:
        raise InputError(f"--printed must be a fraction in [0, 1), not {fraction}")
    count = int(round(len(y) * fraction / (1.0 - fraction)))
    log.info("rendering %d printed digits (%.0f%% of training data)", count, 100 * fraction)
    x_printed, y_printed = printed_digits(count, seed)
    return np.concatenate([x, x_printed]), np.concatenate([y, y_printed])
