"""The model-free half of the reader: finding digits, their order, polarity, and hard frames."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge.seeing.digit_reader import ReaderConfig, locate, to_gray
from edge.core.errors import InputError
from tests.camera.conftest import font, number_image


def overlap(a, b) -> float:
    """Intersection over union of an (x, y, w, h) box and an [x0, y0, x1, y1] box."""
    ax0, ay0, ax1, ay1 = a[0], a[1], a[0] + a[2], a[1] + a[3]
    inter = max(0, min(ax1, b[2]) - max(ax0, b[0])) * max(0, min(ay1, b[3]) - max(ay0, b[1]))
    return inter / ((ax1 - ax0) * (ay1 - ay0) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("dark_ink", [True, False])
def test_finds_each_digit_left_to_right_in_both_polarities(dark_ink):
    image, truth = number_image("40961", dark_ink=dark_ink)
    located = locate(image)
    assert len(located.boxes) == 5
    assert located.lines == [0] * 5
    for box, expected in zip(located.boxes, truth):
        assert overlap(box, expected) > 0.6
    assert located.crops.shape == (5, 28, 28) and located.crops.dtype == np.uint8
    # MNIST convention: white digit on black, the border is background
    assert located.crops[:, 0, :].max() < 60 and located.crops.max() == 255


def test_seven_segment_digits_are_one_box_each():
    for face in ("DSEG7Classic-Regular.ttf", "DSEG7ClassicMini-Italic.ttf"):
        image, _ = number_image("2580", font_name=face)
        assert len(locate(image).boxes) == 4, face


@pytest.mark.parametrize("text,face,dark_ink", [("0815", "DSEG7Classic-Regular.ttf", True),
                                                ("2019", "DSEG7Classic-Regular.ttf", True),
                                                ("1234", "DSEG7Classic-Bold.ttf", False)])
def test_a_narrow_one_between_wider_digits_gets_its_box(text, face, dark_ink):
    """A display's string as the font sets it (one draw call, the 1's bar at the right of its cell):
    the paper between the 1 and its neighbour, seen with the wrong polarity, has a box around the
    bar; the bar is a digit all the same, not a hole."""
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.new("L", (640, 480), 235 if dark_ink else 25)
    ImageDraw.Draw(picture).text((320, 240), text, font=ImageFont.truetype(str(font(face)), 140 if not dark_ink else 96),
                                 fill=30 if dark_ink else 220, anchor="mm")
    boxes = locate(np.asarray(picture)).boxes
    assert len(boxes) == 4
    one = text.index("1")
    assert boxes[one][2] < 0.3 * boxes[one][3]  # the bar itself, in its place between the others
    assert [box[0] for box in boxes] == sorted(box[0] for box in boxes)


def test_two_lines_are_read_top_to_bottom():
    top, _ = number_image("12", seed=1)
    bottom, _ = number_image("345", seed=2)
    located = locate(np.vstack([top[100:300], bottom[100:300]]))
    assert located.lines == [0, 0, 1, 1, 1]
    assert [box[0] for box in located.boxes[:2]] == sorted(box[0] for box in located.boxes[:2])
    assert min(box[1] for box in located.boxes[2:]) > max(box[1] for box in located.boxes[:2])


def test_region_of_interest_limits_the_search_and_boxes_stay_in_frame_pixels():
    image, truth = number_image("4096")
    x0 = truth[2][0] - 10
    roi = (x0, truth[2][1] - 20, truth[3][2] + 10 - x0, 100)
    located = locate(image, ReaderConfig(roi=roi))
    assert len(located.boxes) == 2
    assert overlap(located.boxes[0], truth[2]) > 0.6 and overlap(located.boxes[1], truth[3]) > 0.6
    with pytest.raises(InputError, match="outside"):
        locate(image, ReaderConfig(roi=(5000, 5000, 10, 10)))


def test_shadow_and_gradient_do_not_hide_digits_or_make_new_ones():
    image, _ = number_image("7352")
    shading = np.tile(np.linspace(0.35, 1.0, image.shape[1], dtype=np.float32), (image.shape[0], 1))
    shaded = (image * shading).astype(np.uint8)
    assert len(locate(shaded).boxes) == 4


@pytest.mark.parametrize("name", ["white", "black", "noise", "gradient", "speckle"])
def test_frames_without_digits_give_nothing(name):
    rng = np.random.default_rng(0)
    frame = {
        "white": np.full((480, 640), 255, np.uint8),
        "black": np.zeros((480, 640), np.uint8),
        "noise": (128 + rng.normal(0, 10, (480, 640))).clip(0, 255).astype(np.uint8),
        "gradient": np.tile(np.linspace(0, 255, 640), (480, 1)).astype(np.uint8),
        "speckle": rng.integers(0, 256, (480, 640)).astype(np.uint8),
    }[name]
    located = locate(frame)
    assert located.boxes == [] and located.crops.shape == (0, 28, 28)


def test_tiny_huge_colour_and_16bit_frames():
    assert locate(np.full((3, 3), 200, np.uint8)).boxes == []
    image, truth = number_image("58")
    huge = cv2.resize(image, (8000, 6000), interpolation=cv2.INTER_LINEAR)
    boxes = locate(huge).boxes
    assert len(boxes) == 2 and overlap([v / 12.5 for v in boxes[0]], truth[0]) > 0.5
    assert len(locate(cv2.cvtColor(image, cv2.COLOR_GRAY2BGRA)).boxes) == 2
    assert len(locate(image.astype(np.uint16) * 257).boxes) == 2


def test_empty_or_malformed_frames_are_input_errors():
    for frame in (np.zeros((0, 0), np.uint8), np.zeros((4, 4, 2), np.uint8), np.zeros((2, 2, 2, 2), np.uint8)):
        with pytest.raises(InputError):
            to_gray(frame)


def test_detection_on_seeded_scenes(scenes_dir):
    """Model-free: the reader finds as many digits as the scene holds, where the truth says."""
    entries = [json.loads(line) for line in (scenes_dir / "ground_truth.jsonl").read_text().splitlines()]
    right_count = hits = digits = 0
    for entry in entries:
        located = locate(cv2.imread(str(scenes_dir / entry["file"])))
        right_count += len(located.boxes) == len(entry["text"])
        for x, y, w, h in entry["boxes"]:
            digits += 1
            hits += any(overlap(box, [x, y, x + w, y + h]) > 0.5 for box in located.boxes)
    assert right_count >= 0.9 * len(entries)
    assert hits >= 0.9 * digits
