"""Audio files in and out: everything becomes 16 kHz mono int16, the front-end's only input.

Public API:
    SAMPLE_RATE = 16000
    read_audio(path) -> np.ndarray            int16, mono, 16 kHz (converted with a log line)
    resample(samples, from_rate, to_rate)     scipy.signal.resample_poly; int16 in -> int16 out
    to_int16(samples) -> np.ndarray           float in [-1, 1] or int16 -> int16, clipped
    write_wav(path, samples, rate=16000)      atomic 16-bit PCM wav (edge.core.fileio)

Bad input (missing, empty, unreadable or non-audio file) raises InputError naming the file.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from edge.core.errors import InputError
from edge.core.fileio import atomic_write_bytes

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000

#: conversions already logged, so a folder of 44.1 kHz files says so once, not per file
_logged: set[str] = set()


def _log_once(key: str, message: str) -> None:
    if key not in _logged:
        _logged.add(key)
        log.info(message)


def to_int16(samples: np.ndarray) -> np.ndarray:
    """int16 unchanged; floats (full scale = 1.0) scaled, rounded and clipped to int16."""
    samples = np.asarray(samples)
    if samples.dtype == np.int16:
        return samples
    if np.issubdtype(samples.dtype, np.integer):
        return np.clip(samples, -32768, 32767).astype(np.int16)
    return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype(np.int16)


def resample(samples: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling (anti-aliased); int16 in gives int16 out, floats stay float."""
    samples = np.asarray(samples)
    if from_rate <= 0 or to_rate <= 0:
        raise InputError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    if from_rate == to_rate or samples.size == 0:
        return samples
    common = gcd(int(from_rate), int(to_rate))
    out = resample_poly(samples.astype(np.float64), to_rate // common, from_rate // common, axis=0)
    if samples.dtype == np.int16:
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)
    return out.astype(samples.dtype if np.issubdtype(samples.dtype, np.floating) else np.float64)


#: Sample rates a recording can plausibly have; anything else is a damaged header.
MIN_RATE, MAX_RATE = 4000, 384000


@contextlib.contextmanager
def open_audio(path: str | os.PathLike) -> Iterator[sf.SoundFile]:
    """An open wav/flac whose header passed the checks; a one-line InputError when the file is
    missing, unreadable (now or while it is read), empty or has an implausible rate (a 7 Hz
    header would resample into garbage)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"audio file not found (or not a file): {path}")
    try:
        with sf.SoundFile(str(path)) as audio:
            if audio.frames <= 0:
                raise InputError(f"audio file is empty (no samples): {path}")
            if not MIN_RATE <= audio.samplerate <= MAX_RATE:
                raise InputError(f"{path}: sample rate {audio.samplerate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz; "
                                 f"is the header damaged?")
            yield audio
    except (sf.SoundFileError, RuntimeError, ValueError) as exc:
        raise InputError(f"cannot read audio file {path}: {getattr(exc, 'error_string', None) or exc}") from None


def check_finite(samples: np.ndarray, path: Path) -> np.ndarray:
    if not np.isfinite(samples).all():
        raise InputError(f"{path}: float samples that are NaN or infinite")
    return samples


def read_audio(path: str | os.PathLike) -> np.ndarray:
    """Read a wav/flac (or anything libsndfile reads) as 16 kHz mono int16."""
    path = Path(path)
    with open_audio(path) as audio:
        data, rate = audio.read(dtype="float64", always_2d=True), audio.samplerate
    check_finite(data, path)
    if data.shape[1] > 1:
        _log_once(f"channels {data.shape[1]}", f"mixing {data.shape[1]} channels to mono ({path}, logged once)")
        data = data.mean(axis=1, keepdims=True)
    if rate != SAMPLE_RATE:
        _log_once(f"rate {rate}", f"resampling {rate} Hz to {SAMPLE_RATE} Hz ({path}, logged once)")
        data = resample(data, rate, SAMPLE_RATE)
    return to_int16(data[:, 0])


def write_wav(path: str | os.PathLike, samples: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """Write 16-bit PCM mono wav atomically (temp file + rename)."""
    buffer = io.BytesIO()
    sf.write(buffer, to_int16(samples), int(rate), format="WAV", subtype="PCM_16")
    return atomic_write_bytes(path, buffer.getvalue())


def fit_clip(samples: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad at the end or crop to exactly `length` samples (Speech Commands clips can be short)."""
    if len(samples) >= length:
        return samples[:length]
    return np.pad(samples, (0, length - len(samples)))


def speech_bounds(clip: np.ndarray, margin: int = 0) -> tuple[int, int]:
    """(first, end) sample of the 10 ms frames within 30 dB of the clip's loudest: where the word
    is, widened by `margin` samples each side (kept inside the clip); the whole clip when it has
    no whole frame."""
    frames = clip[:len(clip) // 160 * 160].astype(np.float64).reshape(-1, 160)
    if not len(frames):
        return 0, len(clip)
    energy = 10 * np.log10((frames ** 2).mean(axis=1) + 1e-9)
    loud = np.flatnonzero(energy > energy.max() - 30)
    return max(0, int(loud[0]) * 160 - margin), min(len(clip), (int(loud[-1]) + 1) * 160 + margin)
