"""The two edges of a stream (issue 12): its end, where a keyword must still be decided, and an idle
or muted microphone, whose near-digital silence must not be scored. Fake classifiers, no model,
except the last two tests."""
from __future__ import annotations

import numpy as np
import pytest

from edge.hearing.spotter import FULL_SCALE, DetectionParams, KeywordSpotter, step_power
from tests.stream.fakes import LABELS, SAMPLE_RATE, energy_classifier, tone


def centre_classifier(features: np.ndarray) -> np.ndarray:
    """`energy_classifier` on the middle of the window (frames 34 to 64), as a model trained on
    centred words hears them: a word at the end of the window is not recognized yet."""
    return energy_classifier(features[:64])


def spotter(fresh: bool = True, classifier=centre_classifier, **detection) -> KeywordSpotter:
    params = DetectionParams(**{"threshold": 0.7, "fresh_frontend": fresh, **detection})
    return KeywordSpotter(classifier, LABELS, clip_frames=98, detection=params)


def run(sp: KeywordSpotter, audio: np.ndarray, chunk: int) -> list:
    detections = []
    for start in range(0, len(audio), chunk):
        detections += sp.feed(audio[start:start + chunk])
    return detections + sp.finish()


def quiet(seconds: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 60, int(seconds * SAMPLE_RATE))


def ends_with_beep(before: float = 2.0, beep: float = 0.3) -> np.ndarray:
    """Quiet noise, then a 6 kHz beep that the stream ends with."""
    audio = np.concatenate([quiet(before, 0), tone(beep, 6000.0) + quiet(beep, 1)])
    return np.clip(audio, -32768, 32767).astype(np.int16)


# -- the end of a stream ------------------------------------------------------------------------------
@pytest.mark.parametrize("fresh", [True, False])
def test_a_keyword_at_the_very_end_is_decided_by_finish(fresh):
    audio = ends_with_beep()
    sp = spotter(fresh)
    assert sp.feed(audio) == []  # too few windows have held the beep yet
    at_end = sp.finish()
    assert [d.keyword for d in at_end] == ["beep"]
    # The same as when the stream goes on in quiet: finish slides the window on over the end.
    followed = spotter(fresh).feed(np.concatenate([audio, quiet(1.5, 2).astype(np.int16)]))
    assert [(d.keyword, d.time) for d in followed] == [(d.keyword, d.time) for d in at_end]
    assert 2.3 < at_end[0].time < 3.0  # while the beep (2.0 to 2.3 s) is mid-window
    # finish ends the stream: the spotter starts over and the same audio gives the same answer.
    assert sp.time == 0 and not sp.smoothed.any()
    assert run(sp, audio, len(audio)) == at_end


@pytest.mark.parametrize("fresh", [True, False])
def test_finish_does_not_depend_on_chunk_sizes(fresh):
    audio = ends_with_beep()
    expected = run(spotter(fresh), audio, spotter().frame_length)
    assert [d.keyword for d in expected] == ["beep"]
    for chunk in (61, 333, 4000, len(audio)):
        assert run(spotter(fresh), audio, chunk) == expected, chunk


@pytest.mark.parametrize("fresh", [True, False])
@pytest.mark.parametrize("seconds", [0.64, 0.8, 0.99])
def test_a_stream_shorter_than_one_window_is_scored(fresh, seconds):
    audio = ends_with_beep(before=seconds - 0.3)
    sp = spotter(fresh)
    assert sp.feed(audio) == []  # no whole window yet: nothing was scored
    assert [d.keyword for d in sp.finish()] == ["beep"]


@pytest.mark.parametrize("fresh", [True, False])
def test_finish_adds_nothing_after_a_keyword_already_decided_or_to_an_empty_stream(fresh):
    audio = np.concatenate([ends_with_beep(beep=0.4), quiet(3.0, 3).astype(np.int16)])
    sp = spotter(fresh)
    assert [d.keyword for d in sp.feed(audio)] == ["beep"]
    assert sp.finish() == []
    assert sp.finish() == []  # nothing fed since


def test_finish_runs_the_windows_over_the_end_and_no_more():
    """Inferences after the end: every window holding some of the stream (its start before the
    end), then smoothing_ms more so their smoothed scores are decided, then none."""
    times = []
    sp = spotter(stride_ms=100, smoothing_ms=300)
    sp.on_inference = lambda time, _: times.append(round(time, 3))
    sp.feed(np.zeros(16000 + 1234, np.int16))  # 1.0771 s; windows of 1 s, every 0.1 s
    assert times == [1.0]
    sp.finish()
    # Windows end at 1.1, ..., 2.0 (the last whose start, 1.0, is before 1.0771), then two more.
    assert times == [1.0] + [round(1.0 + 0.1 * n, 3) for n in range(1, 13)]


def test_finish_after_close_is_an_error():
    sp = spotter()
    sp.close()
    with pytest.raises(ValueError, match="closed"):
        sp.finish()


