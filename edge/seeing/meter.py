"""Meter digits: one crop per digit region of a meter, read as a value in tenths.

The convention of the AI-on-the-edge-device community's meter-digit sets (haverland's
"Tenth-of-step-of-a-meter-digit"): a crop's file name starts with the wheel's value in tenths,
`4.9_anything.jpg` is a rolling wheel 90% of the way from 4 to 5, `5.0_...` a whole 5. A wheel
caught between two digits is a state of its own, not an error: the model has one class per tenth
(100 classes, "0.0" .. "9.9"), and the number is assembled with rolling-wheel logic
(`assemble`). LCD digits are simply whole values (`7.0_...`).

Preprocessing, shared by training and the runtime: any crop -> grey, resized (not padded) to
`HEIGHT` x `WIDTH` = 32 x 20 pixels, its contrast stretched (the 2nd..98th percentile of its grey
levels spread over 0..255), uint8 (scaling happens inside the model). Grey, not colour: drum and
digit colours differ from meter to meter and carry no information about the value; the stretch
lifts faint crops (pale red digits on a white drum, a dim LCD) to the contrast of the others.
"""
from __future__ import annotations

import fnmatch
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edge.core.bundle import MANIFEST, Bundle
from edge.core.errors import BundleError, InputError
from edge.seeing.image import load_gray

log = logging.getLogger(__name__)

#: Model input, pixels: the crop size AI-on-the-edge-device's digit models take (20 wide, 32 high).
HEIGHT, WIDTH = 32, 20
#: Classes: tenths of a wheel turn, index i is the value i / 10.
TENTHS = 100
LABELS = [f"{index // 10}.{index % 10}" for index in range(TENTHS)]
#: The kinds of meter display a model reads, as `tinysense train meter --display` names them: one
#: model per kind, as AI-on-the-edge-device keeps separate digit models for number wheels (tenths)
#: and whole digits. An LCD 7 (a top bar and a right-hand stem) is drawn like a wheel's 1 with a
#: level flag: the dev meter watermeter_altair_alkr's 1s were 7s to every model trained on both
#: kinds (photos, 20 % LCD renders: 6 to 22 of its 23 clean 1s per run) and to few trained on
#: wheels only (photos `--exclude 'lcd*/*'`, `--validation-split 0`, seeds 0 / 1: 0 and 3; its clean
#: digits 90.5 / 92.9 -> 97.6 / 97.6 %, the wheel meters' 98.8 / 98.8 -> 98.9 / 99.5 %).
DISPLAYS = ("wheels", "lcd")
#: Contrast stretch: these percentiles of a resized crop's grey levels become 0 and 255; a crop whose
#: span between them is under `FLAT_SPAN` levels (a blank one) is left as it is.
STRETCH_PERCENTILES, FLAT_SPAN = (2, 98), 16
PREPROCESSING = {"kind": "meter", "height": HEIGHT, "width": WIDTH, "channels": 1,
                 "resize": "bilinear, aspect ratio not kept", "polarity": "as photographed",
                 "contrast": "stretch 2nd..98th percentile to 0..255 unless under 16 levels apart"}
#: A wheel whose tenth is 3..7 is "between two digits" (labels.csv of meter_digits leaves its digit empty).
BETWEEN_TENTHS = range(3, 8)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: `4.9_...` (tenths) or `4_...` (a whole digit, as the sets of LCD digits name them).
VALUE_PREFIX = re.compile(r"^(\d)(?:\.(\d))?_")


def to_meter_input(gray: np.ndarray) -> np.ndarray:
    """A crop of one digit (uint8 2-D, any size) -> uint8 (HEIGHT, WIDTH, 1), the model's input:
    resized, then contrast-stretched (`STRETCH_PERCENTILES`, `FLAT_SPAN`)."""
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.size == 0:
        raise InputError(f"expected a non-empty 2-D grayscale array, got shape {gray.shape}")
    resized = Image.fromarray(gray.astype(np.uint8)).resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)
    pixels = np.asarray(resized, dtype=np.float32)
    low, high = np.percentile(pixels, STRETCH_PERCENTILES)
    if high - low >= FLAT_SPAN:
        pixels = np.clip((pixels - low) * (255.0 / (high - low)), 0, 255)
    return np.round(pixels).astype(np.uint8)[..., np.newaxis]


def check_preprocessing(bundle: Bundle) -> None:
    """Refuse a meter bundle made for other crops than this runtime cuts (size, channels, kind)."""
    made = bundle.manifest.get("preprocessing", {})
    for key in ("kind", "height", "width", "channels", "contrast"):
        if made.get(key) != PREPROCESSING[key]:
            raise BundleError(f"{bundle.root / MANIFEST}: preprocessing {key} is {made.get(key)!r}, this runtime "
                              f"makes {PREPROCESSING[key]!r}; train and export the model again with this tinysense")


def load_crop(path: str | Path) -> np.ndarray:
    """Image file -> model input (uint8 (HEIGHT, WIDTH, 1)); InputError naming the file."""
    return to_meter_input(load_gray(path))


def value_from_name(path: str | Path) -> float | None:
    """The value in tenths a crop's file name starts with (`4.9_x.jpg` -> 4.9, `4_x.jpg` -> 4.0), or None."""
    match = VALUE_PREFIX.match(Path(path).name)
    return None if match is None else int(match[1]) + int(match[2] or 0) / 10


def value_to_class(values) -> np.ndarray:
    """Values in [0, 10) -> class indices 0..99 (nearest tenth; 9.96 wraps to 0.0)."""
    return np.round(np.asarray(values, dtype=np.float64) * 10).astype(np.int64) % TENTHS


