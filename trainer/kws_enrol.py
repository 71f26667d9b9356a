"""`train kws --enrol DIR`: a folder of the user's own recordings of the keyword(s), for training.

The book's transfer learning for a custom wake word: a head trained on synthetic voices
(`train kws --arch embedding --words computer`) is fine-tuned (`--init-from` that model) on the
synthetic corpus plus 5 to 10 clips of the user's voice, recorded with `tinysense record-clips`
or brought as any folder of wav/flac files.

Each file (any rate, channels or length; resampled to 16 kHz mono by `edge.hearing.audio.read_audio`)
becomes one 1 s clip: its loudest second, centred (`edge.hearing.record_clips.loudest_window`).
With one keyword every file is that keyword; with several, a file's name must start with its
keyword and '_' (spaces as '-'), as `record-clips` names them (`computer_000.wav`). A file with
no word in it (`take_problem`) is logged and kept. The clips and `copies` augmented copies of each
(`trainer.kws_train.augmented_copies`: speed, shift, reverb, generated noise, gain) are all
training clips; the held-out set stays the synthetic validation speakers (or --data's).

Errors (InputError, one line naming the folder or file): a missing folder, a folder without
wav/flac files, an unreadable or empty file, a file name that names no keyword.
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from edge.core.errors import InputError
from edge.hearing.audio import SAMPLE_RATE, read_audio
from edge.hearing.record_clips import clip_name, clip_prefix, loudest_window, take_problem
from edge.hearing.speech_commands import label_set

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac")
#: Augmented copies of each enrolment clip (--enrol-copies): 10 clips -> 210 training clips.
DEFAULT_COPIES = 20


def keyword_of(path: Path, words: tuple[str, ...]) -> str:
    """The keyword a file holds: the only one, else the one its name starts with (`<word>_...`)."""
    if len(words) == 1:
        return words[0]
    matches = [w for w in words if path.name.startswith(clip_prefix(w))]
    if not matches:
        raise InputError(f"{path}: with several --words an enrolment file's name must start with its word and '_' "
                         f"(e.g. {clip_name(words[0], 0)}), one of {', '.join(words)}")
    return max(matches, key=len)


def enrol_corpus(folder: Path, words: tuple[str, ...]):
    """The folder's clips as a `trainer.kws_corpus.Corpus` (N, 16000) int16, all 'train', speaker 'enrol'."""
    from trainer.kws_corpus import Corpus

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such enrolment folder (--enrol DIR: a folder of wav/flac clips)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{folder}: no .wav or .flac clips to enrol (record some with tinysense record-clips)")
    labels = [keyword_of(path, words) for path in files]
    clips = []
    for path in files:
        clip = loudest_window(read_audio(path), SAMPLE_RATE)
        problem = take_problem(clip)
        if problem:
            log.warning("%s: %s; kept for training all the same", path, problem)
        clips.append(clip)
    count = len(files)
    return Corpus(np.stack(clips), np.array(labels), label_set(words), np.full(count, "enrol"),
                  np.full(count, "train"), np.array(labels), np.full(count, "enrol"))


def enrol_parts(folder: Path, words: tuple[str, ...], copies: int, seed: int) -> tuple[list, dict]:
    """[(corpus, roles)] of the enrolment clips and their augmented copies, and their train_meta entry."""
    from trainer.kws_train import augmented_copies

    if copies < 0:
        raise InputError(f"--enrol-copies must be >= 0, got {copies}")
    corpus = enrol_corpus(folder, words)
    parts = [(corpus, np.full(len(corpus), "train"))]
    if copies:
        parts.append(augmented_copies(corpus, copies, seed))
    log.info("enrolment: %d clips from %s (+ %d augmented copies each)", len(corpus), folder, copies)
    return parts, {"dir": str(folder), "clips": dict(Counter(corpus.labels.tolist())), "augmented_copies": copies}
