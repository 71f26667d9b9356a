"""edge.hearing.audio: every file becomes 16 kHz mono int16; bad files are one clear InputError."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf

from edge.hearing.audio import SAMPLE_RATE, read_audio, resample, to_int16, write_wav
from edge.core.errors import InputError


def tone(rate: int, seconds: float = 0.5, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def test_int16_16k_mono_read_unchanged(tmp_path):
    samples = to_int16(tone(SAMPLE_RATE))
    write_wav(tmp_path / "a.wav", samples)
    out = read_audio(tmp_path / "a.wav")
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out, samples)


def test_stereo_44k_is_mixed_and_resampled_with_log(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr("edge.hearing.audio._logged", set())
    left, right = tone(44100, freq=440.0, amplitude=0.4), tone(44100, freq=440.0, amplitude=0.2)
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 44100, subtype="PCM_16")
    with caplog.at_level(logging.INFO, logger="edge.hearing.audio"):
        out = read_audio(tmp_path / "stereo.wav")
    assert out.dtype == np.int16 and out.ndim == 1
    assert len(out) == SAMPLE_RATE // 2
    assert abs(dominant_frequency(out, SAMPLE_RATE) - 440.0) < 3
    # the mean of the two channels: amplitude 0.3 of full scale
    assert abs(np.abs(out[1000:-1000]).max() / 32768 - 0.3) < 0.01
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "44100 Hz" in messages and "2 channels" in messages


def test_8k_and_float_wav_flac(tmp_path):
    sf.write(tmp_path / "low.wav", tone(8000, freq=1000.0), 8000, subtype="FLOAT")
    sf.write(tmp_path / "low.flac", tone(8000, freq=1000.0), 8000)
    for name in ("low.wav", "low.flac"):
        out = read_audio(tmp_path / name)
        assert out.dtype == np.int16 and len(out) == SAMPLE_RATE // 2
        assert abs(dominant_frequency(out, SAMPLE_RATE) - 1000.0) < 3
        assert abs(np.abs(out[500:-500]).max() / 32768 - 0.5) < 0.01


def test_float_full_scale_is_clipped_not_wrapped():
    assert to_int16(np.array([1.5, -1.5, 0.0])).tolist() == [32767, -32768, 0]


def test_resample_int16_and_float():
    samples = to_int16(tone(22050, seconds=1.0, freq=300.0))
    out = resample(samples, 22050, SAMPLE_RATE)
    assert out.dtype == np.int16 and len(out) == SAMPLE_RATE
    assert abs(dominant_frequency(out, SAMPLE_RATE) - 300.0) < 2
    floats = resample(tone(48000, seconds=1.0), 48000, SAMPLE_RATE)
    assert floats.dtype == np.float64 and len(floats) == SAMPLE_RATE
    same = resample(samples, SAMPLE_RATE, SAMPLE_RATE)
    assert same is samples
    with pytest.raises(InputError):
        resample(samples, 0, SAMPLE_RATE)


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00not a wave at all", b"hello, I am text\n" * 50])
def test_garbage_and_empty_files_name_the_file(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(InputError, match="bad.wav"):
        read_audio(path)


def test_wav_without_samples(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.int16), SAMPLE_RATE)
    with pytest.raises(InputError, match="empty.wav"):
        read_audio(tmp_path / "empty.wav")


def test_implausible_rate_and_nan_samples_are_refused(tmp_path):
    sf.write(tmp_path / "seven.wav", np.zeros(70, np.int16), 7)
    with pytest.raises(InputError, match="seven.wav: sample rate 7 Hz is outside 4000-384000 Hz"):
        read_audio(tmp_path / "seven.wav")
    samples = np.zeros(1600, np.float32)
    samples[5] = np.nan
    sf.write(tmp_path / "nan.wav", samples, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(InputError, match="nan.wav: float samples that are NaN or infinite"):
        read_audio(tmp_path / "nan.wav")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="nope.wav"):
        read_audio(tmp_path / "nope.wav")


def test_write_wav_is_atomic_and_leaves_no_temp(tmp_path):
    path = write_wav(tmp_path / "sub" / "out.wav", tone(SAMPLE_RATE), rate=SAMPLE_RATE)
    assert path.exists() and sorted(p.name for p in path.parent.iterdir()) == ["out.wav"]
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
