"""A two-stage wake-word cascade: a small always-on model proposes, the speech embedding confirms.

Stage 1 (`propose`) is a microfrontend KWS model (the ds-cnn family, a few ms per second of
audio) run by `KeywordSpotter` at a low threshold. Each of its candidates is confirmed by stage 2
(`confirm`, a kws-embedding bundle) on the buffered audio: `delay_ms` after the candidate (so the
end of the word is in), the last `context_samples(frames + 2 * shift)` samples (about 1.8 s) go
through a fresh embedding stream and the head scores the `2 * shift + 1` windows among them (the
word up to `shift` steps early or late); a label's score is its largest posterior over those
windows. The event is stage 2's best keyword if that reaches its threshold and the cascade is not
in its refractory time. Stage 2 runs only on candidates, so the cascade costs stage 1's CPU plus
about 0.1 s per candidate. openWakeWord's per-user verifier models are the same shape: a cheap
detector gates a costlier check.

A cascade bundle is a folder with `manifest.json` (task `kws-cascade`, the two stages' folders
and their manifests' sha256, the `cascade` settings) and the two stage bundles in `propose/` and
`confirm/`; `tinysense cascade` writes one (export.cascade).
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.core.bundle import MANIFEST, Bundle
from edge.core.errors import BundleError, InputError
from edge.core.fileio import read_json, sha256_file
from edge.hearing import embedding as emb
from edge.hearing.speech_commands import keywords_of
from edge.hearing.spotter import Detection, KeywordSpotter, StreamingSpotter

log = logging.getLogger(__name__)

TASK = "kws-cascade"
STAGES = ("propose", "confirm")
#: Largest piece of audio the cascade hands stage 1 at once, so the ring always holds a candidate's
#: window: 320 ms, so a daemon's 100 ms chunk is one call of stage 1, whose every call has a fixed
#: cost (at 80 ms, two calls per chunk cost a tenth more CPU on an hour of noise).
PIECE = 4 * emb.STEP_SAMPLES


@dataclass(frozen=True)
class CascadeParams:
    """The manifest's `cascade` object: how candidates are made and confirmed."""

    propose_threshold: float = 0.4  #: stage 1's smoothed score that makes a candidate
    propose_refractory_ms: int = 300  #: stage 1's quiet time after a candidate (rejected ones must not blind it)
    #: stage 1's front-end: "stream" (one continuous front-end, the cheapest; its false accepts are
    #: stage 2's to reject), "fresh" (per-window reset) or None (stage 1's manifest)
    propose_frontend: str | None = "stream"
    propose_variant: str | None = None  #: stage 1's variant (None: the one asked for, else its default)
    #: stage 1's inference stride (None: its manifest's, 100 ms for `make train`'s): at 200 ms
    #: stage 1 costs a fifth less CPU, and on the dev streams the cascade missed 28.2 % of
    #: keywords instead of 27.3 % with as many false accepts (README, cascade section)
    propose_stride_ms: int | None = 200
    threshold: float = 0.6  #: stage 2's score that confirms a keyword
    thresholds: Mapping[str, float] = field(default_factory=dict)  #: per-keyword stage-2 overrides
    delay_ms: int = 240  #: audio after the candidate that stage 2 waits for
    refractory_ms: int = 1000  #: after a confirmed event, nothing is confirmed for this long

    @classmethod
    def from_dict(cls, data: Mapping | None, source: str | Path) -> "CascadeParams":
        data = dict(data or {})
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise BundleError(f"{source}: unknown cascade setting(s) {', '.join(unknown)}")
        try:
            return cls(**data).checked()
        except (TypeError, ValueError) as exc:
            raise BundleError(f"{source}: bad cascade settings ({exc})") from None

    def checked(self) -> "CascadeParams":
        params = dataclasses.replace(
            self, propose_threshold=float(self.propose_threshold), threshold=float(self.threshold),
            propose_refractory_ms=int(self.propose_refractory_ms), delay_ms=int(self.delay_ms),
            propose_stride_ms=None if self.propose_stride_ms is None else int(self.propose_stride_ms),
            refractory_ms=int(self.refractory_ms), thresholds={str(k): float(v) for k, v in dict(self.thresholds).items()})
        for name, value in {"propose_threshold": params.propose_threshold, "threshold": params.threshold,
                            **params.thresholds}.items():
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name}={value} must be in (0, 1]")
        if params.propose_frontend not in ("stream", "fresh", None):
            raise ValueError(f"propose_frontend={params.propose_frontend!r} must be stream, fresh or null")
        if params.propose_stride_ms is not None and (params.propose_stride_ms <= 0 or params.propose_stride_ms % 10):
            raise ValueError(f"propose_stride_ms={params.propose_stride_ms} must be a positive multiple of 10")
        if min(params.propose_refractory_ms, params.delay_ms, params.refractory_ms) < 0:
            raise ValueError("delay_ms and the refractory times must be >= 0")
        return params

    def threshold_for(self, keyword: str) -> float:
        return self.thresholds.get(keyword, self.threshold)


