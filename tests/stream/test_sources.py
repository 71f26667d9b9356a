"""Audio sources: streaming resampler, wav pacing, and a microphone that misbehaves (fake PyAudio)."""
from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest

from edge.hearing.audio import resample, write_wav
from edge.hearing.audio_sources import PCM_WIDTHS, MicrophoneSource, PcmDecoder, StdinSource, StreamResampler, WavSource
from tests.stream.fakes import encode_pcm


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
    """Just enough of the pyaudio module: a device list, streams fed by a thread. The USB device
    takes the `rates` and channel counts in `channels` only, as PortAudio refuses others."""

    paInt16, paContinue, paInputOverflow = 8, 0, 2

    def __init__(self, open_failures: int = 0, chunks_per_stream: int = 5, overflow_at: int = 2,
                 rates: tuple[int, ...] = (48000,), channels: tuple[int, ...] = (1,)):
        self.open_failures, self.chunks_per_stream, self.overflow_at = open_failures, chunks_per_stream, overflow_at
        self.rates, self.channels = rates, channels
        self.opened: list[dict] = []

    def PyAudio(self):  # noqa: N802 (pyaudio's name)
        return FakeAudio(self)


class FakeAudio:
    def __init__(self, module: FakePyAudio):
        self.module = module
        self.devices = [{"index": 0, "name": "HDMI out", "maxInputChannels": 0, "defaultSampleRate": 48000.0},
                        {"index": 1, "name": "USB PnP Sound Device", "maxInputChannels": max(module.channels),
                         "defaultSampleRate": 48000.0}]

    def get_device_count(self):
        return len(self.devices)

    def get_device_info_by_index(self, index):
        return self.devices[index]

    def get_default_input_device_info(self):
        return self.devices[1]

    def is_format_supported(self, rate, *, input_device, input_channels, input_format):
        if rate not in self.module.rates:
            raise ValueError("Invalid sample rate", -9997)  # PyAudio's (message, PortAudio code)
        if input_channels not in self.module.channels:
            raise ValueError("Invalid number of channels", -9998)
        return True

    def open(self, **kwargs):
        if self.module.open_failures:
            self.module.open_failures -= 1
            raise OSError("[Errno -9996] Invalid input device (no default output device)")
        if kwargs["channels"] not in self.module.channels:
            raise OSError("[Errno -9998] Invalid number of channels")
        if kwargs["rate"] not in self.module.rates:
            raise OSError("[Errno -9997] Invalid sample rate")
        self.module.opened.append(kwargs)
        return FakeStream(self.module, kwargs)

    def terminate(self):
        pass


class FakeStream:
    """Delivers a few chunks through the callback, one with an overflow flag, then goes silent (as an
    unplugged USB microphone does). In chunk i every sample of channel c is i + 100 * c."""

    def __init__(self, module: FakePyAudio, kwargs: dict):
        self.active = True
        frames, channels = kwargs["frames_per_buffer"], kwargs["channels"]

        def feed():
            for i in range(module.chunks_per_stream):
                status = module.paInputOverflow if i == module.overflow_at else 0
                chunk = np.tile(i + 100 * np.arange(channels, dtype=np.int16), frames)
                kwargs["stream_callback"](chunk.tobytes(), frames, {}, status)

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


def decode_in_pieces(decoder: PcmDecoder, data: bytes, size: int) -> np.ndarray:
    pieces = [decoder.process(data[i:i + size]) for i in range(0, len(data), size)]
    return np.concatenate([*pieces, decoder.flush()])


@pytest.mark.parametrize("width", PCM_WIDTHS)
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_pcm_decoder_gives_the_same_samples_for_every_width_channel_count_and_cut(width, channels):
    """Channel c holds x + 256 c (x: multiples of 256, exact in 8-bit); mono is their mean, x + 128 (channels - 1);
    channel c alone is x + 256 c. Cut into 1-byte or 1023-byte pieces, the samples are the same as in one piece."""
    rng = np.random.default_rng(width * 10 + channels)
    x = (rng.integers(-100, 100, 4000) << 8).astype(np.int16)
    frames = np.stack([x + 256 * c for c in range(channels)], axis=1).astype(np.int16).ravel()
    data = encode_pcm(frames, width, rng)
    assert len(data) == 4000 * width * channels
    mean = x + 128 * (channels - 1)
    for size in (len(data), 1023, 1):
        np.testing.assert_array_equal(decode_in_pieces(PcmDecoder(16000, width, channels), data, size), mean)
    last = channels - 1
    np.testing.assert_array_equal(decode_in_pieces(PcmDecoder(16000, width, channels, last), data, 1023), x + 256 * last)
    # Another rate: what the resampler makes of the mono samples, however the bytes were cut.
    np.testing.assert_array_equal(decode_in_pieces(PcmDecoder(44100, width, channels), data, 1023), resample(mean, 44100, 16000))


