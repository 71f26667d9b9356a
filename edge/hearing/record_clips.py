"""`tinysense record-clips`: record a few 1 s clips of a word from the microphone, to enrol a custom
wake word (`tinysense train kws --arch embedding --words WORD --enrol DIR`).

For each clip it prompts, records a take of `--take-seconds` (default 2 s, so an early or late word
still fits), keeps the loudest `--seconds` of it (the word, centred) and writes it atomically as
`DIR/<word>_<n>.wav` (16 kHz mono int16; spaces in the word become '-'; numbering continues after
the clips already there, nothing is overwritten). A take without speech is refused and recorded
again: its loudest 100 ms must reach `--min-level-dbfs` and stand `MIN_CONTRAST_DB` above its
quietest 100 ms (a steady fan or hum is not a word).

Public API:
    loudest_window(samples, length) -> int16 (length,)   the loudest stretch, centred; short ones padded
    take_problem(clip, min_level_dbfs) -> str | None      why a take holds no speech, or None
    clip_prefix(word) -> str, clip_name(word, n) -> str
    record_clips(source, out, word, count, ...) -> list[Path]
"""
from __future__ import annotations

import argparse
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from edge.core.argtypes import non_negative_int, positive_float, positive_int
from edge.core.errors import InputError
from edge.hearing.audio import SAMPLE_RATE, write_wav

#: The loudest 100 ms of a take must be this far above its quietest 100 ms to count as speech, and
#: reach MIN_LEVEL_DBFS (default). On the Speech Commands dev clips (real phones and laptops): the
#: words' loudest 100 ms lie at -38 to -2 dBFS (median -15), 38 of 2545 word clips have less
#: contrast than this, and 183 of the 189 `_silence_` noise windows are refused.
MIN_CONTRAST_DB = 15.0
MIN_LEVEL_DBFS = -50.0
#: Takes of one clip before giving up.
ATTEMPTS = 3
_WORD = re.compile(r"^[a-z']+( [a-z']+)*$")