class Confirmer:
    """Stage 2's decision on one candidate's posteriors: the best keyword, its threshold, the
    refractory time. Separate from the audio so the stream benchmark replays recorded candidates
    through it at every threshold (the DET curve) with exactly the daemon's logic."""

    def __init__(self, labels: Sequence[str], keywords: Sequence[str], params: CascadeParams):
        self.keywords = list(keywords)
        self.params = params
        self._index = np.array([list(labels).index(k) for k in self.keywords])
        self._thresholds = np.array([params.threshold_for(k) for k in self.keywords])
        self.reset()

    def reset(self) -> None:
        self._quiet_until = -np.inf

    def decide(self, time: float, posteriors: np.ndarray) -> tuple[str, float] | None:
        """(keyword, score) if the candidate at `time` s with stage-2 `posteriors` (by label) fires."""
        scores = posteriors[self._index]
        best = int(np.argmax(scores))
        if scores[best] < self._thresholds[best] or time < self._quiet_until:
            return None
        self._quiet_until = time + self.params.refractory_ms / 1000
        return self.keywords[best], float(scores[best])


@dataclass(frozen=True)
class CascadeBundle:
    """A checked cascade folder: its manifest, settings and the two stage bundles."""

    root: Path
    manifest: dict
    params: CascadeParams
    propose: Bundle
    confirm: Bundle


def load_cascade(path: str | Path) -> CascadeBundle:
    """Read and check a cascade bundle: both stages load (sha256-verified), their manifests are the
    ones the cascade was made with, and stage 2 knows every keyword stage 1 proposes."""
    root = Path(path)
    source = root / MANIFEST
    if not source.is_file():
        raise BundleError(f"{source}: missing; is {root} a cascade bundle? (make one with: tinysense cascade)")
    manifest = read_json(source, BundleError)
    if manifest.get("task") != TASK:
        raise BundleError(f"{source}: a {manifest.get('task')!r} bundle, not a {TASK!r} one")
    stages = manifest.get("stages")
    if not isinstance(stages, dict) or set(stages) != set(STAGES) or "name" not in manifest:
        raise BundleError(f"{source}: a cascade manifest needs 'name' and 'stages' with {' and '.join(STAGES)}")
    bundles = {}
    for stage, task in zip(STAGES, ("kws", "kws-embedding")):
        entry = stages[stage]
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise BundleError(f"{source}: stage {stage!r} needs a 'path'")
        stage_root = root / entry["path"]
        stage_manifest = stage_root / MANIFEST
        if stage_manifest.is_file() and sha256_file(stage_manifest) != entry.get("manifest_sha256"):
            raise BundleError(f"{stage_root / MANIFEST}: not the {stage} stage this cascade was made with (sha256 differs)")
        bundles[stage] = Bundle.load(stage_root, task=task)
    missing = sorted(set(keywords_of(bundles["propose"].labels)) - set(keywords_of(bundles["confirm"].labels)))
    if missing:
        raise BundleError(f"{source}: stage 1 proposes {', '.join(missing)}, which stage 2 does not know")
    params = CascadeParams.from_dict(manifest.get("cascade"), source)
    return CascadeBundle(root, manifest, params, bundles["propose"], bundles["confirm"])


