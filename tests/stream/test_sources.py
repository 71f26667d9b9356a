"""Audio sources: streaming resampler, wav pacing, and a microphone that misbehaves (fake PyAudio)."""
from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest

from edge.hearing.audio import resample, write_wav
from edge.hearing.audio_sources import MicrophoneSource, StdinSource, StreamResampler, WavSource


@pytest.mark.parametrize("rate", [44100, 48000, 8000])
def test_stream_resampler_matches_whole_signal(rate):
    rng = np.random.default_rng(1)
    audio = rng.normal(0, 3000, rate * 2).astype(np.int16)
    whole = resample(audio, rate, 16000)
    resampler = StreamResampler(rate)
    out = np.concatenate([resampler.process(audio[i:i + 1234]) for i in range(0, len(audio), 1234)])
    assert 0 < len(whole) - len(out) <= 2 * 1600  # one block held back, plus the unfinished one
    np.testing.assert_array_equal(out, whole[:len(out)])
    np.testing.assert_array_equal(np.concatenate([out, resampler.flush()]), whole)  # the end of the stream
    short = StreamResampler(rate)  # under one block in all
    np.testing.assert_array_equal(np.concatenate([short.process(audio[:777]), short.flush()]), resample(audio[:777], rate, 16000))


def test_stdin_at_44k1_delivers_every_resampled_sample_to_the_end(tmp_path):
    audio = np.random.default_rng(2).normal(0, 3000, 44100 + 999).astype("<i2")
    path = tmp_path / "pcm.raw"
    path.write_bytes(audio.tobytes())
    with open(path, "rb") as stream:
        out = np.concatenate(list(StdinSource(stream, rate=44100).chunks(threading.Event())))
    np.testing.assert_array_equal(out, resample(audio, 44100, 16000))


@pytest.mark.parametrize("rate, channels, tolerance", [(16000, 1, 0), (8000, 1, 0), (44100, 2, 1)])
def test_wav_source_streams_what_read_audio_reads(tmp_path, rate, channels, tolerance):
    """Block by block (constant memory), the same samples as the whole-file reader; at 44.1 kHz
    stereo within 1 LSB (the stream rounds to int16 before resampling)."""
    import soundfile as sf

    from edge.hearing.audio import read_audio

    audio = np.random.default_rng(3).normal(0, 0.1, (rate * 2 + 123, channels)).astype(np.float32)
    sf.write(tmp_path / "a.wav", audio, rate, subtype="PCM_16")
    streamed = np.concatenate(list(WavSource(tmp_path / "a.wav", fast=True).chunks(threading.Event())))
    whole = read_audio(tmp_path / "a.wav")
    assert len(streamed) == len(whole) and np.abs(streamed.astype(int) - whole).max() <= tolerance


def test_wav_source_refuses_nan_samples_in_one_line(tmp_path):
    import soundfile as sf

    from edge.core.errors import InputError

    samples = np.zeros(16000, np.float32)
    samples[12000] = np.nan
    sf.write(tmp_path / "nan.wav", samples, 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="nan.wav: float samples that are NaN"):
        list(WavSource(tmp_path / "nan.wav", fast=True).chunks(threading.Event()))


def test_wav_source_paces_in_real_time_unless_fast(tmp_path):
    path = write_wav(tmp_path / "a.wav", np.zeros(8000, np.int16))
    stop = threading.Event()
    started = time.monotonic()
    assert sum(len(c) for c in WavSource(path).chunks(stop)) == 8000
    assert time.monotonic() - started >= 0.45
    started = time.monotonic()
    assert sum(len(c) for c in WavSource(path, fast=True).chunks(stop)) == 8000
    assert time.monotonic() - started < 0.2


class FakePyAudio:
    """Just enough of the pyaudio module: a device list, streams fed by a thread."""

    paInt16, paContinue, paInputOverflow = 8, 0, 2

    def __init__(self, open_failures: int = 0, chunks_per_stream: int = 5, overflow_at: int = 2):
        self.open_failures, self.chunks_per_stream, self.overflow_at = open_failures, chunks_per_stream, overflow_at
        self.opened: list[dict] = []

    def PyAudio(self):  # noqa: N802 (pyaudio's name)
        return FakeAudio(self)


class FakeAudio:
    def __init__(self, module: FakePyAudio):
        self.module = module
        self.devices = [{"index": 0, "name": "HDMI out", "maxInputChannels": 0, "defaultSampleRate": 48000.0},
                        {"index": 1, "name": "USB PnP Sound Device", "maxInputChannels": 1, "defaultSampleRate": 48000.0}]

    def get_device_count(self):
        return len(self.devices)

    def get_device_info_by_index(self, index):
        return self.devices[index]

    def get_default_input_device_info(self):
        return self.devices[1]

    def is_format_supported(self, rate, **kwargs):
        if rate != 48000:
            raise ValueError("Invalid sample rate")
        return True

    def open(self, **kwargs):
        if self.module.open_failures:
            self.module.open_failures -= 1
            raise OSError("[Errno -9996] Invalid input device (no default output device)")
        self.module.opened.append(kwargs)
        return FakeStream(self.module, kwargs)

    def terminate(self):
        pass


class FakeStream:
    """Delivers a few chunks of a ramp through the callback, one with an overflow flag, then goes silent
    (as an unplugged USB microphone does)."""

    def __init__(self, module: FakePyAudio, kwargs: dict):
        self.active = True
        frames = kwargs["frames_per_buffer"]

        def feed():
            for i in range(module.chunks_per_stream):
                status = module.paInputOverflow if i == module.overflow_at else 0
                kwargs["stream_callback"](np.full(frames, i, np.int16).tobytes(), frames, {}, status)

        threading.Thread(target=feed, daemon=True).start()

    def is_active(self):
        return self.active

    def stop_stream(self):
        self.active = False

    def close(self):
        pass


def test_microphone_survives_open_failures_overflow_and_a_vanished_device(caplog):
    fake = FakePyAudio(open_failures=2)
    sleeps = []
    stop = threading.Event()

    def sleep(event, seconds):
        sleeps.append(seconds)
        return False

    source = MicrophoneSource("usb", pyaudio_module=fake, sleep=sleep, stall_seconds=0.6)
    received = 0
    with caplog.at_level(logging.INFO, logger="edge.hearing.audio_sources"):
        for chunk in source.chunks(stop):
            received += len(chunk)
            if len(fake.opened) == 2 and received >= 2 * 5 * 4800 * 16000 // 48000 - 2 * 1600:
                stop.set()
    assert sleeps == [1.0, 2.0]  # two failed opens, exponential back-off
    assert [o["input_device_index"] for o in fake.opened] == [1, 1]  # found by name, reopened after the stall
    assert fake.opened[0]["rate"] == 48000  # no 16 kHz: native rate, resampled
    messages = caplog.text
    assert "cannot open" in messages and "input overflow" in messages and "stopped delivering audio" in messages


def test_microphone_names_the_devices_when_the_one_asked_for_is_missing(caplog):
    stop = threading.Event()
    calls = []

    def sleep(event, seconds):
        calls.append(seconds)
        return len(calls) >= 3  # pretend a stop signal came during the third wait

    source = MicrophoneSource("nonexistent", pyaudio_module=FakePyAudio(), sleep=sleep)
    with caplog.at_level(logging.WARNING, logger="edge.hearing.audio_sources"):
        assert list(source.chunks(stop)) == []
    assert calls == [1.0, 2.0, 4.0]
    assert "1: USB PnP Sound Device" in caplog.text
