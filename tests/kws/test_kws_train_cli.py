"""`tinysense train kws` refuses bad input with one line, before any work is done."""
from __future__ import annotations

import pytest

from edge.cli import main
from edge.hearing.speech_commands import speaker_fold
from trainer.kws_train import augmented_copies, real_roles


@pytest.mark.parametrize("args, message", [
    (["--words", "yes", "yes"], "duplicate keywords: yes"),
    (["--words", "yes", "n0"], "only letters"),
    (["--no-synthetic"], "--no-synthetic needs --data"),
    (["--cv-folds", "5"], "--cv-folds K needs --data"),
    (["--cv-fold", "2"], "--cv-folds K needs K >= 2 and 0 <= --cv-fold I < K (got K=None, I=2)"),
    (["--real-copies", "2"], "--real-copies N needs --data"),
    (["--data", "/nonexistent/speech"], "/nonexistent/speech: no such data folder"),
    (["--validation-split", "0"], "--validation-split 0.0 splits the speakers of --data DIR; give --data"),
    (["--data", "/nonexistent/speech", "--validation-split", "0.2"],
     "--validation-split 0.2 splits the speakers of --data with --cv-folds K (without it, only 0"),
])
def test_bad_arguments_fail_with_one_line(args, message, tmp_path, capsys):
    assert main(["train", "kws", *args, "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tinysense train: error:") and message in err[0]
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("args, message", [
    (["kws", "--epochs", "0"], "argument --epochs: '0' is not a whole number >= 1"),
    (["kws", "--learning-rate", "-1"], "argument --learning-rate: '-1' is not a positive finite number"),
    (["digits", "--batch-size", "-4"], "argument --batch-size: '-4' is not a whole number >= 1"),
    (["digits", "--validation-split", "1"], "argument --validation-split: '1' is not a number >= 0 and < 1"),
])
def test_nonsense_numbers_are_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_real_copies_of_a_folder_that_holds_every_clip_out(tmp_path, capsys):
    """Speakers that all hash into the test split (the official test packaging) leave nothing to
    copy; said before any speech is synthesized."""
    import numpy as np
    import soundfile as sf

    from edge.hearing.speech_commands import speaker_split

    speaker = next(f"{n:08x}" for n in range(1000) if speaker_split(f"{n:08x}") == "test")
    for folder, name in (("yes", f"{speaker}_nohash_0.wav"), ("_unknown_", f"bed_{speaker}_nohash_0.wav")):
        (tmp_path / "data" / folder).mkdir(parents=True)
        sf.write(tmp_path / "data" / folder / name, np.zeros(16000, np.int16), 16000)
    assert main(["train", "kws", "--data", str(tmp_path / "data"), "--real-copies", "2",
                 "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "m")]) == 2
    assert "no training clips to copy; every speaker falls in the test split" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "m").exists()


def test_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "m").write_text("x")
    for task in ("kws", "digits"):
        assert main(["train", task, "--out", str(tmp_path / "m")]) == 2
        assert "m: exists and is not a folder" in capsys.readouterr().err
        assert main(["train", task, "--out", str(tmp_path / "m" / "sub")]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == \
            f"tinysense train: error: {tmp_path / 'm' / 'sub'}: {tmp_path / 'm'} is not a folder; --out needs a model folder"


def test_a_new_run_first_removes_what_marks_the_previous_one_finished(tmp_path):
    from trainer.outputs import PREVIOUS_RUN, clear_previous_run

    for name in (*PREVIOUS_RUN, "keras/model.keras", "model_int8.tflite"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("old")
    clear_previous_run(tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.*")) == ["keras/model.keras", "model_int8.tflite"]


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


def test_validation_split_picks_that_share_of_the_training_speakers():
    """The default is the tenth the split always named; 0 validates on no one and 0.3 on about 30 %
    of the speakers outside the held-out fold; without folds, 0 turns the folder's validation
    speakers into training speakers."""
    import numpy as np

    class Corpus:
        speakers = np.array([f"sc:{n:04x}" for n in range(2000)])
        split = np.array(["train", "validation", "test", "validation"] * 500)

    old = np.array(["heldout" if speaker_fold(s, 5) == 2 else
                    "validation" if speaker_fold(f"validation:{s}", 10) == 0 else "train" for s in Corpus.speakers])
    assert np.array_equal(real_roles(Corpus, 5, 2), old) and np.array_equal(real_roles(Corpus, 5, 2, 0.1), old)
    none = real_roles(Corpus, 5, 2, 0)
    assert "validation" not in set(none) and np.array_equal(none == "heldout", old == "heldout")
    share = np.mean(real_roles(Corpus, 5, 2, 0.3)[old != "heldout"] == "validation")
    assert 0.27 < share < 0.33, share
    assert list(real_roles(Corpus, None, 0, 0)[:4]) == ["train", "train", "heldout", "train"]
    assert list(real_roles(Corpus, None, 0)[:4]) == ["train", "validation", "heldout", "validation"]


def test_validation_split_zero_keeps_the_last_epoch_never_the_held_out_fold(tmp_path):
    """Without validation speakers the held-out fold must not pick the epoch: no checkpoint is kept,
    and every speaker outside the fold trains."""
    import json

    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    for label in ("_silence_", "_unknown_", "yes"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for n in range(6):
            name = f"{n}.wav" if label == "_silence_" else \
                f"{'bed_' if label == '_unknown_' else ''}{n + 1:08x}_nohash_0.wav"
            sf.write(tmp_path / "data" / label / name, rng.integers(-300, 300, 16000).astype(np.int16), 16000)
    base = ["train", "kws", "--arch", "tiny", "--words", "yes", "--data", str(tmp_path / "data"), "--no-synthetic",
            "--cv-folds", "3", "--epochs", "1", "--batch-size", "8"]
    for split, out in ((None, tmp_path / "default"), ("0", tmp_path / "none")):
        assert main([*base, *(["--validation-split", split] if split else []), "--out", str(out)]) == 0
    default, none = (json.loads((out / "train_meta.json").read_text())["data"] for out in (tmp_path / "default", tmp_path / "none"))
    assert default["validation"] > 0 and none["validation"] == 0 and none["real"]["validation"] == 0
    assert none["heldout"] == default["heldout"]
    assert none["train"] == default["train"] + default["real"]["validation"]
    assert not (tmp_path / "none" / "keras" / "checkpoint.keras").exists()


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

    from edge.core.errors import InputError
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
    (tmp_path / "train_meta.json").write_text("{bad")
    with pytest.raises(InputError, match="train_meta.json: unreadable"):
        check_init_from(tmp_path, labels, True)
    (tmp_path / "train_meta.json").write_text(json.dumps({"labels": labels}))
    with pytest.raises(InputError, match="not a keyword-spotting training output"):
        check_init_from(tmp_path, labels, True)
