"""Quantize and dequantize tensors the way TFLite does: round half away from zero, then clip."""
from __future__ import annotations

import numpy as np


def quantize(values: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    """Real values -> integer tensor of `dtype` (int8, uint8, int16) with rounding and clipping."""
    info = np.iinfo(dtype)
    scaled = np.asarray(values, dtype=np.float64) / scale
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + zero_point  # std::round, then the offset
    return np.clip(rounded, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integer tensor -> float32 real values."""
    return ((np.asarray(values, dtype=np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)
