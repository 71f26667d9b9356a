"""Quieting C and C++ libraries that print to the process's stderr directly (fd 2)."""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send fd 2 to /dev/null for the duration: LiteRT's "Created XNNPACK delegate" banner, TFLM's
    allocation probes, ALSA's device enumeration. Python exceptions still carry their messages."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a daemon started without one)
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
