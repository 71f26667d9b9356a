"""Audio augmentation for 1 s keyword clips: make clean synthetic words sound like rooms and mics.

Every random choice takes a seeded `numpy.random.Generator`, so an augmented epoch is reproducible.
Clips are 16 kHz mono int16 in and out.

Public API:
    colored_noise(kind, length, rng) -> float64, unit RMS       kind in "white" "pink" "brown"
    room_impulse_response(rng, rt60=None) -> float64            synthetic room (exponential decay)
    time_shift(clip, samples) / speed(clip, factor) / gain(clip, db) / reverb(clip, ir)
    mix_at_snr(clip, noise, snr_db) -> int16
    AugmentConfig(...)                                           frozen; ranges and probabilities
    Augmenter(config, background=None)                           background: {name: int16 recording}
        .noise(length, rng) -> float64 unit-RMS noise            generated or a recording window
        .__call__(clip, rng) -> int16                             one random chain of the above
        .batch(clips, rng) -> int16 (N, length)
        .silence(rng, length=16000) -> int16                      a `_silence_` clip: noise only
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

from edge.hearing.audio import SAMPLE_RATE, resample, to_int16

NOISE_KINDS = ("white", "pink", "brown")
_SPECTRAL_SLOPE = {"white": 0.0, "pink": 0.5, "brown": 1.0}  # amplitude ~ 1 / f**slope


def colored_noise(kind: str, length: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink (1/f power) or brown (1/f^2 power) noise with unit RMS, shaped in the FFT domain."""
    if kind not in _SPECTRAL_SLOPE:
        raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length)
    freqs[0] = freqs[1] if length > 1 else 1.0
    noise = np.fft.irfft(spectrum / freqs ** _SPECTRAL_SLOPE[kind], n=length)
    noise -= noise.mean()
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def room_impulse_response(rng: np.random.Generator, rt60: float | None = None,
                          rate: int = SAMPLE_RATE) -> np.ndarray:
    """A synthetic room: a direct path, then decaying noise whose level falls 60 dB in `rt60` s."""
    rt60 = float(rng.uniform(0.15, 0.7)) if rt60 is None else rt60
    t = np.arange(int(rate * rt60)) / rate
    tail = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60) * float(rng.uniform(0.1, 0.4))
    tail[: int(rate * 0.002)] = 0.0  # first reflections arrive a few ms after the direct sound
    tail[0] = 1.0
    return tail / np.sqrt(np.sum(tail ** 2))


def time_shift(clip: np.ndarray, samples: int) -> np.ndarray:
    """Move the clip later (positive) or earlier (negative), filling with silence."""
    out = np.zeros_like(clip)
    if samples >= 0:
        out[samples:] = clip[: len(clip) - samples]
    else:
        out[:samples] = clip[-samples:]
    return out


def _fit(samples: np.ndarray, length: int) -> np.ndarray:
    """Centre-crop or zero-pad to `length`."""
    if len(samples) >= length:
        start = (len(samples) - length) // 2
        return samples[start:start + length]
    out = np.zeros(length, dtype=samples.dtype)
    start = (length - len(samples)) // 2
    out[start:start + len(samples)] = samples
    return out


def speed(clip: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster (pitch moves too, like tape), kept at the clip's length."""
    rate = int(round(SAMPLE_RATE * factor / 100.0)) * 100  # a round rate keeps the polyphase factors small
    return _fit(resample(clip, rate, SAMPLE_RATE), len(clip))


def gain(clip: np.ndarray, db: float) -> np.ndarray:
    return to_int16(clip.astype(np.float64) * 10 ** (db / 20) / 32768.0)


def reverb(clip: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """Convolve with a room impulse response, keeping the clip's length and RMS."""
    dry = clip.astype(np.float64)
    wet = fftconvolve(dry, ir)[: len(clip)]
    scale = np.sqrt(np.mean(dry ** 2) / (np.mean(wet ** 2) + 1e-12))
    return to_int16(wet * scale / 32768.0)


def mix_at_snr(clip: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Add `noise` scaled so that speech RMS / noise RMS is `snr_db` (speech RMS over its active part)."""
    speech = clip.astype(np.float64)
    active = speech[np.abs(speech) > 0.05 * (np.abs(speech).max() + 1e-12)]
    speech_rms = np.sqrt(np.mean(active ** 2)) if active.size else 0.0
    noise = noise[: len(clip)].astype(np.float64)
    noise_rms = np.sqrt(np.mean(noise ** 2)) + 1e-12
    return to_int16((speech + noise * speech_rms / noise_rms * 10 ** (-snr_db / 20)) / 32768.0)


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges and probabilities of each augmentation (saved with the training config)."""

    max_shift_ms: float = 100.0
    speed_range: tuple[float, float] = (0.9, 1.1)
    gain_db_range: tuple[float, float] = (-20.0, 0.0)
    reverb_probability: float = 0.3
    noise_probability: float = 0.8
    snrs_db: tuple[float, ...] = (5.0, 10.0, 15.0, 20.0, 30.0)
    recording_probability: float = 0.5  # when background recordings are given: recorded vs generated noise
    silence_rms_range: tuple[float, float] = (0.0005, 0.05)  # of full scale, log-uniform


class Augmenter:
    """A random chain: speed -> shift -> reverb -> background noise -> gain."""

    def __init__(self, config: AugmentConfig | None = None, background: dict[str, np.ndarray] | None = None):
        self.config = config or AugmentConfig()
        self.recordings = [r.astype(np.float64) for r in (background or {}).values() if len(r) > 0]

    def noise(self, length: int, rng: np.random.Generator) -> np.ndarray:
        """Unit-RMS noise: a random window of a background recording, or generated colored noise."""
        if self.recordings and rng.random() < self.config.recording_probability:
            recording = self.recordings[rng.integers(len(self.recordings))]
            if len(recording) < length:
                recording = np.tile(recording, length // len(recording) + 1)
            start = int(rng.integers(len(recording) - length + 1))
            window = recording[start:start + length]
            return window / (np.sqrt(np.mean(window ** 2)) + 1e-12)
        return colored_noise(NOISE_KINDS[rng.integers(len(NOISE_KINDS))], length, rng)

    def __call__(self, clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        out = speed(clip, float(rng.uniform(*c.speed_range)))
        max_shift = int(SAMPLE_RATE * c.max_shift_ms / 1000)
        out = time_shift(out, int(rng.integers(-max_shift, max_shift + 1)))
        if rng.random() < c.reverb_probability:
            out = reverb(out, room_impulse_response(rng))
        if rng.random() < c.noise_probability:
            out = mix_at_snr(out, self.noise(len(out), rng), float(rng.choice(c.snrs_db)))
        return gain(out, float(rng.uniform(*c.gain_db_range)))

    def batch(self, clips: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.stack([self(clip, rng) for clip in clips])

    def silence(self, rng: np.random.Generator, length: int = SAMPLE_RATE) -> np.ndarray:
        """A `_silence_` clip: noise only, at a log-uniform level."""
        low, high = np.log(self.config.silence_rms_range)
        return to_int16(self.noise(length, rng) * np.exp(rng.uniform(low, high)))
