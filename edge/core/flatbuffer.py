"""Read operators and tensors out of a .tflite flatbuffer, without running it.

Uses the schema binding LiteRT ships (`ai_edge_litert.schema_py_generated`), so this works on an
edge install without TensorFlow. Firmware op resolvers, the Edge TPU check and the benchmark's
MAC counts and per-operator profile are built from what the file says, never from a guess.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from edge.core.errors import BundleError
from edge.core.interpreter import check_flatbuffer


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


@functools.cache
def _enum_names(enum_name: str) -> dict[int, str]:
    """Code -> name of one of the schema's enums (BuiltinOperator, TensorType)."""
    return {value: name for name, value in vars(getattr(_schema(), enum_name)).items() if not name.startswith("_")}


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    dtype: str  # TFLite type name: INT8, INT32, FLOAT32, ...
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]  # -1 marks a dimension only known at run time
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    is_constant: bool

    @property
    def is_dynamic(self) -> bool:
        return any(d < 0 for d in self.shape_signature)


@dataclass(frozen=True)
class Operator:
    index: int
    name: str  # builtin name such as CONV_2D, or the custom code of a custom op
    is_custom: bool
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]


@dataclass(frozen=True)
class ModelGraph:
    """The main subgraph of a model: operators in execution order, its inputs and outputs."""

    operators: tuple[Operator, ...]
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]

    @property
    def op_names(self) -> list[str]:
        """Distinct operator names, sorted: what an op resolver must register."""
        return sorted({op.name for op in self.operators})


def read_graph(model_bytes: bytes, source: str = "<model bytes>") -> ModelGraph:
    """Parse the flatbuffer's first subgraph; raises BundleError when the bytes are not a model."""
    check_flatbuffer(model_bytes, source)
    try:
        return _graph(_schema().ModelT.InitFromPackedBuf(bytearray(model_bytes), 0))
    except Exception as exc:  # the generated code raises struct/Index errors on truncated or corrupt files
        raise BundleError(f"{source}: unreadable TFLite flatbuffer ({type(exc).__name__}: {exc})") from None


def _graph(model) -> ModelGraph:
    subgraph = model.subgraphs[0]
    buffers = model.buffers or []
    tensors = tuple(_tensor(i, t, buffers) for i, t in enumerate(subgraph.tensors or []))

    def pick(indices) -> tuple[Tensor, ...]:
        return tuple(tensors[int(i)] for i in (indices if indices is not None else []) if int(i) >= 0)

    operators = []
    for index, op in enumerate(subgraph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = _enum_names("BuiltinOperator").get(builtin, f"BUILTIN_{builtin}")
        is_custom = name == "CUSTOM"
        if is_custom:
            name = (code.customCode or b"?").decode("utf-8", "replace")
        operators.append(Operator(index, name, is_custom, pick(op.inputs), pick(op.outputs)))
    return ModelGraph(tuple(operators), pick(subgraph.inputs), pick(subgraph.outputs))


def _tensor(index: int, tensor, buffers) -> Tensor:
    quant = tensor.quantization
    scales = tuple(float(s) for s in (quant.scale if quant is not None and quant.scale is not None else []))
    zero_points = tuple(int(z) for z in (quant.zeroPoint if quant is not None and quant.zeroPoint is not None else []))
    shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else []))
    signature = tuple(int(d) for d in tensor.shapeSignature) if tensor.shapeSignature is not None else shape
    buffer = buffers[tensor.buffer] if 0 < tensor.buffer < len(buffers) else None
    is_constant = buffer is not None and buffer.data is not None and len(buffer.data) > 0
    name = tensor.name.decode("utf-8", "replace") if isinstance(tensor.name, bytes) else str(tensor.name)
    return Tensor(index, name, _enum_names("TensorType").get(tensor.type, str(tensor.type)), shape, signature, scales, zero_points, is_constant)


def count_macs(graph: ModelGraph) -> int:
    """Multiply-accumulates of one inference, from the shapes of the convolution and dense ops."""
    total = 0
    for op in graph.operators:
        if not op.outputs or len(op.inputs) < 2:
            continue
        out_elements = int(np.prod(op.outputs[0].shape))
        weights = op.inputs[1].shape
        if op.name == "CONV_2D":  # weights (out_ch, kh, kw, in_ch)
            total += out_elements * int(np.prod(weights[1:]))
        elif op.name == "DEPTHWISE_CONV_2D":  # weights (1, kh, kw, channels)
            total += out_elements * int(np.prod(weights[1:3]))
        elif op.name == "FULLY_CONNECTED":  # weights (units, in_features)
            total += out_elements * int(weights[-1])
    return total


def truncated_model(model_bytes: bytes, op_count: int) -> bytes:
    """The same model cut after its first `op_count` operators, whose last output becomes the output.

    Timing each prefix and taking differences gives a per-operator profile with the interpreter's
    own kernels, which LiteRT's Python API does not report.
    """
    import flatbuffers

    model = _schema().ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    subgraph = model.subgraphs[0]
    if not 1 <= op_count <= len(subgraph.operators):
        raise ValueError(f"op_count {op_count} outside 1..{len(subgraph.operators)}")
    subgraph.operators = subgraph.operators[:op_count]
    subgraph.outputs = [int(subgraph.operators[-1].outputs[0])]
    model.signatureDefs = None
    builder = flatbuffers.Builder(len(model_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
