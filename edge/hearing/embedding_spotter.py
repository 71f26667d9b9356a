"""Streaming keyword spotting with a `kws-embedding` bundle (a head on Google's speech embedding).

The embedding stream (edge.hearing.embedding) gives one 96-d embedding per 80 ms step; the head
scores the last `frames` embeddings after every step, so every keyword comes from the same one
embedding stream. Posteriors go through the daemon's `Decider` (posterior smoothing, thresholds,
minimum count, refractory time) counted in 80 ms steps. The API is `KeywordSpotter`'s
(`feed`, `process`, `finish`, `reset`, `close`, `on_inference`), so `listen`, the Wyoming server
and the stream benchmark take either.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge.core.bundle import MANIFEST, Bundle
from edge.core.errors import InputError
from edge.hearing import embedding as emb
from edge.hearing.speech_commands import SILENCE
from edge.hearing.spotter import FULL_SCALE, Decider, Detection, DetectionParams, StreamingSpotter, step_power

log = logging.getLogger(__name__)

STEP_MS = emb.STEP_SAMPLES * 1000 // emb.SAMPLE_RATE  #: 80 ms: the head runs once per embedding step
#: Level-gate steps: 10 ms, as the microfrontend spotter measures them.
LEVEL_STEP = emb.SAMPLE_RATE // 100


def detection_params(bundle: Bundle, overrides: dict) -> DetectionParams:
    """The manifest's detection defaults with `overrides` (None = keep); InputError for a setting
    the embedding path cannot honour (a stride other than its 80 ms step, a fresh front-end)."""
    source = bundle.root / MANIFEST
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides.pop("fresh_frontend", None) is not None:
        raise InputError(f"{bundle.root}: --frontend is for microfrontend models; the speech embedding is one stream")
    stride = overrides.get("stride_ms", STEP_MS)
    if stride != STEP_MS:
        raise InputError(f"{bundle.root}: the speech-embedding head runs every {STEP_MS} ms step, not every {stride} ms")
    detection = DetectionParams.from_dict(bundle.manifest.get("detection"), source)
    try:
        return dataclasses.replace(detection, **{**overrides, "stride_ms": STEP_MS, "fresh_frontend": False}).checked()
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad detection setting: {exc}") from None


class EmbeddingSpotter(StreamingSpotter):
    """Stateful streaming spotter over a kws-embedding bundle; one stream each, not thread-safe."""

    def __init__(self, bundle: Bundle, *, variant: str | None = None, keywords: Sequence[str] | None = None,
                 threads: int = 1, detection: DetectionParams | None = None):
        self.scorer = emb.EmbeddingKeywordScorer(bundle, variant or bundle.default_variant(), threads=threads)
        self.decider = Decider(bundle.labels, keywords, detection or detection_params(bundle, {}), STEP_MS)
        self.labels, self.keywords, self.detection = self.decider.labels, self.decider.keywords, self.decider.detection
        self.sample_rate = emb.SAMPLE_RATE
        self.frame_length = emb.STEP_SAMPLES  #: samples per process() call
        self.clip_samples = emb.context_samples(self.scorer.frames)  #: audio one head inference sees
        self._context_steps = self.clip_samples // emb.STEP_SAMPLES
        self._min_power = FULL_SCALE ** 2 * 10 ** (self.detection.min_level_dbfs / 10)
        self._idle = np.array([label == SILENCE for label in self.labels], np.float32)
        self.on_inference = None  #: (time s, posteriors) hook, as KeywordSpotter's
        self._closed = False
        self.reset()

    @classmethod
    def from_bundle(cls, path: str | Path, *, variant: str | None = None, keywords: Sequence[str] | None = None,
                    threads: int = 1, **overrides) -> "EmbeddingSpotter":
        """A spotter for a kws-embedding bundle; `overrides` as `KeywordSpotter.from_bundle`'s
        (threshold, thresholds, smoothing_ms, min_count, refractory_ms, min_level_dbfs)."""
        bundle = Bundle.load(path, task="kws-embedding")
        spotter = cls(bundle, variant=variant, keywords=keywords, threads=threads,
                      detection=detection_params(bundle, overrides))
        log.info("loaded %s (%s, speech embedding + head)", bundle.root, bundle.name)
        return spotter

    def reset(self) -> None:
        """Start a new stream: embedding stream, smoothing, level history and clock cleared."""
        self.scorer.reset()
        self.decider.reset()
        self._samples = 0
        self._level_tail = np.zeros(0, np.int16)
        self._step_levels = np.zeros(0)  # loudest 10 ms power of each recent 80 ms step ...
        self._levels_start = 1  # ... from this step number (1-based) on
        self._stream_end: int | None = None
        self.probabilities = np.zeros(len(self.labels), np.float32)

    @property
    def smoothed(self) -> np.ndarray:
        return self.decider.smoothed

    @property
    def time(self) -> float:
        return self._samples / self.sample_rate

    def close(self) -> None:
        """Release the models; the spotter cannot be used afterwards."""
        self._closed = True
        self.scorer = None

    def feed(self, samples: np.ndarray | bytes) -> list[Detection]:
        """Consume int16 samples of any length; the detections they completed."""
        samples = self._samples_in(samples)
        self._samples += len(samples)
        self._track_levels(samples)
        detections = []
        # The scorer yields one posterior per step that completed a full head window: the last ones.
        posteriors = self.scorer.process(samples)
        first_step = self._samples // emb.STEP_SAMPLES - len(posteriors) + 1
        for step, probabilities in enumerate(posteriors, start=first_step):
            detections += self._decide(step, probabilities)
        drop = len(self._step_levels) - self._context_steps
        if drop > 0:
            self._step_levels, self._levels_start = self._step_levels[drop:], self._levels_start + drop
        return detections

    def _track_levels(self, samples: np.ndarray) -> None:
        """Keep the loudest 10 ms power (DC and drift removed, `step_power`) of each recent 80 ms step."""
        buffer = np.concatenate([self._level_tail, samples])
        whole = len(buffer) // emb.STEP_SAMPLES * emb.STEP_SAMPLES
        powers = step_power(buffer[:whole], LEVEL_STEP).reshape(-1, emb.STEP_SAMPLES // LEVEL_STEP).max(axis=1)
        self._step_levels = np.concatenate([self._step_levels, powers])
        self._level_tail = buffer[whole:]

    def _decide(self, step: int, probabilities: np.ndarray) -> list[Detection]:
        """Posteriors of the window ending at `step` (1-based), through the level gate and the Decider."""
        last = step if self._stream_end is None else min(step, -(-self._stream_end // emb.STEP_SAMPLES))
        levels = self._step_levels[max(0, step - self._context_steps + 1 - self._levels_start):
                                   max(0, last + 1 - self._levels_start)]  # finish()'s padding is not the stream's
        quiet = levels.max(initial=0.0) < self._min_power
        self.probabilities = self._idle.copy() if quiet else np.asarray(probabilities, np.float32)
        now = step * emb.STEP_SAMPLES / self.sample_rate
        if self.on_inference:
            self.on_inference(now, self.probabilities)
        decision = self.decider.update(self.probabilities, step)
        return [Detection(decision[0], decision[1], now)] if decision else []

    def finish(self) -> list[Detection]:
        """End the stream: slide the window on over digital silence until no window holding the
        stream's audio is left undecided (as `KeywordSpotter.finish`); then reset."""
        if self._closed:
            raise ValueError("spotter is closed")
        if not self._samples:
            return []
        self._stream_end = self._samples
        pending = -self._samples % emb.STEP_SAMPLES
        steps = self._context_steps + self.decider.smooth_len - 1
        detections = self.feed(np.zeros(pending + steps * emb.STEP_SAMPLES, np.int16))
        self.reset()
        return detections
