"""read-digits end to end with the session's small digits bundle, and the frame sources."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge.seeing import camera
from edge.cli import main
from edge.seeing.digit_reader import DigitReader, locate
from edge.core.interpreter import DeviceError, TFLiteModel
from tests.camera.conftest import number_image


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Three pictures: a handwriting-free blank page, a printed number, and an unreadable file."""
    folder = tmp_path_factory.mktemp("pictures")
    image, _ = number_image("4096")
    cv2.imwrite(str(folder / "b_number.png"), image)
    cv2.imwrite(str(folder / "a_blank.jpg"), np.full((240, 320, 3), 230, np.uint8))
    (folder / "c_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder


def test_json_lines_in_input_order_with_boxes_and_confidences(digits_bundle, pictures, tmp_path, capsys):
    annotated = tmp_path / "annotated"
    files = [str(pictures / "b_number.png"), str(pictures / "a_blank.jpg")]
    assert main(["-q", "read-digits", "--model", str(digits_bundle), *files, "--annotate", str(annotated)]) == 0
    number, blank = json_lines(capsys.readouterr().out)
    assert [number["source"], blank["source"]] == files
    assert len(number["text"]) == 4 and len(number["digits"]) == 4
    assert all(0.0 <= d["confidence"] <= 1.0 and len(d["box"]) == 4 for d in number["digits"])
    assert [d["box"][0] for d in number["digits"]] == sorted(d["box"][0] for d in number["digits"])
    assert blank["text"] == "" and blank["digits"] == []  # no digits: an empty result, not a guess
    assert sorted(p.name for p in annotated.iterdir()) == ["a_blank.png", "b_number.png"]
    drawn = cv2.imread(str(annotated / "b_number.png"))
    assert drawn.shape == (480, 640, 3) and (drawn[:, :, 1] > drawn[:, :, 0] + 100).any()  # green boxes


def test_min_confidence_turns_unsure_digits_into_question_marks(digits_bundle, pictures, capsys):
    assert main(["-q", "read-digits", "--model", str(digits_bundle), str(pictures / "b_number.png"),
                 "--min-confidence", "1.01"]) == 2  # out of range: one clear error
    assert "min-confidence" in capsys.readouterr().err
    assert main(["-q", "read-digits", "--model", str(digits_bundle), str(pictures / "b_number.png"),
                 "--min-confidence", "1.0"]) == 0
    (result,) = json_lines(capsys.readouterr().out)
    assert result["text"] == "????"


def test_bad_images_stop_with_one_line_or_are_reported_with_keep_going(digits_bundle, pictures, capsys):
    assert main(["-q", "read-digits", "--model", str(digits_bundle), str(pictures)]) == 2
    captured = capsys.readouterr()
    assert len(json_lines(captured.out)) == 2  # the two good files came first (name order)
    assert captured.err.count("\n") == 1 and "c_broken.png" in captured.err and "Traceback" not in captured.err
    assert main(["-q", "read-digits", "--model", str(digits_bundle), str(pictures), "--keep-going"]) == 1
    results = json_lines(capsys.readouterr().out)
    assert [r["source"].rsplit("/", 1)[-1] for r in results] == ["a_blank.jpg", "b_number.png", "c_broken.png"]
    assert "error" in results[2] and "c_broken.png" in results[2]["error"]


def test_video_frames_are_read_in_order(digits_bundle, tmp_path, capsys):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for seed in range(3):
        image, _ = number_image("275", seed=seed)
        writer.write(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    writer.release()
    assert main(["-q", "read-digits", "--model", str(digits_bundle), "--video", str(path)]) == 0
    results = json_lines(capsys.readouterr().out)
    assert [r["frame"] for r in results] == [0, 1, 2]
    assert all(len(r["digits"]) == 3 for r in results)
    assert main(["-q", "read-digits", "--model", str(digits_bundle), "--video", str(tmp_path / "none.avi")]) == 2
    assert "no such video" in capsys.readouterr().err


def test_missing_camera_is_one_clear_error(digits_bundle, capsys):
    assert main(["-q", "read-digits", "--model", str(digits_bundle), "--camera", "/dev/video-missing"]) == 2
    err = capsys.readouterr().err
    assert "cannot open" in err and err.count("\n") == 1


def test_continuous_camera_retries_with_back_off():
    """A camera that is busy twice, gives a frame, drops out, then comes back (opens and reads alternate)."""
    events, waits = iter(["busy", "busy", "ok", "ok", "fail", "ok", "ok", "ok"]), []

    class FakeCamera:
        def read(self):
            if next(events) == "fail":
                raise DeviceError("camera 0: no frame (unplugged or busy)")
            return np.zeros((4, 4), np.uint8)

        def close(self):
            pass

    def opener(spec, size):
        if next(events) == "busy":
            raise DeviceError("camera 0: cannot open (busy)")
        return FakeCamera()

    frames = list(camera.camera_frames(0, continuous=True, max_frames=3, opener=opener, sleep=waits.append))
    assert [f.index for f in frames] == [0, 1, 2]
    assert waits == [0.5, 1.0, 0.5]  # doubling while it fails, reset after a good frame
    with pytest.raises(DeviceError):
        list(camera.camera_frames(0, opener=lambda spec, size: (_ for _ in ()).throw(DeviceError("gone"))))


def counting_invokes(reader: DigitReader) -> list:
    """Wrap the reader's interpreter so that every invoke() is recorded."""
    calls, interpreter = [], reader.model.interpreter

    class Counting:
        def __getattr__(self, name):
            return getattr(interpreter, name)

        def invoke(self):
            calls.append(1)
            interpreter.invoke()

    reader.model.interpreter = Counting()
    return calls


@pytest.fixture(scope="module")
def resizable_model(tmp_path_factory):
    """A tiny float model whose batch dimension can be resized (Keras -> TFLite, batch left dynamic)."""
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    path = tmp_path_factory.mktemp("resizable") / "model.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def test_one_batched_inference_per_frame(resizable_model):
    reader = DigitReader(TFLiteModel(resizable_model), [str(d) for d in range(10)])
    calls = counting_invokes(reader)
    five = reader.read(number_image("40961")[0])
    three = reader.read(number_image("275")[0])
    assert (len(five.digits), len(three.digits)) == (5, 3)
    assert len(calls) == 2  # one invoke per frame, whatever the number of digits
    assert reader.read(np.full((480, 640), 240, np.uint8)).text == "" and len(calls) == 2  # no digits, no inference


def test_fixed_batch_bundle_falls_back_to_one_invoke_per_digit(digits_bundle):
    """tinysense export fixes the batch at one (for TFLM and the Edge TPU): the reader still reads."""
    reader = DigitReader.from_bundle(digits_bundle)
    expected = [int(np.argmax(p)) for p in reader.model.predict(locate(number_image("40961")[0]).crops[..., None])]
    calls = counting_invokes(reader)
    reading = reader.read(number_image("40961")[0])
    assert [int(d.label) for d in reading.digits] == expected
    assert len(calls) in (1, 5)  # one batched invoke, or one per digit when the batch is fixed
