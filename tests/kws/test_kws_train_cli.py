"""`tinysense train kws` refuses bad input with one line, before any work is done."""
from __future__ import annotations

import pytest

from edge.cli import main
from edge.speech_commands import speaker_fold
from trainer.kws_train import augmented_copies, real_roles


@pytest.mark.parametrize("args, message", [
    (["--words", "yes", "yes"], "duplicate keywords: yes"),
    (["--words", "yes", "n0"], "only letters"),
    (["--no-synthetic"], "--no-synthetic needs --data"),
    (["--cv-folds", "5"], "--cv-folds K needs --data"),
    (["--cv-fold", "2"], "--cv-folds K needs K >= 2 and 0 <= --cv-fold I < K (got K=None, I=2)"),
    (["--real-copies", "2"], "--real-copies N needs --data"),
])
def test_bad_arguments_fail_with_one_line(args, message, tmp_path, capsys):
    assert main(["train", "kws", *args, "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tinysense train: error:") and message in err[0]
    assert not (tmp_path / "m").exists()


def test_data_folder_without_keywords(tmp_path, capsys):
    (tmp_path / "data" / "other").mkdir(parents=True)
    assert main(["train", "kws", "--no-synthetic", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "m")]) == 2
    assert "no clips of the keywords" in capsys.readouterr().err


def test_cross_validation_folds_are_speaker_disjoint():
    import numpy as np

    class Corpus:
        speakers = np.array([f"sc:{n % 37:04x}" for n in range(400)])
        split = np.full(400, "test")

    roles = real_roles(Corpus, 5, 2)
    assert set(roles) == {"train", "validation", "heldout"}
    for role in ("train", "validation"):
        assert not set(Corpus.speakers[roles == role]) & set(Corpus.speakers[roles == "heldout"])
    assert all(speaker_fold(s, 5) == 2 for s in Corpus.speakers[roles == "heldout"])
    assert list(real_roles(Corpus, None, 0)) == ["heldout"] * 400


def test_augmented_copies_of_real_clips_are_new_training_clips():
    import numpy as np

    from trainer.kws_corpus import Corpus

    rng = np.random.default_rng(0)
    clips = (rng.standard_normal((3, 16000)) * 3000).astype(np.int16)
    corpus = Corpus(clips, np.array(["yes", "no", "yes"]), ["_silence_", "_unknown_", "yes", "no"], np.array(["a", "b", "c"]),
                    np.array(["test"] * 3), np.array(["yes", "no", "yes"]), np.array(["speech_commands"] * 3))
    copied, roles = augmented_copies(corpus, 2, seed=0)
    assert len(copied) == 6 and list(roles) == ["train"] * 6
    assert list(copied.labels) == ["yes", "no", "yes"] * 2 and list(copied.speakers) == ["a", "b", "c"] * 2
    assert copied.clips.dtype == np.int16 and copied.clips.shape == (6, 16000)
    assert not any(np.array_equal(copy, original) for copy in copied.clips for original in clips)
    np.testing.assert_array_equal(augmented_copies(corpus, 2, seed=0)[0].clips, copied.clips)  # seeded
    np.testing.assert_array_equal(corpus.clips, clips)  # the originals are left alone


def test_init_from_needs_a_model_with_the_same_labels_and_features(tmp_path):
    import json

    from edge.errors import InputError
    from trainer.kws_train import check_init_from

    labels = ["_silence_", "_unknown_", "yes"]
    with pytest.raises(InputError, match="needs a trained model folder"):
        check_init_from(tmp_path, labels, False)
    (tmp_path / "keras").mkdir()
    (tmp_path / "keras" / "model.keras").write_bytes(b"")
    meta = {"labels": labels, "frontend": {"clip_warmup": True}, "training": {"arch": "tiny"}}
    (tmp_path / "train_meta.json").write_text(json.dumps(meta))
    assert check_init_from(tmp_path, labels, True)["training"]["arch"] == "tiny"
    with pytest.raises(InputError, match="trained with --warm-frontend; give the same"):
        check_init_from(tmp_path, labels, False)
    with pytest.raises(InputError, match="labels .* differ"):
        check_init_from(tmp_path, ["_silence_", "_unknown_", "no"], True)
