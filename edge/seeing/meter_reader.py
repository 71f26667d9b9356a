"""Read a meter from a camera frame: one box per digit region, cut, classified and assembled.

As AI-on-the-edge-device does it: the user marks one region per digit once, on a reference frame
from the fixed camera; each region is cut out, made into the meter model's input
(`edge.seeing.meter.to_meter_input`, the function training uses) and read as a wheel value in
tenths; `edge.seeing.meter.assemble` turns the values into the number with rolling-wheel logic.
Optional alignment marks (distinctive, fixed parts of the meter's face) keep the regions on the
digits when the camera or the meter moves a little: each mark is found again near its place in
the reference frame by OpenCV template matching (normalised cross-correlation), and the frame is
warped onto the reference (a shift for one mark, a similarity transform for two or more).

Layout file, JSON (or TOML when the name ends in .toml); all boxes in reference-frame pixels:

    {"regions": [{"name": "d1", "x": 102, "y": 210, "w": 38, "h": 60}, ...],   most significant first
     "decimals": 3,                          wheels after the decimal point (default 0)
     "alignment": {"reference": "ref.jpg",   the reference frame, relative to the layout file
                   "markers": [{"name": "m1", "x": 20, "y": 15, "w": 40, "h": 40}, ...],
                   "search": 40,             pixels a mark may have moved (default 40)
                   "min_match": 0.6}}        lowest correlation that counts as found (default 0.6)
"""
from __future__ import annotations

import json
import logging
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.core.errors import InputError
from edge.seeing import meter
from edge.seeing.digit_reader import UNSURE, to_gray
from edge.seeing.image import load_gray

log = logging.getLogger(__name__)

#: The confidence of a wheel is the probability mass within this many tenths of its reading (round
#: the wheel): neighbouring tenths share the mass of a sure reading, a doubtful one spreads it wide.
NEAR_TENTHS = 4
BOX_KEYS = ("name", "x", "y", "w", "h")


@dataclass(frozen=True)
class Box:
    """A named rectangle in reference-frame pixels: left, top, width, height."""
    name: str
    x: int
    y: int
    w: int
    h: int

    def inside(self, width: int, height: int) -> bool:
        return self.x + self.w <= width and self.y + self.h <= height


@dataclass(frozen=True)
class Alignment:
    reference: np.ndarray  #: the reference frame, uint8 grey (height, width)
    markers: tuple[Box, ...]
    search: int = 40
    min_match: float = 0.6


@dataclass(frozen=True)
class Layout:
    path: Path
    regions: tuple[Box, ...]
    decimals: int = 0
    alignment: Alignment | None = None


# -- the layout file --------------------------------------------------------------------------
def parse_boxes(items, what: str, where: str) -> tuple[Box, ...]:
    if not isinstance(items, list) or not items:
        raise InputError(f"{where}: '{what}' must be a non-empty list of {{name, x, y, w, h}} boxes")
    boxes = []
    for index, item in enumerate(items):
        label = f"{where}: {what}[{index}]"
        if not isinstance(item, dict) or set(item) != set(BOX_KEYS):
            keys = sorted(item) if isinstance(item, dict) else type(item).__name__
            raise InputError(f"{label} must have exactly the keys name, x, y, w, h (got {keys})")
        if not isinstance(item["name"], str) or not item["name"]:
            raise InputError(f"{label}: name must be a non-empty string")
        numbers = [item[key] for key in BOX_KEYS[1:]]
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers) or min(numbers[:2]) < 0 \
                or min(numbers[2:]) <= 0:
            raise InputError(f"{label} ({item['name']}): x, y must be integers >= 0 and w, h integers > 0 (pixels)")
        boxes.append(Box(*(item[key] for key in BOX_KEYS)))
    names = [box.name for box in boxes]
    if len(set(names)) != len(names):
        raise InputError(f"{where}: {what} names must be unique (got {', '.join(names)})")
    return tuple(boxes)


def read_document(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read layout file ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        document = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'} ({exc})") from None
    if not isinstance(document, dict):
        raise InputError(f"{path}: a layout is an object with 'regions' (and optional 'decimals', 'alignment')")
    unknown = set(document) - {"regions", "decimals", "alignment"}
    if unknown:
        raise InputError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} (expected regions, decimals, alignment)")
    return document


