"""TensorFlow Lite Micro's reference kernels on the desktop, behind TFLiteModel's raw API.

The firmware runs these kernels; the benchmark times them and `tinysense verify` compares them
with LiteRT. Needs the `tflite-micro` package (the `dev` extra), imported only when used.
"""
from __future__ import annotations

import numpy as np

from edge.errors import TinysenseError


class MicroModel:
    """One TFLM interpreter over `model_bytes` with a tensor arena of `arena_bytes`."""

    backend = "tflite_micro"

    def __init__(self, model_bytes: bytes, arena_bytes: int):
        try:
            from tflite_micro.python.tflite_micro import runtime
        except ImportError:
            raise TinysenseError("TFLite Micro is not installed: pip install 'tinysense[dev]'") from None
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
