"""The streaming spotter's machinery, with a fake classifier (no model needed)."""
from __future__ import annotations

import numpy as np
import pytest

from edge.core.errors import BundleError, InputError
from edge.hearing.spotter import DetectionParams, KeywordSpotter
from tests.stream.fakes import LABELS, energy_classifier, stream_with_beeps


def spotter(**detection) -> KeywordSpotter:
    keywords = detection.pop("keywords", None)
    params = DetectionParams(**{"threshold": 0.7, "fresh_frontend": False, **detection})
    return KeywordSpotter(energy_classifier, LABELS, clip_frames=98, detection=params, keywords=keywords)


def run(sp: KeywordSpotter, audio: np.ndarray, chunk: int) -> list:
    detections = []
    for start in range(0, len(audio), chunk):
        detections += sp.feed(audio[start:start + chunk])
    return detections


@pytest.mark.parametrize("fresh", [False, True])
def test_results_do_not_depend_on_chunk_size(fresh):
    audio = stream_with_beeps([2.0, 5.0])
    reference = spotter(fresh_frontend=fresh)
    expected = [d for start in range(0, len(audio) - reference.frame_length + 1, reference.frame_length)
                for d in reference.process(audio[start:start + reference.frame_length])]
    assert [d.keyword for d in expected] == ["beep", "beep"]
    for chunk in (61, 333, len(audio)):
        sp = spotter(fresh_frontend=fresh)
        assert run(sp, audio, chunk) == expected, chunk
        np.testing.assert_array_equal(sp.smoothed, reference.smoothed)


def test_detections_come_at_the_keyword_time_and_reset_replays_them():
    audio = stream_with_beeps([2.0, 5.0])
    sp = spotter()
    first = run(sp, audio, 1600)
    for detection, start in zip(first, (2.0, 5.0)):
        assert start < detection.time <= start + 0.4 + 0.3  # during the 0.4 s beep or just after
        assert 0.7 <= detection.score <= 1.0
    assert sp.time == pytest.approx(len(audio) / 16000)
    sp.reset()
    assert sp.time == 0 and not sp.smoothed.any()
    assert run(sp, audio, 1600) == first


@pytest.mark.parametrize("settings, count", [
    ({"refractory_ms": 1500}, 1),  # the second beep falls in the quiet time
    ({"refractory_ms": 200}, 2),
    ({"thresholds": {"beep": 0.999}}, 0),
    ({"min_count": 40}, 0),
    ({"keywords": ["hum"]}, 0),
])
def test_detection_settings(settings, count):
    audio = stream_with_beeps([2.0, 3.0])
    assert len(run(spotter(**settings), audio, 1600)) == count


def test_process_checks_its_frame():
    with spotter() as sp:
        assert sp.sample_rate == 16000 and sp.frame_length == 320  # 20 ms stride
        with pytest.raises(ValueError, match="320 samples"):
            sp.process(np.zeros(100, np.int16))
        with pytest.raises(ValueError, match="int16"):
            sp.process(np.zeros(320, np.float32))
        with pytest.raises(ValueError, match="int16"):
            sp.process(np.zeros((320, 2), np.int16))
        assert sp.process(np.zeros(320, np.int16)) == []
    with pytest.raises(ValueError, match="closed"):
        sp.process(np.zeros(320, np.int16))


def test_bad_settings_are_clear_errors():
    with pytest.raises(InputError, match="unknown keyword"):
        spotter(keywords=["nope"])
    with pytest.raises(InputError, match="unknown keyword"):
        spotter(thresholds={"nope": 0.5})
    with pytest.raises(ValueError, match="multiple of 10"):
        spotter(stride_ms=25)
    with pytest.raises(BundleError, match="m.json: bad detection parameters"):
        DetectionParams.from_dict({"threshold": 1.5}, "m.json")
    params = DetectionParams.from_dict({"threshold": 0.6, "smoothing_window_ms": 300, "inference_stride_ms": 30,
                                        "other": 1})
    assert (params.threshold, params.smoothing_ms, params.stride_ms) == (0.6, 300, 30)


def test_a_real_model_finds_a_keyword_in_a_long_stream_at_its_time(daemon_bundle):
    """A trained, exported int8 bundle: "no" 41 s into a minute of noise, found once, on time,
    and the same whatever the chunking, in both front-end modes."""
    from tests.stream.speech import noise
    from trainer.synth_speech import Speaker, synthesize

    audio = noise(60.0, seed=7).astype(np.float64)
    audio[41 * 16000:42 * 16000] += synthesize("no", Speaker("espeak-ng", "en-us"))
    audio = audio.astype(np.int16)
    for fresh in (True, False):
        found = None
        for chunk in (1600, 4321):
            with KeywordSpotter.from_bundle(daemon_bundle, threshold=0.5, fresh_frontend=fresh) as sp:
                detections = run(sp, audio, chunk)
            assert found is None or detections == found
            found = detections
        assert [d.keyword for d in found] == ["no"], (fresh, found)
        assert 41.5 <= found[0].time <= 42.6
