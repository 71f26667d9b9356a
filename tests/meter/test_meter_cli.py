"""The meter job end to end through the command line: train on photos, export, bench, classify."""
import json

import numpy as np

from edge.cli import main
from edge.core.bundle import Bundle
from edge.seeing import meter, meter_bench


def test_bundle_is_a_meter_bundle_scored_on_dev(meter_bundle):
    root, model_dir = meter_bundle
    bundle = Bundle.load(model_dir, task="meter")
    assert bundle.labels == meter.LABELS and bundle.manifest["preprocessing"]["kind"] == "meter"
    assert bundle.manifest["eval"]["count"] == 40  # dev/ only, never trained on
    data = bundle.manifest["data"]
    assert data["heldout"] == 40 and data["train"] + data["validation"] == 220 + 30  # 30 renders, in training
    assert "+ 30 rendered crops" in data["source"]
    # photos train on every meter by default (no validation), with a moving average of the weights
    assert data["groups"]["heldout"] == ["dev/*"] and data["groups"]["validation"] == [] and data["validation"] == 0
    assert bundle.manifest["training"]["ema_momentum"] == 0.999
    assert bundle.variant("int8")["input"]["shape"] == [1, 32, 20, 1]
    assert bundle.manifest["tflm"]["arena_bytes"] > 0


def test_bench_data_reads_value_prefixed_crops(meter_bundle, tmp_path, capsys):
    root, model_dir = meter_bundle
    out = tmp_path / "bench.json"
    assert main(["-q", "bench", str(model_dir), "--data", str(root / "dev"), "--variants", "int8", "--runs", "5",
                 "--warmup", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["count"] == 40 and report["task"] == "meter"
    # tenths make no readable table of columns: the terminal says where the recall is instead
    present = len(report["variants"]["int8"]["per_class_recall"])  # the classes the 40 crops hold
    assert present > 20 and f"per-class recall of {present} classes: in the --json report" in capsys.readouterr().out


def test_classify_image_and_meter_bench_agree_with_the_model(meter_bundle, capsys):
    root, model_dir = meter_bundle
    paths = sorted((root / "dev").rglob("*.jpg"))[:6]
    assert main(["classify-image", "--json", "--model", str(model_dir), *map(str, paths)]) == 0
    labels = [json.loads(line)["label"] for line in capsys.readouterr().out.splitlines()]
    model = Bundle.load(model_dir).open("int8")
    expected = model.predict(np.stack([meter.load_crop(p) for p in paths]).astype(np.float32)).argmax(axis=1)
    assert labels == [meter.LABELS[i] for i in expected]

    report = meter_bench.evaluate(Bundle.load(model_dir), root / "dev", ["int8"])
    x, values = meter.load_folder(root / "dev")
    predicted = meter.class_to_value(model.predict(x.astype(np.float32)).argmax(axis=1))
    assert report["count"] == 40 and report["variants"]["int8"] == meter.score(values, predicted).as_dict()


def test_classify_image_refuses_a_meter_bundle_made_for_other_crops(meter_bundle, tmp_path, capsys):
    root, model_dir = meter_bundle
    import shutil

    copy = shutil.copytree(model_dir, tmp_path / "copy")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["preprocessing"]["height"] = 28
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert main(["classify-image", "--model", str(copy), str(next((root / "dev").rglob("*.jpg")))]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "preprocessing height is 28" in err[0] and "manifest.json" in err[0]
    manifest["preprocessing"]["height"] = 32
    del manifest["preprocessing"]["contrast"]  # a bundle trained before crops were contrast-stretched
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert main(["classify-image", "--model", str(copy), str(next((root / "dev").rglob("*.jpg")))]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "preprocessing contrast is None" in err[0] and "train and export the model again" in err[0]


def test_train_meter_refuses_a_folder_without_crops(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "readme.txt").write_text("no crops")
    assert main(["train", "meter", "--data", str(tmp_path / "photos"), "--out", str(tmp_path / "m")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "photos: no crops named like 4.9_" in err[0]


def test_train_meter_display_lcd_renders_lcd_digits_into_models_meter_lcd(tmp_path, monkeypatch):
    """Renders only: `--display lcd` trains on whole LCD digits and lands in models/meter-lcd."""
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "train", "meter", "--display", "lcd", "--count", "40", "--epochs", "1"]) == 0
    meta = json.loads((tmp_path / "models" / "meter-lcd" / "train_meta.json").read_text())
    assert meta["training"]["display"] == "lcd" and meta["data"]["source"].startswith("rendered LCD digits (40,")
    heldout = np.load(tmp_path / "models" / "meter-lcd" / "heldout.npz")["y"]
    assert np.all(heldout % 10 == 0)  # class indices of whole digits only


def test_meter_bench_scores_only_the_included_meters(meter_bundle, capsys):
    root, model_dir = meter_bundle
    assert meter_bench.main([str(model_dir), "--data", str(root), "--exclude", "train/*", "--variants", "int8"]) == 0
    out = capsys.readouterr().out
    assert f"on 40 crops in {root} --exclude train/*" in out
    assert meter_bench.main([str(model_dir), "--data", str(root), "--include", "train/meter_a/*"]) == 0
    assert "on 110 crops" in capsys.readouterr().out
