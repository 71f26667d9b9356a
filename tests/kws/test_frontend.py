"""The KWS front-end: golden vectors, streaming == whole clip, parameter checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge.core.errors import BundleError, InputError
from edge.hearing.frontend import RUNTIME_PARAMS, Frontend, FrontendParams, check_bundle_frontend, clips_features

GOLDEN = Path(__file__).parent / "golden"
NAMES = ("chirp", "noisy_bursts", "yes_espeak")


def golden_audio(name: str) -> np.ndarray:
    audio, rate = sf.read(GOLDEN / f"{name}.wav", dtype="int16")
    assert rate == 16000
    return audio


@pytest.mark.parametrize("name", NAMES)
def test_golden_vectors(name):
    expected = np.load(GOLDEN / f"{name}.npy")
    features = Frontend().clip_features(golden_audio(name))
    assert features.shape == (98, 40) and features.dtype == np.float32
    np.testing.assert_array_equal(features, expected)


def test_golden_vectors_are_not_trivial():
    features = [np.load(GOLDEN / f"{name}.npy") for name in NAMES]
    assert all(f.max() > 10 and f.std() > 1 for f in features)
    assert not np.array_equal(features[0], features[1])


@pytest.mark.parametrize("chunk", [1, 7, 160, 333, 16000])
@pytest.mark.parametrize("name", NAMES)
def test_stream_equals_whole_clip(name, chunk):
    audio = golden_audio(name)
    frontend = Frontend()
    frames = [frontend.process(audio[i:i + chunk]) for i in range(0, len(audio), chunk)]
    np.testing.assert_array_equal(np.concatenate(frames), np.load(GOLDEN / f"{name}.npy"))
    assert frontend.pending_samples == 0


def test_bytes_input_and_long_stream_frame_count():
    audio = np.concatenate([golden_audio(name) for name in NAMES])
    frontend = Frontend()
    frames = frontend.process(audio[:1001].tobytes())
    assert frontend.pending_samples == 1001 % 160
    frames = np.concatenate([frames, frontend.process(audio[1001:])])
    assert frames.shape == ((len(audio) - 480) // 160 + 1, 40)


def test_state_carries_over_until_reset():
    audio = golden_audio("yes_espeak")
    frontend = Frontend()
    first = frontend.process(audio)
    second = frontend.process(audio)
    assert first.shape == (98, 40) and second.shape == (100, 40)
    assert not np.array_equal(first, second[2:]), "noise estimate and gain adapt across a stream"
    frontend.reset()
    np.testing.assert_array_equal(frontend.process(audio), first)


def test_clip_features_pads_and_crops():
    audio = golden_audio("chirp")
    short = Frontend().clip_features(audio[:8000])
    assert short.shape == (98, 40)
    np.testing.assert_array_equal(short[:45], np.load(GOLDEN / "chirp.npy")[:45])
    batch = clips_features([audio, np.concatenate([audio, audio])])
    assert batch.shape == (2, 98, 40)
    np.testing.assert_array_equal(batch[0], batch[1])


def test_params_round_trip_and_shape():
    params = FrontendParams.from_dict(RUNTIME_PARAMS.to_dict())
    assert params == RUNTIME_PARAMS
    assert params.feature_shape == (98, 40)
    assert check_bundle_frontend(RUNTIME_PARAMS.to_dict(), "manifest.json") == RUNTIME_PARAMS


@pytest.mark.parametrize("change, message", [
    ({"channels": 32}, "channels=32 (runtime 40)"),
    ({"window_ms": 30.5}, "window_ms=30.5 is not a int"),
    ({"pcan_enabled": 1}, "pcan_enabled=1 is not a bool"),
    ({"colour": "blue"}, "unknown keys colour"),
])
def test_bundle_with_other_frontend_is_refused(change, message):
    frontend = {**RUNTIME_PARAMS.to_dict(), **change}
    with pytest.raises(BundleError, match="manifest.json") as info:
        check_bundle_frontend(frontend, "manifest.json")
    assert message in str(info.value)


def test_missing_frontend_and_missing_keys_are_refused():
    with pytest.raises(BundleError, match="no 'frontend'"):
        check_bundle_frontend(None, "manifest.json")
    partial = RUNTIME_PARAMS.to_dict()
    del partial["step_ms"]
    with pytest.raises(BundleError, match="missing keys step_ms"):
        check_bundle_frontend(partial, "manifest.json")


def test_bad_audio_is_refused():
    frontend = Frontend()
    with pytest.raises(InputError, match="int16"):
        frontend.process(np.zeros(100, dtype=np.float32))
    with pytest.raises(InputError, match="mono"):
        frontend.process(np.zeros((100, 2), dtype=np.int16))
    with pytest.raises(InputError, match="odd byte count"):
        frontend.process(b"\x00\x01\x02")
    with pytest.raises(InputError, match="built-in front-end"):
        Frontend(FrontendParams(channels=32))


WARM = FrontendParams(clip_warmup=True)


def test_warm_clip_features_are_what_a_running_stream_computes():
    """A model trained on warm features sees the same numbers from the daemon's continuous front-end."""
    from edge.hearing.spotter import DetectionParams, KeywordSpotter

    rng = np.random.default_rng(3)
    clip = (rng.standard_normal(16000) * np.linspace(200, 3000, 16000)).astype(np.int16)
    seen = []
    spotter = KeywordSpotter(lambda features: seen.append(features.copy()) or np.full(3, 1 / 3), ["_silence_", "_unknown_", "a"],
                             clip_frames=98, detection=DetectionParams(stride_ms=1000, smoothing_ms=1000, fresh_frontend=False),
                             frontend_params=WARM)
    spotter.feed(np.concatenate([Frontend(WARM).background(clip), clip]))
    warm = Frontend(WARM).clip_features(clip)
    np.testing.assert_array_equal(seen[-1], warm)
    assert np.abs(warm - Frontend().clip_features(clip)).mean() > 1.0  # the warm-up matters


def test_the_warm_up_is_the_clips_quietest_100_ms():
    clip = np.full(16000, 5000, np.int16)
    clip[8700:10700] = 7  # a quiet stretch longer than 100 ms
    background = Frontend(WARM).background(clip)
    assert len(background) == 16000 and set(background.tolist()) == {7}
    silent = np.zeros(16000, np.int16)
    silent[4000:8000] = 3000
    np.testing.assert_array_equal(Frontend(WARM).clip_features(silent), Frontend().clip_features(silent))  # digital silence = fresh


def test_warmup_is_a_usage_choice_and_old_manifests_mean_fresh():
    assert check_bundle_frontend(WARM.to_dict(), "manifest.json") == WARM
    old = RUNTIME_PARAMS.to_dict()
    del old["clip_warmup"]
    assert check_bundle_frontend(old, "manifest.json") == RUNTIME_PARAMS
    np.testing.assert_array_equal(clips_features([np.zeros(100, np.int16)], WARM)[0].shape, (98, 40))


def test_step_buffer_gives_whole_steps_and_holds_the_rest():
    from edge.hearing.frontend import StepBuffer

    steps = StepBuffer(4)
    audio = np.arange(11, dtype=np.int16)
    assert steps.take(audio[:3]).tolist() == [] and len(steps) == 3
    assert steps.take(audio[3:10].tobytes()).tolist() == list(range(8)) and len(steps) == 2
    steps.reset()
    assert len(steps) == 0 and steps.take(audio[:5]).tolist() == [0, 1, 2, 3]
