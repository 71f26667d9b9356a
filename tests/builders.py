"""Builders for the small real bundles the tests share (trained in seconds on embedded data)."""
from __future__ import annotations

from pathlib import Path

from edge.cli import main

#: Enough of the embedded 5000 digits for a model well above chance in a few seconds of CPU.
DIGITS_TRAIN_ARGS = ["--arch", "small", "--limit", "2500", "--epochs", "4", "--seed", "0"]


def build_digits_bundle(out_dir: Path) -> Path:
    """Train the small convnet on part of the embedded MNIST sample, export all four variants."""
    model_dir = Path(out_dir) / "digits"
    assert main(["-q", "train", "digits", *DIGITS_TRAIN_ARGS, "--out", str(model_dir)]) == 0
    assert main(["-q", "export", str(model_dir)]) == 0
    return model_dir
