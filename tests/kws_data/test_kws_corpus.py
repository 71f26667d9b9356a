"""trainer.kws_corpus: word validation, a tiny real build, the cache and its atomicity."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from edge.hearing.audio import write_wav
from edge.core.errors import InputError
from trainer import kws_corpus
from trainer.kws_corpus import (Corpus, CorpusConfig, concatenate, load_corpus, parse_words, speech_commands_corpus,
                                unknown_vocabulary)

TINY = dict(speakers=6, unknown_per_speaker=2, copies=2)


def tiny_config(words=("computer", "stop"), **overrides) -> CorpusConfig:
    return CorpusConfig(keywords=tuple(words), **{**TINY, **overrides})


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    """One tiny corpus for a custom keyword set, built serially into a fresh cache."""
    cache = tmp_path_factory.mktemp("cache")
    corpus = load_corpus(["computer", "stop"], cache_dir=cache, config=tiny_config(), processes=1, progress=False)
    return cache, corpus


@pytest.mark.parametrize("words, message", [
    (["yes", "no", "yes"], "duplicate"), ([], "at least one"), (["yes", " "], "non-empty"),
    (["yes", "n0"], "letters"), (["_unknown_"], "letters"), (["hey-you"], "letters")])
def test_bad_word_lists(words, message):
    with pytest.raises(InputError, match=message):
        parse_words(words)


def test_words_are_normalised():
    assert parse_words(["Hey  Computer", "don't"]) == ("hey computer", "don't")
    assert parse_words("yes,no") == ("yes", "no")
    with pytest.raises(InputError, match="duplicate"):
        parse_words(["Yes", "yes"])


def test_unknown_vocabulary_drops_keywords_and_homophones():
    vocabulary = unknown_vocabulary(("right", "cat"))
    assert "write" not in vocabulary and "cat" not in vocabulary and "right" not in vocabulary
    assert "dog" in vocabulary and len(vocabulary) > 300


def test_tiny_corpus_content(tiny_cache):
    _, corpus = tiny_cache
    assert corpus.label_names == ["_silence_", "_unknown_", "computer", "stop"]
    assert corpus.clips.dtype == np.int16 and corpus.clips.shape == (len(corpus), 16000)
    counts = Counter(corpus.labels.tolist())
    assert counts["computer"] == counts["stop"] == 6 * 2  # every speaker, clean + 1 augmented copy
    assert counts["_unknown_"] == 6 * 2 * 2 and counts["_silence_"] == 12
    assert set(corpus.split.tolist()) <= {"train", "validation"}
    for speaker in set(corpus.speakers.tolist()):
        assert len(set(corpus.split[corpus.speakers == speaker].tolist())) == 1
    assert not set(corpus.words[corpus.labels == "_unknown_"].tolist()) & {"computer", "stop"}
    speech = corpus.clips[corpus.labels != "_silence_"]
    assert (np.abs(speech).max(axis=1) > 1000).all(), "a silent speech clip"
    np.testing.assert_array_equal(corpus.y[:3], [corpus.label_names.index(label) for label in corpus.labels[:3]])
    assert corpus.describe()["counts"]["train"]["computer"] + corpus.describe()["counts"].get("validation", {}).get("computer", 0) == 12


def test_cache_is_reused_with_manifest(tiny_cache, monkeypatch):
    cache, corpus = tiny_cache
    folders = [p for p in cache.iterdir()]
    assert [p.name for p in folders] == [tiny_config().key()]
    manifest = json.loads((folders[0] / "manifest.json").read_text())
    assert manifest["config"]["keywords"] == ["computer", "stop"] and manifest["build"]["speakers"] == 6
    monkeypatch.setattr(kws_corpus, "build_corpus", lambda *a, **k: pytest.fail("rebuilt despite the cache"))
    again = load_corpus(["computer", "stop"], cache_dir=cache, config=tiny_config(), progress=False)
    np.testing.assert_array_equal(again.clips, corpus.clips)
    assert tiny_config().key() != tiny_config(seed=1).key() != tiny_config(words=("stop",)).key()


def test_interrupted_build_leaves_nothing_and_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    small = CorpusConfig(keywords=("go",), speakers=2, unknown_per_speaker=1, copies=1)

    def crash(self, path):
        path.write_bytes(b"half")
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Corpus, "save", crash)
        with pytest.raises(KeyboardInterrupt):
            load_corpus(["go"], cache_dir=tmp_path, config=small, processes=1, progress=False)
    assert list(tmp_path.iterdir()) == []
    corpus = load_corpus(["go"], cache_dir=tmp_path, config=small, processes=1, progress=False)
    folder = tmp_path / small.key()
    (folder / "corpus.npz").write_bytes(b"corrupt")
    rebuilt = load_corpus(["go"], cache_dir=tmp_path, config=small, processes=1, progress=False)
    np.testing.assert_array_equal(rebuilt.clips, corpus.clips)
    assert sorted(p.name for p in tmp_path.iterdir()) == [small.key()]


def test_config_must_match_words(tmp_path):
    with pytest.raises(InputError, match="differ"):
        load_corpus(["yes"], cache_dir=tmp_path, config=tiny_config())


def test_speech_commands_corpus_mixes_with_synthetic(tmp_path, tiny_cache):
    rng = np.random.default_rng(0)
    for n, speaker in enumerate(["0a1b2c3d", "1b2c3d4e", "2c3d4e5f"]):
        for word in ("computer", "stop", "cat"):
            write_wav(tmp_path / word / f"{speaker}_nohash_0.wav", rng.integers(-3000, 3000, 16000).astype(np.int16))
    write_wav(tmp_path / "_background_noise_" / "noise.wav", rng.integers(-500, 500, 48000).astype(np.int16))
    real = speech_commands_corpus(tmp_path, ["computer", "stop"])
    assert Counter(real.labels.tolist()) == {"computer": 3, "stop": 3, "_unknown_": 3, "_silence_": 3}
    assert set(real.source.tolist()) == {"speech_commands"}
    assert all(s.startswith("sc:") for s in real.speakers.tolist())
    mixed = concatenate([tiny_cache[1], real])
    assert len(mixed) == len(tiny_cache[1]) + len(real) and mixed.label_names == real.label_names
    with pytest.raises(InputError, match="different labels"):
        concatenate([real, speech_commands_corpus(tmp_path, ["stop"])])


def test_command_line_reports_bad_words(capsys):
    assert kws_corpus.main(["--words", "yes", "yes"]) == 2
    assert "duplicate keywords: yes" in capsys.readouterr().err


def test_command_line_lists_voices(capsys):
    assert kws_corpus.main(["--list-voices"]) == 0
    out = capsys.readouterr().out
    assert "espeak-ng: " in out and "en-us" in out and "pico2wave: " in out


def test_a_keyword_too_long_for_a_clip_is_an_error(tmp_path):
    phrase = "please turn on the big light in the kitchen right now"
    config = CorpusConfig(keywords=(phrase,), speakers=2, unknown_per_speaker=1, copies=1)
    with pytest.raises(InputError, match="choose shorter keywords"):
        load_corpus([phrase], cache_dir=tmp_path, config=config, processes=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_parallel_build_equals_serial_build():
    config = CorpusConfig(keywords=("go",), speakers=3, unknown_per_speaker=1, copies=2)
    serial, _ = kws_corpus.build_corpus(config, processes=1, progress=False)
    parallel, stats = kws_corpus.build_corpus(config, processes=2, progress=False)
    assert stats["processes"] == 2
    np.testing.assert_array_equal(serial.clips, parallel.clips)
    np.testing.assert_array_equal(serial.speakers, parallel.speakers)
