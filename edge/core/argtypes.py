"""argparse types that refuse a nonsense number as a usage error, before any work is done."""
from __future__ import annotations

import argparse
import math
from typing import Callable


def _whole(text: str) -> int | None:
    """Plain decimal digits only (no sign but '+', no '1_000', no '1e3')."""
    return int(text) if text.strip().lstrip("+").isdigit() else None


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _checked(text: str, parse: Callable[[str], float | None], ok: Callable[[float], bool], wanted: str):
    value = parse(text)
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}")
    return value


def positive_int(text: str) -> int:
    return _checked(text, _whole, lambda v: v >= 1, "a whole number >= 1")


def non_negative_int(text: str) -> int:
    return _checked(text, _whole, lambda v: v >= 0, "a whole number >= 0")


def positive_float(text: str) -> float:
    return _checked(text, _finite, lambda v: v > 0, "a positive finite number")


def fraction(text: str) -> float:
    """A share strictly between 0 and 1."""
    return _checked(text, _finite, lambda v: 0 < v < 1, "a number between 0 and 1")


def fraction_or_zero(text: str) -> float:
    """A share from 0 (none) up to, not including, 1."""
    return _checked(text, _finite, lambda v: 0 <= v < 1, "a number >= 0 and < 1")
