"""edge.hearing.speech_commands on tiny generated folders in both packagings (never the shared data)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from edge.hearing.audio import write_wav
from edge.core.errors import InputError
from edge.hearing.speech_commands import (SILENCE, UNKNOWN, label_set, load_background_noise, load_items, read_clip,
                                  speaker_split)

KEYWORDS = ["yes", "no"]
SPEAKERS = [f"{n:08x}" for n in range(0x1a2b3c00, 0x1a2b3c00 + 40)]


def clip(seed: int, length: int = 16000) -> np.ndarray:
    return np.random.default_rng(seed).integers(-2000, 2000, length).astype(np.int16)


def full_layout(root, lists: bool = False):
    """word/<speaker>_nohash_<n>.wav for yes, no, cat; background noise; optional split lists."""
    for w, word in enumerate(["yes", "no", "cat"]):
        for s, speaker in enumerate(SPEAKERS):
            write_wav(root / word / f"{speaker}_nohash_0.wav", clip(w * 100 + s))
    write_wav(root / "_background_noise_" / "hum.wav", clip(7, 48000))
    if lists:
        (root / "validation_list.txt").write_text(f"yes/{SPEAKERS[0]}_nohash_0.wav\ncat/{SPEAKERS[0]}_nohash_0.wav\n")
        (root / "testing_list.txt").write_text(f"no/{SPEAKERS[1]}_nohash_0.wav\n")
    return root


def test_full_layout_speaker_hash_split(tmp_path):
    items = load_items(full_layout(tmp_path), KEYWORDS)
    assert len(items) == 120
    assert Counter(item.label for item in items) == {"yes": 40, "no": 40, UNKNOWN: 40}
    assert {item.word for item in items if item.label == UNKNOWN} == {"cat"}
    by_speaker = {}
    for item in items:
        by_speaker.setdefault(item.speaker, set()).add(item.split)
        assert item.split == speaker_split(item.speaker)
    assert all(len(splits) == 1 for splits in by_speaker.values()), "a speaker crossed splits"
    assert {item.split for item in items} == {"train", "validation", "test"}


def test_speaker_split_proportions_and_bounds():
    # speakers of the official Speech Commands v0.02 test split hash to "test" with the dataset's 10/10
    for speaker in ("0cb74144", "0fa1e7a9", "18f8afd5", "1acc97de", "1b4c9b89"):
        assert speaker_split(speaker) == "test"
    splits = Counter(speaker_split(f"{n:08x}") for n in range(3000))
    assert 200 < splits["validation"] < 400 and 200 < splits["test"] < 400
    assert speaker_split("x", validation_percent=100) == "validation"
    assert speaker_split("x", validation_percent=0, testing_percent=0) == "train"


def test_full_layout_lists_are_honoured(tmp_path):
    items = {f"{item.path.parent.name}/{item.path.name}": item for item in load_items(full_layout(tmp_path, True), KEYWORDS)}
    assert items[f"yes/{SPEAKERS[0]}_nohash_0.wav"].split == "validation"
    assert items[f"cat/{SPEAKERS[0]}_nohash_0.wav"].split == "validation"
    assert items[f"no/{SPEAKERS[1]}_nohash_0.wav"].split == "test"
    assert Counter(item.split for item in items.values()) == {"train": 117, "validation": 2, "test": 1}


def test_test_packaging_unknown_prefix_and_silence(tmp_path):
    write_wav(tmp_path / "yes" / "0cb74144_nohash_0.wav", clip(1))
    write_wav(tmp_path / UNKNOWN / "bed_5e3dde6b_nohash_2.wav", clip(2))
    write_wav(tmp_path / UNKNOWN / "no_11111111_nohash_0.wav", clip(3))
    write_wav(tmp_path / SILENCE / "1024.wav", clip(4))
    items = {item.path.name: item for item in load_items(tmp_path, KEYWORDS)}
    assert (items["bed_5e3dde6b_nohash_2.wav"].label, items["bed_5e3dde6b_nohash_2.wav"].word,
            items["bed_5e3dde6b_nohash_2.wav"].speaker) == (UNKNOWN, "bed", "5e3dde6b")
    assert items["no_11111111_nohash_0.wav"].label == "no"  # a chosen keyword wherever it sits
    assert (items["1024.wav"].label, items["1024.wav"].speaker, items["1024.wav"].split) == (SILENCE, "", "test")
    assert items["0cb74144_nohash_0.wav"].speaker == "0cb74144"


def test_no_keyword_folders_is_an_input_error(tmp_path):
    write_wav(tmp_path / "cat" / "0cb74144_nohash_0.wav", clip(1))
    with pytest.raises(InputError, match=str(tmp_path)):
        load_items(tmp_path, KEYWORDS)
    with pytest.raises(InputError, match="not found"):
        load_items(tmp_path / "missing", KEYWORDS)


def test_badly_named_clip_is_an_input_error(tmp_path):
    write_wav(tmp_path / UNKNOWN / "noword.wav", clip(1))
    with pytest.raises(InputError, match="noword.wav"):
        load_items(tmp_path, KEYWORDS)


def test_background_noise_and_read_clip(tmp_path):
    full_layout(tmp_path)
    noise = load_background_noise(tmp_path)
    assert list(noise) == ["hum"] and noise["hum"].dtype == np.int16 and len(noise["hum"]) == 48000
    assert load_background_noise(tmp_path / "yes") == {}
    write_wav(tmp_path / "short.wav", clip(5, 9000))
    out = read_clip(tmp_path / "short.wav")
    assert out.shape == (16000,) and out.dtype == np.int16
    np.testing.assert_array_equal(out[:9000], clip(5, 9000))
    assert not out[9000:].any()


def test_label_set_order():
    assert label_set(["yes", "no"]) == [SILENCE, UNKNOWN, "yes", "no"]
