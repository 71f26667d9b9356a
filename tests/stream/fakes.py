"""Fakes for the streaming tests: a classifier that needs no model, and test audio."""
from __future__ import annotations

import numpy as np

LABELS = ["_silence_", "_unknown_", "beep", "hum"]
SAMPLE_RATE = 16000


def energy_classifier(features: np.ndarray) -> np.ndarray:
    """'beep' when the last 30 frames hold a loud high channel, 'hum' for loud low channels.

    Deterministic in the features alone, so any difference between two runs comes from the
    streaming machinery, not from the classifier.
    """
    recent = features[-30:]
    high, low = recent[:, 30:].max(axis=1).mean(), recent[:, :8].max(axis=1).mean()
    beep = 1 / (1 + np.exp(-(high - 12.0)))
    hum = 1 / (1 + np.exp(-(low - 14.0))) * (1 - beep)
    rest = max(0.0, 1.0 - beep - hum)
    return np.array([rest * 0.5, rest * 0.5, beep, hum], np.float32)


def tone(seconds: float, hz: float, amplitude: float = 12000.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return amplitude * np.sin(2 * np.pi * hz * t)


def stream_with_beeps(beep_times: list[float], total: float = 8.0, seed: int = 0) -> np.ndarray:
    """Quiet noise with 0.4 s, 6 kHz beeps starting at `beep_times` (seconds)."""
    rng = np.random.default_rng(seed)
    audio = rng.normal(0, 60, int(total * SAMPLE_RATE))
    for start in beep_times:
        beep = tone(0.4, 6000.0)
        i = int(start * SAMPLE_RATE)
        audio[i:i + len(beep)] += beep
    return np.clip(audio, -32768, 32767).astype(np.int16)


def encode_pcm(samples: np.ndarray, width: int, rng: np.random.Generator) -> bytes:
    """int16 samples as little-endian PCM of `width` bytes a sample (1: unsigned 8-bit, the top 8
    bits), the bits below the top 16 random, as a real 24- or 32-bit recording has them."""
    if width == 1:
        return ((samples.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()
    wide = samples.astype(np.int64) << (8 * (width - 2))
    wide += rng.integers(0, 1 << (8 * (width - 2)), len(samples)) if width > 2 else 0
    return wide.astype("<i8").view(np.uint8).reshape(-1, 8)[:, :width].tobytes()
