"""The streaming benchmark (`make bench-stream`): scoring rules, and one small run end to end."""
from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from edge.stream_bench import Stream, main, score


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


def test_a_small_run_writes_results_a_det_curve_and_the_peer_comparison(daemon_bundle, tmp_path):
    from tests.stream.speech import noise
    from trainer.synth_speech import Speaker, synthesize

    data = tmp_path / "data"
    (data / "_background_noise_").mkdir(parents=True)
    sf.write(data / "_background_noise_" / "hum.wav", noise(30.0, seed=5, rms=300), 16000, subtype="PCM_16")
    voice = Speaker("espeak-ng", "en-us")
    for word in ("yes", "no", "_unknown_"):
        (data / word).mkdir()
        for n, spoken in enumerate(["yes", "no"] if word == "yes" else ["no", "yes"] if word == "no" else ["house", "bird"]):
            spoken = word if word != "_unknown_" else spoken
            sf.write(data / word / f"{spoken}_{n}.wav", synthesize(spoken, voice), 16000, subtype="PCM_16")
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


def test_cv_fold_keeps_only_the_held_out_speakers(tmp_path):
    """`--cv-folds K --cv-fold I` streams exactly the speakers `train kws` held out for fold I."""
    from edge.speech_commands import speaker_fold
    from edge.stream_bench import build_streams
    from tests.stream.speech import noise

    (tmp_path / "_background_noise_").mkdir()
    sf.write(tmp_path / "_background_noise_" / "hum.wav", noise(5.0, seed=1, rms=300), 16000, subtype="PCM_16")
    speakers = [f"{n:08x}" for n in range(12)]
    clip = noise(1.0, seed=2, rms=3000)
    for folder in ("yes", "_unknown_"):
        (tmp_path / folder).mkdir()
        for speaker in speakers:
            sf.write(tmp_path / folder / f"{'bed_' if folder == '_unknown_' else ''}{speaker}_nohash_0.wav", clip, 16000)
    held_out = [s for s in speakers if speaker_fold(s, 3) == 1]
    assert 0 < len(held_out) < len(speakers)
    streams = build_streams(tmp_path, None, ["yes"], 0.001, None, 0, cv=(3, 1))
    assert len(streams["keywords"].events) == len(held_out) and len(streams["speech"].events) == len(held_out)
    everyone = build_streams(tmp_path, None, ["yes"], 0.001, None, 0)
    assert len(everyone["keywords"].events) == len(speakers)
