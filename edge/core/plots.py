"""Pictures people would rather see than read: training curves and confusion matrices.

matplotlib is optional on a device (`pip install matplotlib`); callers check `available()`.
Figures are rendered to memory and written atomically.
"""
from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np

from edge.core.fileio import atomic_write_bytes


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def pyplot():
    """matplotlib.pyplot on the Agg backend: plots are files, no display is needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def training_curves(history: dict[str, list[float]], path: str | Path, title: str = "") -> Path:
    """Loss and accuracy, training vs validation, per epoch (the book's figure 4.8 layout)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for prefix, style, name in (("", "o-", "training"), ("val_", "s--", "validation")):
            values = history.get(prefix + metric)
            if values:
                axis.plot(range(1, len(values) + 1), values, style, label=f"{name} {metric}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle(title or "training curves")
    return save_figure(fig, path)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    flat = np.asarray(y_true, np.int64) * num_classes + np.asarray(y_pred, np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def confusion_matrix(counts: np.ndarray, labels: list[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix with the raw counts written in each cell."""
    plt = pyplot()
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros(counts.shape, float), where=rows > 0)
    many = len(labels) > 30  # e.g. the meter's 100 tenths: a readable page, not a 6000-pixel one
    size = min(max(4.0, 0.55 * len(labels) + 2), 20.0)
    font = 3.5 if many else 7
    fig, axis = plt.subplots(figsize=(size, size))
    axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    for (row, col), count in np.ndenumerate(counts):
        if count:
            axis.text(col, row, str(count), ha="center", va="center", fontsize=font,
                      color="white" if normalised[row, col] > 0.5 else "black")
    small = {"fontsize": font} if many else {}
    axis.set_xticks(range(len(labels)), labels, rotation=90 if many else 60, ha="center" if many else "right", **small)
    axis.set_yticks(range(len(labels)), labels, **small)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title or "confusion matrix")
    return save_figure(fig, path)
