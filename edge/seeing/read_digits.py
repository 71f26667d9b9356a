"""`tinysense read-digits`: read multi-digit numbers from images, a video or a camera; JSON lines out.

One JSON object per image or frame, in input order: `source`, `frame`, `text` (the number; lines
separated by a space; '?' for a digit below --min-confidence; empty when no digit is seen),
`digits` (label, confidence, box [x, y, w, h], line) and `ms` (preprocess, inference).
`--bench SCENES` instead scores the reader on a make-scenes folder and prints a table.

With `--layout FILE` and a meter bundle, the digits are not searched for: each region of the
layout (one box per digit, optionally aligned to a reference frame; edge.seeing.meter_reader) is
read as a wheel value in tenths and the number is assembled with rolling-wheel logic; `digits`
then holds name, label (the value, or '?'), value, confidence and box, and `marks` the alignment.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from edge.seeing.camera import parse_size
from edge.core.errors import InputError

log = logging.getLogger(__name__)


def parse_roi(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, width, height = (int(part) for part in text.split(","))
    except ValueError:
        raise InputError(f"--roi must be x,y,w,h in pixels (e.g. 100,50,300,120), not {text!r}") from None
    if width <= 0 or height <= 0 or x < 0 or y < 0:
        raise InputError(f"--roi {text}: x and y must be >= 0, width and height > 0")
    return x, y, width, height


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, type=Path,
                        help="digits bundle folder (e.g. models/digits); a meter bundle with --layout")
    parser.add_argument("--variant", default=None, help="model variant: int8 (default), float32, float16, dynamic")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("images", nargs="*", default=[], metavar="IMAGE", help="image files or folders of images")
    source.add_argument("--camera", metavar="N|PATH|pi", help="camera: OpenCV index (0), device path, or 'pi' (picamera2)")
    source.add_argument("--video", type=Path, metavar="FILE", help="video file")
    source.add_argument("--bench", type=Path, metavar="SCENES", help="score the reader on a make-scenes folder instead")
    parser.add_argument("--layout", type=Path, metavar="FILE",
                        help="meter: JSON or TOML file of digit regions (and alignment marks) to read with a meter "
                             "bundle instead of searching for digits (see edge.seeing.meter_reader)")
    parser.add_argument("--tenths", action="store_true", help="--layout: append the last wheel's tenth to the number")
    parser.add_argument("--roi", type=parse_roi, metavar="X,Y,W,H", help="only look inside this rectangle (pixels)")
    parser.add_argument("--min-confidence", type=float, default=0.0,
                        help="digits below this probability are reported as '?' (default 0: always guess)")
    parser.add_argument("--polarity", choices=["auto", "dark", "light"], default="auto",
                        help="dark digits on light ground, light on dark, or auto (default)")
    parser.add_argument("--annotate", type=Path, metavar="OUT", help="write each frame with boxes and labels into this folder")
    parser.add_argument("--size", type=parse_size, default=(640, 480), metavar="WxH", help="camera frame size (default 640x480)")
    parser.add_argument("--continuous", action="store_true", help="camera: keep reading; reopen with back-off when it fails")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many camera or video frames")
    parser.add_argument("--every", type=int, default=1, help="video: read every Nth frame (default 1)")
    parser.add_argument("--keep-going", action="store_true",
                        help="images: report unreadable files as JSON lines with 'error' and go on (exit 1 at the end)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="--bench: also write the results as JSON")


def frames(args):
    from edge.seeing import camera

    if args.camera is not None:
        return camera.camera_frames(camera.camera_spec(args.camera), args.size, continuous=args.continuous,
                                    max_frames=args.max_frames)
    if args.video is not None:
        stream = camera.video_frames(args.video, every=max(1, args.every))
        return stream if args.max_frames is None else (f for f, _ in zip(stream, range(args.max_frames)))
    if not args.images:
        raise InputError("give IMAGE files or folders, --camera, --video or --bench")
    return camera.image_frames(args.images, keep_going=args.keep_going)


def annotated_name(frame, out: Path) -> Path:
    stem = Path(frame.source).stem if frame.index == 0 and not frame.source.startswith("camera:") else \
        f"{Path(frame.source.replace(':', '_')).stem}_{frame.index:06d}"
    return out / f"{stem}.png"


def meter_reader(args):
    """The --layout reader; the options that only the digit search uses are refused in one line."""
    from edge.seeing.meter_reader import MeterReader, load_layout

    unused = [flag for flag, value in (("--bench", args.bench), ("--roi", args.roi)) if value is not None]
    if args.polarity != "auto":
        unused.append("--polarity")
    if unused:
        raise InputError(f"{', '.join(unused)} cannot be used with --layout (the layout's regions say where the digits are)")
    return MeterReader.from_bundle(args.model, load_layout(args.layout), args.variant, args.threads,
                                   min_confidence=args.min_confidence, tenths=args.tenths)


def run(args) -> int:
    import cv2

    from edge.seeing.digit_reader import DigitReader, ReaderConfig, annotate
    from edge.core.fileio import atomic_write_bytes, atomic_write_json

    if args.threads == 1:
        cv2.setNumThreads(1)  # one core for the whole pipeline, as on a small board
    if args.tenths and args.layout is None:
        raise InputError("--tenths needs --layout (it reports the fraction of the last wheel of a meter)")
    if args.layout is not None:
        reader = meter_reader(args)
    else:
        config = ReaderConfig(polarity=args.polarity, min_confidence=args.min_confidence, roi=args.roi)
        reader = DigitReader.from_bundle(args.model, args.variant, args.threads, config)
    log.info("reading digits with %s (%s, %d thread(s))", args.model, reader.model.path.name, args.threads)
    if args.bench is not None:
        from edge.seeing.scene_bench import bench, print_report

        result = bench(reader, args.bench)
        result["model"], result["variant"] = str(args.model), args.variant or "default"
        print_report(result)
        if args.json:
            atomic_write_json(args.json, result)
        return 0
    failed = 0
    for frame in frames(args):
        if frame.image is None:
            failed += 1
            print(json.dumps({"source": frame.source, "frame": frame.index, "error": frame.error}), flush=True)
            continue
        try:
            reading = reader.read(frame.image, frame.source) if args.layout is not None else reader.read(frame.image)
        except InputError as exc:  # an alignment mark not found: report the frame and go on
            if args.layout is None:
                raise
            failed += 1
            print(json.dumps({"source": frame.source, "frame": frame.index, "error": str(exc)}), flush=True)
            continue
        print(json.dumps({"source": frame.source, "frame": frame.index, **reading.to_json()}), flush=True)
        if args.annotate is not None:
            ok, png = cv2.imencode(".png", annotate(frame.image, reading))
            if ok:
                atomic_write_bytes(annotated_name(frame, args.annotate), png.tobytes(), durable=False)
    if failed:
        print(f"{failed} input(s) could not be read", file=sys.stderr)
    return 1 if failed else 0
