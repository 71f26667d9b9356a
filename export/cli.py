"""`tinysense export MODEL_DIR`: quantize a trained model into a bundle."""
from __future__ import annotations

from pathlib import Path

from export.convert import VARIANTS


def add_arguments(parser) -> None:
    parser.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="folder written by tinysense train")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated variants to write (default: {','.join(VARIANTS)})")


def run(args) -> int:
    from edge.core.errors import TinysenseError
    from export.bundle_writer import export_bundle

    variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not variants:
        raise TinysenseError(f"unknown variants {', '.join(unknown) or '(none)'}; choose from {', '.join(VARIANTS)}")
    manifest = export_bundle(args.model_dir, variants)
    for name, entry in manifest["variants"].items():
        print(f"{args.model_dir / entry['file']}: {entry['size_bytes']} bytes, accuracy {entry['accuracy']:.4f}")
    return 0
