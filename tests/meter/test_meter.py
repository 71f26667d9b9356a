"""Meter-digit semantics: value-prefixed names, tenths as classes, scores, rolling-wheel assembly."""
import numpy as np
import pytest
from PIL import Image

from edge.core.errors import InputError
from edge.seeing import meter


@pytest.mark.parametrize("name,value", [("4.9_abc.jpg", 4.9), ("0.0_x.png", 0.0), ("7_lcd.jpg", 7.0),
                                        ("9.9_1.jpg", 9.9), ("x_4.9.jpg", None), ("49_x.jpg", None),
                                        ("4.9.jpg", None), ("NaN_x.jpg", None)])
def test_value_from_name(name, value):
    assert meter.value_from_name(name) == value


def test_classes_are_tenths_and_wrap_round_the_wheel():
    assert meter.value_to_class([0.0, 4.9, 9.9, 9.96, 5.04]).tolist() == [0, 49, 99, 0, 50]
    assert meter.class_to_value([0, 49, 99]).tolist() == [0.0, 4.9, 9.9]
    assert meter.LABELS[47] == "4.7" and len(meter.LABELS) == 100
    assert meter.nearest_digit([4.8, 9.8, 5.2, 0.1]).tolist() == [5, 0, 5, 0]
    assert meter.is_between([4.2, 4.3, 4.7, 4.8, 9.5]).tolist() == [False, True, True, False, True]


def test_score_counts_clean_between_exact_and_within_one():
    true = [4.0, 4.9, 9.9, 0.1, 4.5, 9.5, 4.5]
    predicted = [4.0, 5.1, 0.0, 9.8, 4.0, 0.3, 6.0]
    scores = meter.score(true, predicted)
    # clean: 4.0->4 ok, 4.9->5 ok (5.1), 9.9->0 ok (0.0), 0.1->0 ok (9.8 rounds to 0)
    assert (scores.clean, scores.clean_count) == (1.0, 4)
    # between: 4.5 read 4 (ok), 9.5 read 0 (ok, 9 or 0), 4.5 read 6 (wrong)
    assert (scores.between, scores.between_count) == (pytest.approx(2 / 3), 3)
    assert scores.exact == pytest.approx(1 / 7)  # 4.0
    assert scores.within_one == pytest.approx(2 / 7)  # 4.0, and 9.9/0.0 round the wheel; 4.9/5.1 is two off


@pytest.mark.parametrize("wheels,decimals,text", [
    ([1, 4.7, 9.8], 0, "149"),       # the middle wheel waits for the last one to pass 0
    ([1, 5.0, 0.1], 0, "150"),
    ([1, 4.9, 0.2], 0, "150"),       # a middle wheel lagging behind still reads 5
    ([1, 5.0, 9.6], 0, "149"),       # ... and one running ahead still reads 4
    ([1, 4.6, 5.0], 0, "155"),       # no carry under way: the nearest digit
    ([0.0, 9.9, 9.9, 9.5], 0, "0999"),
    ([2, 3, 4.5], 1, "23.4"),
    ([4.5], 0, "4"),
])
def test_assemble_rolling_wheels(wheels, decimals, text):
    assert meter.assemble(wheels, decimals) == text


def test_crop_preprocessing_any_size_and_mode(tmp_path):
    for i, (mode, size) in enumerate([("RGB", (23, 42)), ("L", (96, 96)), ("RGBA", (15, 34))]):
        path = tmp_path / f"4.{i}_crop.png"
        Image.new(mode, size, "white").save(path)
        crop = meter.load_crop(path)
        assert crop.shape == (32, 20, 1) and crop.dtype == np.uint8 and int(crop.min()) == 255
    gradient = np.tile(np.arange(64, dtype=np.uint8)[:, None] * 4, (1, 40))  # dark top, light bottom
    crop = meter.to_meter_input(gradient)[..., 0]
    assert crop[0].mean() < 10 and crop[-1].mean() > 240  # not flipped, not padded


def test_crop_contrast_is_stretched_unless_blank():
    rng = np.random.default_rng(0)
    faint = np.full((60, 36), 200, np.uint8)
    faint[15:45, 14:22] = 170  # a pale stroke: 30 grey levels of contrast
    crop = meter.to_meter_input(faint)[..., 0].astype(int)
    assert crop.min() == 0 and crop.max() == 255 and crop[16, 10] == 0 and crop[2, 2] == 255
    ramp = np.tile(np.linspace(60, 180, 40)[:, None], (1, 20)).astype(np.uint8)
    stretched = meter.to_meter_input(ramp)[..., 0].astype(int)
    assert np.all(np.diff(stretched[:, 10]) >= 0) and stretched[0, 0] <= 3 and stretched[-1, 0] >= 252  # order kept
    blank = np.clip(rng.normal(128, 2, (40, 24)), 0, 255).astype(np.uint8)  # under FLAT_SPAN: no noise blown up
    assert np.ptp(meter.to_meter_input(blank)) < meter.FLAT_SPAN


def test_find_crops_skips_unnamed_and_refuses_empty(tmp_path, caplog):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/3.4_x.jpg", "a/b/7_y.jpg", "a/readme.jpg", "a/notes.txt"):
        Image.new("RGB", (20, 32)).save(tmp_path / name, format="JPEG") if name.endswith("jpg") else (tmp_path / name).write_text("x")
    paths, values = meter.find_crops(tmp_path)
    assert [p.name for p in paths] == ["3.4_x.jpg", "7_y.jpg"] and values.tolist() == [3.4, 7.0]
    assert "skipped 1 images" in caplog.text
    with pytest.raises(InputError, match=r"empty.*no crops named like 4\.9_"):
        (tmp_path / "empty").mkdir()
        meter.find_crops(tmp_path / "empty")
    with pytest.raises(InputError, match="missing: no such data folder"):
        meter.find_crops(tmp_path / "missing")


def test_unreadable_crop_names_the_file(tmp_path):
    bad = tmp_path / "4.0_bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="4.0_bad.jpg: not an image"):
        meter.load_folder(tmp_path)
