"""TensorFlow Lite Micro on the desktop: the arena a model needs, and batch inference.

`tflite_micro.runtime.Interpreter` runs the same reference kernels a microcontroller runs, so
its answers are the ground truth for firmware. Allocation happens when the interpreter is built;
the smallest arena for which TFLM's own planner succeeds is the figure firmware must reserve.
"""
from __future__ import annotations

import logging

import numpy as np
from tflite_micro.python.tflite_micro import runtime

from edge.core.errors import BundleError
from edge.core.native import quiet_native_stderr
from edge.core.micro import MicroModel, check_micro_kernels

log = logging.getLogger(__name__)

#: Arena granularity of the search: TFLM aligns its buffers to 16 bytes.
ARENA_ALIGNMENT = 16
#: Largest arena tried before giving up (a microcontroller model beyond this is not one).
MAX_ARENA_BYTES = 64 * 1024 * 1024


def _allocates(model_bytes: bytes, arena_bytes: int) -> bool:
    try:
        runtime.Interpreter.from_bytes(model_bytes, arena_size=int(arena_bytes))
    except RuntimeError:
        return False
    return True


def recorded_arena_bytes(interpreter) -> int | None:
    """The arena total TFLM's RecordingMicroAllocator reports for an allocated interpreter (it
    prints it on stderr), or None when the report has no total."""
    import ctypes
    import os
    import re
    import sys
    import tempfile

    sys.stderr.flush()
    with tempfile.TemporaryFile() as report:
        saved = os.dup(2)
        try:
            os.dup2(report.fileno(), 2)
            interpreter.print_allocations()
            ctypes.CDLL(None).fflush(None)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        report.seek(0)
        found = re.search(rb"Arena allocation total (\d+) bytes", report.read())
    return int(found.group(1)) if found else None


def measure_arena_bytes(model_bytes: bytes) -> int:
    """Smallest tensor arena (bytes, multiple of 16) for which TFLM allocates the model.

    Binary search over TFLM's own allocator, downwards from a generous arena to what its
    RecordingMicroAllocator reports using there: probes far below the need are not made, because
    on some of them (2.1 to 2.6 KB for a 4.4 KB speech-embedding head) TFLM dev20261023 crashes in
    CONV_2D's prepare instead of failing. Firmware should add a margin for alignment of its
    static buffer and for TFLM version changes (see export.firmware.ARENA_MARGIN).
    """
    check_micro_kernels(model_bytes)
    with quiet_native_stderr():
        high = -(-len(model_bytes) // ARENA_ALIGNMENT) * ARENA_ALIGNMENT
        while not _allocates(model_bytes, high):
            if high >= MAX_ARENA_BYTES:
                raise BundleError(f"TFLite Micro cannot allocate this model even with a {MAX_ARENA_BYTES} byte arena")
            high *= 2
        used = recorded_arena_bytes(runtime.Interpreter.from_bytes(model_bytes, arena_size=int(high)))
        low = 0  # invariant: `low` fails (or is zero), `high` allocates
        if used is not None and used < high:
            low = max(0, used // ARENA_ALIGNMENT * ARENA_ALIGNMENT - ARENA_ALIGNMENT)
        while high - low > ARENA_ALIGNMENT:
            middle = (low + high) // 2 // ARENA_ALIGNMENT * ARENA_ALIGNMENT
            if _allocates(model_bytes, middle):
                high = middle
            else:
                low = middle
    log.debug("TFLM arena: %d bytes", high)
    return high


def run_tflm(model_bytes: bytes, raw_inputs: np.ndarray, *, arena_bytes: int | None = None) -> np.ndarray:
    """Run a batch of raw inputs (already in the model's input dtype) one example at a time.

    Returns the raw outputs stacked as (N, *output_shape[1:]). Without `arena_bytes` the arena
    is measured first, so a model that only fits a generous arena is not hidden.
    """
    model = MicroModel(model_bytes, measure_arena_bytes(model_bytes) if arena_bytes is None else arena_bytes)
    raw_inputs = np.asarray(raw_inputs)
    if raw_inputs.dtype != model.input_dtype:
        raise BundleError(f"TFLite Micro model takes {model.input_dtype.name} input, got {raw_inputs.dtype.name}")
    outputs = [model.invoke_raw(example)[0].copy() for example in raw_inputs]
    return np.stack(outputs) if outputs else np.zeros((0, *model.output_shape[1:]), model.output_dtype)
