"""Argument checks shared by the backbones (numbers that must be real, (H, W) pairs)."""

from __future__ import annotations

import math
from numbers import Real

from dgblocks._checks import ShapeError, ValueRangeError, check_int


def check_real(value: object, *, name: str, positive: bool = True) -> float:
    """A real number (not bool), finite, and ``> 0`` when ``positive``."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueRangeError(f"{name}: expected a finite real number, got {value!r}")
    if positive and not value > 0:
        raise ValueRangeError(f"{name}: expected a value > 0, got {value!r}")
    return float(value)


def check_pair(value: object, *, name: str, allow_int: bool = True) -> tuple[int, int]:
    """An ``(H, W)`` pair of ints >= 1 (or one int for both when ``allow_int``)."""
    pair = (value, value) if allow_int and isinstance(value, int) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ShapeError(f"{name}: expected (H, W){' or an int' if allow_int else ''}, "
                         f"got {value!r}")
    return (check_int(pair[0], name=f"{name}[0]", minimum=1),
            check_int(pair[1], name=f"{name}[1]", minimum=1))
