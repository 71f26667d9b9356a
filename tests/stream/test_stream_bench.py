"""The streaming benchmark (`make bench-stream`): scoring rules, and one small run end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from edge.bench.stream import Stream, main, score


def test_hits_misses_and_false_accepts_are_counted_by_the_rules():
    stream = Stream("keywords", np.zeros(3600 * 16000 // 100, np.int16),  # 36 s
                    [("yes", 1.0, 1.6), ("no", 3.0, 3.5), ("yes", 5.0, 5.4), ("_unknown_", 7.0, 7.5)])
    detections = [("yes", 0.9, 2.0),  # hit: within 1.5 s of the end
                  ("yes", 0.9, 2.2),  # second detection of the same utterance: a false accept
                  ("no", 0.9, 5.2),  # too late for "no" (ends 3.5 + 1.5 = 5.0): a false accept
                  ("go", 0.9, 7.2)]  # a word that was never said: a false accept
    scored = score(stream, detections)
    assert (scored["utterances"], scored["hits"], scored["false_accepts"]) == (3, 1, 3)
    assert abs(scored["false_reject_rate"] - 2 / 3) < 1e-12
    assert scored["false_accepts_per_hour"] == 3 / 0.01
    assert scored["latencies"] == [2.0 - 1.6]


def write_stream_data(root):
    """A Speech Commands-layout folder: 30 s of noise, two yes, two no and two other words."""
    from tests.stream.speech import noise
    from trainer.synth_speech import Speaker, synthesize

    data = root / "data"
    (data / "_background_noise_").mkdir(parents=True)
    sf.write(data / "_background_noise_" / "hum.wav", noise(30.0, seed=5, rms=300), 16000, subtype="PCM_16")
    voice = Speaker("espeak-ng", "en-us")
    for word in ("yes", "no", "_unknown_"):
        (data / word).mkdir()
        for n, spoken in enumerate(["yes", "no"] if word == "yes" else ["no", "yes"] if word == "no" else ["house", "bird"]):
            spoken = word if word != "_unknown_" else spoken
            sf.write(data / word / f"{spoken}_{n}.wav", synthesize(spoken, voice), 16000, subtype="PCM_16")
    return data


def test_a_small_run_writes_results_a_det_curve_and_the_peer_comparison(daemon_bundle, tmp_path):
    data = write_stream_data(tmp_path)
    out = tmp_path / "out"
    assert main(["--model", str(daemon_bundle), "--data", str(data), "--hours", "0.01", "--cpu-variants", "int8",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert (out / "det.png").stat().st_size > 1000
    assert set(results["modes"]) == {"fresh", "stream"}
    keywords = results["modes"]["fresh"]["streams"]["keywords"]
    assert keywords["utterances"] == 4 and keywords["hits"] >= 2 and keywords["false_accepts"] == 0  # it knows this voice
    assert 0 < keywords["latency_s"]["median"] < 1.5
    assert results["modes"]["fresh"]["streams"]["noise"]["false_accepts"] == 0
    det = results["modes"]["stream"]["det"]
    assert [p["threshold"] for p in det] == sorted(p["threshold"] for p in det) and len(det) > 10
    assert all(0 <= p["false_reject_rate"] <= 1 for p in det)
    cpu = results["cpu_s_per_audio_hour"]
    assert {"tinysense_fresh", "tinysense_stream", "tinysense_stream_int8", "tinysense_frontend_only",
            "pymicro_wakeword_okay_nabu"} <= set(cpu) and all(v > 0 for v in cpu.values())
    assert results["daemon_stdin"]["whole_noise_stream"]["audio_seconds"] == 36.0


def test_cv_fold_streams_exactly_the_clips_train_kws_held_out(tmp_path):
    """`--cv-folds K --cv-fold I` streams the keyword and other-word clips that
    `train kws --cv-folds K --cv-fold I` held out, and no others."""
    from edge.hearing.speech_commands import load_items
    from edge.bench.stream import build_streams, folder_clips
    from tests.stream.speech import noise
    from trainer.kws_corpus import speech_commands_corpus
    from trainer.kws_train import real_roles

    (tmp_path / "_background_noise_").mkdir()
    sf.write(tmp_path / "_background_noise_" / "hum.wav", noise(5.0, seed=1, rms=300), 16000, subtype="PCM_16")
    clip = noise(0.2, seed=2, rms=3000)
    for folder in ("yes", "_unknown_", "_silence_"):
        (tmp_path / folder).mkdir()
        for n in range(30):
            name = f"noise_{n}.wav" if folder == "_silence_" else f"{'bed_' if folder == '_unknown_' else ''}{n:08x}_nohash_0.wav"
            sf.write(tmp_path / folder / name, clip, 16000)
    held_out = real_roles(speech_commands_corpus(tmp_path, ["yes"]), 3, 1) == "heldout"
    expected = {item.path for item, out in zip(load_items(tmp_path, ["yes"]), held_out) if out}
    streamed = {*folder_clips(tmp_path / "yes", (3, 1), None), *folder_clips(tmp_path / "_unknown_", (3, 1), None),
                *folder_clips(tmp_path / "_silence_", (3, 1), None)}
    assert streamed == expected and 0 < len(expected) < 90

    streams = build_streams(tmp_path, None, ["yes"], 0.001, None, 0, cv=(3, 1))
    assert len(streams["keywords"].events) == len(folder_clips(tmp_path / "yes", (3, 1), None))
    assert len(build_streams(tmp_path, None, ["yes"], 0.001, None, 0)["keywords"].events) == 30


@pytest.mark.parametrize("args, message", [
    (["--model", "{tmp}/none", "--data", "{tmp}"], "{tmp}/none: no such model bundle folder"),
    (["--model", "{tmp}/none", "--data", "{tmp}", "--cv-fold", "1"], "--cv-folds K needs K >= 2"),
    (["--model", "{tmp}/none", "--data", "{tmp}", "--cv-folds", "3", "--cv-fold", "3"], "(got K=3, I=3)"),
])
def test_bad_input_fails_with_one_line(args, message, tmp_path, capsys):
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("python -m edge.bench.stream: error:")
    assert message.format(tmp=tmp_path) in err[0]
