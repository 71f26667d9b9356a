"""`train kws --arch embedding` -> `export` -> a kws-embedding bundle that carries its feature
models, and the tools that read it (bench --data, verify, the streaming scorer)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from edge.cli import main
from edge.core.bundle import Bundle
from edge.core.errors import BundleError
from edge.core.fileio import sha256_file
from edge.hearing import embedding as emb

SPEAKERS = [f"{n:08x}" for n in range(1, 9)]


def tone(kind: str, seed: int) -> np.ndarray:
    """1 s: 'yes' a rising chirp, 'no' a low hum, 'bed' (unknown) a noise burst, silence quiet noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(8000) / 16000
    audio = rng.normal(0, 40, 16000)
    word = {"yes": np.sin(2 * np.pi * (300 + 1500 * t) * t), "no": np.sin(2 * np.pi * 150 * t),
            "bed": rng.normal(0, 0.5, len(t)), "silence": np.zeros(len(t))}[kind]
    audio[4000:12000] += 8000 * word * np.hanning(len(t)) * rng.uniform(0.5, 1.0)
    return np.clip(np.rint(audio), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedding")
    data = root / "data"
    for n, speaker in enumerate(SPEAKERS):
        for folder, name, kind in (("yes", f"{speaker}_nohash_0.wav", "yes"), ("no", f"{speaker}_nohash_0.wav", "no"),
                                   ("_unknown_", f"bed_{speaker}_nohash_0.wav", "bed"),
                                   ("_silence_", f"{n}.wav", "silence")):
            (data / folder).mkdir(parents=True, exist_ok=True)
            sf.write(data / folder / name, tone(kind, n), 16000, subtype="PCM_16")
    out = root / "model"
    (out / "heads" / "2").mkdir(parents=True)  # a third head of an earlier run, which must go
    assert main(["train", "kws", "--arch", "embedding", "--words", "yes", "no", "--data", str(data), "--no-synthetic",
                 "--cv-folds", "2", "--real-copies", "1", "--epochs", "3", "--batch-size", "16", "--cache", str(root / "cache"),
                 "--speech-negatives", "6", "--ensemble", "2",
                 "--out", str(out)]) == 0
    assert main(["export", str(out), "--variants", "float32,int8"]) == 0
    return out


def test_the_bundle_carries_its_feature_models_with_sha256_source_and_licence(bundle_dir):
    bundle = Bundle.load(bundle_dir)
    assert bundle.task == "kws-embedding" and bundle.labels == ["_silence_", "_unknown_", "yes", "no"]
    assert bundle.manifest["input"]["shape"] == [10, 96, 1]
    assert bundle.manifest["embedding"]["frames"] == 10
    real = bundle.manifest["data"]["real"]
    assert real["augmented_copies"] == 1  # every training clip once more, augmented: 5 views each
    assert bundle.manifest["data"]["train"] == (2 * real["train"] + 6) * 5  # and 6 runs of speech negatives
    packaged = emb.packaged_model_paths()
    for name in ("melspectrogram", "embedding"):
        entry = bundle.manifest["assets"][name]
        assert entry["sha256"] == sha256_file(packaged[name]) == sha256_file(bundle.asset_path(name))
        assert entry["source"] == f"openwakeword==0.5.1: openwakeword/resources/models/{packaged[name].name}"
        assert "CC BY-NC-SA 4.0" in entry["licence"]["openwakeword_readme"]
        assert "313, 338, 346, 348" in entry["licence"]["open_question"]
        assert entry["licence"]["wheel_metadata"].startswith("Apache-2.0")


def test_a_changed_feature_model_is_refused(bundle_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundle_dir, copy)
    model = copy / "embedding_model.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="embedding_model.tflite: sha256 .* does not match"):
        Bundle.load(copy)


def test_bench_data_computes_the_features_the_trainer_stored(bundle_dir, tmp_path, capsys):
    """bench --data embeds every clip with the bundle's own feature models; the held-out clips the
    trainer stored in eval.npz come out bit for bit the same."""
    from edge.hearing.kws_eval import load_eval_data

    bundle = Bundle.load(bundle_dir)
    x, y = load_eval_data(bundle, bundle_dir.parent / "data")
    assert x.shape == (len(SPEAKERS) * 4, 10, 96, 1)
    stored_x, stored_y = bundle.eval_data()
    assert 0 < len(stored_y) < len(y)
    for example, label in zip(stored_x, stored_y):
        matches = np.flatnonzero((x == example).all(axis=(1, 2, 3)))
        assert len(matches) == 1 and y[matches[0]] == label
    report = tmp_path / "bench.json"
    assert main(["bench", str(bundle_dir), "--data", str(bundle_dir.parent / "data"), "--runs", "3", "--warmup", "1",
                 "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["task"] == "kws-embedding" and result["count"] == len(y)
    assert result["variants"]["float32"]["accuracy"] >= 0.5  # chance is 0.25; the tones are easy


def test_int8_head_runs_the_same_in_tflite_micro(bundle_dir, capsys):
    assert main(["verify", str(bundle_dir)]) == 0
    assert "int8" in capsys.readouterr().out


def test_streaming_scores_equal_clip_scores(bundle_dir):
    """One embedding stream, scored each step: at the step where the clip is centred the scores
    are those of the clip's features."""
    bundle = Bundle.load(bundle_dir)
    scorer = emb.EmbeddingKeywordScorer(bundle, "int8")
    clip, shift = tone("yes", 99), bundle.manifest["embedding"]["shift"]
    audio = emb.clip_context(clip, 10 + 2 * shift)
    scores = np.concatenate([scorer.process(audio[i:i + 700]) for i in range(0, len(audio), 700)])
    assert scores.shape == (2 * shift + 1, 4)
    views = emb.clip_embeddings(clip, emb.SpeechEmbedding.from_bundle(bundle), 10, shift)
    expected = bundle.open("int8").predict(views[:, :, :, np.newaxis])
    assert np.array_equal(scores, expected)
    scorer.reset()
    assert len(scorer.process(audio[: 10 * emb.STEP_SAMPLES])) == 0


def test_an_ensemble_ships_one_model_that_averages_its_heads(bundle_dir):
    """--ensemble 2: two heads, each trained with its own seed (its own augmented copies and
    speech negatives), and a model whose posteriors are the mean of theirs."""
    import keras

    meta = json.loads((bundle_dir / "train_meta.json").read_text())
    assert meta["training"]["ensemble"] == 2 and len(meta["training"]["history"]) == 2
    assert sorted(path.name for path in (bundle_dir / "heads").iterdir()) == ["0", "1"]
    heads = [keras.saving.load_model(bundle_dir / "heads" / str(i) / "keras" / "model.keras") for i in range(2)]
    model = keras.saving.load_model(bundle_dir / "keras" / "model.keras")
    x, _ = Bundle.load(bundle_dir).eval_data()
    each = [head.predict(x, verbose=0) for head in heads]
    assert not np.allclose(each[0], each[1], atol=1e-3)  # two seeds, two different heads
    np.testing.assert_allclose(model.predict(x, verbose=0), (each[0] + each[1]) / 2, atol=1e-6)
    assert meta["training"]["params"] == sum(head.count_params() for head in heads)


def test_a_fine_tuned_ensemble_is_still_recorded_as_one(bundle_dir, tmp_path):
    out = tmp_path / "tuned"
    assert main(["train", "kws", "--arch", "embedding", "--words", "yes", "no", "--data", str(bundle_dir.parent / "data"),
                 "--no-synthetic", "--cv-folds", "2", "--epochs", "1", "--batch-size", "16", "--speech-negatives", "0",
                 "--cache", str(bundle_dir.parent / "cache"), "--init-from", str(bundle_dir), "--out", str(out)]) == 0
    assert json.loads((out / "train_meta.json").read_text())["training"]["ensemble"] == 2


@pytest.mark.parametrize("extra, message", [
    (["--arch", "ds-cnn"], "--ensemble N is for --arch embedding (Pi-class heads), not --arch ds-cnn"),
    (["--arch", "embedding", "--init-from", "MODEL"],
     "--ensemble N trains new heads; --init-from fine-tunes one model (drop one of them)"),
])
def test_an_ensemble_it_cannot_train_is_refused_in_one_line(bundle_dir, tmp_path, capsys, extra, message):
    extra = [str(bundle_dir) if arg == "MODEL" else arg for arg in extra]
    assert main(["train", "kws", *extra, "--ensemble", "3", "--words", "yes", "no", "--data",
                 str(bundle_dir.parent / "data"), "--no-synthetic", "--cv-folds", "2",
                 "--out", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"tinysense train: error: {message}"]


def test_microfrontend_only_options_are_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    assert main(["train", "kws", "--arch", "embedding", "--warm-frontend", "--data", str(tmp_path / "data"),
                 "--no-synthetic", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tinysense train: error: --warm-frontend is for the microfrontend models, not --arch embedding"]
    assert not (tmp_path / "m").exists()


def test_the_embedding_spotter_gives_the_same_detections_for_any_chunks_and_ignores_silence(bundle_dir):
    """Detections and their times do not depend on how the audio is cut (finish() included); the
    level gate keeps digital silence unscored. (Detection quality: tests/stream/test_cascade.py.)"""
    from edge.hearing.embedding_spotter import EmbeddingSpotter

    audio = np.concatenate([np.concatenate([tone(w, 50 + n), tone("silence", 60 + n)])
                            for n, w in enumerate(["yes", "no", "yes", "bed"])])[:-14000]
    results = []
    for chunk in (640, 4001, len(audio)):
        with EmbeddingSpotter.from_bundle(bundle_dir, variant="int8", threshold=0.3) as spotter:
            detections = [d for start in range(0, len(audio), chunk) for d in spotter.feed(audio[start:start + chunk])]
            results.append([(d.keyword, d.time, d.score) for d in detections + spotter.finish()])
    assert results[0] == results[1] == results[2] and results[0]
    with EmbeddingSpotter.from_bundle(bundle_dir, threshold=0.01) as spotter:
        assert spotter.feed(np.zeros(5 * 16000, np.int16)) + spotter.finish() == []


def test_settings_the_embedding_path_cannot_honour_are_one_line_errors(bundle_dir, tmp_path, capsys):
    wav = tmp_path / "s.wav"
    sf.write(wav, tone("yes", 1), 16000, subtype="PCM_16")
    for flags, message in ((["--stride-ms", "20"], "runs every 80 ms step, not every 20 ms"),
                           (["--frontend", "fresh"], "--frontend is for microfrontend models")):
        assert main(["listen", "--model", str(bundle_dir), "--wav", str(wav), *flags]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]


def test_runs_of_non_keyword_words_are_trained_as_unknown(bundle_dir):
    """--speech-negatives: 3 s runs of the training `_unknown_` clips, every window of them an
    `_unknown_` example (trainer/kws_embedding.py)."""
    from edge.hearing.audio import speech_bounds
    from trainer.kws_embedding import NEGATIVE_SAMPLES, negative_sequences

    meta = json.loads((bundle_dir / "train_meta.json").read_text())
    assert meta["data"]["speech_negatives"] == {"sequences": 6, "seconds_each": 3.0, "words_each": 4}
    words = np.stack([tone("bed", n) for n in range(5)])
    runs = negative_sequences(words, 3, seed=0)
    assert runs.shape == (3, NEGATIVE_SAMPLES) and np.array_equal(runs, negative_sequences(words, 3, seed=0))
    start, end = speech_bounds(words[0], margin=800)
    assert 3000 <= start <= 4000 and 12000 <= end <= 13000  # the burst is at 4000-12000
    loud = np.abs(runs.astype(np.float64)).reshape(3, -1, 1600).max(axis=2) > 2000
    assert (loud.sum(axis=1) >= 8).all()  # several words' worth of speech in each run


def test_a_microfrontend_model_distils_from_the_embedding_head(bundle_dir, tmp_path):
    """--teacher: the student trains on label/teacher mixtures; the teacher is named by its weights' sha256."""
    from trainer.kws_distill import soft_targets

    out = tmp_path / "student"
    assert main(["train", "kws", "--arch", "tiny", "--words", "yes", "no", "--data", str(bundle_dir.parent / "data"),
                 "--no-synthetic", "--cv-folds", "2", "--epochs", "1", "--batch-size", "8",
                 "--cache", str(bundle_dir.parent / "cache"), "--teacher", str(bundle_dir), "--distill-weight", "0.3",
                 "--out", str(out)]) == 0
    teacher = json.loads((out / "train_meta.json").read_text())["training"]["teacher"]
    assert teacher == {"path": str(bundle_dir), "keras_sha256": sha256_file(bundle_dir / "keras" / "model.keras"),
                       "weight": 0.3}
    posteriors = np.array([[0.1, 0.2, 0.6, 0.1], [0.7, 0.1, 0.1, 0.1]], np.float32)
    mixed = soft_targets(np.array([3, 0]), posteriors, 0.3)
    assert np.allclose(mixed.sum(axis=1), 1.0)
    assert np.allclose(mixed[0], [0.03, 0.06, 0.18, 0.73]) and np.allclose(mixed[1], [0.91, 0.03, 0.03, 0.03])


def test_a_teacher_that_is_not_an_embedding_head_with_the_same_labels_is_refused(bundle_dir, tmp_path, capsys):
    data = str(bundle_dir.parent / "data")
    damaged = tmp_path / "damaged"
    (damaged / "keras").mkdir(parents=True)
    (damaged / "train_meta.json").write_bytes((bundle_dir / "train_meta.json").read_bytes())
    (damaged / "keras" / "model.keras").write_bytes((bundle_dir / "keras" / "model.keras").read_bytes()[:2000])
    teacher_weights = sha256_file(bundle_dir / "keras" / "model.keras")
    base = ["train", "kws", "--data", data, "--no-synthetic", "--out", str(tmp_path / "m")]
    for flags, message in (
            (["--words", "yes", "--teacher", str(bundle_dir)], "differ from this run's"),
            (["--words", "yes", "no", "--teacher", str(tmp_path)], "--teacher needs a trained `--arch embedding` folder"),
            (["--words", "yes", "no", "--arch", "embedding", "--teacher", str(bundle_dir)], "distils only from --teacher mltk"),
            (["--words", "yes", "no", "--teacher", str(bundle_dir), "--distill-weight", "1.5"], "must be in (0, 1]"),
            (["--words", "yes", "no", "--distill-weight", "0.5"], "must be in (0, 1], with --teacher"),
            (["--words", "yes", "no", "--teacher", str(damaged)], "keras/model.keras: unreadable Keras model"),
            (["--words", "yes", "no", "--teacher", str(bundle_dir), "--out", str(bundle_dir)], "the teacher's folder")):
        assert main([*base, *flags]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "m").exists() and sha256_file(bundle_dir / "keras" / "model.keras") == teacher_weights


def test_out_of_fold_sets_aside_one_speaker_partition_and_keeps_the_teacher_rows_in_step():
    """--out-of-fold K: head k's training clips are those whose speaker is not in partition k;
    the teacher's posteriors (one row per training clip, part by part) follow the same choice."""
    from types import SimpleNamespace

    from trainer.kws_embedding import out_of_fold_partition, without_partition

    speakers = np.array([f"speaker{n}" for n in range(40)])
    partition = out_of_fold_partition(speakers, 3)
    assert set(partition.tolist()) == {0, 1, 2} and np.array_equal(partition, out_of_fold_partition(speakers, 3))
    roles = np.array(["train"] * 30 + ["validation"] * 5 + ["heldout"] * 5)
    parts = [(SimpleNamespace(speakers=speakers[:20]), roles[:20]), (SimpleNamespace(speakers=speakers[20:]), roles[20:])]
    posteriors = np.arange(30, dtype=np.float32)[:, np.newaxis]  # row i: training clip i
    kept, kept_posteriors = without_partition(parts, posteriors, 3, 1)
    new_roles = np.concatenate([r for _, r in kept])
    assert np.array_equal(new_roles == "unused", (roles == "train") & (partition == 1))
    assert np.array_equal(new_roles[30:], roles[30:])  # validation and held-out clips stay
    assert kept_posteriors[:, 0].tolist() == [i for i in range(30) if partition[i] != 1]


def test_an_out_of_fold_teacher_scores_each_clip_with_the_head_that_never_heard_its_speaker(bundle_dir, tmp_path,
                                                                                              monkeypatch):
    import keras

    from trainer import kws_embedding
    from trainer.kws_corpus import speech_commands_corpus
    from trainer.kws_distill import EmbeddingTeacher, MeanTeacher, load_teacher
    from trainer.kws_embedding import SHIFT, cached_views, embedding_cache_dir, feature_models_sha, out_of_fold_partition

    data, cache = bundle_dir.parent / "data", bundle_dir.parent / "cache"
    oof = tmp_path / "oof"
    copies_built = []
    real_copies_part = kws_embedding.real_copies_part
    monkeypatch.setattr(kws_embedding, "real_copies_part", lambda *a: copies_built.append(1) or real_copies_part(*a))
    assert main(["train", "kws", "--arch", "embedding", "--words", "yes", "no", "--data", str(data), "--no-synthetic",
                 "--cv-folds", "2", "--real-copies", "1", "--epochs", "2", "--batch-size", "16", "--speech-negatives", "0",
                 "--cache", str(cache), "--out-of-fold", "2", "--validation-split", "0", "--out", str(oof)]) == 0
    assert len(copies_built) == 1  # the heads share a seed, so one set of copies serves both
    meta = json.loads((oof / "train_meta.json").read_text())
    assert meta["data"]["validation"] == 0 and meta["data"]["real"]["validation"] == 0  # not the held-out fold
    assert meta["training"]["out_of_fold"] == 2 and meta["training"]["ensemble"] == 2
    labels = meta["labels"]
    teacher = load_teacher([str(oof)], labels, tmp_path / "student", "tiny")
    assert isinstance(teacher, EmbeddingTeacher) and len(teacher.fold_heads) == 2
    corpus = speech_commands_corpus(data, ("yes", "no"), seed=0)
    roles = np.full(len(corpus), "train")
    posteriors = teacher.posteriors([(corpus, roles)], "train", cache)
    views = cached_views(corpus.clips, emb.SpeechEmbedding.from_package(), feature_models_sha(),
                         embedding_cache_dir(cache))[:, SHIFT, ..., np.newaxis]
    partition = out_of_fold_partition(corpus.speakers, 2)
    assert set(partition.tolist()) == {0, 1}
    for k in range(2):
        head = keras.saving.load_model(oof / "heads" / str(k) / "keras" / "model.keras")
        np.testing.assert_allclose(posteriors[partition == k], head.predict(views[partition == k], verbose=0), atol=1e-6)
    assert teacher.record(0.5)["out_of_fold"] == 2

    both = load_teacher([str(oof), str(bundle_dir)], labels, tmp_path / "student", "tiny")
    assert isinstance(both, MeanTeacher)
    plain = load_teacher([str(bundle_dir)], labels, tmp_path / "student", "tiny").posteriors([(corpus, roles)], "train", cache)
    np.testing.assert_allclose(both.posteriors([(corpus, roles)], "train", cache), (posteriors + plain) / 2, atol=1e-6)
    out = tmp_path / "student"
    assert main(["train", "kws", "--arch", "tiny", "--words", "yes", "no", "--data", str(data), "--no-synthetic",
                 "--cv-folds", "2", "--epochs", "1", "--batch-size", "8", "--cache", str(cache),
                 "--teacher", str(oof), "--teacher", str(bundle_dir), "--distill-weight", "1", "--out", str(out)]) == 0
    record = json.loads((out / "train_meta.json").read_text())["training"]["teacher"]
    assert record["weight"] == 1 and [t["path"] for t in record["mean_of"]] == [str(oof), str(bundle_dir)]


@pytest.mark.parametrize("extra, message", [
    (["--arch", "ds-cnn", "--out-of-fold", "2"], "--out-of-fold K is for --arch embedding (Pi-class heads), not --arch ds-cnn"),
    (["--arch", "embedding", "--out-of-fold", "1"], "--out-of-fold K needs K >= 2 speaker partitions, got 1"),
    (["--arch", "embedding", "--out-of-fold", "2", "--ensemble", "2"],
     "--out-of-fold K trains K new heads; drop --ensemble and --init-from"),
    (["--teacher", "MODEL", "--teacher", "MODEL"], "a teacher is named twice"),
])
def test_out_of_fold_and_teacher_options_it_cannot_honour_are_one_line_errors(bundle_dir, tmp_path, capsys, extra, message):
    extra = [str(bundle_dir) if arg == "MODEL" else arg for arg in extra]
    assert main(["train", "kws", *extra, "--words", "yes", "no", "--data", str(bundle_dir.parent / "data"),
                 "--no-synthetic", "--cv-folds", "2", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "m").exists()
