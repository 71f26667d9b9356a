"""`tinysense classify-image`: label single-digit images with a digits or meter bundle.

Each image goes through the same preprocessing the model was trained with: MNIST-style for digits
(edge.seeing.image.to_mnist), a 32x20 grey crop for meter digits (edge.seeing.meter.load_crop,
whose label is the wheel's value in tenths, e.g. 4.7). A bad image gets one error line and the
others are still classified; the exit status is 2 when any image failed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edge.core.bundle import MANIFEST, Bundle
from edge.core.errors import BundleError, InputError
from edge.seeing import meter
from edge.seeing.image import load_gray, to_mnist


def add_arguments(parser) -> None:
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (any format Pillow reads)")
    parser.add_argument("--model", type=Path, default=Path("models/digits"),
                        help="digits or meter bundle (default: models/digits)")
    parser.add_argument("--variant", default=None, help="bundle variant (default: int8)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")


def run(args) -> int:
    bundle = Bundle.load(args.model)
    if bundle.task == "meter":
        meter.check_preprocessing(bundle)
        prepare = meter.load_crop
    elif bundle.task == "digits":
        prepare = lambda path: to_mnist_file(path)[..., np.newaxis]  # noqa: E731
    else:
        raise BundleError(f"{bundle.root / MANIFEST}: a {bundle.task!r} bundle; this needs a 'digits' or 'meter' bundle")
    model = bundle.open(args.variant, threads=args.threads)
    failures = 0
    for path in args.images:
        try:
            pixels = prepare(path)
        except InputError as exc:
            print(f"tinysense classify-image: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        probabilities = model.predict(pixels[np.newaxis].astype(np.float32))[0]
        best = int(probabilities.argmax())
        label, probability = bundle.labels[best], float(probabilities[best])
        if args.json:
            print(json.dumps({"image": str(path), "label": label, "probability": round(probability, 4)}))
        else:
            print(f"{path}\t{label}\t{probability:.3f}")
    return 2 if failures else 0


def to_mnist_file(path: Path) -> np.ndarray:
    """Image file -> 28x28 MNIST-convention pixels, errors naming the file."""
    gray = load_gray(path)
    try:
        return to_mnist(gray)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
