"""`python -m edge.seeing.meter_bench MODEL --data DIR`: meter figures of each variant of a meter bundle.

`tinysense bench --data DIR` scores the exact tenth (the model's classes); a meter reader needs
more: clean digits (tenth 8..2) read as their nearest digit, wheels between two digits (tenth
3..7) read as one of the two, and the exact tenth and within one tenth (edge.seeing.meter.score).
DIR is a folder of value-prefixed crops, searched recursively; `--include` / `--exclude` pick the
meters of the model's kind of display (e.g. `--exclude 'lcd*'` for models/meter on the meter_digits
dev split, `--include 'lcd*'` for models/meter-lcd).

`--layout FILE --frame IMAGE` instead times reading a whole meter from a camera frame on one core
(edge.seeing.meter_reader: grey, alignment, cutting and resizing the regions, then inference),
the two halves apart: median wall-clock and CPU milliseconds per frame, and frames per second.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from edge.core.bundle import Bundle
from edge.core.errors import InputError, TinysenseError
from edge.core.fileio import atomic_write_json
from edge.seeing import meter
from edge.seeing.image import load_gray

log = logging.getLogger(__name__)


def evaluate(bundle: Bundle, data: Path, variants: list[str], include=(), exclude=()) -> dict:
    """{variant: MeterScores.as_dict()} on the crops under `data` (`include` / `exclude`: glob
    patterns, see edge.seeing.meter.find_crops), plus the crop count."""
    meter.check_preprocessing(bundle)
    x, values = meter.load_folder(data, include=include, exclude=exclude)
    results = {}
    for name in variants:
        predicted = bundle.open(name).predict(x.astype("float32")).argmax(axis=1)
        results[name] = meter.score(values, meter.class_to_value(predicted)).as_dict()
    return {"model": bundle.name, "data": str(data), "include": list(include), "exclude": list(exclude),
            "count": int(len(values)), "variants": results}


def time_frame(reader, frame, runs: int, warmup: int = 5) -> dict:
    """Median milliseconds per frame (wall clock and this thread's CPU) of the two halves of
    `reader.read(frame)`, over `runs` reads after `warmup`; and the text read."""
    for _ in range(warmup):
        reading = reader.read(frame)
    readings = [reader.read(frame) for _ in range(runs)]
    wall = np.array([(r.preprocess_ms, r.inference_ms) for r in readings])
    cpu = np.array([r.cpu_ms for r in readings])
    total = float(np.median(wall.sum(axis=1)))
    return {"text": reading.text, "regions": len(reading.digits), "runs": runs,
            "frame": [int(frame.shape[1]), int(frame.shape[0])],
            "wall_ms": {"preprocess": float(np.median(wall[:, 0])), "inference": float(np.median(wall[:, 1])),
                        "total": total},
            "cpu_ms": {"preprocess": float(np.median(cpu[:, 0])), "inference": float(np.median(cpu[:, 1]))},
            "fps": 1000.0 / total}


def speed(args) -> dict:
    import cv2

    from edge.seeing.meter_reader import MeterReader, load_layout

    cv2.setNumThreads(1)
    variant = args.variants.split(",")[0] if args.variants else None
    reader = MeterReader.from_bundle(args.model_dir, load_layout(args.layout), variant, threads=1)
    report = time_frame(reader, load_gray(args.frame), args.runs)
    return {"model": str(args.model_dir), "variant": variant or "default", "layout": str(args.layout), **report}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.seeing.meter_bench", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="meter bundle folder")
    parser.add_argument("--data", type=Path, help="folder of crops named like 4.9_anything.jpg")
    parser.add_argument("--include", action="append", default=[], metavar="GLOB",
                        help="--data: only crops whose path relative to DIR matches, e.g. 'lcd*/*' (repeatable)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="--data: leave out crops whose path relative to DIR matches (repeatable)")
    parser.add_argument("--layout", type=Path, metavar="FILE", help="time reading a frame with this layout instead")
    parser.add_argument("--frame", type=Path, metavar="IMAGE", help="--layout: the camera frame to read")
    parser.add_argument("--runs", type=int, default=200, help="--layout: timed reads (default 200)")
    parser.add_argument("--variants", default=None, help="comma-separated variants (default: all in the manifest)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    try:
        if (args.data is None) == (args.layout is None) or (args.layout is None) != (args.frame is None):
            raise InputError("give --data DIR (accuracy) or --layout FILE --frame IMAGE (speed)")
        if args.layout is not None:
            report = speed(args)
        else:
            bundle = Bundle.load(args.model_dir, task="meter")
            report = evaluate(bundle, args.data, args.variants.split(",") if args.variants else bundle.variants,
                              args.include, args.exclude)
    except TinysenseError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    if args.layout is not None:
        wall, cpu = report["wall_ms"], report["cpu_ms"]
        print(f"{report['model']} ({report['variant']}), {report['regions']} regions of a "
              f"{report['frame'][0]}x{report['frame'][1]} frame, median of {report['runs']}: read {report['text']!r}")
        print(f"preprocess {wall['preprocess']:.2f} ms (CPU {cpu['preprocess']:.2f}), inference "
              f"{wall['inference']:.2f} ms (CPU {cpu['inference']:.2f}), {report['fps']:.0f} frames/s on one core")
        if args.json:
            atomic_write_json(args.json, report)
        return 0
    chosen = "".join(f" --{key} {' '.join(report[key])}" for key in ("include", "exclude") if report[key])
    print(f"{report['model']} on {report['count']} crops in {report['data']}{chosen}")
    print("variant   clean (n)           between (n)         exact   within 1")
    for name, s in report["variants"].items():
        print(f"{name:<9} {s['clean']:.4f} ({s['clean_count']:>5})  {s['between']:.4f} ({s['between_count']:>5})  "
              f"{s['exact']:.4f}  {s['within_one']:.4f}")
    if args.json:
        atomic_write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
