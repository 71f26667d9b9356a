"""`tinysense edgetpu-check`: would this int8 model run on a Coral Edge TPU, and how much of it?

The Edge TPU compiler maps operators to the TPU in execution order until the first one that
breaks its rules; that one and everything after it run on the CPU. The rules checked here are
Coral's published model requirements: 8-bit quantized tensors (int32 only as constant biases),
shapes fixed at compile time, tensors with more than 3 dimensions only when the outer ones are 1,
and the operator list of the Edge TPU compiler. When `edgetpu_compiler` is installed it is run
too, and its own verdict printed. Reads the flatbuffer only: no TensorFlow needed.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edge.core.bundle import Bundle
from edge.core.flatbuffer import ModelGraph, Operator, Tensor, read_graph

#: Builtin operators the Edge TPU compiler (v16) can map (coral.ai/docs/edgetpu/models-intro).
SUPPORTED_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS",
    "FULLY_CONNECTED", "HARD_SWISH", "L2_NORMALIZATION", "LOGISTIC", "MAXIMUM", "MAX_POOL_2D",
    "MEAN", "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN",
    "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR",
    "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUARED_DIFFERENCE", "SQUEEZE",
    "STRIDED_SLICE", "SUB", "SUM", "TANH", "TRANSPOSE", "TRANSPOSE_CONV", "UNIDIRECTIONAL_SEQUENCE_LSTM",
})
EIGHT_BIT = {"INT8", "UINT8"}
COMPILER = "edgetpu_compiler"


@dataclass(frozen=True)
class OpVerdict:
    op: Operator
    problems: tuple[str, ...]


def short(name: str, limit: int = 40) -> str:
    """Converter tensor names fuse every layer they came from; the tail names the tensor."""
    return name if len(name) <= limit else "…" + name[-limit:]


def tensor_problems(tensor: Tensor) -> list[tuple[str, str]]:
    """(rule, detail) for each Edge TPU rule this tensor breaks."""
    problems = []
    allowed = EIGHT_BIT | ({"INT32"} if tensor.is_constant else set())  # int32 constants: conv/dense biases
    if tensor.dtype not in allowed:
        problems.append(("not 8-bit", f"{'constant' if tensor.is_constant else 'activation'} {short(tensor.name)} is {tensor.dtype}"))
    elif tensor.dtype in EIGHT_BIT and not tensor.scales:
        problems.append(("not quantized", f"{short(tensor.name)} has no quantization parameters"))
    if tensor.is_dynamic:
        problems.append(("dynamic shape", str(list(tensor.shape_signature))))
    if not tensor.is_constant and len(tensor.shape) > 3 and any(d != 1 for d in tensor.shape[:-3]):
        problems.append(("more than 3 dimensions larger than 1", f"{short(tensor.name)} {list(tensor.shape)}"))
    return problems


def check_graph(graph: ModelGraph) -> list[OpVerdict]:
    """One verdict per operator, in execution order: one line per rule broken, with its tensors."""
    verdicts = []
    for op in graph.operators:
        rules: dict[str, list[str]] = {}
        if op.name not in SUPPORTED_OPS:
            rules["operator not supported by the Edge TPU compiler"] = []
        tensors = {tensor.index: tensor for tensor in (*op.inputs, *op.outputs)}
        for tensor in tensors.values():
            for rule, detail in tensor_problems(tensor):
                rules.setdefault(rule, []).append(detail)
        hints = {"dynamic shape": " (export with a fixed batch size of 1)"}
        problems = tuple(f"{rule}{': ' + ', '.join(dict.fromkeys(details)) if details else ''}{hints.get(rule, '')}"
                         for rule, details in rules.items())
        verdicts.append(OpVerdict(op, problems))
    return verdicts


def first_fallback(verdicts: list[OpVerdict]) -> OpVerdict | None:
    """The first operator the compiler cannot map: it and all later ones run on the CPU."""
    return next((verdict for verdict in verdicts if verdict.problems), None)


def run_compiler(model_path: Path, out_dir: Path) -> tuple[int, str]:
    """edgetpu_compiler's exit status and output (it writes <model>_edgetpu.tflite and a .log)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([COMPILER, "--show_operations", "--out_dir", str(out_dir), str(model_path)],
                            capture_output=True, text=True)
    return result.returncode, (result.stdout + result.stderr).strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR", type=Path, help="model bundle folder, e.g. models/digits")
    parser.add_argument("--variant", default="int8", help="variant to check (default: int8)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where edgetpu_compiler writes its model and log (default: MODEL_DIR/edgetpu)")
    parser.add_argument("--no-compiler", action="store_true", help="do not run edgetpu_compiler even when installed")


def run(args: argparse.Namespace) -> int:
    bundle = Bundle.load(args.model_dir)
    path = bundle.verify_variant(args.variant)
    graph = read_graph(path.read_bytes(), str(path))
    verdicts = check_graph(graph)
    fallback = first_fallback(verdicts)
    mapped = len(verdicts) if fallback is None else fallback.op.index
    print(f"{path}: {len(verdicts)} operators, {mapped} would run on the Edge TPU, {len(verdicts) - mapped} on the CPU")
    for verdict in verdicts:
        mark = "ok " if not verdict.problems else "CPU"
        print(f"  [{mark}] {verdict.op.index:3d} {verdict.op.name}" + (f": {'; '.join(verdict.problems)}" if verdict.problems else ""))
    if fallback is None:
        print("meets the Edge TPU rules: every operator can be mapped")
    else:
        print(f"first operator to fall back to the CPU: #{fallback.op.index} {fallback.op.name} ({fallback.problems[0]})")
    if not args.no_compiler:
        if shutil.which(COMPILER) is None:
            print(f"{COMPILER} not installed (Coral apt repository: edgetpu-compiler, x86-64 Linux only); rules checked without it")
        else:
            status, output = run_compiler(path, args.out or bundle.root / "edgetpu")
            print(output)
            if status != 0:
                print(f"{COMPILER} failed with exit status {status}")
                return 1
    return 0 if fallback is None else 1
