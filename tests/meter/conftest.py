"""Shared meter test material: a tiny trained meter bundle, and meter faces built from crops."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edge.cli import main
from trainer.meter_data import render_crops

#: Wheel windows of the built faces: size and left edges (pixels), top row.
WINDOW_W, WINDOW_H, WINDOW_TOP, WINDOW_PITCH, WINDOW_LEFT = 40, 64, 200, 52, 110
MARKER = 48


@pytest.fixture(scope="session")
def meter_bundle(tmp_path_factory):
    """A tiny tree of value-prefixed crops (rendered, saved as JPEG), trained on for one epoch with
    30 rendered wheels mixed in (the default mixes 8000)."""
    root = tmp_path_factory.mktemp("meter")
    x, values = render_crops(260, seed=2, display="wheels")
    for i, (pixels, value) in enumerate(zip(x, values)):
        folder = root / ("dev/meter_c" if i < 40 else f"train/meter_{'ab'[i % 2]}")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[..., 0]).resize((24, 40)).save(folder / f"{value:.1f}_{i}.jpg", quality=90)
    model_dir = root / "model"
    assert main(["-q", "train", "meter", "--data", str(root), "--epochs", "1", "--renders", "30",
                 "--out", str(model_dir)]) == 0
    assert main(["-q", "export", str(model_dir)]) == 0
    return root, model_dir


def meter_face(crops: list[np.ndarray], size: tuple[int, int] = (640, 480), seed: int = 0) -> tuple[np.ndarray, dict]:
    """A grey camera frame of a meter: the crops (2-D uint8, any size) side by side in wheel windows
    on a textured housing, and two alignment marks (seeded random checkerboards) in opposite corners.

    Returns (frame, layout document): regions d1..dN exactly on the windows, markers m1, m2.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    frame = np.clip(rng.normal(120, 6, (height, width)), 0, 255).astype(np.uint8)
    regions = []
    for i, crop in enumerate(crops):
        x = WINDOW_LEFT + i * WINDOW_PITCH
        window = Image.fromarray(np.asarray(crop, np.uint8)).resize((WINDOW_W, WINDOW_H), Image.Resampling.BILINEAR)
        frame[WINDOW_TOP - 6 : WINDOW_TOP + WINDOW_H + 6, x - 6 : x + WINDOW_W + 6] = 20  # the window's frame
        frame[WINDOW_TOP : WINDOW_TOP + WINDOW_H, x : x + WINDOW_W] = np.asarray(window)
        regions.append({"name": f"d{i + 1}", "x": x, "y": WINDOW_TOP, "w": WINDOW_W, "h": WINDOW_H})
    markers = []
    for name, (x, y) in (("m1", (40, 40)), ("m2", (width - 40 - MARKER, height - 40 - MARKER))):
        cells = rng.integers(0, 2, (6, 6)).astype(np.uint8) * 200 + 25
        frame[y : y + MARKER, x : x + MARKER] = np.kron(cells, np.ones((MARKER // 6, MARKER // 6), np.uint8))
        markers.append({"name": name, "x": x, "y": y, "w": MARKER, "h": MARKER})
    return frame, {"regions": regions, "alignment": {"reference": "reference.png", "markers": markers}}


def moved(frame: np.ndarray, dx: float, dy: float, degrees: float) -> np.ndarray:
    """The frame rotated about its centre and shifted, as a camera knocked a little."""
    import cv2

    matrix = cv2.getRotationMatrix2D((frame.shape[1] / 2, frame.shape[0] / 2), degrees, 1.0)
    matrix[:, 2] += (dx, dy)
    return cv2.warpAffine(frame, matrix, (frame.shape[1], frame.shape[0]), borderMode=cv2.BORDER_REPLICATE)
