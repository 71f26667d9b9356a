"""Resident memory of this process, as a device would see it."""
from __future__ import annotations

import resource
from pathlib import Path


def memory_mb() -> dict[str, float]:
    """Resident and peak resident memory of this process image, in MB.

    /proc's VmHWM belongs to the current program image; getrusage's ru_maxrss survives exec, so
    a spawned benchmark child or a daemon started by a large parent would report the parent's size.
    Off Linux only the ru_maxrss peak is available.
    """
    try:
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return {"rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1),
                "peak_rss_mb": round(int(status["VmHWM"].split()[0]) / 1024, 1)}
    except (OSError, KeyError, ValueError):
        return {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
