"""Trained model folder -> model bundle: TFLite variants, measured accuracy, manifest last.

Reads what training left (`keras/model.keras`, `train_meta.json`, `calibration.npz`,
`heldout.npz`) and writes `model_<variant>.tflite`, `eval.npz` and `manifest.json`. Each file is
written atomically and the manifest goes last, so a bundle with a manifest is always complete.
"""
from __future__ import annotations

import logging
import platform
import time
import zipfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from edge import __version__
from edge.core.bundle import FORMAT_VERSION, MANIFEST, is_label_list, tensor_signature
from edge.core.errors import BundleError
from edge.core.fileio import atomic_save_npz, atomic_write_bytes, atomic_write_json, read_json, sha256_file
from edge.core.interpreter import TFLiteModel
from export.convert import VARIANTS, convert_all

log = logging.getLogger(__name__)
#: train_meta keys that the exporter computes itself rather than copying.
RESERVED = {"format_version", "variants", "representative", "eval", "tflm", "versions", "created"}


def load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays `keys` of a training output; a one-line BundleError if it is missing, corrupt or empty."""
    if not path.is_file():
        raise BundleError(f"{path}: missing; train the model first (tinysense train ...)")
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in keys}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{path}: unreadable training output ({type(exc).__name__}: {exc})") from None
    if "x" in arrays and (arrays["x"].ndim < 2 or len(arrays["x"]) == 0):
        raise BundleError(f"{path}: holds no examples")
    if "y" in arrays and len(arrays["y"]) != len(arrays["x"]):
        raise BundleError(f"{path}: {len(arrays['x'])} examples but {len(arrays['y'])} labels")
    return arrays


def load_meta(path: Path) -> dict:
    """train_meta.json, refused in one line unless it is an object with a task and a list of labels."""
    meta = read_json(path, BundleError)
    if not isinstance(meta, dict) or not isinstance(meta.get("task"), str) or not is_label_list(meta.get("labels")):
        raise BundleError(f"{path}: needs a 'task' and a non-empty list of 'labels'; is it a tinysense training output?")
    return meta


def check_training_outputs(model, meta: dict, model_dir: Path, **arrays: np.ndarray) -> None:
    """The Keras model, its labels and the stored examples must describe the same network."""
    outputs = int(np.prod(model.output_shape[1:]))
    if outputs != len(meta["labels"]):
        raise BundleError(f"{model_dir / 'train_meta.json'}: {len(meta['labels'])} labels but the model has {outputs} outputs")
    for name, x in arrays.items():
        if tuple(x.shape[1:]) != tuple(model.input_shape[1:]):
            raise BundleError(f"{model_dir / name}: examples of shape {list(x.shape[1:])}, "
                              f"the model takes {list(model.input_shape[1:])}")


def check_assets(model_dir: Path, assets) -> None:
    """The files train_meta.json's `assets` names (e.g. a kws-embedding model's feature models) are
    in `model_dir` with the sha256 recorded at training time."""
    if not isinstance(assets, dict):
        raise BundleError(f"{model_dir / 'train_meta.json'}: 'assets' must map names to files")
    for name, entry in assets.items():
        path = model_dir / str(entry.get("file") if isinstance(entry, dict) else "")
        if not isinstance(entry, dict) or not path.is_file():
            raise BundleError(f"{path}: the asset {name!r} named by train_meta.json is missing; train again")
        if sha256_file(path) != entry.get("sha256"):
            raise BundleError(f"{path}: sha256 differs from train_meta.json's; the asset {name!r} changed after training")


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
        from edge.core.micro import MicroKernelError
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
    meta = load_meta(meta_path)
    check_assets(model_dir, meta.get("assets", {}))
    calibration = load_npz(model_dir / "calibration.npz", ("x", "y", "indices", "seed"))
    heldout = load_npz(model_dir / "heldout.npz", ("x", "y"))
    try:
        model = keras.saving.load_model(keras_path)
    except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors ... on a damaged file
        raise BundleError(f"{keras_path}: cannot load the Keras model ({type(exc).__name__}: {exc})") from None
    check_training_outputs(model, meta, model_dir, **{"calibration.npz": calibration["x"], "heldout.npz": heldout["x"]})
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
