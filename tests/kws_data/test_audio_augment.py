"""trainer.audio_augment: each transform does what it says, and the chain is seeded."""
from __future__ import annotations

import numpy as np
import pytest

from edge.hearing.audio import SAMPLE_RATE
from trainer.audio_augment import (AugmentConfig, Augmenter, colored_noise, gain, mix_at_snr, reverb,
                                   room_impulse_response, speed, time_shift)


def word_like(seed: int = 0) -> np.ndarray:
    """A 0.4 s tone burst in the middle of a 1 s clip."""
    t = np.arange(int(0.4 * SAMPLE_RATE)) / SAMPLE_RATE
    burst = 0.4 * np.sin(2 * np.pi * (300 + 50 * seed) * t) * np.hanning(len(t))
    clip = np.zeros(SAMPLE_RATE)
    clip[4800:4800 + len(burst)] = burst
    return (clip * 32767).astype(np.int16)


def band_power(noise: np.ndarray, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(len(noise), 1 / SAMPLE_RATE)
    return float(power[(freqs >= low) & (freqs < high)].mean())


@pytest.mark.parametrize("kind, low_over_high", [("white", (0.5, 2)), ("pink", (10, 200)), ("brown", (300, 1e5))])
def test_colored_noise_slopes(kind, low_over_high):
    noise = colored_noise(kind, SAMPLE_RATE, np.random.default_rng(0))
    assert abs(np.sqrt(np.mean(noise ** 2)) - 1) < 1e-6
    ratio = band_power(noise, 100, 200) / band_power(noise, 4000, 8000)
    assert low_over_high[0] < ratio < low_over_high[1]
    with pytest.raises(ValueError):
        colored_noise("blue", 100, np.random.default_rng(0))


def test_mix_at_snr_hits_the_target():
    clip = word_like()
    noise = colored_noise("white", SAMPLE_RATE, np.random.default_rng(1))
    for snr in (0.0, 10.0, 20.0):
        mixed = mix_at_snr(clip, noise, snr).astype(np.float64)
        added = mixed - clip
        active = np.abs(clip) > 0.05 * np.abs(clip).max()
        measured = 10 * np.log10(np.mean(clip[active].astype(np.float64) ** 2) / np.mean(added ** 2))
        assert abs(measured - snr) < 0.5


def test_reverb_keeps_length_and_level_and_adds_a_tail():
    rng = np.random.default_rng(2)
    ir = room_impulse_response(rng, rt60=0.5)
    assert len(ir) == SAMPLE_RATE // 2 and abs(np.sum(ir ** 2) - 1) < 1e-9
    assert np.sum(ir[: len(ir) // 10] ** 2) > 100 * np.sum(ir[-len(ir) // 10:] ** 2)  # it decays
    clip = word_like()
    wet = reverb(clip, ir)
    assert wet.shape == clip.shape and wet.dtype == np.int16
    assert abs(np.sqrt(np.mean(wet.astype(float) ** 2)) / np.sqrt(np.mean(clip.astype(float) ** 2)) - 1) < 0.02
    tail = slice(4800 + 6400 + 400, 4800 + 6400 + 2000)
    assert np.abs(wet[tail]).max() > 100 > np.abs(clip[tail]).max()


def test_shift_speed_gain():
    clip = word_like()
    np.testing.assert_array_equal(time_shift(clip, 100)[100:], clip[:-100])
    np.testing.assert_array_equal(time_shift(clip, -100)[:-100], clip[100:])
    assert not time_shift(clip, 100)[:100].any()
    faster = speed(clip, 1.25)
    assert faster.shape == clip.shape
    assert 0.75 < np.count_nonzero(np.abs(faster) > 50) / np.count_nonzero(np.abs(clip) > 50) < 0.85
    louder = gain(clip, 6.0206)
    assert abs(np.abs(louder).max() / np.abs(clip).max() - 2) < 0.01
    assert gain(clip, 40).max() == 32767  # clipped, not wrapped


def test_augmenter_is_seeded_and_uses_recordings():
    clips = np.stack([word_like(i) for i in range(4)])
    augmenter = Augmenter()
    first = augmenter.batch(clips, np.random.default_rng(5))
    np.testing.assert_array_equal(first, augmenter.batch(clips, np.random.default_rng(5)))
    assert not np.array_equal(first, augmenter.batch(clips, np.random.default_rng(6)))
    assert first.dtype == np.int16 and first.shape == clips.shape
    hum = (3000 * np.sin(np.arange(40000) * 2 * np.pi * 50 / SAMPLE_RATE)).astype(np.int16)
    recorded = Augmenter(AugmentConfig(recording_probability=1.0), {"hum": hum}).noise(1000, np.random.default_rng(0))
    assert abs(np.sqrt(np.mean(recorded ** 2)) - 1) < 1e-6
    assert band_power(recorded, 40, 60) > 1000 * band_power(recorded, 1000, 8000)


def test_silence_levels():
    augmenter = Augmenter(AugmentConfig(silence_rms_range=(0.001, 0.01)))
    rng = np.random.default_rng(3)
    levels = [np.sqrt(np.mean(augmenter.silence(rng).astype(float) ** 2)) / 32768 for _ in range(20)]
    assert 0.0009 < min(levels) and max(levels) < 0.011
