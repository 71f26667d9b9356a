"""Evaluation data for a KWS bundle from Speech Commands folders (both packagings), made here."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.hearing.audio import write_wav
from edge.core.bundle import Bundle
from edge.cli import main
from edge.core.errors import BundleError, InputError
from edge.hearing.frontend import RUNTIME_PARAMS
from edge.hearing.kws_eval import load_eval_data

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def tone(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000
    return (3000 * np.sin(2 * np.pi * rng.uniform(200, 3000) * t) + rng.normal(0, 200, 16000)).astype(np.int16)


def fake_bundle(root: Path, **frontend_changes) -> Bundle:
    return Bundle(root, {"labels": LABELS, "frontend": {**RUNTIME_PARAMS.to_dict(), **frontend_changes}})


@pytest.fixture
def test_packaging(tmp_path) -> Path:
    """The official test-split packaging: keyword folders, _unknown_/<word>_..., _silence_/."""
    root = tmp_path / "sc_test"
    files = {"yes/aaaa0001_nohash_0.wav": 2, "yes/bbbb0002_nohash_0.wav": 2, "no/aaaa0001_nohash_1.wav": 3,
             "up/cccc0003_nohash_0.wav": 1, "_unknown_/bed_dddd0004_nohash_0.wav": 1, "_silence_/0001.wav": 0}
    for n, name in enumerate(files):
        write_wav(root / name, tone(n)[: 12000 if n == 1 else 16000])  # one short clip: padded
    return root


def test_test_packaging_loads_every_clip_with_bundle_labels(tmp_path, test_packaging):
    x, y = load_eval_data(fake_bundle(tmp_path), test_packaging)
    assert x.shape == (6, 98, 40, 1) and x.dtype == np.float32
    assert sorted(y.tolist()) == [0, 1, 1, 2, 2, 3]  # "up" is not a keyword of this model: unknown


def test_full_layout_uses_its_testing_list(tmp_path):
    root = tmp_path / "sc_full"
    names = ["yes/aaaa0001_nohash_0.wav", "yes/bbbb0002_nohash_0.wav", "no/bbbb0002_nohash_1.wav", "bed/cccc0003_nohash_0.wav"]
    for n, name in enumerate(names):
        write_wav(root / name, tone(n))
    (root / "testing_list.txt").write_text("yes/bbbb0002_nohash_0.wav\nno/bbbb0002_nohash_1.wav\n")
    x, y = load_eval_data(fake_bundle(tmp_path), root)
    assert y.tolist() == [3, 2]  # sorted by path: no/ before yes/


def test_refuses_other_frontend_and_empty_folder(tmp_path, test_packaging):
    with pytest.raises(BundleError, match="channels=32"):
        load_eval_data(fake_bundle(tmp_path, channels=32), test_packaging)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no clips of the keywords"):
        load_eval_data(fake_bundle(tmp_path), tmp_path / "empty")


def test_bench_on_a_speech_commands_folder(kws_bundle, test_packaging, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["-q", "bench", str(kws_bundle), "--data", str(test_packaging), "--variants", "float32,int8",
                 "--runs", "5", "--warmup", "1", "--json", str(out), "--plots", str(tmp_path / "plots")]) == 0
    import json

    report = json.loads(out.read_text())
    assert report["count"] == 6 and set(report["variants"]) == {"float32", "int8"}
    assert set(report["variants"]["int8"]["per_class_recall"]) == set(LABELS)
    assert (tmp_path / "plots" / "confusion_int8.png").is_file()


def test_a_warm_frontend_model_is_trained_and_evaluated_on_warm_features(tmp_path):
    """--warm-frontend: the manifest says so, the daemon defaults to its continuous front-end, and
    `bench --data` computes the clips' features the way training did."""
    import json

    from edge.hearing.frontend import FrontendParams, clips_features
    from edge.hearing.speech_commands import load_items, read_clip

    root = tmp_path / "sc_full"
    for n in range(40):
        write_wav(root / ("yes", "no")[n % 2] / f"{n:08x}_nohash_0.wav", tone(n))
    out = tmp_path / "model"
    assert main(["-q", "train", "kws", "--no-synthetic", "--data", str(root), "--words", "yes", "no", "--arch", "tiny",
                 "--epochs", "1", "--warm-frontend", "--out", str(out)]) == 0
    meta = json.loads((out / "train_meta.json").read_text())
    assert meta["frontend"]["clip_warmup"] is True and meta["detection"]["fresh_frontend"] is False
    bundle = Bundle(out, {"labels": meta["labels"], "frontend": meta["frontend"]})
    x, y = load_eval_data(bundle, root)
    test_items = [item for item in load_items(root, ("yes", "no")) if item.split == "test"]
    assert len(y) == len(test_items) > 0
    warm = clips_features([read_clip(item) for item in test_items], FrontendParams(clip_warmup=True))
    np.testing.assert_array_equal(x[..., 0], warm)