def parse_alignment(spec, path: Path) -> Alignment:
    where = f"{path}: alignment"
    if not isinstance(spec, dict) or not {"reference", "markers"} <= set(spec) \
            or set(spec) - {"reference", "markers", "search", "min_match"}:
        raise InputError(f"{where} must have 'reference' and 'markers' (and optional 'search', 'min_match')")
    if not isinstance(spec["reference"], str):
        raise InputError(f"{where}: reference must be an image file name")
    reference = load_gray(path.parent / spec["reference"])
    markers = parse_boxes(spec["markers"], "alignment.markers", str(path))
    search, min_match = spec.get("search", 40), spec.get("min_match", 0.6)
    if not isinstance(search, int) or isinstance(search, bool) or search < 0:
        raise InputError(f"{where}: search must be an integer >= 0 (pixels)")
    if not isinstance(min_match, (int, float)) or isinstance(min_match, bool) or not -1.0 <= min_match <= 1.0:
        raise InputError(f"{where}: min_match must be a correlation between -1 and 1")
    height, width = reference.shape
    for marker in markers:
        if not marker.inside(width, height):
            raise InputError(f"{where}: marker {marker.name} lies outside the {width}x{height} reference frame")
        if float(reference[marker.y : marker.y + marker.h, marker.x : marker.x + marker.w].std()) < 1.0:
            raise InputError(f"{where}: marker {marker.name} is a flat patch of the reference (nothing to match)")
    return Alignment(reference, markers, search, float(min_match))


def load_layout(path: str | Path) -> Layout:
    """A layout file -> Layout; InputError naming the file and the problem in one line."""
    path = Path(path)
    document = read_document(path)
    if "regions" not in document:
        raise InputError(f"{path}: no 'regions' (one {{name, x, y, w, h}} box per digit, most significant first)")
    regions = parse_boxes(document["regions"], "regions", str(path))
    decimals = document.get("decimals", 0)
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals < len(regions):
        raise InputError(f"{path}: decimals must be an integer from 0 to {len(regions) - 1} (wheels after the point)")
    alignment = parse_alignment(document["alignment"], path) if "alignment" in document else None
    if alignment is not None:
        height, width = alignment.reference.shape
        for region in regions:
            if not region.inside(width, height):
                raise InputError(f"{path}: region {region.name} lies outside the {width}x{height} reference frame")
    return Layout(path, regions, decimals, alignment)


# -- alignment --------------------------------------------------------------------------------
@dataclass
class Mark:
    """Where one alignment mark was found: its shift from the reference (pixels) and the correlation."""
    name: str
    dx: int
    dy: int
    match: float


