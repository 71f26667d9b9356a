"""Read a Speech Commands v0.02 folder (the real data a user brings) as labelled items.

Two packagings load the same way:
  * the full dataset: `word/<speaker>_nohash_<n>.wav` for every word, `_background_noise_/`,
    optional `validation_list.txt` / `testing_list.txt` (else the dataset's own speaker-hash split);
  * the official test-split packaging: keyword folders, `_unknown_/<word>_<speaker>_nohash_<n>.wav`
    (the word is the filename prefix) and `_silence_/` (1 s windows of noise).
A word that is one of the chosen keywords gets its own label wherever it sits; every other word is
`_unknown_`. Splits are by speaker, so one speaker's clips never land in two splits.

Public API:
    UNKNOWN, SILENCE = "_unknown_", "_silence_"
    label_set(keywords) -> list[str]                 ["_silence_", "_unknown_", *keywords] (the trainer's order)
    Item(path, label, word, speaker, split)          frozen; split in {"train", "validation", "test"}
    load_items(root, keywords, validation_percent=10, testing_percent=10) -> list[Item]
    speaker_split(speaker, validation_percent=10, testing_percent=10) -> str
    fold_key(path) -> str; speaker_fold(key, folds) -> int   speaker-disjoint cross-validation folds
    cv_fold(folds, fold) -> (folds, fold) | None              the checked `--cv-folds K --cv-fold I` pair
    load_background_noise(root) -> dict[str, np.ndarray]   name -> 16 kHz mono int16
    read_clip(item_or_path, length=16000) -> np.ndarray     int16, zero-padded / cut to `length`
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.hearing.audio import SAMPLE_RATE, fit_clip, read_audio
from edge.core.errors import InputError

log = logging.getLogger(__name__)

UNKNOWN = "_unknown_"
SILENCE = "_silence_"
BACKGROUND = "_background_noise_"

#: the dataset's own constant (tensorflow/examples/speech_commands/input_data.py)
_MAX_NUM_WAVS_PER_CLASS = 2 ** 27 - 1
#: [word_]speaker_nohash_n.wav; the speaker is the 8 hex digits before "_nohash_"
_NAME = re.compile(r"^(?:(?P<word>.+)_)?(?P<speaker>[^_]+)_nohash_\d+$")


@dataclass(frozen=True)
class Item:
    """One clip: where it is, its class label, the spoken word, who said it and its split."""

    path: Path
    label: str
    word: str
    speaker: str
    split: str


def label_set(keywords: list[str] | tuple[str, ...]) -> list[str]:
    """The class labels in model output order: silence, unknown, then the keywords (as TensorFlow's example)."""
    return [SILENCE, UNKNOWN, *keywords]


def keywords_of(labels: list[str]) -> list[str]:
    """The keywords among a model's labels (the inverse of `label_set`)."""
    return [label for label in labels if label not in (SILENCE, UNKNOWN)]


def _speaker_hash(speaker: str) -> int:
    return int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16)


