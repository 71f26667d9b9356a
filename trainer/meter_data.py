"""Where meter-digit crops come from: a folder of value-prefixed photos, or rendered wheels and LCDs.

Real photos (`--data DIR`): every image under DIR whose name starts with its value in tenths
(`4.9_*.jpg`, see edge.seeing.meter); training crops get what a region box catches beside its
digit (`region_context`): housing bars or separator dashes at the side edges, a strip of the
neighbouring digit, the window's frame across the top or bottom. When DIR holds `train/` and
`dev/` (the layout of ../shared/data/meter_digits) the model is trained on train/ only and dev/ is the held-out set;
otherwise whole sub-folders (one per meter, frames of one meter being near-duplicates) are held
out. Validation for checkpoint selection is likewise a set of whole sub-folders of the training part.

The embedded default (no photos) renders crops of the model's kind of display (`DISPLAYS`) the way
a meter camera sees them, with the housing's frame at the edges, glare and shadow, low resolution,
blur, sensor noise and JPEG: number wheels with the previous and next digits partly visible and
bent by the drum's curvature, light and dark (and red, i.e. mid-grey) drums; or seven-segment LCD
digits (DSEG faces) with the faint unlit segments real LCDs show and, on half of them, the printed
lines a display has above and below its digits. Wheels are drawn in every installed face that
renders digits, DSEG's segment faces aside (`wheel_fonts`: about 140 with the fonts `make setup`
installs).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.core.errors import InputError
from edge.seeing import meter
from edge.seeing.meter import DISPLAYS
from trainer.printed_digits import digit_fonts, is_segment_face, jpeg, lighting, render_glyph, sensor

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
#: Share of rendered LCD digits with a display's printed lines above and/or below them.
PRINTED_LINES_SHARE = 0.5
#: A wheel's window, in glyph heights: up to 1.8 high and 1.2 wide, so the digit may sit small in
#: its region box with margins around it, as in most real crops. Renders-only models (8000 crops,
#: 8 epochs, int8, meter_digits dev split, the faces of DejaVu, FreeFont and Liberation, seed 0) read
#: 85.1 % of clean digits and 66.3 % of wheels between two digits with windows of at most 1.5 x 1.0,
#: 90.1 % and 73.0 % with these (one seed: with seed 1 these windows gave 84.8 % and 78.7 %).
#: Narrower windows, down to 0.5 (the glyph's sides cut), were measured with `ZOOM_WIDTH` and left
#: out: photos + 8000 renders read 98.82 / 98.02 % instead of 98.34 / 97.54 % (seed 0), but the
#: renders-only default fell from 91.6 / 89.4 % to 89.2 / 86.4 % (seed 0; seed 1 93.8 -> 92.8 % clean).
WINDOW_HEIGHT, WINDOW_WIDTH = (1.15, 1.8), (0.75, 1.2)


@dataclass
class MeterData:
    """uint8 model inputs (N, HEIGHT, WIDTH, 1) and float values in tenths, per split."""
    x_train: np.ndarray
    v_train: np.ndarray
    x_val: np.ndarray
    v_val: np.ndarray
    x_test: np.ndarray
    v_test: np.ndarray
    source: str
    groups: dict


# -- real photos ------------------------------------------------------------------------------
def group_of(path: Path, root: Path) -> str:
    """The crop's sub-folder relative to `root` (one meter per folder in the community's sets)."""
    parent = path.parent.relative_to(root)
    return str(parent) if str(parent) != "." else ""


def hold_out_groups(groups: list[str], share: float, seed: int) -> set[str]:
    """Whole groups, drawn in a seeded order, until they hold about `share` of the crops.

    A group that would take the held-out part past twice `share` is passed over: one large folder
    (meter_digits' `train/new`, 30 % of the wheel crops; `train/lcd7seg`, 91 % of the LCD ones) would
    otherwise leave training a fraction of the data.
    """
    names, counts = np.unique(groups, return_counts=True)
    if len(names) < 2:
        return set()
    held, total = set(), 0
    for index in np.random.default_rng(seed).permutation(len(names)):
        if total >= share * len(groups) or len(held) == len(names) - 1:
            break
        if total + counts[index] > 2 * share * len(groups):
            continue
        held.add(str(names[index]))
        total += int(counts[index])
    return held


def split_paths(paths: list[Path], root: Path, share: float, seed: int) -> tuple[list[int], list[int], list[str]]:
    """(kept, held-out) indices: whole groups held out; a seeded random share when there is one group;
    nothing held out when `share` is 0."""
    if share == 0:
        return list(range(len(paths))), [], []
    groups = [group_of(path, root) for path in paths]
    held = hold_out_groups(groups, share, seed)
    if held:
        return ([i for i, g in enumerate(groups) if g not in held], [i for i, g in enumerate(groups) if g in held],
                sorted(held))
    log.warning("%s: no sub-folder (meter) to hold out whole for a %.0f%% share; holding out a random %.0f%% "
                "of the crops (near-duplicate frames make this figure optimistic)", root, 100 * share, 100 * share)
    order = np.random.default_rng(seed).permutation(len(paths))
    cut = max(1, int(round(share * len(paths))))
    return sorted(order[cut:].tolist()), sorted(order[:cut].tolist()), []


def load_photos(data: str | Path, include: list[str], exclude: list[str], validation_share: float,
                seed: int) -> MeterData:
    """Crops under `data`; `include` / `exclude`: glob patterns on the path relative to train/ and
    dev/ (or to `data`), e.g. 'lcd*/*', of the crops to keep and to leave out (edge.seeing.meter.find_crops)."""
    root = Path(data)
    train_root = root / "train" if (root / "train").is_dir() and (root / "dev").is_dir() else root
    paths, _ = meter.find_crops(train_root, include, exclude)
    if train_root != root:
        test_paths, test_groups = meter.find_crops(root / "dev", include, exclude)[0], ["dev/*"]
    else:
        kept, held, test_groups = split_paths(paths, root, 0.2, seed)
        paths, test_paths = [paths[i] for i in kept], [paths[i] for i in held]
    train_idx, val_idx, val_groups = split_paths(paths, train_root, validation_share, seed + 1)
    x, v = meter.load_folder(train_root, paths)
    x_test, v_test = meter.load_folder(root / "dev" if train_root != root else root, test_paths)
    log.info("meter photos: %d train, %d validation (%s), %d held out (%s)", len(train_idx), len(val_idx),
             ", ".join(val_groups) or ("random" if val_idx else "none"), len(v_test), ", ".join(test_groups) or "random")
    groups = [group_of(path, train_root) for path in paths]
    return MeterData(region_context(x[train_idx], [groups[i] for i in train_idx], np.random.default_rng(seed)),
                     v[train_idx], x[val_idx], v[val_idx], x_test, v_test,
                     f"value-prefixed crops in {root}",
                     {"validation": val_groups, "heldout": test_groups, "include": list(include),
                      "exclude": list(exclude)})


def edge_marks(x: np.ndarray, rng: np.random.Generator, share: float = 0.5) -> np.ndarray:
    """Training crops (uint8 (N, HEIGHT, WIDTH, 1)), a copy in which about `share` of them show at
    their left and right edges what a region box catches beside its wheel: a dark bar of the
    housing over 1 to 3 columns, or the two dashes of a colon printed between wheels.

    The Techem and altair water meters of meter_digits/dev have them and no training meter has
    many: without these marks they read 60-79% of their clean digits right, with them 77-91%.
    """
    x = x.copy()
    for i in np.flatnonzero(rng.random(len(x)) < share):
        for side in range(2):
            width = int(rng.integers(1, 4))
            columns = slice(0, width) if side == 0 else slice(meter.WIDTH - width, meter.WIDTH)
            shade = rng.uniform(0, 90)
            if rng.random() < 0.35:
                x[i, :, columns, 0] = (x[i, :, columns, 0] * 0.3 + shade * 0.7).astype(np.uint8)
            elif rng.random() < 0.5:
                for top in (int(rng.integers(8, 13)), int(rng.integers(19, 24))):
                    x[i, top : top + 2, columns, 0] = shade
    return x


def neighbour_strips(x: np.ndarray, groups: list[str], rng: np.random.Generator, share: float = 0.5) -> np.ndarray:
    """A copy of `x` (uint8 (N, HEIGHT, WIDTH, 1)) in which about `share` of the crops show, over 2
    to 5 columns at their left, right or both edges, a strip of another crop of the same meter
    (`groups[i]`, so the drum and light match): the neighbouring wheel or LCD digit a region box
    catches when it is a little too wide."""
    marked = x.copy()
    members = {name: np.flatnonzero(np.asarray(groups) == name) for name in set(groups)}
    half = meter.WIDTH // 2
    for i in np.flatnonzero(rng.random(len(x)) < share):
        other = x[rng.choice(members[groups[i]])]
        width = int(rng.integers(2, 6))
        for side in ((0,), (1,), (0, 1))[int(rng.integers(3))]:
            if side == 0:  # the right part of the digit before
                start = int(rng.integers(half, meter.WIDTH - width + 1))
                marked[i, :, :width] = other[:, start : start + width]
            else:  # the left part of the digit after
                start = int(rng.integers(width, half + 1))
                marked[i, :, meter.WIDTH - width :] = other[:, start : start + width]
    return marked


def frame_rows(x: np.ndarray, rng: np.random.Generator, share: float = 0.3) -> np.ndarray:
    """A copy of `x` in which about `share` of the crops get, at their top and/or bottom (within 3
    rows of the edge), a dark line 1 to 2 rows thick, whole or dashed: a wheel window's frame, or
    the printed lines above and below an LCD's digits."""
    marked = x.copy()
    for i in np.flatnonzero(rng.random(len(x)) < share):
        for side in range(2):
            if rng.random() >= 0.6:
                continue
            thickness, inset = int(rng.integers(1, 3)), int(rng.integers(0, 4))
            top = inset if side == 0 else meter.HEIGHT - inset - thickness
            columns = np.ones(meter.WIDTH, bool)
            if rng.random() < 0.5:
                period = int(rng.integers(4, 9))
                columns = (np.arange(meter.WIDTH) + int(rng.integers(period))) % period < period * 0.6
            rows = marked[i, top : top + thickness, columns, 0]
            marked[i, top : top + thickness, columns, 0] = (rows * 0.2 + rng.uniform(0, 100) * 0.8).astype(np.uint8)
    return marked


def region_context(x: np.ndarray, groups: list[str], rng: np.random.Generator) -> np.ndarray:
    """Training crops with what a region box catches beside its digit: `edge_marks`, then
    `neighbour_strips`, then `frame_rows` (each on its own share of the crops); a copy.

    With contrast-stretched crops, 8 epochs, one seed: adding the strips and rows to the edge marks
    took the meter_digits validation meters (whole training sub-folders) from 87.6 / 82.9% (clean /
    between two digits) to 87.2 / 84.9%, and the dev split from 91.0 / 84.3% to 93.5 / 88.9%.
    """
    return frame_rows(neighbour_strips(edge_marks(x, rng), groups, rng), rng)


# -- rendered crops ---------------------------------------------------------------------------
def wheel_fonts() -> tuple[Path, ...]:
    """Faces for number wheels: the installed digit faces without the segment (DSEG) ones."""
    fonts = tuple(font for font in digit_fonts() if not is_segment_face(font))
    if not fonts:
        raise InputError("no installed font renders digits (install fonts-dejavu or fonts-freefont)")
    return fonts


def lcd_fonts() -> tuple[Path, ...]:
    fonts = tuple(font for font in digit_fonts() if font.name.startswith("DSEG7"))
    if not fonts:
        raise InputError("no seven-segment font installed (apt install fonts-dseg)")
    return fonts


def shades(rng: np.random.Generator) -> tuple[float, float]:
    """(background, ink) grey levels: white on black, black on white, white on red (mid grey)."""
    kind = rng.choice(3, p=[0.5, 0.3, 0.2])
    if kind == 0:
        return rng.uniform(10, 90), rng.uniform(150, 255)
    if kind == 1:
        return rng.uniform(150, 250), rng.uniform(0, 80)
    return rng.uniform(50, 110), rng.uniform(170, 255)


def centre_columns(mask: np.ndarray, width: int) -> np.ndarray:
    """The middle `width` columns of a glyph mask wider than its window (a narrow region box cuts
    both of its sides); a narrower mask is returned as it is."""
    cut = max(0, (mask.shape[1] - width) // 2)
    return mask[:, cut : cut + width]


def drum(value: float, font: Path, rng: np.random.Generator) -> np.ndarray:
    """A number wheel at `value` (float, tenths of a turn) seen through its window: float 0..255.

    Digit k sits `(k - value) * pitch` below the window's centre (the next digit rolls in from
    below), and the strip is bent onto a cylinder, so the digits squeeze towards the window's edges.
    """
    glyph = int(rng.integers(36, 60))
    pitch = glyph * rng.uniform(1.2, 1.6)
    height = int(glyph * rng.uniform(*WINDOW_HEIGHT))
    width = int(glyph * rng.uniform(*WINDOW_WIDTH))
    background, ink = shades(rng)
    radius = rng.uniform(0.6, 1.2) * height  # drum radius in pixels of the unrolled strip
    # the window row y (centre 0) shows the strip at arc length radius * arcsin(y / radius)
    rows = np.arange(height, dtype=np.float32) - (height - 1) / 2
    arc = radius * np.arcsin(np.clip(rows / radius, -1, 1))
    strip_half = int(np.ceil(np.abs(arc).max())) + glyph
    strip = np.zeros((2 * strip_half, width), np.float32)
    base = int(np.floor(value))
    for k in range(base - 2, base + 4):
        mask = centre_columns(render_glyph(k % 10, font, glyph, rng), width)
        top = int(round(strip_half + (k - value) * pitch - mask.shape[0] / 2))
        left = int(np.clip((width - mask.shape[1]) // 2 + rng.integers(-1, 2), 0, width - mask.shape[1]))
        rows_in = slice(max(top, 0), min(top + mask.shape[0], strip.shape[0]))
        if rows_in.start < rows_in.stop:
            cols = slice(left, left + mask.shape[1])
            strip[rows_in, cols] = np.maximum(strip[rows_in, cols], mask[rows_in.start - top : rows_in.stop - top])
    map_y = np.repeat((arc + strip_half)[:, None], width, axis=1).astype(np.float32)
    map_x = np.repeat(np.arange(width, dtype=np.float32)[None, :], height, axis=0)
    coverage = cv2.remap(strip, map_x, map_y, cv2.INTER_LINEAR)
    image = background + (ink - background) * coverage
    shading = np.cos(np.clip(rows / radius, -1, 1) * rng.uniform(0.6, 1.4))[:, None]  # the drum turns away
    return (image * shading).astype(np.float32)


def lcd(digit: int, font: Path, rng: np.random.Generator) -> np.ndarray:
    """A seven-segment LCD digit with faintly visible unlit segments: float 0..255."""
    glyph = int(rng.integers(36, 60))
    background = rng.uniform(110, 230)
    ink = rng.uniform(0, background - 70)
    lit = render_glyph(digit, font, glyph, rng)
    ghost = render_glyph(8, font, glyph, rng)
    height = int(glyph * rng.uniform(1.1, 1.4))
    width = max(lit.shape[1], ghost.shape[1]) + int(glyph * rng.uniform(0.1, 0.6))
    canvas = np.zeros((2, height, width), np.float32)
    for layer, mask in enumerate((lit, ghost)):
        top, left = (height - mask.shape[0]) // 2, (width - mask.shape[1]) // 2
        canvas[layer, top : top + mask.shape[0], left : left + mask.shape[1]] = mask
    coverage = np.maximum(canvas[0], rng.uniform(0.0, 0.15) * canvas[1])
    if rng.random() < PRINTED_LINES_SHARE:
        coverage = printed_lines(coverage, glyph, rng)
    return background + (ink - background) * coverage


def printed_lines(coverage: np.ndarray, glyph: int, rng: np.random.Generator) -> np.ndarray:
    """`coverage` (float [0, 1], a digit) on a taller canvas with the printed lines a display's
    face has above and/or below its digits, a small gap away from the digit's top or bottom.

    meter_digits/dev/lcd2 has them: without them every model read its 4s (a 4 under a line) as 9s.
    """
    height, width = coverage.shape
    inked = np.flatnonzero(coverage.max(axis=1) > 0.5)
    if not len(inked):  # nothing drawn: the lines go at the canvas's top and bottom
        inked = np.array([0, height - 1])
    gap, thickness = int(glyph * rng.uniform(0.05, 0.2)) + 1, max(1, int(glyph * rng.uniform(0.04, 0.1)))
    margin = gap + thickness + int(glyph * rng.uniform(0.0, 0.15))
    canvas = np.zeros((height + 2 * margin, width), np.float32)
    canvas[margin : margin + height] = coverage
    top, bottom = margin + inked[0], margin + inked[-1]
    rows = [top - gap - thickness, bottom + gap + 1]  # above, below
    order = 1 if rng.random() < 0.5 else -1
    for row in rows[::order][: int(rng.integers(1, 3))]:  # one of the two lines, or both
        span = max(1, int(width * rng.uniform(0.5, 1.0)))
        left = int(rng.integers(0, width - span + 1))
        canvas[row : row + thickness, left : left + span] = 1.0
    return canvas


def frame(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The meter's housing at the crop's edges: bands of another shade on some sides."""
    height, width = image.shape
    image = image.copy()
    for side in range(4):
        if rng.random() < 0.35:
            size = int(rng.uniform(0.04, 0.18) * (width if side < 2 else height)) + 1
            shade = rng.uniform(0, 255)
            if side == 0:
                image[:, :size] = shade
            elif side == 1:
                image[:, -size:] = shade
            elif side == 2:
                image[:size] = shade
            else:
                image[-size:] = shade
    return image


def glare(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft specular highlight from the window's glass or a flash LED."""
    height, width = image.shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    centre = rng.uniform(0, 1, 2) * (width, height)
    radius = rng.uniform(0.1, 0.5) * max(width, height)
    blob = np.exp(-(((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * radius**2)))
    return image + rng.uniform(40, 160) * blob


def camera(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light, optics and sensor: shadow, glare, low resolution, blur, noise, JPEG -> uint8 grey."""
    image = frame(image, rng)
    image = image * lighting(image.shape, rng, 0.5)
    if rng.random() < 0.3:
        image = glare(image, rng)
    angle, shear = rng.uniform(-3, 3), rng.uniform(-0.08, 0.08)
    centre = (image.shape[1] / 2, image.shape[0] / 2)
    transform = cv2.getRotationMatrix2D(centre, angle, rng.uniform(0.95, 1.08))
    transform[0, 1] += shear
    transform[:, 2] += rng.uniform(-0.06, 0.06, 2) * (image.shape[1], image.shape[0] * 0.3)
    image = cv2.warpAffine(image.astype(np.float32), transform, (image.shape[1], image.shape[0]),
                           borderMode=cv2.BORDER_REPLICATE)
    low_width = int(rng.integers(12, 48))  # meter crops are 15 to 60 pixels wide
    low = cv2.resize(image, (low_width, max(8, round(low_width * image.shape[0] / image.shape[1]))),
                     interpolation=cv2.INTER_AREA)
    gray = sensor(low, rng, blur=rng.uniform(0, 1.0), noise=rng.uniform(0, 8))
    return cv2.imdecode(np.frombuffer(jpeg(gray, int(rng.integers(30, 95))), np.uint8), cv2.IMREAD_GRAYSCALE)


def render_crops(count: int, seed: int, display: str) -> tuple[np.ndarray, np.ndarray]:
    """`count` rendered crops of a `display` (one of `DISPLAYS`) as model inputs (uint8 (N, HEIGHT,
    WIDTH, 1)) and their values.

    Wheel values are drawn uniformly over the 100 tenths (and anywhere within a tenth), LCD values
    are whole digits; the fonts come from this machine (`wheel_fonts`, `lcd_fonts`).
    """
    if display not in DISPLAYS:
        raise ValueError(f"display {display!r} is not one of {DISPLAYS}")
    rng = np.random.default_rng(seed)
    fonts = wheel_fonts() if display == "wheels" else lcd_fonts()
    x = np.empty((count, meter.HEIGHT, meter.WIDTH, 1), np.uint8)
    values = np.empty(count, np.float64)
    for i in range(count):
        font = fonts[int(rng.integers(len(fonts)))]
        if display == "lcd":
            values[i] = float(rng.integers(10))
            picture = lcd(int(values[i]), font, rng)
        else:
            values[i] = int(rng.integers(meter.TENTHS)) / 10
            picture = drum(values[i] + rng.uniform(-0.045, 0.045), font, rng)
        x[i] = meter.to_meter_input(camera(np.clip(picture, 0, 255), rng))
    return x, values


def load_rendered(count: int, validation_share: float, seed: int, display: str) -> MeterData:
    """Rendered training and validation crops, and a held-out set rendered with another seed."""
    x, v = render_crops(count, seed, display)
    cut = int(round(count * (1 - validation_share)))
    x_test, v_test = render_crops(max(200, count // 10), seed + 1000, display)
    kind = "number wheels" if display == "wheels" else "LCD digits"
    return MeterData(x[:cut], v[:cut], x[cut:], v[cut:], x_test, v_test, f"rendered {kind} ({count}, seed {seed})", {})


def add_renders(data: MeterData, count: int, seed: int, display: str) -> MeterData:
    """`data` with `count` rendered crops added to its training part (validation and held-out stay photos)."""
    x, v = render_crops(count, seed + 2000, display)
    return MeterData(np.concatenate([data.x_train, x]), np.concatenate([data.v_train, v]), data.x_val, data.v_val,
                     data.x_test, data.v_test, f"{data.source} + {count} rendered crops", data.groups)
