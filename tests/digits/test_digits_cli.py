"""The digits job end to end through the command line: train, export, classify, bench, regression gate."""
import json

import numpy as np
import pytest
from PIL import Image

from edge.core.bundle import Bundle
from edge.cli import main


def test_bundle_layout(digits_bundle):
    bundle = Bundle.load(digits_bundle)
    assert bundle.task == "digits" and bundle.labels == [str(d) for d in range(10)]
    assert set(bundle.variants) == {"float32", "float16", "dynamic", "int8"}
    int8 = bundle.variant("int8")
    assert int8["input"]["dtype"] == "int8" and int8["output"]["dtype"] == "int8"
    assert int8["size_bytes"] < bundle.variant("float32")["size_bytes"] / 3
    representative = bundle.manifest["representative"]
    assert representative["count"] == len(representative["indices"]) == 500  # 50 per class
    assert bundle.manifest["tflm"]["arena_bytes"] > 0
    for name in ("training_curves.png", "confusion_matrix.png", "train_log.csv", "keras/model.keras"):
        assert (digits_bundle / name).is_file(), name


def test_calibration_is_class_balanced_and_from_training_data(digits_bundle):
    with np.load(digits_bundle / "calibration.npz") as calibration:
        assert np.bincount(calibration["y"]).tolist() == [50] * 10
        assert len(set(calibration["indices"].tolist())) == 500


def save_digit(path, pixels, mode, size):
    """An MNIST digit rendered as a photo-like image: dark ink on paper, resized, in some mode."""
    image = Image.fromarray(255 - pixels).resize((size, size), Image.Resampling.BILINEAR)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image).astype(np.uint16) * 257)
    elif mode == "RGBA":
        image = image.convert("RGBA")
    else:
        image = image.convert(mode)
    image.save(path)


def test_classify_image_reads_many_modes_and_sizes(digits_bundle, tmp_path, capsys):
    x, y = Bundle.load(digits_bundle).eval_data()
    paths, expected = [], []
    for i, (mode, size) in enumerate([("L", 28), ("RGB", 300), ("RGBA", 64), ("P", 100), ("I;16", 56), ("L", 1000)] * 3):
        path = tmp_path / f"digit{i}.{'tiff' if mode == 'I;16' else 'png'}"
        save_digit(path, x[i, ..., 0], mode, size)
        paths.append(str(path))
        expected.append(str(y[i]))
    assert main(["classify-image", "--json", "--model", str(digits_bundle), *paths]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["image"] for r in results] == paths
    correct = sum(r["label"] == label for r, label in zip(results, expected))
    assert correct >= 15, f"{correct}/18 correct"
    assert all(0 < r["probability"] <= 1 for r in results)


def test_classify_image_reports_bad_images_and_carries_on(digits_bundle, tmp_path, capsys):
    x, _ = Bundle.load(digits_bundle).eval_data()
    save_digit(tmp_path / "good.png", x[0, ..., 0], "L", 28)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    code = main(["classify-image", "--model", str(digits_bundle), *(str(tmp_path / n) for n in ("good.png", "bad.png", "blank.png"))])
    captured = capsys.readouterr()
    assert code == 2
    assert len(captured.out.splitlines()) == 1 and "good.png" in captured.out
    assert "bad.png: not an image" in captured.err and "blank.png: no digit found" in captured.err


def test_bench_json_and_regression_gate(digits_bundle, tmp_path, capsys):
    results = tmp_path / "bench.json"
    assert main(["bench", str(digits_bundle), "--runs", "20", "--warmup", "2", "--json", str(results),
                 "--plots", str(tmp_path / "plots")]) == 0
    report = json.loads(results.read_text())
    assert set(report["variants"]) == {"float32", "float16", "dynamic", "int8"}
    bundle = Bundle.load(digits_bundle)
    for name, result in report["variants"].items():
        assert result["accuracy"] == pytest.approx(bundle.variant(name)["accuracy"])
        assert result["size_bytes"] == bundle.variant(name)["size_bytes"]
        latency = result["latency_ms"]
        assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"]
        assert result["peak_rss_mb"] > 10 and result["inferences_per_s"] > 0
        assert set(result["per_class_recall"]) == set(bundle.labels)
        assert (tmp_path / "plots" / f"confusion_{name}.png").is_file()
    capsys.readouterr()

    # The same results as baseline pass; a baseline claiming higher accuracy or far lower latency fails.
    assert main(["bench", str(digits_bundle), "--variants", "int8", "--runs", "20", "--baseline", str(results),
                 "--max-latency-ratio", "50"]) == 0
    better = json.loads(results.read_text())
    better["variants"]["int8"]["accuracy"] += 0.02
    better["variants"]["int8"]["latency_ms"]["p50"] /= 1000
    (tmp_path / "better.json").write_text(json.dumps(better))
    capsys.readouterr()
    assert main(["bench", str(digits_bundle), "--variants", "int8", "--runs", "20", "--baseline", str(tmp_path / "better.json")]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION int8: accuracy" in out and "REGRESSION int8: p50 latency" in out

    # A gate that compares nothing fails: a baseline of another model, or with no variant in common.
    other = json.loads(results.read_text())
    other.update(model="kws", task="kws")
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert main(["bench", str(digits_bundle), "--variants", "int8", "--runs", "20", "--baseline", str(tmp_path / "other.json")]) == 1
    assert "REGRESSION the baseline is for task 'kws', not 'digits'" in capsys.readouterr().out
    int8_only = json.loads(results.read_text())
    int8_only["variants"] = {"int8": int8_only["variants"]["int8"]}
    (tmp_path / "int8_only.json").write_text(json.dumps(int8_only))
    assert main(["bench", str(digits_bundle), "--variants", "float16", "--runs", "20", "--baseline",
                 str(tmp_path / "int8_only.json"), "--max-latency-ratio", "50"]) == 1
    assert "no variant in common" in capsys.readouterr().out


def test_mnist_download_path_uses_keras_get_file(tmp_path):
    """The real download code, pointed at a local file:// origin (tests never download)."""
    import hashlib

    from edge.core.errors import InputError
    from trainer.digits_data import load_download

    rng = np.random.default_rng(0)
    archive = tmp_path / "mnist_source.npz"
    np.savez(archive, x_train=rng.integers(0, 255, (30, 28, 28), np.uint8), y_train=np.arange(30) % 10,
             x_test=rng.integers(0, 255, (10, 28, 28), np.uint8), y_test=np.arange(10))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    data = load_download(origin=archive.as_uri(), file_hash=digest, cache_dir=str(tmp_path / "cache"))
    assert data.x_train.shape == (30, 28, 28) and data.y_test.tolist() == list(range(10))
    assert [p.name for p in (tmp_path / "cache").rglob("mnist.npz")] == ["mnist.npz"]  # cached by get_file
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a Keras MNIST archive"):
        load_download(origin=(tmp_path / "junk.npz").as_uri(), file_hash=None, cache_dir=str(tmp_path / "cache2"))
    with pytest.raises(InputError, match="cannot download MNIST from file:///nonexistent/mnist.npz"):  # offline, 404
        load_download(origin="file:///nonexistent/mnist.npz", file_hash=None, cache_dir=str(tmp_path / "cache3"))
