"""Builder for the small real keyword-spotting bundle the tests share (C's daemon tests, E's firmware).

Synthetic speech only (trainer.kws_corpus, synthesized into the pytest tmp folder: nothing cached
outside it), keywords "yes" and "no", the `tiny` DS-CNN, trained and exported through the same
`tinysense train kws` and `tinysense export` code paths a user runs.
"""
from __future__ import annotations

from pathlib import Path

from edge.cli import main

KWS_WORDS = ("yes", "no")
#: Small enough for ~1 minute of CPU, large enough to recognize unseen synthetic voices. The Debian
#: synthesizers only: with piper's one voice as a quarter of 40 speakers, the tiny model learned
#: nothing but `_unknown_` (the default corpus has 250 speakers, where piper helps).
KWS_TRAIN_ARGS = ["--arch", "tiny", "--words", *KWS_WORDS, "--synthetic-speakers", "40", "--synthetic-copies", "2",
                  "--synthetic-engines", "espeak-ng,flite,festival",
                  "--epochs", "25", "--batch-size", "32", "--learning-rate", "0.005", "--seed", "0"]


def build_kws_bundle(out_dir: Path) -> Path:
    """Synthesize a yes/no corpus, train the tiny model, export all four variants; returns the bundle dir."""
    out_dir = Path(out_dir)
    model_dir = out_dir / "kws"
    assert main(["-q", "train", "kws", *KWS_TRAIN_ARGS, "--cache", str(out_dir / "corpus-cache"),
                 "--out", str(model_dir)]) == 0
    assert main(["-q", "export", str(model_dir)]) == 0
    return model_dir
