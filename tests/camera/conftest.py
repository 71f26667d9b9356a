"""Shared pictures for the camera tests: numbers drawn with an installed font, and a seeded scene set."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainer.printed_digits import digit_fonts, render_glyph
from trainer.scenes import make_scenes, place_number

FONT_NAME = "DejaVuSans-Bold.ttf"


def font(name: str = FONT_NAME) -> Path:
    matches = [path for path in digit_fonts() if path.name == name]
    assert matches, f"font {name} not installed (apt install fonts-dejavu)"
    return matches[0]


def number_image(text: str, *, height: int = 60, dark_ink: bool = True, size: tuple[int, int] = (640, 480),
                 font_name: str = FONT_NAME, seed: int = 0) -> tuple[np.ndarray, list[list[int]]]:
    """A clean gray picture of `text` (dark on light or light on dark) and its [x0, y0, x1, y1] boxes."""
    rng = np.random.default_rng(seed)
    glyphs = [render_glyph(int(d), font(font_name), height, rng) for d in text]
    layer, boxes = place_number(glyphs, (size[1], size[0]), rng, (0.3, 0.4))
    paper, ink = (235.0, 30.0) if dark_ink else (25.0, 220.0)
    return (paper + (ink - paper) * layer).astype(np.uint8), boxes


@pytest.fixture(scope="session")
def scenes_dir(tmp_path_factory) -> Path:
    """24 seeded mixed scenes (handwriting from the held-out part of the embedded MNIST sample)."""
    out = tmp_path_factory.mktemp("scenes")
    make_scenes(out, 24, "mixed", seed=5)
    return out
