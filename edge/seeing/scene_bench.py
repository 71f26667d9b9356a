"""Accuracy and speed of the digit reader on a folder of scenes with ground truth (from make-scenes).

String accuracy: the whole number read exactly. Per-digit accuracy: true digits matched by an
alignment of the read string with the truth (difflib), over all true digits; digits read that
are not there count as insertions. Speed: mean milliseconds per frame for preprocessing (locate:
everything but the model) and inference, and the frames per second of the two together, both by
wall clock and by the thread's CPU time (what one dedicated core does, unaffected by other
processes on a shared machine). Image decoding is not timed: a camera delivers decoded
frames.
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path

import numpy as np

from edge.seeing.digit_reader import DigitReader
from edge.core.errors import InputError
from edge.seeing.image import load_gray

GROUND_TRUTH = "ground_truth.jsonl"


def load_ground_truth(folder: Path) -> list[dict]:
    path = folder / GROUND_TRUTH
    if not path.is_file():
        raise InputError(f"{path}: missing; make scenes with: tinysense make-scenes {folder}")
    try:
        entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON lines ({exc})") from None
    if not entries or not all("file" in e and "text" in e for e in entries):
        raise InputError(f"{path}: expected lines with 'file' and 'text'")
    return entries


def compare(read: str, truth: str) -> tuple[int, int]:
    """(true digits read correctly, digits read that are not in the truth) after a difflib alignment."""
    matched = inserted = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, read, truth, autojunk=False).get_opcodes():
        if tag == "equal":
            matched += i2 - i1
        elif tag in ("delete", "replace"):
            inserted += max(0, (i2 - i1) - (j2 - j1))
    return matched, inserted


def summarise(rows: list[dict]) -> dict:
    digits = sum(len(r["truth"]) for r in rows)
    preprocess = np.array([r["preprocess_ms"] for r in rows])
    inference = np.array([r["inference_ms"] for r in rows])
    total = preprocess + inference
    cpu = np.array([[r["preprocess_cpu_ms"], r["inference_cpu_ms"]] for r in rows])
    return {
        "scenes": len(rows),
        "digits": digits,
        "string_accuracy": round(float(np.mean([r["read"] == r["truth"] for r in rows])), 4),
        "digit_accuracy": round(sum(r["matched"] for r in rows) / max(1, digits), 4),
        "inserted_digits": int(sum(r["inserted"] for r in rows)),
        "preprocess_ms_mean": round(float(preprocess.mean()), 2),
        "inference_ms_mean": round(float(inference.mean()), 2),
        "total_ms_p50": round(float(np.percentile(total, 50)), 2),
        "total_ms_p90": round(float(np.percentile(total, 90)), 2),
        "fps": round(1000.0 / float(total.mean()), 1),
        "preprocess_cpu_ms_mean": round(float(cpu[:, 0].mean()), 2),
        "inference_cpu_ms_mean": round(float(cpu[:, 1].mean()), 2),
        "cpu_fps": round(1000.0 / float(cpu.sum(axis=1).mean()), 1),
    }


def bench(reader: DigitReader, folder: str | Path, warmup: int = 3) -> dict:
    """Run the reader over every scene in `folder`; returns {'overall': ..., 'by_kind': {...}, 'errors': [...]}."""
    folder = Path(folder)
    entries = load_ground_truth(folder)
    frames = [load_gray(folder / entry["file"]) for entry in entries]
    sizes = sorted({f"{frame.shape[1]}x{frame.shape[0]}" for frame in frames})
    for frame in frames[:warmup]:
        reader.read(frame)
    rows = []
    for entry, frame in zip(entries, frames):
        reading = reader.read(frame)
        text = reading.text.replace(" ", "")
        matched, inserted = compare(text, entry["text"])
        rows.append({"file": entry["file"], "kind": entry.get("kind", "unknown"), "truth": entry["text"], "read": text,
                     "matched": matched, "inserted": inserted,
                     "preprocess_ms": reading.preprocess_ms, "inference_ms": reading.inference_ms,
                     "preprocess_cpu_ms": reading.cpu_ms[0], "inference_cpu_ms": reading.cpu_ms[1]})
    kinds = sorted({row["kind"] for row in rows})
    return {
        "folder": str(folder),
        "frame_sizes": sizes,
        "overall": summarise(rows),
        "by_kind": {kind: summarise([r for r in rows if r["kind"] == kind]) for kind in kinds},
        "errors": [{k: r[k] for k in ("file", "kind", "truth", "read")} for r in rows if r["read"] != r["truth"]],
    }


def print_report(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"read-digits on {result['folder']} ({', '.join(result['frame_sizes'])})")
    for column in ("set", "scenes", "digits", "string acc", "digit acc", "inserted", "preprocess ms", "inference ms",
                   "fps", "cpu: preprocess ms", "inference ms", "fps"):
        table.add_column(column, justify="right" if column != "set" else "left")
    for name, row in [*result["by_kind"].items(), ("all", result["overall"])]:
        table.add_row(name, str(row["scenes"]), str(row["digits"]), f"{row['string_accuracy']:.2%}",
                      f"{row['digit_accuracy']:.2%}", str(row["inserted_digits"]), f"{row['preprocess_ms_mean']:.1f}",
                      f"{row['inference_ms_mean']:.2f}", f"{row['fps']:.1f}", f"{row['preprocess_cpu_ms_mean']:.1f}",
                      f"{row['inference_cpu_ms_mean']:.2f}", f"{row['cpu_fps']:.1f}")
    Console(width=150).print(table)
