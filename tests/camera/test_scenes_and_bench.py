"""make-scenes, printed digits for training, and the --bench accuracy on a fixed seeded set."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edge.cli import build_parser, main
from edge.seeing.scene_bench import compare
from trainer.printed_digits import digit_fonts, mix_printed, printed_digits


def test_make_scenes_is_deterministic_and_writes_ground_truth(tmp_path, capsys):
    for name in ("a", "b"):
        assert main(["-q", "make-scenes", str(tmp_path / name), "--count", "3", "--kind", "printed", "--seed", "7"]) == 0
    assert "wrote 3 printed scenes" in capsys.readouterr().out
    truth = [json.loads(line) for line in (tmp_path / "a" / "ground_truth.jsonl").read_text().splitlines()]
    assert [t["file"] for t in truth] == ["scene_00000.jpg", "scene_00001.jpg", "scene_00002.jpg"]
    for entry in truth:
        assert entry["text"].isdigit() and len(entry["boxes"]) == len(entry["text"]) and entry["kind"] == "printed"
        assert (tmp_path / "a" / entry["file"]).read_bytes() == (tmp_path / "b" / entry["file"]).read_bytes()
    assert main(["-q", "make-scenes", str(tmp_path / "c"), "--count", "0"]) == 2
    assert main(["-q", "make-scenes", str(tmp_path / "c"), "--size", "big"]) == 2
    assert "--size" in capsys.readouterr().err


def test_fonts_and_printed_digits_in_mnist_convention():
    fonts = digit_fonts()
    names = {font.name for font in fonts}
    assert {"DejaVuSans.ttf", "LiberationSerif-Regular.ttf", "DSEG7Classic-Regular.ttf"} <= names
    assert not any("Weather" in name or "SEGGCHAN" in name for name in names)
    x, y = printed_digits(40, seed=1)
    assert x.shape == (40, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y, minlength=10).tolist() == [4] * 10
    assert x[:, :3, :].mean() < 20 and (x.max(axis=(1, 2)) >= 200).all()  # white digit on black
    again, _ = printed_digits(40, seed=1)
    assert np.array_equal(x, again)


def test_mix_printed_gives_the_requested_share_and_the_option_exists():
    x, y = np.zeros((70, 28, 28), np.uint8), np.zeros(70, np.int64)
    mixed_x, mixed_y = mix_printed(x, y, 0.3, seed=0)
    assert len(mixed_y) == 100 and mixed_x.shape == (100, 28, 28)
    with pytest.raises(Exception, match="fraction"):
        mix_printed(x, y, 1.0, seed=0)
    args = build_parser("train").parse_args(["train", "digits", "--printed", "0.3"])
    assert args.printed == 0.3
    assert build_parser("train").parse_args(["train", "digits"]).printed == 0.0  # pure MNIST by default


def test_digit_matching_counts_aligned_digits_and_insertions():
    assert compare("1234", "1234") == (4, 0)
    assert compare("124", "1234") == (3, 0)
    assert compare("1934", "1234") == (3, 0)  # a substitution is a miss, not an insertion
    assert compare("12734", "1234") == (4, 1)
    assert compare("", "77") == (0, 0)


def test_bench_string_and_digit_accuracy_on_seeded_scenes(digits_bundle, scenes_dir, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["-q", "read-digits", "--model", str(digits_bundle), "--bench", str(scenes_dir), "--json", str(out)]) == 0
    assert "read-digits on" in capsys.readouterr().out
    result = json.loads(out.read_text())
    overall, hand = result["overall"], result["by_kind"]["handwritten"]
    assert overall["scenes"] == 24 and result["frame_sizes"] == ["640x480"]
    assert overall["fps"] > 0 and overall["preprocess_ms_mean"] > 0 and overall["inference_ms_mean"] > 0
    assert overall["cpu_fps"] > 0 and overall["preprocess_cpu_ms_mean"] > overall["inference_cpu_ms_mean"] > 0
    # The session bundle is a pure-MNIST convnet trained for seconds; handwriting is what it knows.
    assert hand["digit_accuracy"] >= 0.75
    assert hand["string_accuracy"] >= 0.4
    assert overall["digit_accuracy"] >= 0.5
