"""The two-stage cascade (edge.hearing.cascade): `tinysense cascade` builds one bundle that
`listen` takes like any bundle; stage 2 scores exactly the buffered audio of each candidate;
detections do not depend on chunk sizes; broken cascades are refused in one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from edge.cli import main
from edge.hearing.cascade import CascadeSpotter, Confirmer, load_cascade
from edge.hearing.spotters import open_spotter
from tests.stream.speech import keyword_stream


def run(spotter, audio: np.ndarray, chunk: int) -> tuple[list, list]:
    """Detections and (time, proposed, posteriors) of every candidate, feeding `chunk` samples at a time."""
    candidates = []
    spotter.on_candidate = lambda t, word, _score, p: candidates.append((t, word, p.copy()))
    detections = []
    for start in range(0, len(audio), chunk):
        detections += spotter.feed(audio[start:start + chunk])
    return detections + spotter.finish(), candidates


@pytest.fixture(scope="module")
def stream(cascade_bundle):
    return keyword_stream(cascade_bundle / "propose")


def test_listen_runs_a_cascade_bundle_and_reports_each_keyword_once(cascade_bundle, stream, tmp_path, capsys):
    wav = tmp_path / "stream.wav"
    sf.write(wav, stream.audio, 16000, subtype="PCM_16")
    assert main(["listen", "--model", str(cascade_bundle), "--wav", str(wav), "--fast", "--log-format", "text"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["keyword"] for e in events] == [word for word, _ in stream.words]
    for event, (_, start) in zip(events, stream.words):
        assert start < event["time"] < start + 2.0  # the clip's second, the stage-2 delay, smoothing


def test_stage_two_scores_exactly_the_buffered_audio_whatever_the_chunks(cascade_bundle, stream):
    with open_spotter(cascade_bundle, variant="int8") as spotter:
        assert isinstance(spotter, CascadeSpotter)
        small = run(spotter, stream.audio, 1000)
        large = run(spotter, stream.audio, 16000 * 3 + 7)
        assert [(d.keyword, d.time, d.score) for d in small[0]] == [(d.keyword, d.time, d.score) for d in large[0]]
        assert len(small[1]) == len(large[1]) >= 3
        # finish() confirms the last candidates on the digital silence after the stream
        silence = np.zeros(spotter.confirm_samples, np.int16)
        padded = np.concatenate([silence, stream.audio, silence])
        for (t, _, posteriors), (t2, _, posteriors2) in zip(*[c for _, c in (small, large)]):
            assert t == t2 and np.array_equal(posteriors, posteriors2)
            end = spotter.confirm_samples + int(round(t * 16000))
            assert np.array_equal(posteriors, spotter.score(padded[end - spotter.confirm_samples:end]))


def test_what_stage_two_does_not_confirm_is_not_reported(cascade_bundle, stream):
    cascade = load_cascade(cascade_bundle)
    with CascadeSpotter(cascade, variant="int8") as spotter:
        detections, candidates = run(spotter, stream.audio, 1600)
        top = max(float(p[[cascade.confirm.labels.index(w) for w in spotter.keywords]].max()) for _, _, p in candidates)
        # The same decisions from the recorded candidates (what the stream benchmark replays) ...
        confirmer = Confirmer(cascade.confirm.labels, spotter.keywords, spotter.params)
        replayed = [confirmer.decide(t, p) for t, _, p in candidates]
        assert [(d.keyword, d.score) for d in detections] == [r for r in replayed if r]
    # ... and above every candidate's stage-2 score, candidates are still made but none confirmed.
    with CascadeSpotter.from_bundle(cascade_bundle, variant="int8", threshold=min(1.0, top + 1e-3)) as strict:
        detections, candidates = run(strict, stream.audio, 1600)
    assert top < 1.0 and len(candidates) >= 3 and detections == []


def test_a_keyword_at_the_very_end_is_confirmed_by_finish(cascade_bundle, stream):
    _, start = stream.words[-1]
    cut = stream.audio[:int((start + 0.7) * 16000)]  # the stream stops just after the last word
    with open_spotter(cascade_bundle) as spotter:
        detections, _ = run(spotter, cut, 1600)
    assert [d.keyword for d in detections][-1:] == [stream.words[-1][0]]


def test_a_cascade_with_a_changed_stage_or_a_missing_keyword_is_refused_in_one_line(cascade_bundle, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(cascade_bundle, broken)
    manifest = json.loads((broken / "confirm" / "manifest.json").read_text())
    manifest["name"] = "edited"
    (broken / "confirm" / "manifest.json").write_text(json.dumps(manifest))
    assert main(["listen", "--model", str(broken), "--wav", str(tmp_path / "none.wav")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "confirm/manifest.json: not the confirm stage this cascade was made with" in err[0]

    assert main(["cascade", "--propose", str(cascade_bundle / "propose"), "--confirm", str(cascade_bundle / "propose"),
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a 'kws' bundle; this needs a 'kws-embedding' bundle" in err[0]
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.*"))

    assert main(["bench", str(cascade_bundle)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a two-stage kws-cascade bundle" in err[0] and "propose" in err[0]


def test_listen_runs_the_confirmer_alone_as_a_kws_embedding_bundle(cascade_bundle, stream, tmp_path, capsys):
    wav = tmp_path / "stream.wav"
    sf.write(wav, stream.audio[:int((stream.words[-1][1] + 0.8) * 16000)], 16000, subtype="PCM_16")  # ends on a word
    assert main(["listen", "--model", str(cascade_bundle / "confirm"), "--wav", str(wav), "--fast"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["keyword"] for e in events] == [word for word, _ in stream.words]
    for event, (_, start) in zip(events, stream.words):
        assert start < event["time"] < start + 2.0


def test_the_wyoming_server_serves_a_cascade(cascade_bundle, stream):
    from edge.hearing.wyoming import read_event
    from tests.stream.test_wyoming import send_audio, wyoming_server

    with wyoming_server(spotter_factory=lambda: open_spotter(cascade_bundle)) as connect:
        client = connect()
        events = client.makefile("rwb")
        send_audio(events, stream.audio, chunk_bytes=3000)
        received = [read_event(events)[:2] for _ in stream.words]
        client.close()
    assert [(kind, data["name"]) for kind, data in received] == [("detection", word) for word, _ in stream.words]
    for (_, data), (_, start) in zip(received, stream.words):
        assert start * 1000 < data["timestamp"] < (start + 2.0) * 1000


def test_the_stream_benchmark_replays_a_cascades_candidates_at_every_stage_two_threshold(cascade_bundle, tmp_path):
    from edge.bench.stream import main as stream_bench
    from tests.stream.test_stream_bench import write_stream_data

    out = tmp_path / "out"
    assert stream_bench(["--model", str(cascade_bundle), "--data", str(write_stream_data(tmp_path)), "--hours", "0.01",
                         "--cpu-variants", "int8", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "kws-cascade" and set(results["modes"]) == {"manifest"}
    run = results["modes"]["manifest"]
    keywords = run["streams"]["keywords"]
    assert keywords["utterances"] == 4 and keywords["hits"] >= 3 and run["candidates"]["keywords"] >= keywords["hits"]
    at_default = next(p for p in run["det"] if p["threshold"] == run["detection"]["threshold"])
    assert at_default["false_reject_rate"] == keywords["false_reject_rate"]  # the replay is the daemon's logic
    frr = [p["false_reject_rate"] for p in run["det"]]
    assert frr == sorted(frr)  # a stricter stage 2 never confirms more
    assert {"tinysense_manifest", "pymicro_wakeword_okay_nabu"} <= set(results["cpu_s_per_audio_hour"])
    assert (out / "det.png").stat().st_size > 1000


def test_install_service_checks_every_file_of_both_stages(cascade_bundle):
    from edge.hearing.spotters import bundle_contents

    keywords, files = bundle_contents(cascade_bundle)
    assert keywords == ["yes", "no"]
    names = {str(path.relative_to(cascade_bundle)) for path in files}
    assert {"manifest.json", "propose/manifest.json", "propose/model_int8.tflite", "confirm/manifest.json",
            "confirm/model_int8.tflite", "confirm/embedding_model.tflite", "confirm/melspectrogram.tflite"} <= names
    assert all(path.is_file() for path in files)


def test_stage_one_runs_at_the_cascades_stride_unless_listen_sets_one(cascade_bundle, tmp_path, capsys):
    own = load_cascade(cascade_bundle).propose.manifest["detection"]["inference_stride_ms"]
    assert json.loads((cascade_bundle / "manifest.json").read_text())["cascade"]["propose_stride_ms"] == 200
    with CascadeSpotter.from_bundle(cascade_bundle) as spotter:
        assert spotter.stage1.detection.stride_ms == 200
    with CascadeSpotter.from_bundle(cascade_bundle, stride_ms=100) as spotter:
        assert spotter.stage1.detection.stride_ms == 100
    args = ["cascade", "--propose", str(cascade_bundle / "propose"), "--confirm", str(cascade_bundle / "confirm")]
    assert main([*args, "--out", str(tmp_path / "own"), "--propose-stride-ms", "0"]) == 0
    with CascadeSpotter.from_bundle(tmp_path / "own") as spotter:
        assert spotter.stage1.detection.stride_ms == own
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "bad"), "--propose-stride-ms", "25"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tinysense cascade: error: propose_stride_ms=25 must be a positive multiple of 10"]
    assert not (tmp_path / "bad").exists()
