"""`train kws --enrol DIR`: the user's own clips (any rate and length) fine-tune an embedding head
(`--init-from`) into a bundle; a bad enrolment folder is one line naming it."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from edge.cli import main
from edge.core.bundle import Bundle
from edge.core.errors import InputError
from tests.embedding.test_embedding_bundle import SPEAKERS, tone
from trainer.kws_enrol import enrol_corpus


def write_enrolment(folder, count: int, rate: int = 44100, seconds: float = 1.6):
    """`count` 'yes' chirps at `rate`, stereo, `seconds` long, the word 0.2 s in (not centred)."""
    from edge.hearing.audio import resample

    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        clip = np.zeros(int(seconds * 16000), np.int16)
        clip[3200:3200 + 16000] = tone("yes", 100 + n)
        audio = resample(clip, 16000, rate)
        sf.write(folder / f"take {n}.wav", np.stack([audio, audio], axis=1), rate, subtype="PCM_16")


def test_enrolment_clips_are_resampled_cut_to_their_loudest_second_and_centred(tmp_path):
    write_enrolment(tmp_path / "me", 3)
    corpus = enrol_corpus(tmp_path / "me", ("yes",))
    assert corpus.clips.shape == (3, 16000) and corpus.clips.dtype == np.int16
    assert corpus.labels.tolist() == ["yes"] * 3 and set(corpus.split.tolist()) == {"train"}
    assert corpus.label_names == ["_silence_", "_unknown_", "yes"]
    loud = np.flatnonzero(np.abs(corpus.clips[0]) > 2000)
    assert abs((loud[0] + loud[-1]) / 2 - 8000) < 400  # the chirp (at 0.25-0.75 s of its own second) centred


def test_with_several_words_the_file_name_says_which(tmp_path):
    folder = tmp_path / "me"
    folder.mkdir()
    for name in ("hey-computer_000.wav", "no_000.wav", "no_extra_001.wav"):
        sf.write(folder / name, tone("no", 1), 16000)
    assert enrol_corpus(folder, ("no", "hey computer")).labels.tolist() == ["hey computer", "no", "no"]
    sf.write(folder / "yes_000.wav", tone("yes", 1), 16000)
    with pytest.raises(InputError, match=r"yes_000.wav: with several --words an enrolment file's name must start"):
        enrol_corpus(folder, ("no", "hey computer"))


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "no such enrolment folder"),
    (lambda d: (d.mkdir(), (d / "notes.txt").write_text("x")), "no .wav or .flac clips to enrol"),
    (lambda d: (d.mkdir(), (d / "a.wav").write_bytes(b"RIFF not audio")), "cannot read audio file"),
    (lambda d: (d.mkdir(), sf.write(d / "a.wav", np.zeros(0, np.int16), 16000)), "audio file is empty"),
])
def test_a_bad_enrolment_folder_is_one_line_before_any_synthesis(setup, message, tmp_path, capsys):
    folder = tmp_path / "me"
    setup(folder)
    assert main(["train", "kws", "--words", "computer", "--enrol", str(folder), "--cache", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tinysense train: error:") and message in err[0] and "me" in err[0]
    assert not (tmp_path / "cache").exists()


def test_init_from_a_microfrontend_model_is_refused_for_an_embedding_head(tmp_path, capsys):
    model = tmp_path / "ds"
    (model / "keras").mkdir(parents=True)
    (model / "keras" / "model.keras").write_bytes(b"x")
    (model / "train_meta.json").write_text(json.dumps({"labels": ["_silence_", "_unknown_", "yes"],
                                                       "training": {"arch": "tiny"}}))
    assert main(["train", "kws", "--arch", "embedding", "--words", "yes", "--init-from", str(model),
                 "--out", str(tmp_path / "m")]) == 2
    assert "a tiny model; --arch embedding fine-tunes only an embedding head" in capsys.readouterr().err


def biased_head(model_dir, labels: list[str], favourite: str) -> None:
    """A model folder `--init-from` takes: an untrained embedding head whose output bias makes it
    answer `favourite` to everything (so a fine-tune that starts from it can be told apart)."""
    from trainer.fit import save_keras_atomic
    from trainer.kws_models import embedding_head

    model = embedding_head((10, 96, 1), len(labels))
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    bias[labels.index(favourite)] = 50.0
    dense.set_weights([kernel * 0, bias])
    save_keras_atomic(model, model_dir / "keras" / "model.keras")
    (model_dir / "train_meta.json").write_text(json.dumps({"labels": labels, "training": {"arch": "embedding"}}))


def test_fine_tune_from_a_trained_head_on_a_few_clips_gives_a_bundle(tmp_path):
    import keras

    data = tmp_path / "data"
    for n, speaker in enumerate(SPEAKERS[:4]):
        for folder, name, kind in (("yes", f"{speaker}_nohash_0.wav", "yes"),
                                   ("_unknown_", f"bed_{speaker}_nohash_0.wav", "bed"),
                                   ("_silence_", f"{n}.wav", "silence")):
            (data / folder).mkdir(parents=True, exist_ok=True)
            sf.write(data / folder / name, tone(kind, n), 16000, subtype="PCM_16")
    labels = ["_silence_", "_unknown_", "yes"]
    biased_head(tmp_path / "base", labels, "yes")
    write_enrolment(tmp_path / "me", 3)
    assert main(["train", "kws", "--arch", "embedding", "--words", "yes", "--data", str(data), "--no-synthetic",
                 "--cv-folds", "2", "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--epochs", "1",
                 "--learning-rate", "0.000001", "--init-from", str(tmp_path / "base"), "--enrol", str(tmp_path / "me"),
                 "--enrol-copies", "2", "--speech-negatives", "0", "--out", str(tmp_path / "mine")]) == 0
    meta = json.loads((tmp_path / "mine" / "train_meta.json").read_text())
    assert meta["training"]["init_from"] == str(tmp_path / "base")
    assert meta["data"]["enrol"] == {"dir": str(tmp_path / "me"), "clips": {"yes": 3}, "augmented_copies": 2}
    real_train = meta["data"]["real"]["train"]
    assert meta["data"]["train"] == (real_train + 3 * (1 + 2)) * 5  # every clip in 5 shifted views
    tuned = keras.saving.load_model(tmp_path / "mine" / "keras" / "model.keras")
    assert tuned.predict(np.zeros((1, 10, 96, 1), np.float32), verbose=0)[0, 2] > 0.99  # it started from the base
    assert main(["export", str(tmp_path / "mine"), "--variants", "float32"]) == 0
    bundle = Bundle.load(tmp_path / "mine")
    assert bundle.task == "kws-embedding" and bundle.labels == labels
