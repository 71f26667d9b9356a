"""The shared KWS bundle: trained on synthetic speech, it must hear its keywords in unseen voices."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edge.core.bundle import Bundle
from edge.hearing.frontend import RUNTIME_PARAMS, clips_features
from tests.builders_kws import KWS_TRAIN_ARGS, KWS_WORDS


@pytest.fixture(scope="module")
def bundle(kws_bundle):
    return Bundle.load(kws_bundle)


def test_manifest_carries_frontend_detection_and_labels(bundle):
    assert bundle.task == "kws"
    assert bundle.labels == ["_silence_", "_unknown_", *KWS_WORDS]
    assert bundle.manifest["frontend"] == RUNTIME_PARAMS.to_dict()
    detection = bundle.manifest["detection"]
    assert {"inference_stride_ms", "smoothing_window_ms", "threshold", "min_count", "refractory_ms"} <= set(detection)
    assert 0 < detection["threshold"] < 1
    assert bundle.manifest["input"]["shape"] == [98, 40, 1]
    assert set(bundle.variants) == {"float32", "float16", "dynamic", "int8"}
    int8 = bundle.variant("int8")
    assert int8["input"]["dtype"] == "int8" and int8["output"]["dtype"] == "int8"
    assert bundle.manifest["tflm"]["arena_bytes"] <= 32 * 1024


def test_training_outputs_are_complete(kws_bundle):
    for name in ("train_meta.json", "calibration.npz", "heldout.npz", "train_log.csv", "training_curves.png",
                 "confusion_matrix.png", "keras/model.keras"):
        assert (kws_bundle / name).is_file(), name
    meta = json.loads((kws_bundle / "train_meta.json").read_text())
    assert meta["data"]["synthetic"]["counts"]["validation"]["yes"] > 0, "held-out synthetic speakers exist"


def test_heldout_accuracy_of_every_variant(bundle):
    x, y = bundle.eval_data()
    chance = np.bincount(y).max() / len(y)
    for name in bundle.variants:
        assert bundle.variant(name)["accuracy"] >= max(0.75, chance + 0.1), name
    float_acc, int8_acc = bundle.variant("float32")["accuracy"], bundle.variant("int8")["accuracy"]
    assert abs(float_acc - int8_acc) <= 0.08


def test_detects_keywords_spoken_by_unseen_voices(bundle):
    """Fresh clips from validation-split voices (timbres the training set never heard): the
    keywords and two other words, which must come out as `_unknown_`."""
    from trainer.synth_speech import speaker_pool, synthesize_words

    words = [*KWS_WORDS, "house", "tree"]
    engines = KWS_TRAIN_ARGS[KWS_TRAIN_ARGS.index("--synthetic-engines") + 1].split(",")  # the synthesizers it learned
    voices = [s for s in speaker_pool(60, seed=7, engines=engines) if s.split() == "validation"][:6]
    assert len(voices) == 6, "the speaker pool has validation voices"
    clips, labels = [], []
    for voice in voices:
        for word, clip in zip(words, synthesize_words(words, voice)):
            if clip is not None:
                clips.append(clip)
                labels.append(bundle.labels.index(word) if word in KWS_WORDS else bundle.labels.index("_unknown_"))
    labels = np.array(labels)
    predicted = bundle.open("int8").predict(clips_features(clips)[..., np.newaxis]).argmax(axis=1)
    keyword = labels >= 2
    assert len(labels) >= 20
    assert (predicted == labels).mean() >= 0.7, (predicted, labels)
    assert (predicted[keyword] == labels[keyword]).mean() >= 0.6, (predicted, labels)


def test_silence_is_not_a_keyword(bundle):
    rng = np.random.default_rng(0)
    quiet = [(rng.normal(0, 30, RUNTIME_PARAMS.clip_samples)).astype(np.int16) for _ in range(4)]
    predicted = bundle.open("int8").predict(clips_features(quiet)[..., np.newaxis]).argmax(axis=1)
    assert all(bundle.labels[p] not in KWS_WORDS for p in predicted)
