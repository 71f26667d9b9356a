"""TensorFlow Lite Micro's reference kernels on the desktop, behind TFLiteModel's raw API.

The firmware runs these kernels; the benchmark times them and `tinysense verify` compares them
with LiteRT. Needs the `tflite-micro` package (the `dev` extra), imported only when used.
"""
from __future__ import annotations

import numpy as np

from edge.core.errors import BundleError, TinysenseError

#: TFLM's int8 softmax scales its input by scale * 2**26 (beta 1) and aborts the whole process
#: (QuantizeMultiplierGreaterThanOne) unless that exceeds 1.
SOFTMAX_MIN_INPUT_SCALE = 2.0**-26


class MicroKernelError(BundleError):
    """A model TFLite Micro's kernels would refuse by aborting the process."""


def check_micro_kernels(model_bytes: bytes, source: str = "<model bytes>") -> None:
    """Refuse, with a MicroKernelError, a model whose quantization would make TFLM abort the process.

    Seen on a model whose activations are all near zero (untrained, or dead ReLUs): the logits'
    scale falls below what the int8 softmax kernel accepts.
    """
    from edge.core.flatbuffer import read_graph

    for op in read_graph(model_bytes, source).operators:
        if op.name == "SOFTMAX" and op.inputs and op.inputs[0].dtype in ("INT8", "UINT8") and op.inputs[0].scales:
            scale = op.inputs[0].scales[0]
            if scale <= SOFTMAX_MIN_INPUT_SCALE:
                raise MicroKernelError(f"{source}: softmax input scale {scale:.3g} is below TFLite Micro's minimum "
                                       f"{SOFTMAX_MIN_INPUT_SCALE:.3g} (logits all near zero: an untrained or dead model?)")


class MicroModel:
    """One TFLM interpreter over `model_bytes` with a tensor arena of `arena_bytes`."""

    backend = "tflite_micro"

    def __init__(self, model_bytes: bytes, arena_bytes: int):
        try:
            from tflite_micro.python.tflite_micro import runtime
        except ImportError:
            raise TinysenseError("TFLite Micro is not installed: pip install 'tinysense[dev]'") from None
        check_micro_kernels(model_bytes)
        self.interpreter = runtime.Interpreter.from_bytes(model_bytes, arena_size=int(arena_bytes))
        inputs, outputs = self.interpreter.get_input_details(0), self.interpreter.get_output_details(0)
        self.input_shape = tuple(int(d) for d in inputs["shape"])
        self.input_dtype = np.dtype(inputs["dtype"])
        self.output_shape = tuple(int(d) for d in outputs["shape"])
        self.output_dtype = np.dtype(outputs["dtype"])

    def invoke_raw(self, raw_input: np.ndarray) -> np.ndarray:
        """Run one example already in the model's input dtype; returns the raw output tensor."""
        self.interpreter.set_input(np.ascontiguousarray(raw_input.reshape(self.input_shape)), 0)
        self.interpreter.invoke()
        return self.interpreter.get_output(0)
