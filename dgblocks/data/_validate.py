"""Argument checks shared by dgblocks.data, dgblocks.protocols and the engine's batches: every
refusal is a :class:`~dgblocks.ValueRangeError` whose message starts with the argument's name
(the tensor checks of :mod:`dgblocks._checks` cover shapes and values of blocks)."""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dgblocks._checks import ValueRangeError

__all__ = ["check_seed", "check_flag", "check_generator", "check_text", "check_path",
           "check_instance", "check_int_tensor", "check_real", "check_range", "check_reals"]


def _got(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def check_seed(value: Any, *, name: str = "seed") -> int:
    """An int seed (not a bool, not a float) that a ``torch.Generator`` accepts."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueRangeError(f"{name}: expected an int, got {_got(value)}")
    if not -(2**63) <= int(value) < 2**63:
        raise ValueRangeError(f"{name}: expected an int in [-2**63, 2**63), got {value}")
    return int(value)


def check_real(value: Any, *, name: str) -> float:
    """A finite real number (a bool, a string, a tensor, NaN or infinity is refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            float("-inf") < float(value) < float("inf")):
        raise ValueRangeError(f"{name}: expected a finite number, got {_got(value)}")
    return float(value)


def check_flag(value: Any, *, name: str) -> bool:
    """A bool (a string or a number is refused: ``"False"`` is true)."""
    if not isinstance(value, bool):
        raise ValueRangeError(f"{name}: expected True or False, got {_got(value)}")
    return value


def check_generator(value: Any, *, name: str = "generator") -> torch.Generator | None:
    """``None`` or a ``torch.Generator``."""
    if value is not None and not isinstance(value, torch.Generator):
        raise ValueRangeError(f"{name}: expected a torch.Generator or None, got {_got(value)}")
    return value


def check_text(value: Any, *, name: str) -> str:
    """A string (a label, a protocol, a dataset name)."""
    if not isinstance(value, str):
        raise ValueRangeError(f"{name}: expected a string, got {_got(value)}")
    return value


def check_path(value: Any, *, name: str = "root") -> Path:
    """A folder or file path (``str`` or ``os.PathLike``, not empty)."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise ValueRangeError(f"{name}: expected a path (str or os.PathLike), got {_got(value)}")
    return Path(value)


def check_instance(value: Any, cls: type | tuple[type, ...], *, name: str) -> Any:
    """``value`` if it is a ``cls``, else an error naming the expected type."""
    if not isinstance(value, cls):
        want = cls.__name__ if isinstance(cls, type) else " or ".join(c.__name__ for c in cls)
        raise ValueRangeError(f"{name}: expected a {want}, got {type(value).__name__}")
    return value


def check_int_tensor(value: Any, *, name: str, minimum: int | None = None,
                     empty: bool = True) -> Tensor:
    """A 1-D integer tensor (int64 on the CPU; a float tensor of whole numbers is accepted,
    a fraction, NaN or a bool is refused), optionally non-empty and ``>= minimum``."""
    if not isinstance(value, Tensor):
        raise ValueRangeError(f"{name}: expected a 1-D integer tensor, got {_got(value)}")
    if value.dim() != 1 or value.dtype == torch.bool or value.is_complex():
        raise ValueRangeError(f"{name}: expected a 1-D integer tensor, got shape "
                              f"{tuple(value.shape)} {value.dtype}")
    if value.is_floating_point():
        bad = ~torch.isfinite(value) | (value != value.round()) | (value.abs() > 2**53)
        if bool(bad.any()):
            raise ValueRangeError(f"{name}: expected whole numbers, got "
                                  f"{float(value[bad][0])}")
    if not empty and value.numel() == 0:
        raise ValueRangeError(f"{name}: expected at least one value, got an empty tensor")
    out = value.long().cpu()
    if minimum is not None and out.numel() and int(out.min()) < minimum:
        raise ValueRangeError(f"{name}: expected values >= {minimum}, got {int(out.min())}")
    return out


def check_range(pair: Any, name: str, low: float, high: float | None = None) -> tuple[float, float]:
    """``(lo, hi)`` finite with ``low < lo <= hi`` (``<= high``)."""
    if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
        raise ValueRangeError(f"{name}: expected (low, high), got {pair!r}"[:120])
    lo, hi = (check_real(v, name=name) for v in pair)
    if not low < lo <= hi or (high is not None and hi > high):
        raise ValueRangeError(f"{name}: expected {low} < low <= high"
                              f"{f' <= {high}' if high is not None else ''}, got {pair!r}")
    return lo, hi


def check_reals(values: Any, name: str) -> tuple[float, ...]:
    """A non-empty sequence of finite numbers."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or not len(values):
        raise ValueRangeError(f"{name}: expected a non-empty sequence of numbers, got "
                              f"{values!r}"[:120])
    return tuple(check_real(v, name=name) for v in values)
