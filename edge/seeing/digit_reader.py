"""Read multi-digit numbers in a camera frame: OpenCV finds the digits, one batched inference reads them.

Pipeline: grayscale -> region of interest -> both ink polarities (dark-on-light, light-on-dark) ->
illumination normalisation (divide by a morphological background estimate, so shadows and
gradients flatten) -> adaptive threshold -> connected components -> fragments of one digit merged
(seven-segment displays, broken strokes) -> size / aspect / contrast filter -> lines, left to right
-> each crop to the MNIST convention with `edge.seeing.image.to_mnist` (the same function training uses)
-> one batched call of the model -> the number string with per-digit confidences and boxes.

`locate()` is the model-free half; `trainer.printed_digits` runs it on rendered digits so that
training crops are made by exactly the code that makes serving crops.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.core.errors import InputError, TinysenseError
from edge.seeing.image import MNIST_SIZE, to_mnist
from edge.core.interpreter import TFLiteModel

log = logging.getLogger(__name__)

POLARITIES = ("auto", "dark", "light")
#: Most digits sent to the model in one invoke; more are read in several batches.
MAX_BATCH = 64
UNSURE = "?"


@dataclass(frozen=True)
class ReaderConfig:
    """Detection parameters; sizes are in pixels of the working image (after `max_side` scaling)."""

    min_height: int = 10
    max_height_fraction: float = 0.95
    min_aspect: float = 0.05
    max_aspect: float = 1.8
    min_contrast: float = 30.0
    polarity: str = "auto"
    min_confidence: float = 0.0
    max_side: int = 1024
    roi: tuple[int, int, int, int] | None = None

    def __post_init__(self):
        if self.polarity not in POLARITIES:
            raise InputError(f"polarity must be one of {', '.join(POLARITIES)}, not {self.polarity!r}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise InputError(f"min-confidence must be between 0 and 1, not {self.min_confidence}")


@dataclass
class Digit:
    label: str
    confidence: float
    box: tuple[int, int, int, int]  # x, y, width, height in the original frame
    line: int


@dataclass
class Reading:
    text: str
    digits: list[Digit] = field(default_factory=list)
    preprocess_ms: float = 0.0  # wall clock
    inference_ms: float = 0.0
    cpu_ms: tuple[float, float] = (0.0, 0.0)  # this thread's CPU time: (preprocess, inference)

    def to_json(self) -> dict:
        return {"text": self.text, "digits": [asdict(digit) for digit in self.digits],
                "ms": {"preprocess": round(self.preprocess_ms, 3), "inference": round(self.inference_ms, 3)}}


@dataclass
class Located:
    """Digit candidates of one frame: MNIST crops, boxes in frame pixels, and line numbers."""

    crops: np.ndarray  # (N, 28, 28) uint8
    boxes: list[tuple[int, int, int, int]]
    lines: list[int]


# -- image steps ------------------------------------------------------------------------------
def to_gray(frame: np.ndarray) -> np.ndarray:
    """A camera frame (gray, BGR or BGRA; uint8 or 16-bit) -> uint8 grayscale."""
    frame = np.asarray(frame)
    if frame.size == 0 or frame.ndim not in (2, 3):
        raise InputError(f"empty or malformed frame (shape {frame.shape})")
    if frame.dtype != np.uint8:
        frame = cv2.normalize(frame.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if frame.ndim == 3:
        channels = frame.shape[2]
        if channels == 1:
            return frame[:, :, 0]
        code = {3: cv2.COLOR_BGR2GRAY, 4: cv2.COLOR_BGRA2GRAY}.get(channels)
        if code is None:
            raise InputError(f"frame with {channels} channels is not gray, BGR or BGRA")
        frame = cv2.cvtColor(frame, code)
    return frame


def crop_roi(gray: np.ndarray, roi: tuple[int, int, int, int] | None) -> tuple[np.ndarray, tuple[int, int]]:
    """The region of interest (clipped to the frame) and its offset; the whole frame when roi is None."""
    if roi is None:
        return gray, (0, 0)
    x, y, width, height = roi
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(gray.shape[1], x + width), min(gray.shape[0], y + height)
    if x1 <= x0 or y1 <= y0:
        raise InputError(f"region of interest {x},{y},{width},{height} lies outside the {gray.shape[1]}x{gray.shape[0]} frame")
    return gray[y0:y1, x0:x1], (x0, y0)


def background_kernel(shape: tuple[int, int]) -> int:
    """Odd kernel size (pixels): wider than the strokes of digits up to about 60% of the image
    height, narrower than a sheet of paper around a number in a wider scene."""
    return max(9, (min(shape) // 8) | 1)


def normalise_illumination(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dark ink on a light background -> (ink on uniform white 255, the background estimate).

    Dividing by the local background flattens shadows and gradients. The background is a
    morphological closing, which removes strokes thinner than the kernel and keeps edges of larger
    regions (a sheet on a table) exactly where they are.
    """
    size = background_kernel(gray.shape)
    background = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (size, size)))
    return cv2.divide(gray, np.maximum(background, 1), scale=255), background


