"""`tinysense quant-report`: which layer of an int8 model loses the most to quantization.

TensorFlow's QuantizationDebugger runs the float and the quantized model side by side on the
calibration data and records, per quantized tensor, the error against float. Dividing its RMSE
by the tensor's quantization scale gives an error in LSB: pure rounding noise is 1/sqrt(12) =
0.29 LSB, so a layer far above that (TensorFlow's guide flags > 0.7) is where accuracy is lost.
"""
from __future__ import annotations

import argparse
import csv
import io
import logging
import math
from pathlib import Path

import numpy as np

from edge.core.errors import BundleError
from edge.core.fileio import atomic_write_text
from export.bundle_writer import load_npz

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.7
ROUNDING_NOISE = 1 / math.sqrt(12)
CSV_NAME = "quant_report.csv"
PNG_NAME = "quant_report.png"


def load_calibration(model_dir: Path, samples: int) -> np.ndarray:
    """The first `samples` inputs of the pool the exporter calibrated the int8 model with."""
    return load_npz(model_dir / "calibration.npz", ("x",))["x"][:samples].astype(np.float32)


def layer_statistics(keras_path: Path, calibration: np.ndarray) -> list[dict]:
    """QuantizationDebugger's per-tensor statistics, plus `rmse/scale` in LSB."""
    import keras
    import tensorflow as tf

    from export.convert import int8_converter, representative_dataset

    try:
        model = keras.models.load_model(keras_path, compile=False)
    except (OSError, ValueError) as exc:
        raise BundleError(f"{keras_path}: cannot load Keras model ({exc})") from None
    debugger = tf.lite.experimental.QuantizationDebugger(converter=int8_converter(model, calibration),
                                                         debug_dataset=representative_dataset(calibration))
    debugger.run()
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    for row in rows:
        scale = float(row["scale"])
        rmse = math.sqrt(max(float(row["mean_squared_error"]), 0.0))
        row["rmse/scale"] = rmse / scale if scale > 0 else float("nan")
    return rows


def write_report(rows: list[dict], threshold: float, csv_path: Path, png_path: Path, title: str) -> list[dict]:
    """CSV of every layer (with a `flagged` column) and a bar chart; returns the flagged rows."""
    from edge.core.plots import pyplot, save_figure

    plt = pyplot()

    for row in rows:
        row["flagged"] = bool(row["rmse/scale"] > threshold)
    columns = ["op_name", "tensor_name", "scale", "zero_point", "rmse/scale", "flagged",
               "mean_error", "max_abs_error", "mean_squared_error", "num_elements"]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(csv_path, text.getvalue())

    values = [row["rmse/scale"] for row in rows]
    labels = [f"{i}: {row['op_name']}" for i, row in enumerate(rows)]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.5))
    ax.barh(labels, values, color=["tab:red" if row["flagged"] else "tab:blue" for row in rows])
    ax.axvline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold}")
    ax.axvline(ROUNDING_NOISE, color="gray", linestyle=":", label="rounding noise 0.29")
    ax.invert_yaxis()
    ax.set_xlabel("RMSE / scale (LSB)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    save_figure(fig, png_path)
    return [row for row in rows if row["flagged"]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="trained model folder with keras/model.keras and calibration.npz")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"flag layers whose RMSE/scale exceeds this many LSB (default {DEFAULT_THRESHOLD})")
    parser.add_argument("--samples", type=int, default=100, help="calibration examples to run (default 100)")
    parser.add_argument("--out", help=f"folder for {CSV_NAME} and {PNG_NAME} (default: MODEL_DIR)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    model_dir = Path(args.model_dir)
    keras_path = model_dir / "keras" / "model.keras"
    if not keras_path.is_file():
        raise BundleError(f"{keras_path}: missing; quant-report needs a trained model folder (tinysense train)")
    rows = layer_statistics(keras_path, load_calibration(model_dir, args.samples))
    out = Path(args.out) if args.out else model_dir
    name = model_dir.name
    flagged = write_report(rows, args.threshold, out / CSV_NAME, out / PNG_NAME, f"{name}: int8 error per layer")

    table = Table(title=f"{name}: per-layer int8 error (RMSE/scale, LSB; rounding noise = {ROUNDING_NOISE:.2f})")
    for column in ("#", "op", "tensor", "RMSE/scale", "flag"):
        table.add_column(column)
    for i, row in enumerate(rows):
        table.add_row(str(i), row["op_name"], row["tensor_name"][-48:], f"{row['rmse/scale']:.3f}", "!" if row["flagged"] else "")
    Console().print(table)
    print(f"{len(flagged)} of {len(rows)} layers above {args.threshold} LSB; wrote {out / CSV_NAME} and {out / PNG_NAME}")
    return 0
