"""Test audio for the daemon: synthetic keywords at known times over noise (made here, offline)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.hearing.audio import SAMPLE_RATE


@dataclass(frozen=True)
class KeywordStream:
    audio: np.ndarray  #: int16, 16 kHz
    words: list[tuple[str, float]]  #: (keyword, second its 1 s clip starts)

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def noise(seconds: float, seed: int = 0, rms: float = 150.0) -> np.ndarray:
    """Pink-ish background noise (white noise through a one-pole low-pass), int16."""
    from scipy.signal import lfilter

    white = np.random.default_rng(seed).normal(0, 1, int(seconds * SAMPLE_RATE))
    coloured = lfilter([1.0], [1.0, -0.9], white)
    return np.clip(coloured / coloured.std() * rms, -32768, 32767).astype(np.int16)


def keyword_stream(bundle: Path, speaker=None, spacing: float = 3.0, seed: int = 0) -> KeywordStream:
    """The bundle's first two keywords, then the first again, `spacing` s apart, over noise."""
    from trainer.synth_speech import Speaker, synthesize

    labels = json.loads((Path(bundle) / "manifest.json").read_text())["labels"]
    keywords = [label for label in labels if not label.startswith("_")]
    speaker = speaker or Speaker("espeak-ng", "en-us")
    order = [keywords[0], keywords[1 % len(keywords)], keywords[0]]
    audio = noise(spacing * (len(order) + 1), seed).astype(np.float64)
    words = []
    for n, word in enumerate(order):
        start = spacing * (n + 1)
        clip = synthesize(word, speaker)
        i = int(start * SAMPLE_RATE)
        audio[i:i + len(clip)] += clip
        words.append((word, start))
    return KeywordStream(np.clip(audio, -32768, 32767).astype(np.int16), words)
