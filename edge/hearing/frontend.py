"""The keyword-spotting audio front-end: TFLite Micro's microfrontend through pymicro-features.

One class, `Frontend`, turns 16 kHz mono int16 audio into 40-channel log filterbank frames
(30 ms window, 10 ms step; 1 s -> 98 x 40). The trainer computes its features with the very
same class, so training and serving never disagree (the train/serve skew that made ARM's
ML-KWS-for-MCU "accurate on PC, poor on board"). The microcontroller runs the same C code.

`FrontendParams` records every setting that changes the numbers; it is written into each KWS
bundle's manifest (`frontend`), and `check_bundle_frontend` refuses a bundle made with
settings this runtime does not compute.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymicro_features import MicroFrontend

from edge.hearing.audio import fit_clip
from edge.core.errors import BundleError, InputError


@dataclass(frozen=True)
class FrontendParams:
    """Settings of the microfrontend (names follow TFLite Micro's `FrontendConfig`).

    pymicro-features compiles these values in (its `init_cfg`), so `RUNTIME_PARAMS` below is
    the only configuration this runtime can compute; the dataclass exists to record and
    compare it, in manifests and firmware headers.
    """

    sample_rate: int = 16000  #: Hz; input must be mono int16 at this rate
    window_ms: int = 30  #: analysis window length
    step_ms: int = 10  #: hop between frames
    channels: int = 40  #: mel filterbank channels = features per frame
    clip_ms: int = 1000  #: length of one classifier input
    lower_band_hz: float = 125.0  #: filterbank lower edge
    upper_band_hz: float = 7500.0  #: filterbank upper edge
    noise_smoothing_bits: int = 10  #: noise reduction fixed-point precision
    noise_even_smoothing: float = 0.025  #: noise estimate smoothing, even channels
    noise_odd_smoothing: float = 0.06  #: noise estimate smoothing, odd channels
    noise_min_signal_remaining: float = 0.05  #: floor of the noise-reduced signal
    pcan_enabled: bool = True  #: per-channel amplitude normalisation (automatic gain)
    pcan_strength: float = 0.95
    pcan_offset: float = 80.0
    pcan_gain_bits: int = 21
    log_scale_enabled: bool = True
    log_scale_shift: int = 6
    feature_scale: float = 0.0390625  #: uint16 frontend output x this = float feature (0 to ~26)
    #: How a clip's features are computed (not a microfrontend setting): False, from a fresh
    #: state; True, after a warm-up on one clip length of the clip's own background (its
    #: quietest 100 ms, repeated), so the noise estimate and gain have settled as in a running
    #: stream that heard the room before the word (the daemon's cheap continuous front-end).
    clip_warmup: bool = False

    @property
    def window_samples(self) -> int:
        return self.sample_rate * self.window_ms // 1000

    @property
    def step_samples(self) -> int:
        return self.sample_rate * self.step_ms // 1000

    @property
    def clip_samples(self) -> int:
        return self.sample_rate * self.clip_ms // 1000

    @property
    def frames_per_clip(self) -> int:
        """Frames a clip of `clip_ms` yields: (16000 - 480) // 160 + 1 = 98."""
        return (self.clip_samples - self.window_samples) // self.step_samples + 1

    @property
    def feature_shape(self) -> tuple[int, int]:
        """One classifier input: (frames, channels), 98 x 40 by default."""
        return (self.frames_per_clip, self.channels)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str | Path = "front-end parameters") -> "FrontendParams":
        """Parse a manifest's `frontend` object; unknown or missing keys are an error, not a guess."""
        if not isinstance(data, dict):
            raise BundleError(f"{source}: 'frontend' must be an object, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        data = {**LATER_KEYS, **data}
        unknown = sorted(set(data) - set(fields))
        missing = sorted(set(fields) - set(data))
        if unknown or missing:
            parts = ([f"unknown keys {', '.join(unknown)}"] if unknown else []) + (
                [f"missing keys {', '.join(missing)}"] if missing else [])
            raise BundleError(f"{source}: front-end parameters have {'; '.join(parts)}")
        values = {}
        for name, default in cls().to_dict().items():
            value = data[name]
            wanted = (int, float) if isinstance(default, float) else type(default)
            if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, wanted):
                raise BundleError(f"{source}: front-end parameter {name}={value!r} is not a {type(default).__name__}")
            values[name] = type(default)(value)
        return cls(**values)


#: The only configuration pymicro-features computes (see its `init_cfg`).
RUNTIME_PARAMS = FrontendParams()
#: Keys added after the first bundles were written, with the value those bundles meant.
LATER_KEYS = {"clip_warmup": False}
#: Fields that choose how this module uses the microfrontend, rather than configure it.
USAGE_FIELDS = ("clip_warmup",)


def differences(params: FrontendParams) -> list[str]:
    """The microfrontend settings in `params` that pymicro-features does not compute."""
    runtime = RUNTIME_PARAMS.to_dict()
    return [f"{k}={v} (runtime {runtime[k]})" for k, v in params.to_dict().items()
            if k not in USAGE_FIELDS and v != runtime[k]]


