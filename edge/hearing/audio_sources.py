"""Where live audio comes from: a microphone (PyAudio), a wav file, or raw PCM on stdin.

Every source yields 16 kHz mono int16 chunks from `chunks(stop)` until the audio ends or the
`stop` event is set; each wait is short, so a signal handler that sets `stop` ends the stream
within half a second. The microphone source never crashes on a bad device: input overflows are
counted and logged, and a device that cannot be opened or stops delivering audio (unplugged,
taken by another program) is reopened with exponential back-off.
"""
from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import threading
import time
from collections.abc import Callable, Iterator
from math import ceil, gcd
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from edge.hearing.audio import MAX_RATE, MIN_RATE, SAMPLE_RATE, check_finite, open_audio, resample, to_int16
from edge.core.errors import InputError, TinysenseError
from edge.core.native import quiet_native_stderr

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  #: longest a source blocks before looking at the stop event again


class AudioSource(Protocol):
    description: str

    def chunks(self, stop: threading.Event) -> Iterator[np.ndarray]: ...


class StreamResampler:
    """`scipy.signal.resample_poly` on a stream, with the same output as on the whole signal.

    Input is cut into blocks of a whole number of polyphase periods (about 100 ms); each block is
    resampled together with its neighbours and only its own span is kept, so the filter sees the
    same context as in one call. The price is one block of delay.
    """

    def __init__(self, from_rate: int, to_rate: int = SAMPLE_RATE):
        self.from_rate, self.to_rate = int(from_rate), int(to_rate)
        common = gcd(self.from_rate, self.to_rate)
        self._up, self._down = self.to_rate // common, self.from_rate // common
        self._block = self._down * ceil(self.from_rate / 10 / self._down)
        self._pending = np.zeros(0, np.int16)
        self._previous = np.zeros(self._block, np.int16)
        self._current: np.ndarray | None = None

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Feed int16 samples at `from_rate`; returns whatever output is complete (int16)."""
        if self.from_rate == self.to_rate:
            return samples
        self._pending = np.concatenate([self._pending, samples])
        out = []
        while len(self._pending) >= self._block:
            block, self._pending = self._pending[:self._block], self._pending[self._block:]
            if self._current is not None:
                joined = np.concatenate([self._previous, self._current, block])
                start = self._block * self._up // self._down
                out.append(resample(joined, self.from_rate, self.to_rate)[start:2 * start])
                self._previous = self._current
            self._current = block
        return np.concatenate(out) if out else np.zeros(0, np.int16)

    def flush(self) -> np.ndarray:
        """At the end of a stream, the output still held back (one block of delay and the last,
        unfinished block), as the whole-signal resampler ends: on silence beyond the last sample."""
        if self.from_rate == self.to_rate:
            return np.zeros(0, np.int16)
        held = len(self._pending) + (len(self._current) if self._current is not None else 0)
        skip = 0
        if self._current is None:  # under one block so far: silence before it, as resample_poly assumes
            self._current, skip = np.zeros(self._block, np.int16), self._block * self._up // self._down
        out = self.process(np.zeros(2 * self._block - len(self._pending), np.int16))
        return out[skip:skip - (-held * self._up // self._down)]


PCM_WIDTHS = (1, 2, 3, 4)  #: bytes per sample: unsigned 8-bit (as in wav), signed 16-, 24- and 32-bit


def pcm_to_int16(data: bytes, width: int) -> np.ndarray:
    """Little-endian integer PCM, `width` bytes a sample (`len(data)` a multiple of it), as int16.

    Keeps the top 16 bits of each sample and moves 8-bit audio up by 8 bits, as `audioop.lin2lin`
    (what Wyoming's `AudioChunkConverter` calls) converts widths; 8-bit is unsigned (128 = silence)."""
    raw = np.frombuffer(data, np.uint8)
    if width == 1:
        return (raw.astype(np.int16) - 128) << 8
    return np.ascontiguousarray(raw.reshape(-1, width)[:, width - 2:]).view("<i2").ravel().astype(np.int16, copy=False)


def to_mono(samples: np.ndarray, channels: int, channel: int | None = None) -> np.ndarray:
    """Interleaved int16 samples of `channels` channels as one channel: `channel` (0-based) alone,
    else the rounded mean of all of them (as `read_audio` mixes a file down)."""
    if channels == 1:
        return samples
    frames = samples.reshape(-1, channels)
    if channel is not None:
        return np.ascontiguousarray(frames[:, channel])
    return np.rint(frames.mean(axis=1)).astype(np.int16)


class PcmDecoder:
    """Interleaved little-endian PCM arriving in pieces of any size -> 16 kHz mono int16.

    A frame (`width * channels` bytes) split between two pieces is carried over to the next, so
    audio cut at odd byte counts decodes to the same samples as audio cut at frame boundaries;
    an unfinished frame at the very end is dropped. Widths as `pcm_to_int16`, channels as
    `to_mono`, rates through `StreamResampler`. An unusable format (width not 1-4, channels < 1,
    rate outside 4000-384000 Hz, `channel` not one of the channels) raises InputError.
    """

    def __init__(self, rate: int, width: int = 2, channels: int = 1, channel: int | None = None):
        def whole(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        if not (whole(width) and width in PCM_WIDTHS):
            raise InputError(f"audio width {width!r} cannot be used: bytes per sample must be 1, 2, 3 or 4")
        if not (whole(channels) and channels >= 1):
            raise InputError(f"audio channels {channels!r} cannot be used: must be a whole number >= 1")
        if not (whole(rate) and MIN_RATE <= rate <= MAX_RATE):
            raise InputError(f"audio rate {rate!r} cannot be used: must be a whole number of Hz from {MIN_RATE} to {MAX_RATE}")
        if channel is not None and not 0 <= channel < channels:
            raise InputError(f"channel {channel} is not one of the {channels} channel(s) (numbered from 0)")
        self.format = (rate, width, channels)  #: (rate in Hz, bytes per sample, channels)
        self.channel = channel
        self._frame_bytes = width * channels
        self._partial = b""
        self._resampler = StreamResampler(rate)

    def process(self, data: bytes) -> np.ndarray:
        """The int16 samples at 16 kHz that `data` completes (possibly none)."""
        data = self._partial + bytes(data)
        whole = len(data) - len(data) % self._frame_bytes
        data, self._partial = data[:whole], data[whole:]
        if not data:  # under one frame so far
            return np.zeros(0, np.int16)
        _, width, channels = self.format
        return self._resampler.process(to_mono(pcm_to_int16(data, width), channels, self.channel))

    def flush(self) -> np.ndarray:
        """At the end of the stream: the samples the resampler still holds (see StreamResampler.flush)."""
        self._partial = b""
        return self._resampler.flush()


class WavSource:
    """A wav/flac file (any rate or channel count, converted), paced in real time unless `fast`.

    Read block by block, so an hour-long recording takes no more memory than a second of it."""

    def __init__(self, path: str | Path, *, fast: bool = False, chunk_ms: int = 100):
        self.path = Path(path)
        with open_audio(self.path) as audio:
            frames, self.rate, self.channels = audio.frames, audio.samplerate, audio.channels
        self.fast = fast
        self.block = max(1, self.rate * chunk_ms // 1000)
        if self.rate != SAMPLE_RATE or self.channels > 1:
            log.info("%s: %d Hz, %d channel(s), converted to %d Hz mono while it plays",
                     self.path, self.rate, self.channels, SAMPLE_RATE)
        self.description = f"wav file {self.path} ({frames / self.rate:.1f} s, {'fast' if fast else 'real time'})"

    def chunks(self, stop: threading.Event) -> Iterator[np.ndarray]:
        start, played = time.monotonic(), 0
        resampler = StreamResampler(self.rate)
        with open_audio(self.path) as audio:
            for block in audio.blocks(blocksize=self.block, dtype="float64", always_2d=True):
                played += len(block)
                if not self.fast:
                    # Release each chunk when its last sample would have been spoken.
                    if stop.wait(max(0.0, start + played / self.rate - time.monotonic())):
                        return
                if stop.is_set():
                    return
                yield resampler.process(to_int16(check_finite(block, self.path).mean(axis=1)))
        yield resampler.flush()


class StdinSource:
    """Raw little-endian 16-bit mono PCM on a pipe (e.g. `arecord -t raw -f S16_LE -r 16000 -c 1 |`)."""

    def __init__(self, stream: BinaryIO, *, rate: int = SAMPLE_RATE, chunk_ms: int = 100):
        self.fd = stream.fileno()
        self.chunk_bytes = 2 * rate * chunk_ms // 1000
        self.decoder = PcmDecoder(rate)
        self.description = f"raw PCM on stdin ({rate} Hz, 16-bit mono)"

    def chunks(self, stop: threading.Event) -> Iterator[np.ndarray]:
        while not stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], POLL_SECONDS)
            if not ready:
                continue
            data = os.read(self.fd, self.chunk_bytes)
            if not data:
                yield self.decoder.flush()  # the resampler's last block, or the end is lost
                return
            yield self.decoder.process(data)  # a sample split between two reads is carried over


class MicrophoneSource:
    """A PyAudio capture device by index or by (part of its) name; None is the default input.

    Opens at 16 kHz when the device supports it, else at its native rate, resampled; with one
    channel when the device allows, else with 2 or all of them, mixed down to mono, or only
    `channel` (0-based) when one is given. Audio comes through PyAudio's callback into a queue,
    so a slow consumer shows up as a logged overflow rather than a stalled device, and a silent
    device is detected by a timeout. A `channel` the device does not have raises InputError.
    """

    def __init__(self, device: int | str | None = None, *, rate: int | None = None, channel: int | None = None,
                 chunk_ms: int = 100, stall_seconds: float = 5.0, max_backoff: float = 30.0, pyaudio_module=None,
                 sleep: Callable[[threading.Event, float], bool] | None = None):
        if pyaudio_module is None:
            try:
                import pyaudio as pyaudio_module
            except ImportError:
                raise TinysenseError("the microphone needs PyAudio: sudo apt install portaudio19-dev && "
                                     "pip install 'tinysense[edge]' (or use --wav / --stdin)") from None
        self.pyaudio = pyaudio_module
        self.device, self.rate, self.channel, self.chunk_ms = device, rate, channel, chunk_ms
        self.stall_seconds, self.max_backoff = stall_seconds, max_backoff
        self.sleep = sleep or (lambda stop, seconds: stop.wait(seconds))
        self.description = f"microphone {'(default)' if device is None else device!r}"
        self.overflows = 0
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=50)
        self._audio = self._stream = None

    # -- device handling --------------------------------------------------------------------------
    def _find_device(self) -> int | None:
        if self.device is None:
            return None
        devices = [self._audio.get_device_info_by_index(i) for i in range(self._audio.get_device_count())]
        inputs = [d for d in devices if d.get("maxInputChannels", 0) > 0]
        if isinstance(self.device, int) or str(self.device).isdigit():
            index = int(self.device)
            if any(d["index"] == index for d in inputs):
                return index
        else:
            matches = [d for d in inputs if str(self.device).lower() in d["name"].lower()]
            if matches:
                return matches[0]["index"]
        names = ", ".join(f"{d['index']}: {d['name']}" for d in inputs) or "none"
        raise OSError(f"no input device {self.device!r} (input devices: {names})")

    def _choose_format(self, info: dict) -> tuple[int, int]:
        """(rate, channels) to open `info`'s device with: the first it accepts of 1 channel, 2 and
        its most (`maxInputChannels`; more than `channel` when one is asked for), each at `rate`
        if one was given, else at 16 kHz, else at its native rate. Many USB arrays and 2-mic HATs
        refuse one channel (PortAudio -9998, "Invalid number of channels")."""
        most = max(1, int(info.get("maxInputChannels") or 1))
        if self.channel is not None and self.channel >= most:
            raise InputError(f"channel {self.channel} is not one of the {most} input channel(s) of {self.description} "
                             f"({info['name']}), numbered from 0")
        counts = [c for c in dict.fromkeys((1, 2, most)) if (self.channel or 0) < c <= most]
        rates = [self.rate] if self.rate else list(dict.fromkeys((SAMPLE_RATE, int(info["defaultSampleRate"]))))
        refusal = "refused"
        for channels in counts:
            for rate in rates:
                try:
                    if self._audio.is_format_supported(rate, input_device=info["index"], input_channels=channels,
                                                       input_format=self.pyaudio.paInt16):
                        return rate, channels
                except ValueError as exc:  # PyAudio's answer for an unsupported format
                    refusal = str(exc.args[0]) if exc.args else refusal
        raise OSError(f"{info['name']} opens with none of {'/'.join(map(str, counts))} channel(s) "
                      f"at {'/'.join(map(str, rates))} Hz ({refusal})")

    def _open(self) -> None:
        with quiet_native_stderr():  # PortAudio's ALSA probing prints pages of harmless warnings
            self._audio = self.pyaudio.PyAudio()
        index = self._find_device()
        info = (self._audio.get_device_info_by_index(index) if index is not None
                else self._audio.get_default_input_device_info())
        rate, channels = self._choose_format(info)
        self._decoder = PcmDecoder(rate, 2, channels, self.channel)
        self._stream = self._audio.open(format=self.pyaudio.paInt16, channels=channels, rate=rate, input=True,
                                        input_device_index=index, frames_per_buffer=rate * self.chunk_ms // 1000,
                                        stream_callback=self._on_audio)
        mono = ("" if channels == 1 and self.channel is None else
                f", channel {self.channel} taken" if self.channel is not None else ", mixed down to mono")
        log.info("opened %s (%s) at %d Hz%s, %d channel(s)%s", self.description, info["name"], rate,
                 "" if rate == SAMPLE_RATE else " (resampled to 16 kHz)", channels, mono)

    def _close(self) -> None:
        for action in (lambda: self._stream.stop_stream(), lambda: self._stream.close(), lambda: self._audio.terminate()):
            with contextlib.suppress(Exception):
                action()
        self._stream = self._audio = None
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()

    def _on_audio(self, data: bytes, frame_count: int, time_info, status: int):
        """PyAudio's callback thread: hand the audio over; never raise here."""
        if status & self.pyaudio.paInputOverflow:
            self.overflows += 1
        try:
            # Blocking briefly gives back-pressure to devices faster than real time (files, tests).
            self._queue.put(data, timeout=1.0)
        except queue.Full:
            self.overflows += 1
        return (None, self.pyaudio.paContinue)

    def _open_with_backoff(self, stop: threading.Event) -> bool:
        delay = 1.0
        while not stop.is_set():
            try:
                self._open()
                return True
            except (OSError, ValueError) as exc:
                self._close()
                log.warning("cannot open %s (%s); retrying in %.0f s", self.description, exc, delay)
                if self.sleep(stop, delay):
                    return False
                delay = min(delay * 2, self.max_backoff)
        return False

    # -- the stream -----------------------------------------------------------------------------
    def chunks(self, stop: threading.Event) -> Iterator[np.ndarray]:
        reported = 0
        try:
            while self._open_with_backoff(stop):
                last_audio = time.monotonic()
                while not stop.is_set():
                    try:
                        data = self._queue.get(timeout=POLL_SECONDS)
                    except queue.Empty:
                        active = self._stream is not None and self._stream.is_active()
                        if not active or time.monotonic() - last_audio > self.stall_seconds:
                            log.warning("%s stopped delivering audio; reopening", self.description)
                            break
                        continue
                    last_audio = time.monotonic()
                    if self.overflows != reported:
                        log.warning("input overflow: audio lost %d time(s) so far (CPU too slow or busy?)", self.overflows)
                        reported = self.overflows
                    yield self._decoder.process(data)
                self._close()
        finally:
            self._close()


def open_source(*, wav: str | Path | None = None, fast: bool = False, stdin: BinaryIO | None = None,
                device: int | str | None = None, rate: int | None = None, channel: int | None = None) -> AudioSource:
    """The one source the flags ask for (wav, else stdin, else a microphone, of which `channel` alone
    if given)."""
    if wav is not None:
        return WavSource(wav, fast=fast)
    if stdin is not None:
        if rate is not None and rate <= 0:
            raise InputError(f"--rate must be positive, got {rate}")
        return StdinSource(stdin, rate=rate or SAMPLE_RATE)
    return MicrophoneSource(device, rate=rate, channel=channel)