def class_to_value(classes) -> np.ndarray:
    return np.asarray(classes, dtype=np.int64) / 10.0


def nearest_digit(values) -> np.ndarray:
    """The digit a wheel shows when rounded (4.8 -> 5, 9.9 -> 0)."""
    return np.round(np.asarray(values, dtype=np.float64)).astype(np.int64) % 10


def is_between(values) -> np.ndarray:
    """True for wheels caught between two digits (tenth 3..7)."""
    tenths = value_to_class(values) % 10
    return (tenths >= BETWEEN_TENTHS.start) & (tenths < BETWEEN_TENTHS.stop)


def matches(path: Path, root: Path, patterns) -> bool:
    """Whether `path`, relative to `root`, matches one of the glob `patterns` (e.g. 'lcd*/*')."""
    relative = str(path.relative_to(root))
    return any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)


def find_crops(root: str | Path, include=(), exclude=()) -> tuple[list[Path], np.ndarray]:
    """Image files under `root` (recursive, sorted) whose names start with a value, and the values.

    `include` / `exclude`: glob patterns on the path relative to `root` (e.g. 'lcd*/*' for the
    meters in folders whose names start with lcd): only crops matching one of `include` (when
    given) and none of `exclude` are kept. Files without a value prefix are skipped with one
    warning; a folder left with no crop is an InputError naming it.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such data folder (expected crops named like 4.9_anything.jpg)")
    paths, values, skipped, filtered = [], [], 0, 0
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        value = value_from_name(path)
        if value is None:
            skipped += 1
            continue
        if (include and not matches(path, root, include)) or matches(path, root, exclude):
            filtered += 1
            continue
        paths.append(path)
        values.append(value)
    if skipped:
        log.warning("%s: skipped %d images whose names do not start with a value like 4.9_", root, skipped)
    if filtered:
        log.info("%s: --include/--exclude left out %d of %d crops", root, filtered, filtered + len(paths))
    if not paths:
        chosen = " with --include/--exclude" if filtered else ""
        raise InputError(f"{root}: no crops named like 4.9_anything.jpg (value in tenths, then '_'){chosen}")
    return paths, np.asarray(values, dtype=np.float64)


def load_folder(root: str | Path, paths: list[Path] | None = None, include=(), exclude=()) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs (uint8 (N, HEIGHT, WIDTH, 1)) and values of the crops under `root`.

    `paths`: exactly these crops (as `find_crops` found them), in this order, without searching
    `root` again; otherwise the crops `find_crops(root, include, exclude)` finds. An unreadable
    image is an InputError naming it.
    """
    if paths is None:
        paths, values = find_crops(root, include, exclude)
    else:
        values = np.asarray([value_from_name(path) for path in paths], dtype=np.float64)
    x = np.empty((len(paths), HEIGHT, WIDTH, 1), np.uint8)
    for i, path in enumerate(paths):
        x[i] = load_crop(path)
    return x, values


@dataclass(frozen=True)
class MeterScores:
    """How well predicted wheel values match the true ones (fractions of crops; NaN when none)."""
    clean: float        #: crops at tenth 8..2 whose nearest digit is read right
    clean_count: int
    between: float      #: crops at tenth 3..7 read as one of the two digits they sit between
    between_count: int
    exact: float        #: crops whose predicted tenth equals the label
    within_one: float   #: crops within one tenth of the label, round the wheel

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def score(true_values, predicted_values) -> MeterScores:
    """Meter figures for predicted against true values (both in [0, 10))."""
    true_values = np.asarray(true_values, dtype=np.float64)
    predicted_values = np.asarray(predicted_values, dtype=np.float64)
    between = is_between(true_values)
    read = nearest_digit(predicted_values)
    clean_ok = read[~between] == nearest_digit(true_values[~between])
    lower = np.floor(true_values[between] + 1e-9).astype(np.int64) % 10
    between_ok = (read[between] == lower) | (read[between] == (lower + 1) % 10)
    distance = np.abs(value_to_class(true_values) - value_to_class(predicted_values))
    distance = np.minimum(distance, TENTHS - distance)

    def share(ok: np.ndarray) -> float:
        return float(ok.mean()) if ok.size else float("nan")

    return MeterScores(clean=share(clean_ok), clean_count=int(clean_ok.size), between=share(between_ok),
                       between_count=int(between_ok.size), exact=share(distance == 0), within_one=share(distance <= 1))


def assemble(wheel_values, decimals: int = 0) -> str:
    """Rolling-wheel logic: per-wheel values (most significant first) -> the number as text.

    A mechanical counter moves a wheel only while the wheel to its right turns from 9 to 0 (the
    carry), so a wheel is expected `max(0, right - 9)` past its digit, where `right` is the
    position of the wheel to its right; its digit is `floor(reading - expected + 0.5) mod 10`. A
    wheel between 4 and 5 therefore reads 4 until the wheel to its right passes 0, and one that
    runs a little early or late is still read right (AI-on-the-edge-device's rule). The last
    wheel turns freely and reads the digit it has passed. `decimals`: wheels after the point.
    """
    values = [float(v) % 10 for v in wheel_values]
    if not values:
        raise ValueError("assemble needs at least one wheel value")
    digits = [int(np.floor(values[-1] + 1e-6)) % 10]
    right = values[-1]
    for reading in reversed(values[:-1]):
        expected = max(0.0, right - 9.0)
        digit = int(np.floor(reading - expected + 0.5)) % 10
        digits.append(digit)
        right = digit + expected
    text = "".join(str(d) for d in reversed(digits))
    if decimals > 0:
        text = f"{text[:-decimals] or '0'}.{text[-decimals:]}"
    return text
