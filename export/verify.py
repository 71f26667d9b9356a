"""`tinysense verify`: the int8 kernels a microcontroller runs give the same answers as the desktop.

Every int8 variant of a bundle runs through LiteRT with its default XNNPACK delegate, LiteRT
with the plain builtin kernels, and TensorFlow Lite Micro. TFLM is the reference (it is what the
firmware runs). Measured on this project's bundles (held-out sets of 1000 digits and 1684 kws
clips): the builtin kernels match TFLM bit for bit through every convolution, depthwise
convolution, pooling and mean, and differ by 1 LSB on a few FULLY_CONNECTED outputs
(requantization rounding), which the final softmax (scale 1/256) turns into up to 3 LSB; top-1
agreement 100%. XNNPACK differs by 1 LSB from the first convolution on and the differences add
up through the layers: up to 8 LSB at the digits softmax (top-1 agreement 100%) and 20 LSB at
the 9-layer DS-CNN's (top-1 agreement 98.9%). The default tolerances sit above those figures;
past them the command exits 1, so it can gate a release.
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge.bench.model_bench import load_eval
from edge.core.argtypes import positive_int
from edge.core.bundle import Bundle
from edge.core.errors import InputError
from edge.core.fileio import atomic_write_json

log = logging.getLogger(__name__)

#: LiteRT configurations compared with TFLM: name -> TFLiteModel options.
LITERT_BACKENDS = {"litert-xnnpack": {"use_xnnpack": True}, "litert-builtin": {"use_xnnpack": False}}


@dataclass
class Parity:
    """How one backend's raw int8 outputs compare with TFLM's on the same inputs."""

    variant: str
    backend: str
    examples: int
    top1_agreement: float
    max_lsb: int
    mean_lsb: float
    max_lsb_per_class: list[int]
    accuracy: float


def compare_raw(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, int, float, list[int]]:
    """(top-1 agreement, max |LSB| difference, mean |LSB| difference, max per output class)."""
    ref = reference.reshape(len(reference), -1).astype(np.int32)
    cand = candidate.reshape(len(candidate), -1).astype(np.int32)
    diff = np.abs(ref - cand)
    if len(ref) == 0:
        return 1.0, 0, 0.0, [0] * ref.shape[1]
    agreement = float(np.mean(ref.argmax(axis=1) == cand.argmax(axis=1)))
    return agreement, int(diff.max()), float(diff.mean()), [int(v) for v in diff.max(axis=0)]


def int8_variants(bundle: Bundle) -> list[str]:
    """Variants whose input and output are integer tensors: the ones a microcontroller runs."""
    return [name for name in bundle.variants
            if bundle.variant(name).get("input", {}).get("dtype") in ("int8", "uint8", "int16")
            and bundle.variant(name).get("output", {}).get("dtype") in ("int8", "uint8", "int16")]


def verify_variant(bundle: Bundle, variant: str, x: np.ndarray, y: np.ndarray,
                   arena_bytes: int | None = None) -> tuple[list[Parity], int]:
    """Run one int8 variant through every LiteRT backend and TFLM; returns parities and the arena."""
    from export.tflm import measure_arena_bytes, run_tflm

    litert = {backend: bundle.open(variant, **options) for backend, options in LITERT_BACKENDS.items()}
    model = next(iter(litert.values()))
    raw = model.to_raw_input(np.asarray(x).reshape((len(x), *model.input_shape[1:])))
    arena = arena_bytes or measure_arena_bytes(model.model_bytes)
    reference = run_tflm(model.model_bytes, raw, arena_bytes=arena)
    outputs = {"tflm": reference}
    for backend, opened in litert.items():
        outputs[backend] = np.stack([opened.invoke_raw(raw[i : i + 1])[0] for i in range(len(raw))])
    results = []
    for backend, raw_out in outputs.items():
        agreement, max_lsb, mean_lsb, per_class = compare_raw(reference, raw_out)
        accuracy = float(np.mean(raw_out.reshape(len(raw_out), -1).argmax(axis=1) == y))
        results.append(Parity(variant, backend, len(raw), agreement, max_lsb, mean_lsb, per_class, accuracy))
    return results, arena


def failures(parities: list[Parity], max_lsb_builtin: int, max_lsb_xnnpack: int, min_agreement: float) -> list[str]:
    """One line per tolerance that a backend exceeds."""
    limits = {"litert-builtin": max_lsb_builtin, "litert-xnnpack": max_lsb_xnnpack, "tflm": 0}
    problems = []
    for p in parities:
        if p.max_lsb > limits[p.backend]:
            problems.append(f"{p.variant}/{p.backend}: max LSB difference {p.max_lsb} > {limits[p.backend]}")
        if p.top1_agreement < min_agreement:
            problems.append(f"{p.variant}/{p.backend}: top-1 agreement {p.top1_agreement:.4f} < {min_agreement}")
    return problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="model bundle folder, e.g. models/digits")
    parser.add_argument("--data", type=Path, default=None,
                        help="evaluation data as for `tinysense bench --data` (MNIST IDX folder or Speech Commands folder); default: the bundle's eval.npz")
    parser.add_argument("--variants", help="comma-separated int8 variants (default: every variant with int8 input and output)")
    parser.add_argument("--limit", type=positive_int, default=None, help="verify only the first N examples")
    parser.add_argument("--max-lsb-builtin", type=int, default=4,
                        help="largest LSB difference allowed between LiteRT's builtin kernels and TFLM (default 4)")
    parser.add_argument("--max-lsb-xnnpack", type=int, default=32,
                        help="largest LSB difference allowed between LiteRT with XNNPACK and TFLM (default 32)")
    parser.add_argument("--min-agreement", type=float, default=0.98,
                        help="smallest top-1 agreement with TFLM allowed (default 0.98)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    bundle = Bundle.load(args.model_dir)
    variants = args.variants.split(",") if args.variants else int8_variants(bundle)
    for name in variants:
        bundle.variant(name)
    not_integer = sorted(set(variants) - set(int8_variants(bundle)))
    if not_integer:  # LSB parity needs integer outputs; a float variant would compare rounded floats
        raise InputError(f"{bundle.root}: {', '.join(not_integer)} has float input or output; verify compares "
                         f"integer variants ({', '.join(int8_variants(bundle)) or 'none here'})")
    if not variants:
        raise InputError(f"{bundle.root}: bundle has no int8 variant to verify")
    x, y, source = load_eval(bundle, args.data, args.limit)
    log.info("verifying %s on %d examples from %s", bundle.root, len(x), source)
    parities: list[Parity] = []
    arenas: dict[str, int] = {}
    for variant in variants:
        results, arenas[variant] = verify_variant(bundle, variant, x, y)
        parities += results
    problems = failures(parities, args.max_lsb_builtin, args.max_lsb_xnnpack, args.min_agreement)

    table = Table(title=f"{bundle.name}: LiteRT vs TFLite Micro ({len(x)} examples)")
    for column in ("variant", "backend", "top-1 agreement", "max LSB", "mean LSB", "accuracy"):
        table.add_column(column, justify="left" if column in ("variant", "backend") else "right")
    for p in parities:
        table.add_row(p.variant, p.backend, f"{100 * p.top1_agreement:.2f}%", str(p.max_lsb), f"{p.mean_lsb:.4f}", f"{100 * p.accuracy:.2f}%")
    console = Console()
    console.print(table)
    recorded = bundle.manifest.get("tflm", {}).get("arena_bytes")
    for variant, arena in arenas.items():
        note = "" if recorded in (None, arena) else f" (manifest records {recorded})"
        console.print(f"TFLM arena for {variant}: {arena} bytes{note}")
    if args.json:
        atomic_write_json(args.json, {"bundle": str(bundle.root), "examples": len(x), "arena_bytes": arenas,
                                      "parity": [asdict(p) for p in parities], "failures": problems})
    for problem in problems:
        log.error("verify: %s", problem)
    return 1 if problems else 0