def find_marks(gray: np.ndarray, alignment: Alignment, source: str) -> list[Mark]:
    """Each mark searched within `alignment.search` pixels of its reference place (normalised
    cross-correlation, cv2.TM_CCOEFF_NORMED); InputError when one is not found."""
    marks = []
    for box in alignment.markers:
        template = alignment.reference[box.y : box.y + box.h, box.x : box.x + box.w]
        x0, y0 = max(0, box.x - alignment.search), max(0, box.y - alignment.search)
        x1 = min(gray.shape[1], box.x + box.w + alignment.search)
        y1 = min(gray.shape[0], box.y + box.h + alignment.search)
        if x1 - x0 < box.w or y1 - y0 < box.h:
            raise InputError(f"{source}: alignment marker {box.name} falls outside the "
                             f"{gray.shape[1]}x{gray.shape[0]} frame")
        scores = cv2.matchTemplate(gray[y0:y1, x0:x1], template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(scores)
        if not best >= alignment.min_match:  # also catches NaN from a flat search window
            raise InputError(f"{source}: alignment marker {box.name} not found (best match {best:.2f} < "
                             f"{alignment.min_match} within {alignment.search} px of its reference place)")
        marks.append(Mark(box.name, x0 + bx - box.x, y0 + by - box.y, round(float(best), 4)))
    return marks


def frame_to_reference(marks: list[Mark], alignment: Alignment) -> np.ndarray:
    """2x3 affine matrix from frame to reference pixels: a shift for one mark, a similarity
    (rotation, scale, shift; cv2.estimateAffinePartial2D) for two or more."""
    if len(marks) == 1:
        return np.float64([[1, 0, -marks[0].dx], [0, 1, -marks[0].dy]])
    centres = np.float32([[b.x + b.w / 2, b.y + b.h / 2] for b in alignment.markers])
    moved = centres + np.float32([[m.dx, m.dy] for m in marks])
    matrix, _ = cv2.estimateAffinePartial2D(moved, centres, method=cv2.LMEDS)
    if matrix is None:
        raise InputError("alignment marks give no transform (are two of them at the same place?)")
    return matrix


# -- reading ----------------------------------------------------------------------------------
@dataclass
class Wheel:
    """One digit region's reading: `label` is its value in tenths ("4.7") or '?' when doubtful."""
    name: str
    label: str
    value: float
    confidence: float
    box: tuple[int, int, int, int]  #: x, y, width, height in frame pixels


@dataclass
class MeterReading:
    text: str
    digits: list[Wheel] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    preprocess_ms: float = 0.0  #: wall clock: grey, alignment, cutting and resizing the regions
    inference_ms: float = 0.0
    cpu_ms: tuple[float, float] = (0.0, 0.0)  #: this thread's CPU time: (preprocess, inference)

    def to_json(self) -> dict:
        out = {"text": self.text, "digits": [vars(wheel).copy() for wheel in self.digits],
               "ms": {"preprocess": round(self.preprocess_ms, 3), "inference": round(self.inference_ms, 3)}}
        if self.marks:
            out["marks"] = [vars(mark).copy() for mark in self.marks]
        return out


def wheel_values(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 100) class probabilities -> (values in tenths, confidences): the most probable tenth, and
    the probability mass within NEAR_TENTHS of it round the wheel."""
    best = probabilities.argmax(axis=1)
    near = (best[:, None] + np.arange(-NEAR_TENTHS, NEAR_TENTHS + 1)[None, :]) % meter.TENTHS
    return meter.class_to_value(best), np.take_along_axis(probabilities, near, axis=1).sum(axis=1)


def number_text(values, sure, decimals: int, tenths: bool) -> str:
    """Assembled number with '?' for the wheels that are not `sure`; `tenths` appends the last
    wheel's tenth as one more decimal."""
    text = meter.assemble(values, 0)
    digits = [d if ok else UNSURE for d, ok in zip(text, sure)]
    if tenths:
        digits.append(str(int(np.floor(float(values[-1]) % 1 * 10 + 1e-6)) % 10) if sure[-1] else UNSURE)
        decimals += 1
    whole, fraction = digits[: len(digits) - decimals], digits[len(digits) - decimals :]
    return "".join(whole or ["0"]) + ("." + "".join(fraction) if decimals else "")


class MeterReader:
    """A meter bundle (any object with `predict(batch) -> probabilities`) plus a Layout."""

    def __init__(self, layout: Layout, model, min_confidence: float = 0.0, tenths: bool = False):
        if not 0.0 <= min_confidence <= 1.0:
            raise InputError(f"min-confidence must be between 0 and 1, not {min_confidence}")
        self.layout, self.model, self.min_confidence, self.tenths = layout, model, min_confidence, tenths

    @classmethod
    def from_bundle(cls, path: str | Path, layout: Layout, variant: str | None = None, threads: int = 1,
                    **options) -> "MeterReader":
        from edge.core.bundle import Bundle

        bundle = Bundle.load(path, task="meter")
        meter.check_preprocessing(bundle)
        return cls(layout, bundle.open(variant, threads=threads), **options)

    def crops(self, frame: np.ndarray, source: str = "frame") -> tuple[np.ndarray, list[Mark], np.ndarray | None]:
        """Model inputs uint8 (regions, HEIGHT, WIDTH, 1), the marks found, and the frame-to-reference
        matrix (None without alignment)."""
        gray, marks, matrix = to_gray(frame), [], None
        alignment = self.layout.alignment
        if alignment is not None:
            marks = find_marks(gray, alignment, source)
            matrix = frame_to_reference(marks, alignment)
            height, width = alignment.reference.shape
            gray = cv2.warpAffine(gray, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out = np.empty((len(self.layout.regions), meter.HEIGHT, meter.WIDTH, 1), np.uint8)
        for i, box in enumerate(self.layout.regions):
            if not box.inside(gray.shape[1], gray.shape[0]):
                raise InputError(f"{source}: region {box.name} of {self.layout.path} lies outside the "
                                 f"{gray.shape[1]}x{gray.shape[0]} frame")
            out[i] = meter.to_meter_input(gray[box.y : box.y + box.h, box.x : box.x + box.w])
        return out, marks, matrix

    def frame_boxes(self, matrix: np.ndarray | None) -> list[tuple[int, int, int, int]]:
        """The regions in frame pixels (bounding boxes of the reference boxes mapped back)."""
        boxes = []
        back = None if matrix is None else cv2.invertAffineTransform(matrix)
        for box in self.layout.regions:
            corners = np.float64([[box.x, box.y], [box.x + box.w, box.y], [box.x, box.y + box.h],
                                  [box.x + box.w, box.y + box.h]])
            if back is not None:
                corners = corners @ back[:, :2].T + back[:, 2]
            (x0, y0), (x1, y1) = np.floor(corners.min(axis=0)), np.ceil(corners.max(axis=0))
            boxes.append((int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
        return boxes

    def read(self, frame: np.ndarray, source: str = "frame") -> MeterReading:
        """One frame -> MeterReading; InputError (naming `source`) when a mark is not found or a
        region lies outside the frame."""
        started, cpu_started = time.perf_counter(), time.thread_time()
        crops, marks, matrix = self.crops(frame, source)
        cut_at, cpu_cut = time.perf_counter(), time.thread_time()
        probabilities = np.asarray(self.model.predict(crops.astype(np.float32)), dtype=np.float64)
        done, cpu_done = time.perf_counter(), time.thread_time()
        values, confidences = wheel_values(probabilities)
        sure = confidences >= self.min_confidence
        wheels = [Wheel(box.name, meter.LABELS[int(round(v * 10))] if ok else UNSURE, float(v), round(float(c), 4), fb)
                  for box, v, c, ok, fb in zip(self.layout.regions, values, confidences, sure, self.frame_boxes(matrix))]
        text = number_text(values, sure, self.layout.decimals, self.tenths)
        return MeterReading(text, wheels, marks, (cut_at - started) * 1000.0, (done - cut_at) * 1000.0,
                            ((cpu_cut - cpu_started) * 1000.0, (cpu_done - cpu_cut) * 1000.0))