def check_bundle_frontend(frontend: dict | None, source: str | Path) -> FrontendParams:
    """Refuse a model trained on features this runtime does not compute; name what differs."""
    if frontend is None:
        raise BundleError(f"{source}: keyword-spotting bundle has no 'frontend' parameters; re-export it")
    params = FrontendParams.from_dict(frontend, source)
    diffs = differences(params)
    if diffs:
        raise BundleError(f"{source}: model was trained with other front-end parameters: {', '.join(diffs)}")
    return params


class StepBuffer:
    """Int16 samples of any chunk size in, whole steps of `step` samples out; the rest is held.

    What every stepped stream needs (the microfrontend's 10 ms steps, the speech embedding's
    80 ms steps), so the result is the same whatever chunk sizes the audio arrives in.
    """

    def __init__(self, step: int):
        self.step = step
        self.reset()

    def reset(self) -> None:
        self._held = np.zeros(0, np.int16)

    def __len__(self) -> int:
        """Samples held back (always fewer than one step)."""
        return len(self._held)

    def take(self, samples: np.ndarray | bytes) -> np.ndarray:
        """The held samples plus `samples` (int16 array or little-endian bytes), cut to whole steps
        (a multiple of `step` samples, maybe 0); the remainder is held for the next call."""
        samples = as_int16(samples)
        buffer = np.concatenate([self._held, samples]) if len(self._held) else samples
        usable = len(buffer) - len(buffer) % self.step
        self._held = buffer[usable:].copy()
        return buffer[:usable]


class Frontend:
    """Stateful microfrontend for a stream: feed int16 chunks of any size, get whole frames.

    The microfrontend smooths a noise estimate and a gain across frames, so features depend on
    what came before; `reset()` starts a fresh stream. Nothing here resets implicitly.
    """

    def __init__(self, params: FrontendParams = RUNTIME_PARAMS):
        if differences(params):
            raise InputError(f"pymicro-features computes only its built-in front-end, not {', '.join(differences(params))}")
        self.params = params
        self._frontend = MicroFrontend()
        self._steps = StepBuffer(params.step_samples)

    def reset(self) -> None:
        """Forget all state: noise estimate, gain, partial window and leftover samples."""
        self._frontend.reset()
        self._steps.reset()

    def background(self, clip: np.ndarray) -> np.ndarray:
        """One clip length of the clip's quietest 100 ms repeated: the room before the word."""
        quiet = quietest_window(clip, self.params.sample_rate // 10)
        return np.resize(quiet, self.params.clip_samples)

    @property
    def pending_samples(self) -> int:
        """Samples received but not yet consumed (always fewer than one step)."""
        return len(self._steps)

    def process(self, samples: np.ndarray | bytes) -> np.ndarray:
        """Consume int16 samples (array or little-endian bytes); return the new frames (n, channels)."""
        step = self.params.step_samples
        data = self._steps.take(samples).astype("<i2", copy=False).tobytes()
        frames = []
        # process_samples eats exactly one step (160 samples) per call and emits a frame once
        # a full window has been seen.
        for start in range(0, len(data), 2 * step):
            output = self._frontend.process_samples(data[start:start + 2 * step])
            if output.features:
                frames.append(output.features)
        return np.asarray(frames, dtype=np.float32).reshape(len(frames), self.params.channels)

    def clip_features(self, clip: np.ndarray) -> np.ndarray:
        """Features of one clip: pad/crop to `clip_ms`, reset, (warm up,) process, reset.

        With `clip_warmup` the clip follows `background(clip)` and its last `frames_per_clip`
        frames are kept: exactly what a continuous front-end gives when the clip arrives after it.
        Used for training and evaluation; a stream must not call it (it resets the state).
        """
        clip = fit_clip(as_int16(clip), self.params.clip_samples)
        self.reset()
        if self.params.clip_warmup:
            features = self.process(np.concatenate([self.background(clip), clip]))[-self.params.frames_per_clip:]
        else:
            features = self.process(clip)
        self.reset()
        return features


def quietest_window(samples: np.ndarray, length: int) -> np.ndarray:
    """The `length`-sample window of `samples` with the least energy (steps of a quarter window)."""
    if len(samples) <= length:
        return samples
    hop = max(1, length // 4)
    starts = np.arange(0, len(samples) - length + 1, hop)
    energy = np.cumsum(np.concatenate([[0.0], samples.astype(np.float64) ** 2]))
    best = starts[np.argmin(energy[starts + length] - energy[starts])]
    return samples[best:best + length]


def as_int16(samples: np.ndarray | bytes) -> np.ndarray:
    """View mono int16 audio as a 1-D array; anything else is an InputError."""
    if isinstance(samples, (bytes, bytearray, memoryview)):
        if len(samples) % 2:
            raise InputError(f"audio bytes must be 16-bit samples; got an odd byte count {len(samples)}")
        return np.frombuffer(samples, dtype="<i2")
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        raise InputError(f"audio must be int16 samples, got {samples.dtype}")
    if samples.ndim != 1:
        raise InputError(f"audio must be mono (1-D), got shape {samples.shape}")
    return samples


def clips_features(clips: Iterable[np.ndarray], params: FrontendParams = RUNTIME_PARAMS) -> np.ndarray:
    """Features of many clips, each from a fresh state: (N, frames, channels) float32."""
    frontend = Frontend(params)
    features = [frontend.clip_features(clip) for clip in clips]
    return np.stack(features) if features else np.zeros((0, *params.feature_shape), np.float32)