class CascadeSpotter(StreamingSpotter):
    """Stateful two-stage spotter; the API of `KeywordSpotter` (one stream each, not thread-safe).

    `on_candidate(time, proposed keyword, stage-1 score, stage-2 posteriors)` is called for every
    candidate (the benchmark's hook); `candidates` counts them.
    """

    def __init__(self, cascade: CascadeBundle, *, variant: str | None = None, keywords: Sequence[str] | None = None,
                 threads: int = 1, params: CascadeParams | None = None, **stage1_overrides):
        self.cascade = cascade
        self.params = params or cascade.params
        overrides = {k: v for k, v in stage1_overrides.items() if v is not None}
        if self.params.propose_frontend is not None:
            overrides.setdefault("fresh_frontend", self.params.propose_frontend == "fresh")
        if self.params.propose_stride_ms is not None:
            overrides.setdefault("stride_ms", self.params.propose_stride_ms)
        self.stage1 = KeywordSpotter.from_bundle(
            cascade.propose.root, variant=self.params.propose_variant or variant, keywords=keywords, threads=threads,
            **{**overrides, "threshold": self.params.propose_threshold, "thresholds": None,
               "refractory_ms": self.params.propose_refractory_ms})
        self.keywords, self.labels = self.stage1.keywords, cascade.confirm.labels
        unknown = sorted(set(self.params.thresholds) - set(keywords_of(self.labels)))
        if unknown:
            raise InputError(f"threshold given for unknown keyword(s) {', '.join(unknown)}")
        self.confirmer = Confirmer(self.labels, self.keywords, self.params)
        self.frames = emb.embedding_settings(cascade.confirm)["frames"]
        self.shift = int(emb.embedding_settings(cascade.confirm).get("shift", 0))
        self.head = cascade.confirm.open(variant or cascade.confirm.default_variant(), threads=threads)
        self.features = emb.SpeechEmbedding.from_bundle(cascade.confirm, threads=threads)
        self.sample_rate = self.stage1.sample_rate
        self.frame_length = self.stage1.frame_length
        self.clip_samples = self.stage1.clip_samples
        self.confirm_samples = emb.context_samples(self.frames + 2 * self.shift)  #: audio stage 2 reads
        self._delay = self.params.delay_ms * self.sample_rate // 1000
        self._ring_size = self.confirm_samples + PIECE
        self.on_candidate: Callable[[float, str, float, np.ndarray], None] | None = None
        self.detection = self.params
        self.candidates = 0  #: candidates stage 2 has scored since the spotter was made
        self._closed = False
        self.reset()

    @classmethod
    def from_bundle(cls, path: str | Path, *, variant: str | None = None, keywords: Sequence[str] | None = None,
                    threads: int = 1, threshold: float | None = None, thresholds: Mapping[str, float] | None = None,
                    **stage1_overrides) -> "CascadeSpotter":
        """A spotter for a cascade folder. `threshold`/`thresholds` set stage 2's (the event's)
        thresholds; the other overrides (stride_ms, smoothing_ms, min_count, fresh_frontend,
        min_level_dbfs) go to stage 1, whose threshold and refractory time are the cascade's and
        whose front-end is the cascade's `propose_frontend` unless fresh_frontend is given."""
        cascade = load_cascade(path)
        params = cascade.params
        if threshold is not None or thresholds:
            try:
                params = dataclasses.replace(params, threshold=params.threshold if threshold is None else threshold,
                                             thresholds={**params.thresholds, **(thresholds or {})}).checked()
            except (TypeError, ValueError) as exc:
                raise InputError(f"bad detection setting: {exc}") from None
        stage1_overrides.pop("refractory_ms", None)
        spotter = cls(cascade, variant=variant, keywords=keywords, threads=threads, params=params, **stage1_overrides)
        log.info("loaded cascade %s: %s proposes at %.2f, %s confirms at %.2f", cascade.root, cascade.propose.name,
                 params.propose_threshold, cascade.confirm.name, params.threshold)
        return spotter

    def reset(self) -> None:
        """Start a new stream: both stages' state, the audio ring and pending candidates cleared."""
        self.stage1.reset()
        self.confirmer.reset()
        self._ring = np.zeros(self._ring_size, np.int16)
        self._samples = 0  # stream samples seen; the ring ends at this sample
        self._stream_end: int | None = None
        self._pending: list[Detection] = []  # candidates waiting for their delay

    @property
    def time(self) -> float:
        return self._samples / self.sample_rate

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.stage1.close()
            self.head = self.features = None

    def feed(self, samples: np.ndarray | bytes) -> list[Detection]:
        """Consume int16 samples of any length; the confirmed detections they completed."""
        samples = self._samples_in(samples)
        detections = []
        for start in range(0, len(samples), PIECE):
            piece = samples[start:start + PIECE]
            self._ring = np.concatenate([self._ring[len(piece):], piece])
            self._samples += len(piece)
            self._pending += self.stage1.feed(piece)
            detections += self._confirm_due()
        return detections

    def finish(self) -> list[Detection]:
        """End the stream: stage 1 decides on its last windows (`KeywordSpotter.finish`), and every
        candidate is confirmed on the stream's audio followed by digital silence; then reset."""
        if self._closed:
            raise ValueError("spotter is closed")
        self._stream_end = self._samples
        self._pending += self.stage1.finish()
        detections = []
        while self._pending:  # the silence after the end, fed until the last candidate is due
            due = self._due(self._pending[-1])
            piece = np.zeros(min(PIECE, max(due - self._samples, 0)), np.int16)
            self._ring = np.concatenate([self._ring[len(piece):], piece])
            self._samples += len(piece)
            detections += self._confirm_due()
        self.reset()
        return detections

    def _due(self, candidate: Detection) -> int:
        return int(round(candidate.time * self.sample_rate)) + self._delay

    def _confirm_due(self) -> list[Detection]:
        detections = []
        while self._pending and self._due(self._pending[0]) <= self._samples:
            candidate = self._pending.pop(0)
            end = self._due(candidate)
            audio = self._ring[len(self._ring) - (self._samples - end) - self.confirm_samples:
                               len(self._ring) - (self._samples - end)]
            posteriors = self.score(audio)
            self.candidates += 1
            now = end / self.sample_rate
            if self.on_candidate:
                self.on_candidate(now, candidate.keyword, candidate.score, posteriors)
            decision = self.confirmer.decide(now, posteriors)
            if decision:
                detections.append(Detection(decision[0], decision[1], now))
        return detections

    def score(self, audio: np.ndarray) -> np.ndarray:
        """Stage 2 on `confirm_samples` of audio: each label's largest posterior over the
        2 * shift + 1 head windows (label order of the confirm bundle)."""
        embeddings = emb.EmbeddingStream(self.features).process(audio)
        windows = np.stack([embeddings[i:i + self.frames] for i in range(len(embeddings) - self.frames + 1)])
        return self.head.predict(windows).max(axis=0)