# -- idle and muted microphones ---------------------------------------------------------------------
def always_beep(features: np.ndarray) -> np.ndarray:
    """A classifier that hears the keyword in anything: only the spotter can keep it quiet."""
    return np.array([0.0, 0.0, 1.0, 0.0], np.float32)


def idle_inputs(seconds: float = 5.0) -> dict[str, np.ndarray]:
    """What an idle, muted or unplugged input delivers: near-digital silence of several kinds."""
    rng = np.random.default_rng(0)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    lsb = lambda k: rng.integers(-k, k + 1, n)  # noqa: E731 - uniform whole LSBs in [-k, k]
    return {"zeros": np.zeros(n), "+-1 LSB": lsb(1), "+-4 LSB": lsb(4), "DC 3277": np.full(n, 3277.0),
            "DC 3277 +-1 LSB": 3277 + lsb(1), "DC -1000 +-2 LSB": -1000 + lsb(2),
            "slow DC drift +-1 LSB": 3000 * np.sin(2 * np.pi * 0.2 * t) + lsb(1)}


@pytest.mark.parametrize("fresh", [True, False])
@pytest.mark.parametrize("kind", list(idle_inputs()))
def test_an_idle_microphone_is_not_scored(fresh, kind):
    audio = idle_inputs()[kind].astype(np.int16)
    sp = spotter(fresh, always_beep)
    scored = []
    sp.on_inference = lambda _, posteriors: scored.append(posteriors)
    assert run(sp, audio, 1600) == [], kind
    assert len(scored) > 40 and all(p.tolist() == [1, 0, 0, 0] for p in scored)  # taken as `_silence_`


@pytest.mark.parametrize("fresh", [True, False])
def test_sound_above_the_floor_is_scored(fresh):
    """A beep over the idle input, or a quiet room at the training's quietest `_silence_` level
    (-66 dBFS), is scored: the gate opens for anything the model was trained to hear."""
    idle = idle_inputs()["DC 3277 +-1 LSB"].astype(np.float64)
    idle[2 * SAMPLE_RATE:int(2.4 * SAMPLE_RATE)] += tone(0.4, 6000.0)
    assert [d.keyword for d in run(spotter(fresh), idle.astype(np.int16), 1600)] == ["beep"]
    room = np.random.default_rng(0).normal(0, 32768 * 0.0005, 3 * SAMPLE_RATE).astype(np.int16)
    assert [d.keyword for d in run(spotter(fresh, always_beep), room, 1600)] == ["beep"]


def test_the_floor_is_a_setting():
    """min_level_dbfs=-inf scores everything, as before the gate."""
    audio = idle_inputs()["+-1 LSB"].astype(np.int16)
    assert [d.keyword for d in run(spotter(True, always_beep, min_level_dbfs=float("-inf")), audio, 1600)] == ["beep"]
    assert DetectionParams.from_dict({"min_level_dbfs": -60}).min_level_dbfs == -60.0


def level_dbfs(audio: np.ndarray) -> np.ndarray:
    """step_power of 10 ms steps, in dBFS."""
    with np.errstate(divide="ignore"):
        return 10 * np.log10(step_power(np.round(audio).astype(np.int16), 160) / FULL_SCALE ** 2)


@pytest.mark.parametrize("audio, expected", [
    (tone(0.1, 1000.0, FULL_SCALE / 10), -20 - 3.01),  # a sine's RMS is its amplitude / sqrt(2)
    (tone(0.1, 1000.0, FULL_SCALE / 1000), -60 - 3.01),
    (np.where(np.arange(1600) % 2, 1, -1), -90.31),  # one LSB RMS
    (np.zeros(1600), -np.inf),
])
def test_step_level(audio, expected):
    np.testing.assert_allclose(level_dbfs(audio), expected, atol=0.1)


@pytest.mark.parametrize("offset", [
    np.full(32000, 3277.0),  # DC
    3000 * np.sin(2 * np.pi * 0.2 * np.arange(32000) / SAMPLE_RATE),  # a slow drift, as an int16 staircase
])
def test_the_level_ignores_dc_and_slow_drift(offset):
    assert level_dbfs(offset).max() < -95



@pytest.mark.parametrize("background", ["+-1 LSB", "DC 3277 +-1 LSB"])
def test_a_quiet_word_on_an_idle_microphone_still_fires_a_real_model(daemon_bundle, background):
    """The daemon bundle, both front-end modes: "no" with its loudest 10 ms at -55 dBFS, 15 dB above
    the floor, on near-digital silence is found once; the idle input alone gives nothing."""
    from trainer.synth_speech import Speaker, synthesize

    word = synthesize("no", Speaker("espeak-ng", "en-us")).astype(np.float64)
    word *= 10 ** ((-55 - 10 * np.log10(step_power(word.astype(np.int16), 160).max() / FULL_SCALE ** 2)) / 20)
    idle = idle_inputs()[background].astype(np.float64)
    spoken = idle.copy()
    spoken[2 * SAMPLE_RATE:2 * SAMPLE_RATE + len(word)] += word
    for fresh in (True, False):
        for audio, expected in ((idle, []), (spoken, ["no"])):
            with KeywordSpotter.from_bundle(daemon_bundle, threshold=0.5, fresh_frontend=fresh) as sp:
                detections = run(sp, np.round(audio).astype(np.int16), 1600)
            assert [d.keyword for d in detections] == expected, (fresh, detections)
            assert all(2.0 < d.time < 3.6 for d in detections)


