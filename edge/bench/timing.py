"""Latency of single inferences: the one timing loop and percentile summary every benchmark uses."""
from __future__ import annotations

import time

import numpy as np


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    """p50, p90, p99 and mean of durations given in seconds, in milliseconds."""
    values = np.asarray(seconds) * 1000.0
    return {"p50": float(np.percentile(values, 50)), "p90": float(np.percentile(values, 90)),
            "p99": float(np.percentile(values, 99)), "mean": float(values.mean())}


def time_invocations(model, raw_examples: np.ndarray, runs: int, warmup: int) -> list[float]:
    """Seconds of each of `runs` single-example invocations (after `warmup` untimed ones), cycling
    through `raw_examples` (N, *input shape), already in the model's raw input type."""
    for i in range(warmup):
        model.invoke_raw(raw_examples[i % len(raw_examples)][np.newaxis])
    timings = []
    for i in range(runs):
        example = raw_examples[i % len(raw_examples)][np.newaxis]
        start = time.perf_counter()
        model.invoke_raw(example)
        timings.append(time.perf_counter() - start)
    return timings