def ink_mask(norm: np.ndarray, min_contrast: float) -> np.ndarray:
    """Adaptive (local mean) threshold of the normalised image: 255 where there is ink.

    The offset below the local mean is half the way from paper to the darkest ink, so strokes
    keep their width instead of growing into their blurred halo.
    """
    smooth = cv2.GaussianBlur(norm, (3, 3), 0.8)
    offset = max(min_contrast / 2, 0.5 * (255.0 - float(np.percentile(smooth[::2, ::2], 0.5))))
    block = 2 * background_kernel(norm.shape) + 1
    mask = cv2.adaptiveThreshold(smooth, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, offset)
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))


# -- boxes ------------------------------------------------------------------------------------
def belong_together(a: list[int], b: list[int]) -> bool:
    """Are boxes a and b ([x0, y0, x1, y1]) pieces of one digit?

    Stacked with a small gap (segments of a seven-segment digit, a broken stroke), or one mostly
    inside the other.
    """
    overlap_x = min(a[2], b[2]) - max(a[0], b[0])
    overlap_y = min(a[3], b[3]) - max(a[1], b[1])
    narrow = min(a[2] - a[0], b[2] - b[0])
    tall = max(a[3] - a[1], b[3] - b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    stacked = overlap_x >= 0.5 * narrow and -overlap_y <= 0.25 * tall
    return stacked or (overlap_x > 0 and overlap_y > 0 and overlap_x * overlap_y >= 0.5 * smaller)


def merge_fragments(boxes: list[list[int]], members: list[list[int]]) -> None:
    """Union boxes that belong together, in place; `members` collects the component labels of each."""
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if belong_together(boxes[i], boxes[j]):
                    union(boxes, members, i, j)
                    merged = True
                    break
            if merged:
                break


def union(boxes: list[list[int]], members: list[list[int]], i: int, j: int) -> None:
    a, b = boxes[i], boxes.pop(j)
    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
    members[i] += members.pop(j)


def merge_pieces_in_rows(boxes: list[list[int]], members: list[list[int]]) -> None:
    """Join short pieces (segments of italic or 'mini' seven-segment digits) along each text row.

    Rows are the union of vertically overlapping boxes; inside a row of height H, a piece shorter
    than 0.75 H joins its left neighbour when the gap is under 0.1 H and the union stays narrower
    than 0.9 H; a thin full-height bar (the right side of a segmented 0) joins at a gap under
    0.06 H when the union stays under 0.8 H.
    """
    rows: list[list[float]] = []
    for box in sorted(boxes, key=lambda b: b[1]):
        if rows and box[1] <= rows[-1][1]:
            rows[-1][1] = max(rows[-1][1], box[3])
        else:
            rows.append([box[1], box[3]])
    for top, bottom in rows:
        height = bottom - top
        i = 0
        while True:
            row = sorted((k for k in range(len(boxes)) if top <= boxes[k][1] and boxes[k][3] <= bottom),
                         key=lambda k: boxes[k][0])
            if i + 1 >= len(row):
                break
            a, b = boxes[row[i]], boxes[row[i + 1]]
            gap, width = b[0] - a[2], max(a[2], b[2]) - min(a[0], b[0])
            piece = min(a[3] - a[1], b[3] - b[1]) < 0.75 * height
            bar = min((a[2] - a[0]) / max(1, a[3] - a[1]), (b[2] - b[0]) / max(1, b[3] - b[1])) < 0.3
            if (piece and gap <= 0.1 * height and width <= 0.9 * height) or (bar and gap <= 0.06 * height and width <= 0.8 * height):
                union(boxes, members, min(row[i], row[i + 1]), max(row[i], row[i + 1]))
            else:
                i += 1


def group_lines(boxes: list[list[int]]) -> list[list[int]]:
    """Indices of boxes grouped into text lines (top to bottom), each ordered left to right.

    A box joins a line when it overlaps the line's vertical span by half its own height; boxes
    much shorter than their line's median (specks, decimal points) are dropped, and so are lines
    less than half as tall as the tallest (paper corners, marks).
    """
    lines: list[list[int]] = []
    spans: list[list[float]] = []
    for index in sorted(range(len(boxes)), key=lambda i: boxes[i][0]):
        x0, y0, x1, y1 = boxes[index]
        for line, span in zip(lines, spans):
            if min(y1, span[1]) - max(y0, span[0]) >= 0.5 * min(y1 - y0, span[1] - span[0]):
                line.append(index)
                span[0], span[1] = min(span[0], y0), max(span[1], y1)
                break
        else:
            lines.append([index])
            spans.append([y0, y1])
    kept, medians = [], []
    for line in lines:
        median = float(np.median([boxes[i][3] - boxes[i][1] for i in line]))
        kept.append([i for i in line if boxes[i][3] - boxes[i][1] >= 0.55 * median])
        medians.append(median)
    tallest = max(medians, default=0.0)
    kept = [line for line, median in zip(kept, medians) if line and median >= 0.5 * tallest]
    return sorted(kept, key=lambda line: float(np.mean([boxes[i][1] + boxes[i][3] for i in line])))


def is_digit_shaped(box: list[int], region: np.ndarray, contrast: float, shape: tuple[int, int],
                    config: ReaderConfig) -> bool:
    """Size, aspect, fill, stroke thickness and contrast of a candidate look like a digit.

    Thickness (twice the largest inscribed radius) rejects compact blobs such as the holes of
    0/6/8/9 that show up as 'ink' when the polarity is wrong.
    """
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    if x0 <= 0 or y0 <= 0 or x1 >= shape[1] or y1 >= shape[0]:
        return False  # cut by the frame (or the region of interest): not a whole digit
    if height < config.min_height or height > config.max_height_fraction * shape[0]:
        return False
    aspect, fill = width / height, float(region.mean())
    if not config.min_aspect <= aspect <= config.max_aspect or fill < 0.08 or contrast < config.min_contrast:
        return False
    padded = cv2.copyMakeBorder(region.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    thickness = 2.0 * float(cv2.distanceTransform(padded, cv2.DIST_L2, 3).max())
    return thickness <= 0.45 * max(height, width) and not (fill > 0.75 and aspect > 0.35)


def candidates(gray: np.ndarray, config: ReaderConfig) -> tuple[np.ndarray, list[tuple[list[int], np.ndarray]]]:
    """Digit-shaped ink components of a dark-ink-on-light image: (normalised image, [(box, mask)])."""
    norm, background = normalise_illumination(gray)
    mask = ink_mask(norm, config.min_contrast)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.flatnonzero((stats[:, cv2.CC_STAT_AREA] >= max(4, config.min_height))
                          & (stats[:, cv2.CC_STAT_HEIGHT] >= config.min_height // 3))
    keep = keep[keep > 0]
    boxes = [[int(x), int(y), int(x + w), int(y + h)] for x, y, w, h in stats[keep, :4]]
    members = [[int(label)] for label in keep]
    merge_fragments(boxes, members)
    merge_pieces_in_rows(boxes, members)
    found = []
    for box, labels_of in zip(boxes, members):
        x0, y0, x1, y1 = box
        region = np.isin(labels[y0:y1, x0:x1], labels_of)
        ink = gray[y0:y1, x0:x1][region]
        contrast = float(np.median(background[y0:y1, x0:x1])) - float(np.percentile(ink, 10)) if ink.size else 0.0
        if is_digit_shaped(box, region, contrast, gray.shape, config):
            found.append((box, region))
    return norm, found


def outside_of(found: list, others: list) -> list:
    """Candidates not lying inside a larger candidate of the other polarity (the holes of 0, 6, 8, 9
    and the gaps between strokes show up as 'ink' when the polarity is wrong): used to score the two
    polarities. The winner keeps all its candidates: the paper around a narrow digit (the single bar
    of a seven-segment 1) is such a larger candidate of the wrong polarity."""
    def inside(a: list[int], b: list[int]) -> bool:
        overlap = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
        return overlap >= 0.8 * (a[2] - a[0]) * (a[3] - a[1]) and (b[3] - b[1]) > (a[3] - a[1])
    return [(box, region) for box, region in found if not any(inside(box, other) for other, _ in others)]


def lines_of(found: list) -> list[list[int]]:
    return group_lines([box for box, _ in found])


def line_score(found: list, lines: list[list[int]]) -> int:
    """Sum of the box heights of the best text line among the candidates."""
    return max((sum(found[i][0][3] - found[i][0][1] for i in line) for line in lines), default=0)


def locate(frame: np.ndarray, config: ReaderConfig = ReaderConfig()) -> Located:
    """Find digit candidates in a frame and cut each into an MNIST crop (no model needed).

    With polarity 'auto' both polarities are searched; candidates inside a larger one of the other
    polarity are dropped (holes), and the polarity whose best text line is taller in sum wins: n
    digits beat the n - 1 gaps between them that the wrong polarity sees; ties go to dark ink.
    """
    gray, (off_x, off_y) = crop_roi(to_gray(frame), config.roi)
    scale = min(1.0, config.max_side / max(gray.shape))
    if scale < 1.0:
        gray = cv2.resize(gray, (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
    empty = Located(np.zeros((0, MNIST_SIZE, MNIST_SIZE), np.uint8), [], [])
    if min(gray.shape) < config.min_height:
        return empty
    if config.polarity == "auto":
        (dark_norm, dark_all), (light_norm, light_all) = candidates(gray, config), candidates(255 - gray, config)
        dark, light = outside_of(dark_all, light_all), outside_of(light_all, dark_all)
        dark_score, light_score = line_score(dark, lines_of(dark)), line_score(light, lines_of(light))
        use_dark = dark_score >= light_score
        log.debug("polarity: dark-on-light %d candidates (height sum %d), light-on-dark %d (%d) -> %s",
                  len(dark), dark_score, len(light), light_score, "dark" if use_dark else "light")
        norm, found = (dark_norm, dark_all) if use_dark else (light_norm, light_all)
        lines = lines_of(found)
    else:
        norm, found = candidates(gray if config.polarity == "dark" else 255 - gray, config)
        lines = lines_of(found)
    crops, frame_boxes, line_numbers = [], [], []
    for line_number, line in enumerate(lines):
        for index in line:
            (x0, y0, x1, y1), region = found[index]
            ink = np.full(region.shape, 255, np.uint8)
            keep = cv2.dilate(region.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) > 0
            ink[keep] = norm[y0:y1, x0:x1][keep]
            pad = max(2, (y1 - y0) // 4)  # paper around the digit, so the crop's median is background
            crops.append(to_mnist(cv2.copyMakeBorder(ink, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255), invert=True))
            frame_boxes.append((off_x + round(x0 / scale), off_y + round(y0 / scale),
                                round((x1 - x0) / scale), round((y1 - y0) / scale)))
            line_numbers.append(line_number)
    if not crops:
        return empty
    return Located(np.stack(crops), frame_boxes, line_numbers)


# -- reading ----------------------------------------------------------------------------------
class DigitReader:
    """A digits model plus the locate() pipeline; `read(frame)` returns a Reading."""

    def __init__(self, model: TFLiteModel, labels: list[str], config: ReaderConfig = ReaderConfig()):
        if tuple(model.input_shape[1:3]) != (MNIST_SIZE, MNIST_SIZE):
            raise TinysenseError(f"{model.path}: input {model.input_shape} is not a 28x28 digits model")
        self.model, self.labels, self.config = model, labels, config
        self._batch, self._batchable = model.input_shape[0], True

    @classmethod
    def from_bundle(cls, path: str | Path, variant: str | None = None, threads: int = 1,
                    config: ReaderConfig = ReaderConfig()) -> "DigitReader":
        from edge.core.bundle import Bundle

        bundle = Bundle.load(path, task="digits")
        return cls(bundle.open(variant, threads=threads), bundle.labels, config)

    def classify(self, crops: np.ndarray) -> np.ndarray:
        """Probabilities for a batch of 28x28 crops: one invoke per MAX_BATCH crops (the input is
        resized to the batch), or one invoke per crop when the model's batch is fixed at export."""
        batch = crops.reshape(-1, MNIST_SIZE, MNIST_SIZE, 1).astype(np.float32)
        if self._batchable:
            try:
                return np.concatenate([self._invoke(batch[start : start + MAX_BATCH])
                                       for start in range(0, len(batch), MAX_BATCH)])
            except (RuntimeError, ValueError) as exc:
                log.info("%s: input batch is fixed (%s); one invoke per digit", self.model.path, str(exc).splitlines()[0])
                self._batchable = False
                self._resize(1)
        return self.model.predict(batch)

    def _resize(self, size: int) -> None:
        if self._batch != size:
            self._batch = -1  # unknown until allocation succeeds
            self.model.interpreter.resize_tensor_input(self.model.input_detail["index"], [size, MNIST_SIZE, MNIST_SIZE, 1])
            self.model.interpreter.allocate_tensors()
            self._batch = size

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        self._resize(len(batch))
        interpreter = self.model.interpreter
        interpreter.set_tensor(self.model.input_detail["index"], self.model.to_raw_input(batch))
        interpreter.invoke()
        return self.model.from_raw_output(interpreter.get_tensor(self.model.output_detail["index"]))

    def read(self, frame: np.ndarray) -> Reading:
        started, cpu_started = time.perf_counter(), time.thread_time()
        located = locate(frame, self.config)
        located_at, cpu_located = time.perf_counter(), time.thread_time()
        preprocess_ms, preprocess_cpu = (located_at - started) * 1000.0, (cpu_located - cpu_started) * 1000.0
        if not located.boxes:
            return Reading("", [], preprocess_ms, 0.0, (preprocess_cpu, 0.0))
        probabilities = self.classify(located.crops)
        inference_ms, inference_cpu = (time.perf_counter() - located_at) * 1000.0, (time.thread_time() - cpu_located) * 1000.0
        digits = []
        for box, line, probs in zip(located.boxes, located.lines, probabilities):
            best = int(np.argmax(probs))
            confidence = float(probs[best])
            label = self.labels[best] if confidence >= self.config.min_confidence else UNSURE
            digits.append(Digit(label, round(confidence, 4), tuple(int(v) for v in box), line))
        text = " ".join("".join(d.label for d in digits if d.line == n) for n in sorted({d.line for d in digits}))
        return Reading(text, digits, preprocess_ms, inference_ms, (preprocess_cpu, inference_cpu))


def annotate(frame: np.ndarray, reading: Reading) -> np.ndarray:
    """A BGR copy of the frame with each digit's box and label (red when below min-confidence)."""
    image = frame if frame.ndim == 3 and frame.shape[2] == 3 else cv2.cvtColor(to_gray(frame), cv2.COLOR_GRAY2BGR)
    image = np.ascontiguousarray(image, dtype=np.uint8).copy()
    thickness = max(1, round(max(image.shape[:2]) / 400))
    for digit in reading.digits:
        x, y, width, height = digit.box
        colour = (0, 0, 255) if digit.label == UNSURE else (0, 200, 0)
        cv2.rectangle(image, (x, y), (x + width, y + height), colour, thickness)
        cv2.putText(image, f"{digit.label} {digit.confidence:.2f}", (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    max(0.4, height / 80), colour, thickness, cv2.LINE_AA)
    return image