def speaker_split(speaker: str, validation_percent: float = 10.0, testing_percent: float = 10.0) -> str:
    """The dataset's stable hash split (`which_set` in TensorFlow's input_data.py), on the speaker id."""
    percent = (_speaker_hash(speaker) % (_MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / _MAX_NUM_WAVS_PER_CLASS)
    if percent < validation_percent:
        return "validation"
    if percent < validation_percent + testing_percent:
        return "test"
    return "train"


def speaker_fold(speaker: str, folds: int) -> int:
    """Stable cross-validation fold of a speaker key (sha1), so folds never share a voice."""
    return _speaker_hash(speaker) % folds


def speaker_share(speaker: str) -> float:
    """Stable position in [0, 1) of a speaker key (sha1, steps of 0.001), ordered so that a share
    below 0.1 is exactly `speaker_fold(speaker, 10) == 0`: `train kws --validation-split 0.1` names the
    speakers the tenth-of-speakers split always named."""
    key = _speaker_hash(speaker)
    return ((key % 10) * 100 + (key // 10) % 100) / 1000


def cv_fold(folds: int | None, fold: int | None) -> tuple[int, int] | None:
    """(folds, fold) of `--cv-folds K --cv-fold I` (I defaults to 0), or None when neither is given:
    the one check `train kws` and `stream_bench` share, so the two name the same speakers."""
    if folds is None and fold is None:
        return None
    if folds is None or folds < 2 or not 0 <= (fold or 0) < folds:
        raise InputError(f"--cv-folds K needs K >= 2 and 0 <= --cv-fold I < K (got K={folds}, I={fold})")
    return folds, fold or 0


def fold_key(path: Path) -> str:
    """The key cross-validation folds are drawn on, by `train kws --cv-folds` and
    `stream_bench --cv-folds` alike: 'sc:<speaker>', or 'sc:<file stem>' for a `_silence_`
    window, which has no speaker."""
    speaker = "" if path.parent.name == SILENCE else _parse(path.stem, path.parent.name, path)[1]
    return f"sc:{speaker or path.stem}"


def _read_list(root: Path, name: str) -> set[str] | None:
    path = root / name
    if not path.is_file():
        return None
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def _parse(stem: str, folder: str, path: Path) -> tuple[str, str]:
    """(word, speaker) of a clip from its folder and file name."""
    match = _NAME.match(stem)
    if folder == UNKNOWN:
        if match is None or match["word"] is None:
            raise InputError(f"{path}: a file in {UNKNOWN}/ must be named <word>_<speaker>_nohash_<n>.wav")
        return match["word"], match["speaker"]
    if match is None:
        raise InputError(f"{path}: a Speech Commands clip must be named <speaker>_nohash_<n>.wav")
    return folder, match["speaker"]


def load_items(root: str | os.PathLike, keywords: list[str] | tuple[str, ...], *,
               validation_percent: float = 10.0, testing_percent: float = 10.0) -> list[Item]:
    """Every clip of a Speech Commands folder, labelled for `keywords`, sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"Speech Commands folder not found: {root}")
    lists = {"validation": _read_list(root, "validation_list.txt"), "test": _read_list(root, "testing_list.txt")}
    use_lists = any(entries is not None for entries in lists.values())
    keyword_set = set(keywords)
    items: list[Item] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != BACKGROUND):
        for path in sorted(folder.glob("*.wav")):
            if folder.name == SILENCE:
                word, speaker, label = SILENCE, "", SILENCE
            else:
                word, speaker = _parse(path.stem, folder.name, path)
                label = word if word in keyword_set else UNKNOWN
            relative = f"{folder.name}/{path.name}"
            if use_lists:
                split = next((name for name, entries in lists.items() if entries and relative in entries), "train")
            elif folder.name == SILENCE:
                split = "test"  # only the official test packaging ships `_silence_/`
            else:
                split = speaker_split(speaker, validation_percent, testing_percent)
            items.append(Item(path, label, word, speaker, split))
    found = {item.label for item in items} & keyword_set
    if not found:
        raise InputError(f"{root}: no clips of the keywords {', '.join(keywords)} (expected folders such as "
                         f"{root / keywords[0]}/ holding <speaker>_nohash_<n>.wav)")
    missing = [word for word in keywords if word not in found]
    if missing:
        log.warning("%s has no clips for the keywords %s", root, ", ".join(missing))
    log.info("%s: %d clips (%s split)", root, len(items),
             "validation/testing lists" if use_lists else "speaker-hash")
    return items


def load_background_noise(root: str | os.PathLike) -> dict[str, np.ndarray]:
    """The long noise recordings of `_background_noise_/` (empty dict when there is none)."""
    folder = Path(root) / BACKGROUND
    return {path.stem: read_audio(path) for path in sorted(folder.glob("*.wav"))} if folder.is_dir() else {}


def read_clip(item: Item | str | os.PathLike, length: int = SAMPLE_RATE) -> np.ndarray:
    """One clip as int16 of exactly `length` samples: shorter clips are zero-padded at the end."""
    return fit_clip(read_audio(item.path if isinstance(item, Item) else item), length)
