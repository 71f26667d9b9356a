"""Regenerate the front-end golden vectors: `python -m tests.kws.make_golden`.

Run it only when the front-end is meant to change; the committed wavs are the fixed inputs and
the .npy files are what `edge.hearing.frontend` computed from them when they were made.
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from edge.hearing.frontend import RUNTIME_PARAMS, Frontend

GOLDEN = Path(__file__).parent / "golden"
RATE = RUNTIME_PARAMS.sample_rate


def chirp() -> np.ndarray:
    """A 200 Hz -> 6 kHz sweep in the middle of the clip, with silence around it."""
    t = np.arange(RATE) / RATE
    phase = 2 * np.pi * (200 * t + (6000 - 200) / 2 * t**2)
    envelope = np.clip(np.minimum(t - 0.2, 0.8 - t) * 20, 0, 1)
    return (8000 * envelope * np.sin(phase)).astype(np.int16)


def noisy_bursts() -> np.ndarray:
    """Low white noise with three tone bursts: exercises noise reduction and the gain control."""
    rng = np.random.default_rng(1234)
    t = np.arange(RATE) / RATE
    audio = rng.normal(0, 300, RATE)
    for start, freq in ((0.1, 440), (0.4, 1500), (0.7, 3000)):
        audio += 6000 * ((t >= start) & (t < start + 0.15)) * np.sin(2 * np.pi * freq * t)
    return np.clip(audio, -32768, 32767).astype(np.int16)


def spoken_yes() -> np.ndarray:
    """The word "yes" from espeak-ng (22050 Hz), resampled to 16 kHz and padded to 1 s."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "yes.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), "yes"], check=True)
        audio, rate = sf.read(wav, dtype="int16")
    audio = resample_poly(audio.astype(np.float64), RATE, rate)
    audio = np.clip(audio, -32768, 32767).astype(np.int16)[:RATE]
    return np.pad(audio, (2000, max(0, RATE - 2000 - len(audio))))[:RATE]


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    frontend = Frontend()
    for name, make in (("chirp", chirp), ("noisy_bursts", noisy_bursts), ("yes_espeak", spoken_yes)):
        audio = make()
        sf.write(GOLDEN / f"{name}.wav", audio, RATE, subtype="PCM_16")
        np.save(GOLDEN / f"{name}.npy", frontend.clip_features(audio))
        print(name, len(audio))


if __name__ == "__main__":
    main()
