"""A broken bundle is refused with one clear line naming the file, never run or traced back."""
import json
import shutil

import pytest

from edge.core.bundle import Bundle
from edge.cli import main
from edge.core.errors import BundleError
from edge.core.fileio import sha256_file


@pytest.fixture
def bundle_copy(digits_bundle, tmp_path):
    return shutil.copytree(digits_bundle, tmp_path / "bundle")


def rewrite_manifest(root, change):
    manifest = json.loads((root / "manifest.json").read_text())
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))


def rehash(root, variant="int8"):
    rewrite_manifest(root, lambda m: m["variants"][variant].update(sha256=sha256_file(root / f"model_{variant}.tflite")))


def cli_error(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "Traceback" not in "\n".join(err)
    return err[-1]


def test_sha256_mismatch(bundle_copy, capsys):
    path = bundle_copy / "model_int8.tflite"
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    line = cli_error(capsys, "bench", str(bundle_copy), "--runs", "5")
    assert "model_int8.tflite: sha256" in line and "does not match the manifest" in line


@pytest.mark.parametrize("cut, message", [(0, "empty file"), (10, "no TFL3"), (None, "cannot load TFLite model")])
def test_corrupt_truncated_empty_tflite(bundle_copy, capsys, cut, message):
    path = bundle_copy / "model_int8.tflite"
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut is not None else data[: len(data) // 3])
    rehash(bundle_copy)
    with pytest.raises(BundleError, match=f"model_int8.tflite: .*{message}"):
        Bundle.load(bundle_copy).open("int8")
    assert message in cli_error(capsys, "classify-image", "--model", str(bundle_copy), str(path))


def test_manifest_naming_a_missing_file(bundle_copy, capsys):
    (bundle_copy / "model_float16.tflite").unlink()
    assert "model_float16.tflite: named by" in cli_error(capsys, "bench", str(bundle_copy))


def test_manifest_that_does_not_match_its_model(bundle_copy):
    rewrite_manifest(bundle_copy, lambda m: m["variants"]["int8"]["input"].update(zero_point=3))
    with pytest.raises(BundleError, match="input zero_point is -128 but the manifest says 3"):
        Bundle.load(bundle_copy).open("int8")
    rewrite_manifest(bundle_copy, lambda m: m["variants"]["int8"]["input"].update(zero_point=-128, shape=[1, 32, 32, 1]))
    with pytest.raises(BundleError, match="input shape"):
        Bundle.load(bundle_copy).open("int8")


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(labels=m["labels"][:9]), "9 labels but model_int8.tflite has 10 outputs"),
    (lambda m: m.update(labels=None), "'labels' must be a non-empty list of names"),
    (lambda m: m.update(variants={}), "'variants' must map variant names to their files"),
    (lambda m: m["variants"]["int8"].pop("file"), "variant 'int8' must be an object with a 'file' name"),
    (lambda m: m["variants"]["int8"].update(output="float"), "variant 'int8' has no output description"),
    (lambda m: m["variants"]["int8"]["input"].update(scale="1.0"), "variant 'int8' input scale must be a number"),
    (lambda m: m.update(input=[1]), "'input' must be a JSON object"),
    (lambda m: m.update(eval="x"), "'eval' must be a JSON object"),
])
def test_hand_edited_manifest_is_refused_in_one_line(bundle_copy, capsys, change, message):
    rewrite_manifest(bundle_copy, change)
    line = cli_error(capsys, "classify-image", "--model", str(bundle_copy), str(bundle_copy / "manifest.json"))
    assert "manifest.json: " in line and message in line


def test_bundle_of_another_task(bundle_copy, capsys):
    """A digits bundle given to the keyword spotter (and the reverse) is refused by name, not run."""
    from edge.hearing.spotter import KeywordSpotter

    with pytest.raises(BundleError, match="manifest.json: a 'digits' bundle; this needs a 'kws' bundle"):
        KeywordSpotter.from_bundle(bundle_copy)
    rewrite_manifest(bundle_copy, lambda m: m.update(task="kws"))
    line = cli_error(capsys, "classify-image", "--model", str(bundle_copy), str(bundle_copy / "manifest.json"))
    assert line.endswith("manifest.json: a 'kws' bundle; this needs a 'digits' or 'meter' bundle")


def test_not_a_bundle(tmp_path, capsys):
    assert "manifest.json: missing" in cli_error(capsys, "bench", str(tmp_path))
    (tmp_path / "manifest.json").write_text("{not json")
    assert "not valid JSON" in cli_error(capsys, "bench", str(tmp_path))
    (tmp_path / "manifest.json").write_text('{"format_version": 1}')
    assert "missing keys" in cli_error(capsys, "bench", str(tmp_path))
    assert "no such model bundle folder" in cli_error(capsys, "bench", str(tmp_path / "nope"))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:200])


def _wrong_shape(path):
    import numpy as np

    np.savez(path, x=np.zeros((4, 10, 10)), y=np.zeros(4), indices=np.arange(4), seed=np.int64(0))


@pytest.mark.parametrize("name, damage, message", [
    ("train_meta.json", lambda p: p.write_text("{bad"), "train_meta.json: unreadable"),
    ("train_meta.json", lambda p: p.write_text("[1, 2]"), "needs a 'task' and a non-empty list of 'labels'"),
    ("train_meta.json", lambda p: p.write_text(p.read_text().replace('"labels": [', '"labels": ["extra", ', 1)),
     "11 labels but the model has 10 outputs"),
    ("heldout.npz", _truncate, "heldout.npz: unreadable training output"),
    ("calibration.npz", _wrong_shape, "calibration.npz: examples of shape [10, 10], the model takes [28, 28, 1]"),
    ("keras/model.keras", _truncate, "model.keras: cannot load the Keras model"),
])
def test_export_refuses_damaged_training_outputs(bundle_copy, capsys, name, damage, message):
    manifest_before = (bundle_copy / "manifest.json").read_bytes()
    damage(bundle_copy / name)
    assert message in cli_error(capsys, "export", str(bundle_copy))
    assert (bundle_copy / "manifest.json").read_bytes() == manifest_before  # the old bundle is left as it was


def test_export_without_training(tmp_path, capsys):
    assert "train_meta.json: missing" in cli_error(capsys, "export", str(tmp_path))


def test_training_data_folder_without_data(tmp_path, capsys):
    assert "no MNIST file" in cli_error(capsys, "train", "digits", "--data", str(tmp_path), "--out", str(tmp_path / "m"))
    assert not (tmp_path / "m").exists()
