"""Model bundles: `models/<name>/manifest.json` plus one .tflite per variant.

The manifest is the only contract between the exporter and the runtime. Loading verifies the
sha256 of every variant it names, and opening a variant checks that the model's input and
output match what the manifest says, so a stale or hand-edited bundle is refused, not run.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from edge.core.errors import BundleError
from edge.core.fileio import read_json, sha256_file
from edge.core.interpreter import TFLiteModel

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
VARIANTS = ("float32", "float16", "dynamic", "int8")
REQUIRED_KEYS = ("format_version", "name", "task", "labels", "input", "variants")


class Bundle:
    """A verified model bundle on disk."""

    def __init__(self, root: Path, manifest: dict):
        self.root = root
        self.manifest = manifest

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True, task: str | None = None) -> "Bundle":
        """Read and check a bundle; with `task`, refuse one made for another task."""
        root = Path(path)
        if root.is_file() and root.name == MANIFEST:
            root = root.parent
        manifest_path = root / MANIFEST
        if not root.is_dir():
            raise BundleError(f"{root}: no such model bundle folder")
        if not manifest_path.is_file():
            raise BundleError(f"{manifest_path}: missing; is {root} an exported bundle? (run: tinysense export {root})")
        manifest = read_json(manifest_path, BundleError)
        if isinstance(manifest, dict) and manifest.get("task") == "kws-cascade":
            raise BundleError(f"{manifest_path}: a two-stage kws-cascade bundle, which only listen runs; "
                              f"give this command one of its stages, {root / 'propose'} or {root / 'confirm'}")
        check_manifest_structure(manifest, manifest_path)
        if manifest["format_version"] != FORMAT_VERSION:
            raise BundleError(f"{manifest_path}: format_version {manifest['format_version']} is not {FORMAT_VERSION}; re-export with this tinysense")
        if task is not None and manifest["task"] != task:
            raise BundleError(f"{manifest_path}: a {manifest['task']!r} bundle; this needs a {task!r} bundle")
        bundle = cls(root, manifest)
        if verify:
            for name in bundle.variants:
                bundle.verify_variant(name)
            for name in bundle.manifest.get("assets", {}):
                bundle.asset_path(name)
        return bundle

    # -- manifest fields --------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def variants(self) -> list[str]:
        return list(self.manifest["variants"])

    def variant(self, name: str) -> dict:
        if name not in self.manifest["variants"]:
            raise BundleError(f"{self.root / MANIFEST}: no variant {name!r} (has {', '.join(self.variants)})")
        return self.manifest["variants"][name]

    def variant_path(self, name: str) -> Path:
        return self.root / self.variant(name)["file"]

    def verify_variant(self, name: str) -> Path:
        return self._checked_file(self.variant(name))

    def asset_path(self, name: str) -> Path:
        """A file the bundle carries besides its variants (e.g. the frozen feature models of a
        kws-embedding bundle), sha256-checked against the manifest's `assets` entry."""
        assets = self.manifest.get("assets", {})
        if name not in assets:
            raise BundleError(f"{self.root / MANIFEST}: no asset {name!r} (has {', '.join(assets) or 'none'})")
        return self._checked_file(assets[name])

    def _checked_file(self, entry: dict) -> Path:
        path = self.root / entry["file"]
        if not path.is_file():
            raise BundleError(f"{path}: named by {self.root / MANIFEST} but missing")
        try:
            digest = sha256_file(path)
        except OSError as exc:
            raise BundleError(f"{path}: cannot read it ({exc.strerror or exc})") from None
        if digest != entry.get("sha256"):
            raise BundleError(f"{path}: sha256 {digest[:12]}… does not match the manifest's {str(entry.get('sha256'))[:12]}…; the file changed after export")
        return path

    # -- running ----------------------------------------------------------------------------
    def open(self, variant: str | None = None, **model_options) -> TFLiteModel:
        """Open one variant (default: int8 when there is one) and check its tensors against the manifest."""
        variant = variant or self.default_variant()
        path = self.verify_variant(variant)
        model = TFLiteModel(path, **model_options)
        check_model_matches(model, self.variant(variant), self.root / MANIFEST, self.labels)
        return model

    def default_variant(self) -> str:
        return "int8" if "int8" in self.manifest["variants"] else self.variants[0]

    def eval_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The held-out examples the exporter stored with the bundle (model inputs, label indices)."""
        entry = self.manifest.get("eval")
        if not entry:
            raise BundleError(f"{self.root / MANIFEST}: bundle has no stored evaluation set; pass --data")
        path = self.root / entry["file"]
        try:
            with np.load(path) as data:
                return data["x"], data["y"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise BundleError(f"{path}: unreadable evaluation set ({exc})") from None


def is_label_list(labels) -> bool:
    """True for what `labels` must be in a manifest and in train_meta.json: a non-empty list of names."""
    return isinstance(labels, list) and bool(labels) and all(isinstance(label, str) for label in labels)


def check_manifest_structure(manifest, manifest_path: Path) -> None:
    """The manifest's keys and their types, so a hand-edited one fails here with one line
    rather than somewhere deep in the runtime."""
    if not isinstance(manifest, dict):
        raise BundleError(f"{manifest_path}: expected a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise BundleError(f"{manifest_path}: missing keys {', '.join(missing)}")
    variants = manifest["variants"]
    if not is_label_list(manifest["labels"]):
        raise BundleError(f"{manifest_path}: 'labels' must be a non-empty list of names")
    if not isinstance(variants, dict) or not variants:
        raise BundleError(f"{manifest_path}: 'variants' must map variant names to their files")
    for name, entry in variants.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise BundleError(f"{manifest_path}: variant {name!r} must be an object with a 'file' name")
        for role in ("input", "output"):
            if not isinstance(entry.get(role), dict):
                raise BundleError(f"{manifest_path}: variant {name!r} has no {role} description")
            if not isinstance(entry[role].get("scale", 0.0), (int, float)):
                raise BundleError(f"{manifest_path}: variant {name!r} {role} scale must be a number")
    for key in ("input", "preprocessing", "frontend", "detection", "eval", "tflm", "assets", "embedding"):
        if key in manifest and not isinstance(manifest[key], dict):
            raise BundleError(f"{manifest_path}: {key!r} must be a JSON object")
    for name, entry in manifest.get("assets", {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise BundleError(f"{manifest_path}: asset {name!r} must be an object with a 'file' name")
    if "eval" in manifest and not isinstance(manifest["eval"].get("file"), str):
        raise BundleError(f"{manifest_path}: 'eval' must name its file")


def tensor_signature(detail: dict) -> dict:
    scale, zero_point = detail["quantization"]
    return {
        "shape": [int(d) for d in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zero_point),
    }


def check_model_matches(model: TFLiteModel, entry: dict, manifest_path: Path, labels: list[str]) -> None:
    for role, detail in (("input", model.input_detail), ("output", model.output_detail)):
        actual = tensor_signature(detail)
        expected = entry.get(role)
        if expected is None:
            raise BundleError(f"{manifest_path}: variant {entry.get('file')} has no {role} description")
        for key in ("shape", "dtype", "zero_point"):
            if expected.get(key) != actual[key]:
                raise BundleError(f"{manifest_path}: {entry.get('file')} {role} {key} is {actual[key]} but the manifest says {expected.get(key)}")
        if not np.isclose(expected.get("scale", 0.0), actual["scale"], rtol=1e-6, atol=0):
            raise BundleError(f"{manifest_path}: {entry.get('file')} {role} scale is {actual['scale']} but the manifest says {expected.get('scale')}")
    outputs = int(np.prod(model.output_detail["shape"]))
    if outputs != len(labels):
        raise BundleError(f"{manifest_path}: {len(labels)} labels but {entry.get('file')} has {outputs} outputs")