# -- every source finishes the stream -----------------------------------------------------------------
def test_wyoming_audio_stop_decides_on_a_keyword_at_the_very_end():
    from tests.stream.test_wyoming import answers, send_audio, wyoming_server

    detections = []
    with wyoming_server(detections.append) as connect, connect() as client:
        stream = client.makefile("rwb")
        send_audio(stream, ends_with_beep(beep=0.15))
        assert [(kind, data["name"]) for kind, data in answers(stream)] == [("detection", "beep")]
        send_audio(stream, ends_with_beep(beep=0.0))
        assert answers(stream) == [("not-detected", {})]
    assert [d.keyword for d in detections] == ["beep"]


def keyword_at_the_end(seconds_after: float = 0.0) -> np.ndarray:
    """2 s of noise, then "no" (the daemon bundle's voice, trimmed), then `seconds_after` of noise."""
    from tests.stream.speech import noise
    from trainer.synth_speech import Speaker, synthesize, trim_silence

    word = trim_silence(synthesize("no", Speaker("espeak-ng", "en-us")))
    audio = np.concatenate([noise(2.0, seed=1), word, noise(seconds_after, seed=2) if seconds_after else []])
    return np.clip(audio, -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("source", ["wav", "stdin"])
def test_listen_reports_a_keyword_at_the_very_end_of_its_input(daemon_bundle, tmp_path, source):
    import json

    import soundfile as sf

    from tests.stream.test_listen_e2e import finish, start_daemon

    audio = keyword_at_the_end()
    args = ["--model", str(daemon_bundle), "--threshold", "0.5", "--log-format", "text"]
    if source == "wav":
        sf.write(tmp_path / "end.wav", audio, SAMPLE_RATE, subtype="PCM_16")
        daemon = start_daemon(tmp_path, *args, "--wav", str(tmp_path / "end.wav"), "--fast")
    else:
        (tmp_path / "end.raw").write_bytes(audio.astype("<i2").tobytes())
        daemon = start_daemon(tmp_path, *args, "--stdin", stdin=(tmp_path / "end.raw").open("rb"))
    out, err = finish(daemon)
    assert daemon.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["keyword"] for e in events] == ["no"], err
    assert 2.0 < events[0]["time"] < len(audio) / SAMPLE_RATE + 1.0


def test_listen_takes_the_level_floor_from_flags_and_config(daemon_bundle, tmp_path):
    from tests.stream.test_listen_config import parse

    from edge.core.errors import InputError
    from edge.hearing.listen import Listener, resolve_settings

    settings = resolve_settings(parse("--model", str(daemon_bundle), "--min-level-dbfs=-inf"))
    with Listener.make_spotter(settings) as sp:
        assert sp.detection.min_level_dbfs == -np.inf
    with Listener.make_spotter(resolve_settings(parse("--model", str(daemon_bundle)))) as sp:
        assert sp.detection.min_level_dbfs == DetectionParams().min_level_dbfs == -70.0
    config = tmp_path / "listen.toml"
    config.write_text("min-level-dbfs = 3\n")
    with pytest.raises(InputError, match=f"{config}: min-level-dbfs must be a level in dBFS, 0 or below, not 3"):
        resolve_settings(parse("--config", str(config)))
    with pytest.raises(ValueError, match="min_level_dbfs=nan must be 0 dBFS or below"):
        DetectionParams(min_level_dbfs=float("nan")).checked()


def test_listen_says_when_its_input_was_shorter_than_one_window(daemon_bundle, tmp_path):
    from tests.stream.speech import noise
    from tests.stream.test_listen_e2e import finish, start_daemon

    (tmp_path / "short.raw").write_bytes(noise(0.5, seed=3).astype("<i2").tobytes())
    daemon = start_daemon(tmp_path, "--model", str(daemon_bundle), "--stdin", "--log-format", "text",
                          stdin=(tmp_path / "short.raw").open("rb"))
    out, err = finish(daemon)
    assert daemon.returncode == 0 and out == "", err
    assert "the audio ended after 0.50 s, less than the model's 1.00 s window; scored padded with silence" in err


def test_step_power_is_the_power_around_each_steps_straight_line():
    from scipy.signal import detrend

    audio = (np.random.default_rng(0).normal(0, 300, 1650) + np.linspace(-5000, 9000, 1650)).astype(np.int16)
    expected = (detrend(audio[:1600].reshape(10, 160).astype(np.float64), axis=1, type="linear") ** 2).mean(axis=1)
    np.testing.assert_allclose(step_power(audio, 160), expected, rtol=1e-9)
