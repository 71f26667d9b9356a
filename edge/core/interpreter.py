"""One loader for TFLite models: LiteRT first, then tflite-runtime, then TensorFlow Lite.

The backend is chosen when a model is opened, never at import time, so a Pi with only
`ai-edge-litert` installed never touches TensorFlow.
"""
from __future__ import annotations

import importlib
import logging
from pathlib import Path

import numpy as np

from edge.core.errors import BundleError, TinysenseError
from edge.core.native import quiet_native_stderr
from edge.core.quant import dequantize, quantize

log = logging.getLogger(__name__)

#: Interpreter modules in the order they are tried.
BACKENDS = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite")
EDGETPU_LIBRARY = "libedgetpu.so.1"
#: Examples quantized at a time by predict().
PREDICT_CHUNK = 256


class DeviceError(TinysenseError):
    """An accelerator or capture device was asked for but is not there."""


def interpreter_module(backends: tuple[str, ...] = BACKENDS):
    """The first importable interpreter module of `backends` (tflite-runtime is skipped under numpy 2)."""
    problems = []
    for name in backends:
        if name.startswith("tflite_runtime") and int(np.__version__.split(".")[0]) >= 2:
            problems.append(f"{name}: needs numpy < 2 (numpy {np.__version__} installed)")
            continue
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            problems.append(f"{name}: {exc}")
            continue
        return module
    hint = " (pip install ai-edge-litert)" if "ai_edge_litert.interpreter" in backends else ""
    raise TinysenseError(f"no TFLite interpreter found{hint}: " + "; ".join(problems))


def check_flatbuffer(data: bytes, path: str | Path) -> None:
    """Refuse bytes that cannot be a TFLite flatbuffer before the C++ code sees them."""
    if len(data) == 0:
        raise BundleError(f"{path}: empty file, not a TFLite model")
    if len(data) < 16 or data[4:8] != b"TFL3":
        raise BundleError(f"{path}: not a TFLite model (no TFL3 flatbuffer identifier)")


class TFLiteModel:
    """A single-input, single-output TFLite model with real-valued predict() on top of raw invoke()."""

    def __init__(self, path: str | Path, *, threads: int = 1, use_xnnpack: bool = True,
                 device: str = "cpu", model_bytes: bytes | None = None, backends: tuple[str, ...] = BACKENDS,
                 input_shape: tuple[int, ...] | None = None, batch: int | None = None):
        """`input_shape` fixes a model whose input has dynamic dimensions (-1 in its signature) to
        one shape before tensors are allocated; `batch` resizes the batch dimension of a model
        made for batch 1 (one invoke for `batch` examples)."""
        self.path = Path(path)
        if model_bytes is None:
            try:
                model_bytes = self.path.read_bytes()
            except OSError as exc:
                raise BundleError(f"{self.path}: cannot read model ({exc.strerror})") from None
        check_flatbuffer(model_bytes, self.path)
        self.model_bytes = model_bytes
        module = interpreter_module(backends)
        self.backend = module.__name__.split(".")[0]
        kwargs = {"model_content": model_bytes, "num_threads": threads}
        if not use_xnnpack:
            kwargs["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        if device == "edgetpu":
            kwargs["experimental_delegates"] = [load_edgetpu_delegate(module)]
        elif device != "cpu":
            raise DeviceError(f"unknown device {device!r} (choose cpu or edgetpu)")
        try:
            with quiet_native_stderr():  # LiteRT's "Created TensorFlow Lite XNNPACK delegate" banner
                self.interpreter = module.Interpreter(**kwargs)
                if input_shape is not None:
                    self.interpreter.resize_tensor_input(0, list(input_shape), strict=True)
                elif batch is not None:
                    shape = self.interpreter.get_input_details()[0]["shape"]
                    self.interpreter.resize_tensor_input(0, [batch, *shape[1:]], strict=False)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BundleError(f"{self.path}: cannot load TFLite model ({first})") from None
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise BundleError(f"{self.path}: expected one input and one output, found {len(inputs)} and {len(outputs)}")
        self.input_detail, self.output_detail = inputs[0], outputs[0]

    # -- raw access -------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.input_detail["shape"])

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self.input_detail["dtype"])

    @property
    def output_dtype(self) -> np.dtype:
        return np.dtype(self.output_detail["dtype"])

    @property
    def input_quantization(self) -> tuple[float, int]:
        return tuple(self.input_detail["quantization"])  # (scale, zero_point); (0.0, 0) when float

    @property
    def output_quantization(self) -> tuple[float, int]:
        return tuple(self.output_detail["quantization"])

    def invoke_raw(self, raw_input: np.ndarray) -> np.ndarray:
        """Run one example already in the model's input dtype; returns the raw output tensor."""
        self.interpreter.set_tensor(self.input_detail["index"], raw_input.reshape(self.input_shape))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_detail["index"])

    # -- real-valued access -----------------------------------------------------------------
    def to_raw_input(self, values: np.ndarray) -> np.ndarray:
        """Real-valued input(s) -> the model's input dtype (quantized with rounding and clipping)."""
        if np.issubdtype(self.input_dtype, np.integer):
            scale, zero_point = self.input_quantization
            return quantize(values, scale, zero_point, self.input_dtype)
        return np.asarray(values, dtype=self.input_dtype)

    def from_raw_output(self, raw: np.ndarray) -> np.ndarray:
        if np.issubdtype(self.output_dtype, np.integer):
            scale, zero_point = self.output_quantization
            return dequantize(raw, scale, zero_point)
        return np.asarray(raw, dtype=np.float32)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Real-valued batch (N, *input_shape[1:]) -> real-valued outputs (N, *output_shape[1:])."""
        batch = np.asarray(batch)
        expected = self.input_shape[1:]
        if batch.shape[1:] != expected:
            if batch.ndim >= 1 and int(np.prod(batch.shape[1:])) == int(np.prod(expected)):
                batch = batch.reshape((batch.shape[0], *expected))
            else:
                raise TinysenseError(f"{self.path}: input of shape {batch.shape[1:]} does not fit the model's {expected}")
        outputs = []
        for start in range(0, len(batch), PREDICT_CHUNK):  # chunks keep quantization temporaries small
            raw = self.to_raw_input(batch[start : start + PREDICT_CHUNK])
            outputs.extend(self.invoke_raw(example[np.newaxis])[0].copy() for example in raw)
        return self.from_raw_output(np.stack(outputs)) if outputs else np.zeros((0,), np.float32)


def load_edgetpu_delegate(module):
    """The Edge TPU delegate, or a clear error when libedgetpu is not installed or no TPU is attached.

    The library is opened with ctypes first: LiteRT's `Delegate` object, built for a library that
    cannot be loaded, prints an "Exception ignored in Delegate.__del__" traceback when collected.
    """
    import ctypes

    try:
        ctypes.CDLL(EDGETPU_LIBRARY)
        return module.load_delegate(EDGETPU_LIBRARY)
    except (ValueError, OSError, RuntimeError) as exc:
        raise DeviceError(
            f"Edge TPU not available: cannot load {EDGETPU_LIBRARY} ({str(exc).strip() or 'no device'}); "
            "install libedgetpu1-std from Coral's apt repository and plug in the accelerator"
        ) from None