def loudest_window(samples: np.ndarray, length: int) -> np.ndarray:
    """`length` samples of int16 `samples` centred on the energy centroid of their loudest stretch
    (searched in 10 ms steps), so a word anywhere in a longer take ends up in the middle of the
    clip (as far as the take allows); a shorter input is centred in zeros."""
    samples = np.asarray(samples, np.int16)
    if len(samples) <= length:
        start = (length - len(samples)) // 2
        out = np.zeros(length, np.int16)
        out[start:start + len(samples)] = samples
        return out
    power = samples.astype(np.float64) ** 2
    energy = np.concatenate([[0.0], np.cumsum(power)])
    starts = np.append(np.arange(0, len(samples) - length + 1, SAMPLE_RATE // 100), len(samples) - length)
    best = int(starts[np.argmax(energy[starts + length] - energy[starts])])
    inside = power[best:best + length]
    centre = best + int(np.dot(np.arange(length), inside) / max(inside.sum(), 1e-9))
    start = min(max(centre - length // 2, 0), len(samples) - length)
    return samples[start:start + length].copy()


def _levels_dbfs(samples: np.ndarray, window: int = SAMPLE_RATE // 10) -> np.ndarray:
    """RMS level in dBFS of each `window`-sample stretch (hops of a quarter window), DC removed."""
    x = samples.astype(np.float64) - float(np.mean(samples))
    starts = np.arange(0, max(1, len(x) - window + 1), window // 4)
    power = np.array([np.mean(x[s:s + window] ** 2) for s in starts])
    return 10 * np.log10(np.maximum(power, 1e-3) / 32768.0 ** 2)


def take_problem(clip: np.ndarray, min_level_dbfs: float = MIN_LEVEL_DBFS) -> str | None:
    """Why `clip` (int16) holds no word (too quiet, or no louder part), or None when it does."""
    levels = _levels_dbfs(clip)
    loudest, quietest = float(levels.max()), float(levels.min())
    if loudest < min_level_dbfs:
        return f"silent: its loudest 100 ms is at {loudest:.0f} dBFS, below {min_level_dbfs:.0f} dBFS"
    if loudest - quietest < MIN_CONTRAST_DB:
        return (f"no word in it: its loudest 100 ms is only {loudest - quietest:.0f} dB above its quietest "
                f"(speech stands out by {MIN_CONTRAST_DB:.0f} dB or more)")
    return None


def clip_prefix(word: str) -> str:
    """`<word>_` with the word's spaces as '-': how a clip's name says its word (`trainer.kws_enrol` reads it)."""
    return f"{word.replace(' ', '-')}_"


def clip_name(word: str, n: int) -> str:
    """`<word>_<n>.wav`, n with three digits or more."""
    return f"{clip_prefix(word)}{n:03d}.wav"


def _next_number(out: Path, word: str) -> int:
    prefix = clip_prefix(word)
    numbers = [int(p.stem[len(prefix):]) for p in out.glob(f"{prefix}*.wav") if p.stem[len(prefix):].isdigit()]
    return max(numbers, default=-1) + 1


class _Audio:
    """A source's chunks as consecutive stretches of exactly the asked length."""

    def __init__(self, chunks: Iterator[np.ndarray]):
        self.chunks, self.pending, self.received = chunks, np.zeros(0, np.int16), 0

    def take(self, samples: int) -> np.ndarray | None:
        """The next `samples` samples, or None when the source ends first."""
        parts = [self.pending]
        have = len(self.pending)
        for chunk in self.chunks if have < samples else ():
            parts.append(np.asarray(chunk, np.int16))
            self.received += len(chunk)
            have += len(parts[-1])
            if have >= samples:
                break
        audio = np.concatenate(parts)
        self.pending = audio[samples:]
        return audio[:samples] if len(audio) >= samples else None

    def close(self) -> None:
        getattr(self.chunks, "close", lambda: None)()  # a microphone's generator closes its device


def record_clips(source, out: Path, word: str, count: int, *, seconds: float = 1.0, take_seconds: float = 2.0,
                 pause_seconds: float = 1.0, min_level_dbfs: float = MIN_LEVEL_DBFS,
                 tell: Callable[[str], None] = print) -> list[Path]:
    """Record `count` clips of `word` from `source` (an `edge.hearing.audio_sources` source: 16 kHz
    int16 chunks) into the folder `out` (created); returns the files written.

    Before each take `pause_seconds` of audio are skipped (the prompt's reading time); a take is
    `take_seconds` long and its loudest `seconds` are kept. InputError for a bad word or lengths,
    a source that ends early, or `ATTEMPTS` takes in a row without speech (the clips saved so far
    stay).
    """
    word = " ".join(str(word).lower().split())
    if not _WORD.match(word):
        raise InputError(f"--word {word!r}: use letters, apostrophes and single spaces")
    if count < 1 or seconds <= 0 or take_seconds < seconds or pause_seconds < 0:
        raise InputError(f"need count >= 1, seconds > 0 and take-seconds >= seconds, got {count}, {seconds}, {take_seconds}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    audio, number, written = _Audio(iter(source.chunks(stop))), _next_number(out, word), []
    tell(f"recording {count} clip(s) of {word!r} from {source.description} into {out}")
    try:
        for n in range(1, count + 1):
            for attempt in range(1, ATTEMPTS + 1):
                tell(f"[{n}/{count}] get ready...")
                skipped = audio.take(round(pause_seconds * SAMPLE_RATE))
                tell(f"[{n}/{count}] say {word!r} now ({take_seconds:g} s)")
                take = audio.take(round(take_seconds * SAMPLE_RATE)) if skipped is not None else None
                if take is None:
                    raise InputError(f"{source.description}: no audio at all (see the warning above)" if not audio.received
                                     else f"{source.description}: the audio ended after {len(written)} of {count} clips")
                clip = loudest_window(take, round(seconds * SAMPLE_RATE))
                problem = take_problem(clip, min_level_dbfs)
                if problem is None:
                    written.append(write_wav(out / clip_name(word, number), clip))
                    number += 1
                    tell(f"[{n}/{count}] saved {written[-1]}")
                    break
                tell(f"[{n}/{count}] take {attempt} refused, {problem}")
            else:
                raise InputError(f"{source.description}: {ATTEMPTS} takes in a row without speech (check the "
                                 f"microphone, --device and --channel); {len(written)} clip(s) kept in {out}")
    finally:
        stop.set()
        audio.close()
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Example: tinysense record-clips --word computer --count 8 --out enrol/computer, then "
                     "tinysense train kws --arch embedding --words computer --enrol enrol/computer "
                     "--init-from models/computer --out models/computer-me")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the clips (created)")
    parser.add_argument("--word", required=True, help="the word to say, e.g. computer")
    parser.add_argument("--count", type=positive_int, default=8, help="clips to record (default: 8)")
    parser.add_argument("--device", default=None, metavar="N|NAME",
                        help="capture device index or part of its name (default: the system's default input)")
    parser.add_argument("--rate", type=positive_int, default=None,
                        help="capture rate in Hz, resampled to 16 kHz (default: 16000 if the device has it)")
    parser.add_argument("--channel", type=non_negative_int, default=None, metavar="N",
                        help="use only this channel of the device, numbered from 0 (default: mono or the mix)")
    parser.add_argument("--seconds", type=positive_float, default=1.0, help="length of each clip (default: 1.0)")
    parser.add_argument("--take-seconds", type=positive_float, default=2.0,
                        help="recording time per clip, of which the loudest --seconds are kept (default: 2.0)")
    parser.add_argument("--min-level-dbfs", type=float, default=MIN_LEVEL_DBFS, metavar="DB",
                        help=f"refuse a take whose loudest 100 ms is quieter than this (default: {MIN_LEVEL_DBFS:g})")


def run(args) -> int:
    from edge.hearing.audio_sources import MicrophoneSource

    # No retrying: a device that cannot be opened ends the session (its reason is logged).
    source = MicrophoneSource(args.device, rate=args.rate, channel=args.channel, sleep=lambda stop, seconds: True)
    record_clips(source, args.out, args.word, args.count, seconds=args.seconds, take_seconds=args.take_seconds,
                 min_level_dbfs=args.min_level_dbfs)
    return 0
