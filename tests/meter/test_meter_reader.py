"""Reading a meter from a camera frame: layout files, alignment marks, rolling wheels, '?', the CLI."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.core.bundle import Bundle
from edge.core.errors import InputError
from edge.seeing import meter, meter_bench
from edge.seeing.meter_reader import MeterReader, load_layout, number_text
from tests.meter.conftest import meter_face, moved
from trainer.meter_data import render_crops

#: Grey level of a coded crop for tenth class k (the fake model below reads it back). A black and a
#: white block in the middle pin the contrast stretch of edge.seeing.meter to 0..255, so the grey
#: survives it even when a knocked camera brings the window's dark frame into the region.
def coded(value: float) -> np.ndarray:
    crop = np.full((32, 20), 40 + 2 * int(meter.value_to_class(value)), np.uint8)
    crop[9:13, 6:14], crop[19:23, 6:14] = 0, 255
    return crop


class GreyCoded:
    """A stand-in meter model that reads a crop's median grey as its tenth (40 + 2k -> class k), with
    a little probability on the neighbouring tenths as a real model puts there."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        classes = np.clip(np.round((np.median(batch, axis=(1, 2, 3)) - 40) / 2), 0, 99).astype(int)
        probabilities = np.zeros((len(batch), meter.TENTHS))
        for row, k in enumerate(classes):
            probabilities[row, [(k - 1) % 100, k, (k + 1) % 100]] = (0.1, 0.8, 0.1)
        return probabilities


def write_layout(folder, document, frame=None, name="layout.json"):
    if frame is not None:
        cv2.imwrite(str(folder / "reference.png"), frame)
    path = folder / name
    path.write_text(json.dumps(document))
    return path


WHEELS = [0.0, 1.0, 4.7, 9.8]  # a counter at 014(9.8): the third wheel waits for the last to pass 0


@pytest.fixture
def face(tmp_path):
    frame, document = meter_face([coded(v) for v in WHEELS])
    return tmp_path, frame, document


@pytest.mark.parametrize("decimals,tenths,text", [(0, False, "0149"), (0, True, "0149.8"), (1, False, "014.9"),
                                                  (1, True, "014.98"), (3, False, "0.149")])
def test_a_face_of_wheels_reads_as_the_number(face, decimals, tenths, text):
    folder, frame, document = face
    del document["alignment"]
    reader = MeterReader(load_layout(write_layout(folder, {**document, "decimals": decimals})), GreyCoded(), tenths=tenths)
    reading = reader.read(frame)
    assert reading.text == text
    assert [w.name for w in reading.digits] == ["d1", "d2", "d3", "d4"]
    assert [w.label for w in reading.digits] == ["0.0", "1.0", "4.7", "9.8"]
    assert reading.digits[0].box == (110, 200, 40, 64) and reading.digits[0].confidence == pytest.approx(1.0)
    assert reading.preprocess_ms > 0 and reading.inference_ms > 0


def test_alignment_marks_follow_a_knocked_camera(face):
    folder, frame, document = face
    knocked = moved(frame, 14, -9, 1.5)
    aligned = MeterReader(load_layout(write_layout(folder, document, frame)), GreyCoded())
    reading = aligned.read(knocked)
    assert reading.text == "0149"
    assert [m.name for m in reading.marks] == ["m1", "m2"] and min(m.match for m in reading.marks) > 0.8
    x, y, _, _ = reading.digits[0].box  # boxes are reported where the digits are in the knocked frame
    assert abs(x - (110 + 14)) <= 8 and abs(y - (200 - 9)) <= 8
    del document["alignment"]
    fixed = MeterReader(load_layout(write_layout(folder, document, name="fixed.json")), GreyCoded())
    assert fixed.read(knocked).text != "0149"  # the same regions without the marks miss the digits


def test_lost_alignment_mark_is_one_clear_error(face):
    folder, frame, document = face
    reader = MeterReader(load_layout(write_layout(folder, document, frame)), GreyCoded())
    with pytest.raises(InputError, match=r"cam\.png: alignment marker m1 not found \(best match"):
        reader.read(np.full_like(frame, 128), "cam.png")


def test_doubtful_wheels_read_as_question_marks(face):
    folder, frame, document = face
    del document["alignment"]

    class Doubtful(GreyCoded):
        def predict(self, batch):
            probabilities = super().predict(batch)
            probabilities[1] = 0.01  # the second wheel: spread over the whole turn
            return probabilities

    reader = MeterReader(load_layout(write_layout(folder, document)), Doubtful(), min_confidence=0.5, tenths=True)
    reading = reader.read(frame)
    assert reading.text == "0?49.8"
    assert reading.digits[1].label == "?" and reading.digits[1].confidence == pytest.approx(0.09)
    assert number_text([1, 2, 3.4], [True, True, False], 0, True) == "12?.?"


