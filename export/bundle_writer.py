"""Trained model folder -> model bundle: TFLite variants, measured accuracy, manifest last.

Reads what training left (`keras/model.keras`, `train_meta.json`, `calibration.npz`,
`heldout.npz`) and writes `model_<variant>.tflite`, `eval.npz` and `manifest.json`. Each file is
written atomically and the manifest goes last, so a bundle with a manifest is always complete.
"""
from __future__ import annotations

import json
import logging
import platform
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from edge import __version__
from edge.bundle import FORMAT_VERSION, MANIFEST, tensor_signature
from edge.errors import BundleError
from edge.fileio import atomic_save_npz, atomic_write_bytes, atomic_write_json, sha256_file
from edge.interpreter import TFLiteModel
from export.convert import VARIANTS, convert_all

log = logging.getLogger(__name__)
#: train_meta keys that the exporter computes itself rather than copying.
RESERVED = {"format_version", "variants", "representative", "eval", "tflm", "versions", "created"}


def load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise BundleError(f"{path}: missing; train the model first (tinysense train ...)")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def library_versions() -> dict[str, str]:
    versions = {"tinysense": __version__, "python": platform.python_version()}
    for package in ("tensorflow", "tensorflow-cpu", "keras", "ai-edge-litert", "numpy", "tflite-micro"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def evaluate(model: TFLiteModel, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.predict(x.astype(np.float32)).argmax(axis=1) == y).mean())


def tflm_arena_bytes(int8_model: bytes) -> int | None:
    """TFLite Micro's arena for the int8 model, when tflite-micro is installed."""
    try:
        from edge.micro import MicroKernelError
        from export.tflm import measure_arena_bytes
    except ImportError as exc:
        log.warning("TFLite Micro arena not measured (%s); pip install 'tinysense[dev]'", exc)
        return None
    try:
        return measure_arena_bytes(int8_model)
    except MicroKernelError as exc:
        log.warning("TFLite Micro arena not measured: %s", exc)
        return None


def export_bundle(model_dir: Path, variants=VARIANTS) -> dict:
    """Convert, evaluate and write the bundle in `model_dir`; returns the manifest."""
    import keras

    model_dir = Path(model_dir)
    meta_path = model_dir / "train_meta.json"
    keras_path = model_dir / "keras" / "model.keras"
    for required in (meta_path, keras_path):
        if not required.is_file():
            raise BundleError(f"{required}: missing; train the model first (tinysense train ...)")
    meta = json.loads(meta_path.read_text())
    calibration = load_npz(model_dir / "calibration.npz")
    heldout = load_npz(model_dir / "heldout.npz")
    model = keras.saving.load_model(keras_path)
    started = time.perf_counter()
    converted = convert_all(model, variants, calibration["x"].astype(np.float32))

    entries = {}
    for variant, model_bytes in converted.items():
        path = atomic_write_bytes(model_dir / f"model_{variant}.tflite", model_bytes)
        runtime = TFLiteModel(path)
        accuracy = evaluate(runtime, heldout["x"], heldout["y"])
        log.info("%s: %d bytes, held-out accuracy %.4f", variant, len(model_bytes), accuracy)
        entries[variant] = {
            "file": path.name, "sha256": sha256_file(path), "size_bytes": len(model_bytes), "accuracy": accuracy,
            "input": tensor_signature(runtime.input_detail), "output": tensor_signature(runtime.output_detail),
        }
    eval_path = atomic_save_npz(model_dir / "eval.npz", x=heldout["x"], y=heldout["y"])
    manifest = {
        "format_version": FORMAT_VERSION,
        **{key: value for key, value in meta.items() if key not in RESERVED},
        "variants": entries,
        "representative": {"source": "calibration.npz", "count": int(len(calibration["y"])),
                           "seed": int(calibration["seed"]), "class_balanced": True,
                           "indices": [int(i) for i in calibration["indices"]]},
        "eval": {"file": eval_path.name, "count": int(len(heldout["y"])), "source": meta.get("data", {}).get("source", "")},
        "tflm": {"arena_bytes": tflm_arena_bytes(converted["int8"]) if "int8" in converted else None},
        "versions": library_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(model_dir / MANIFEST, manifest)
    log.info("exported %s in %.0f s", model_dir, time.perf_counter() - started)
    return manifest