@pytest.mark.parametrize("fmt, message", [
    ((16000, 0, 1), "audio width 0 cannot be used: bytes per sample must be 1, 2, 3 or 4"),
    ((16000, 5, 1), "audio width 5 cannot be used"),
    ((16000, 2, 0), "audio channels 0 cannot be used"),
    ((0, 2, 1), "audio rate 0 cannot be used: must be a whole number of Hz from 4000 to 384000"),
    (("16000", 2, 1), "audio rate '16000' cannot be used"),
    ((16000, 2.0, 1), "audio width 2.0 cannot be used"),
    ((16000, 2, 2, 2), "channel 2 is not one of the 2 channel"),
])
def test_pcm_decoder_refuses_formats_it_cannot_use(fmt, message):
    from edge.core.errors import InputError

    with pytest.raises(InputError, match=message):
        PcmDecoder(*fmt)


@pytest.mark.parametrize("channel, offset, how", [(None, 50, "mixed down to mono"), (1, 100, "channel 1 taken")])
def test_microphone_that_refuses_one_channel_opens_in_stereo(caplog, channel, offset, how):
    """A 2-mic HAT: PortAudio refuses 1 channel. Opened with 2, mixed down (chunk i: (i + i + 100) / 2)
    or channel 1 taken (i + 100); one log line says what was chosen."""
    fake = FakePyAudio(chunks_per_stream=3, overflow_at=-1, rates=(16000,), channels=(2,))
    stop, received = threading.Event(), []
    source = MicrophoneSource("usb", channel=channel, pyaudio_module=fake, sleep=lambda event, seconds: True)
    with caplog.at_level(logging.INFO, logger="edge.hearing.audio_sources"):
        for chunk in source.chunks(stop):
            received.append(chunk)
            if sum(map(len, received)) >= 3 * 1600:
                stop.set()
    np.testing.assert_array_equal(np.concatenate(received), np.repeat(np.arange(3) + offset, 1600))
    assert [(o["channels"], o["rate"]) for o in fake.opened] == [(2, 16000)]
    opened = [r.getMessage() for r in caplog.records if r.getMessage().startswith("opened")]
    assert opened == [f"opened microphone 'usb' (USB PnP Sound Device) at 16000 Hz, 2 channel(s), {how}"]


def test_microphone_channel_the_device_lacks_is_one_line_not_a_retry_loop():
    from edge.core.errors import InputError

    sleeps = []
    source = MicrophoneSource("usb", channel=2, pyaudio_module=FakePyAudio(channels=(1, 2)),
                              sleep=lambda event, seconds: sleeps.append(seconds))
    with pytest.raises(InputError, match=r"channel 2 is not one of the 2 input channel\(s\) of microphone 'usb' "
                                         r"\(USB PnP Sound Device\), numbered from 0"):
        list(source.chunks(threading.Event()))
    assert sleeps == []


def test_microphone_that_refuses_every_format_says_so_and_retries(caplog):
    calls = []

    def sleep(event, seconds):
        calls.append(seconds)
        return True  # stop during the first wait

    source = MicrophoneSource("usb", rate=22050, pyaudio_module=FakePyAudio(), sleep=sleep)
    with caplog.at_level(logging.WARNING, logger="edge.hearing.audio_sources"):
        assert list(source.chunks(threading.Event())) == []
    assert calls == [1.0]
    assert "USB PnP Sound Device opens with none of 1 channel(s) at 22050 Hz (Invalid sample rate)" in caplog.text


def test_real_capture_takes_one_channel_of_a_stereo_alsa_microphone(tmp_path):
    """PortAudio through ALSA's `file` plugin (DESIGN.md's fake microphone) playing interleaved
    stereo: with channel 1 the source opens 2 channels and delivers the right channel exactly."""
    import json
    import os
    import subprocess
    import sys

    left = (np.arange(32000) % 400 * 50 - 10000).astype(np.int16)
    right = (-left // 3 + 7).astype(np.int16)
    (tmp_path / "mic.raw").write_bytes(np.stack([left, right], axis=1).astype("<i2").tobytes())
    (tmp_path / ".asoundrc").write_text(
        f'pcm.fakemic {{ type file; slave.pcm "null"; file "/dev/null"; infile "{tmp_path / "mic.raw"}"; format "raw" }}\n')
    script = (
        "import logging, sys, threading, numpy as np\n"
        "from edge.hearing.audio_sources import MicrophoneSource\n"
        "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        "stop, got = threading.Event(), []\n"
        "for chunk in MicrophoneSource('fakemic', channel=1).chunks(stop):\n"
        "    got.append(chunk)\n"
        "    if sum(map(len, got)) >= 16000: stop.set()\n"
        "print(list(map(int, np.concatenate(got)[:16000])))\n")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(json.loads(done.stdout), right[:16000])
    assert "opened microphone 'fakemic' (fakemic) at 16000 Hz, 2 channel(s), channel 1 taken" in done.stderr