@pytest.mark.parametrize("document,message", [
    ({}, "no 'regions'"),
    ({"regions": []}, "'regions' must be a non-empty list"),
    ({"regions": [{"name": "a", "x": 0, "y": 0, "w": 10}]}, r"regions\[0\] must have exactly the keys"),
    ({"regions": [{"name": "a", "x": 0, "y": 0, "w": 0, "h": 5}]}, "w, h integers > 0"),
    ({"regions": [{"name": "a", "x": 0.5, "y": 0, "w": 3, "h": 5}]}, "x, y must be integers"),
    ({"regions": [{"name": "a", "x": 0, "y": 0, "w": 3, "h": 5}] * 2}, "names must be unique"),
    ({"regions": [{"name": "a", "x": 0, "y": 0, "w": 3, "h": 5}], "decimals": 1}, "decimals must be an integer from 0 to 0"),
    ({"regions": [{"name": "a", "x": 0, "y": 0, "w": 3, "h": 5}], "decimal": 1}, "unknown key"),
    ({"regions": [{"name": "a", "x": 0, "y": 0, "w": 3, "h": 5}], "alignment": {"markers": []}}, "must have 'reference'"),
])
def test_bad_layouts_are_one_line_naming_the_file(tmp_path, document, message):
    path = write_layout(tmp_path, document)
    with pytest.raises(InputError, match=message) as caught:
        load_layout(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_layout_files_in_toml_and_broken_ones(tmp_path, face):
    _, frame, document = face
    cv2.imwrite(str(tmp_path / "reference.png"), frame)
    (tmp_path / "meter.toml").write_text('decimals = 1\nregions = [{name = "a", x = 110, y = 200, w = 40, h = 64},'
                                         ' {name = "b", x = 162, y = 200, w = 40, h = 64}]\n'
                                         '[alignment]\nreference = "reference.png"\n'
                                         'markers = [{name = "m", x = 40, y = 40, w = 48, h = 48}]\n')
    layout = load_layout(tmp_path / "meter.toml")
    assert [r.name for r in layout.regions] == ["a", "b"] and layout.decimals == 1
    assert layout.alignment.reference.shape == (480, 640) and layout.alignment.search == 40
    (tmp_path / "bad.json").write_text('{"regions": [')
    with pytest.raises(InputError, match=r"bad\.json: not valid JSON"):
        load_layout(tmp_path / "bad.json")
    with pytest.raises(InputError, match=r"missing\.json: cannot read layout file"):
        load_layout(tmp_path / "missing.json")
    outside = {**document, "regions": [{"name": "far", "x": 630, "y": 0, "w": 20, "h": 5}]}
    with pytest.raises(InputError, match="region far lies outside the 640x480 reference"):
        load_layout(write_layout(tmp_path, outside))
    flat = {**document, "alignment": {"reference": "reference.png", "markers": [{"name": "wall", "x": 0, "y": 0, "w": 5, "h": 5}]}}
    cv2.imwrite(str(tmp_path / "reference.png"), np.full((480, 640), 90, np.uint8))
    with pytest.raises(InputError, match="marker wall is a flat patch"):
        load_layout(write_layout(tmp_path, flat))


def test_read_digits_with_a_layout_and_a_meter_bundle(meter_bundle, tmp_path, capsys):
    """Rendered wheel crops on a face, read through the command line: the values are the model's own
    readings of the regions, the text their rolling-wheel number; a lost mark is a JSON error line."""
    _, model_dir = meter_bundle
    x, _ = render_crops(5, seed=11, display="wheels")
    frame, document = meter_face(list(x[..., 0]), seed=3)
    layout = write_layout(tmp_path, {**document, "decimals": 2}, frame)
    cv2.imwrite(str(tmp_path / "a_frame.png"), cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    cv2.imwrite(str(tmp_path / "b_blank.png"), np.full((480, 640), 128, np.uint8))
    code = main(["-q", "read-digits", "--model", str(model_dir), "--layout", str(layout), "--tenths",
                 str(tmp_path / "a_frame.png"), str(tmp_path / "b_blank.png")])
    assert code == 1  # one frame could not be read
    good, lost = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    model = Bundle.load(model_dir).open("int8")
    regions = [frame[r["y"] : r["y"] + r["h"], r["x"] : r["x"] + r["w"]] for r in document["regions"]]
    expected = meter.class_to_value(model.predict(
        np.stack([meter.to_meter_input(r) for r in regions]).astype(np.float32)).argmax(axis=1))
    values = [d["value"] for d in good["digits"]]
    assert values == expected.tolist()
    number = meter.assemble(values, 2) + str(int(round(values[-1] * 10)) % 10)
    assert good["text"] == number and len(good["text"]) == 7
    assert set(good["ms"]) == {"preprocess", "inference"} and len(good["marks"]) == 2
    assert "b_blank.png: alignment marker m1 not found" in lost["error"]


def test_read_digits_layout_refuses_search_options_and_digit_bundles(meter_bundle, digits_bundle, tmp_path, capsys):
    _, model_dir = meter_bundle
    frame, document = meter_face([coded(1.0)])
    layout = write_layout(tmp_path, document, frame)
    image = tmp_path / "reference.png"
    assert main(["read-digits", "--model", str(model_dir), "--layout", str(layout), "--roi", "0,0,9,9", str(image)]) == 2
    assert "--roi cannot be used with --layout" in capsys.readouterr().err
    assert main(["read-digits", "--model", str(digits_bundle), "--layout", str(layout), str(image)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "meter" in err
    assert main(["read-digits", "--model", str(digits_bundle), "--tenths", str(image)]) == 2
    assert "--tenths needs --layout" in capsys.readouterr().err


def test_meter_bench_times_a_frame_in_two_halves(meter_bundle, tmp_path, capsys):
    _, model_dir = meter_bundle
    x, _ = render_crops(8, seed=4, display="wheels")
    frame, document = meter_face(list(x[..., 0]))
    layout = write_layout(tmp_path, document, frame)
    out = tmp_path / "speed.json"
    assert meter_bench.main([str(model_dir), "--layout", str(layout), "--frame", str(tmp_path / "reference.png"),
                             "--runs", "3", "--variants", "int8", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["regions"] == 8 and report["frame"] == [640, 480] and len(report["text"]) == 8
    assert report["wall_ms"]["preprocess"] > 0 and report["wall_ms"]["inference"] > 0
    assert report["fps"] == pytest.approx(1000 / report["wall_ms"]["total"])
    assert "frames/s on one core" in capsys.readouterr().out
    assert meter_bench.main([str(model_dir), "--layout", str(layout)]) == 2
    assert "--layout FILE --frame IMAGE" in capsys.readouterr().err
