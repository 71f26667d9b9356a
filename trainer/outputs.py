"""What training leaves for the exporter: metadata, calibration pool, held-out set, confusion matrix.

These files are the trainer -> exporter contract (see README, "Model bundle"):
`train_meta.json`, `calibration.npz` (class-balanced pool of training inputs with their indices),
`heldout.npz` (the evaluation set stored with the bundle), `confusion_matrix.png`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.core import plots
from edge.core.errors import OutputError
from edge.core.fileio import atomic_save_npz, atomic_write_json


#: What a previous run in the same folder left that could pass for this run's result.
PREVIOUS_RUN = ("train_meta.json", "manifest.json", "keras/checkpoint.keras")


def check_out_dir(out_dir: Path) -> None:
    """Refuse an --out that cannot be a model folder before any data is loaded."""
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder; --out needs a model folder")
    for parent in Path(out_dir).parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{out_dir}: {parent} is not a folder; --out needs a model folder")
            break


def clear_previous_run(out_dir: Path) -> None:
    """Remove the files that mark a finished run (and a bundle made from it), so a run that stops
    half-way leaves a folder `export` refuses, never one that mixes two runs."""
    for name in PREVIOUS_RUN:
        (Path(out_dir) / name).unlink(missing_ok=True)


def balanced_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Up to `per_class` indices of each class, drawn with a seeded generator, sorted."""
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == value))[:per_class] for value in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def save_training_outputs(out_dir: Path, model, meta: dict, train_x: np.ndarray, train_y: np.ndarray,
                          heldout_x: np.ndarray, heldout_y: np.ndarray, *, calibration_per_class: int,
                          seed: int) -> dict:
    """Write the contract files; returns the held-out metrics (also stored in train_meta.json)."""
    out_dir = Path(out_dir)
    indices = balanced_indices(train_y, calibration_per_class, seed)
    atomic_save_npz(out_dir / "calibration.npz", x=train_x[indices], y=train_y[indices], indices=indices,
                    seed=np.int64(seed))
    atomic_save_npz(out_dir / "heldout.npz", x=heldout_x, y=heldout_y)
    probabilities = model.predict(heldout_x.astype(np.float32), batch_size=256, verbose=0)
    predicted = probabilities.argmax(axis=1)
    labels = meta["labels"]
    counts = plots.confusion_counts(heldout_y, predicted, len(labels))
    metrics = {"heldout_accuracy": float((predicted == heldout_y).mean()), "heldout_count": int(len(heldout_y))}
    if plots.available():
        plots.confusion_matrix(counts, labels, out_dir / "confusion_matrix.png",
                               title=f"{meta['name']} (Keras, held-out, acc {metrics['heldout_accuracy']:.4f})")
    atomic_write_json(out_dir / "train_meta.json", {**meta, "metrics": {**meta.get("metrics", {}), **metrics}})
    return metrics
