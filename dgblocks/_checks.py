"""Input checks shared by every block (one place, one message format): each raises a
:class:`ValueError` subclass naming the argument, what was expected and what was received,
e.g. ``labels: expected shape (N,) with N=64 from features, got (32,)``.

Shape, dtype and device checks read only metadata. Value checks (label and index ranges, on by
default) and NaN/Inf checks (opt-in) are switched with :func:`dgblocks.checks` and skipped
while ``torch.compile`` traces; only CPU tensors are read on the host, elsewhere a value check
is an async device assertion (:func:`check_async`, no host sync).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

__all__ = [
    "DGBlocksError", "ShapeError", "ValueRangeError", "Reduction", "checks", "values_checked",
    "nan_checked", "check_shape", "check_same_length", "check_labels", "check_reduction",
    "check_finite", "check_float", "check_features", "check_nonnegative_values",
    "check_positive", "check_nonnegative", "check_probability", "check_choice", "check_int",
    "check_async", "values_on_host", "check_device", "check_index", "check_generator",
]

Reduction = Literal["mean", "sum", "none"]
_REDUCTIONS = ("mean", "sum", "none")

_state = {"values": True, "nan": False}


class DGBlocksError(ValueError):
    """Base class of every input error raised by dgblocks (a :class:`ValueError`)."""


class ShapeError(DGBlocksError):
    """A tensor has the wrong number of dimensions or a size that disagrees with another."""


class ValueRangeError(DGBlocksError):
    """A value (label, hyper-parameter, probability, ...) lies outside its allowed range."""


@contextlib.contextmanager
def checks(*, values: bool | None = None, nan: bool | None = None) -> Iterator[None]:
    """Temporarily switch the value checks (``values``: label ranges, default on) and the
    NaN/Inf checks on floating inputs (``nan``, default off).

    Example:
        >>> import dgblocks
        >>> with dgblocks.checks(nan=True):
        ...     pass
    """
    old = dict(_state)
    if values is not None:
        _state["values"] = bool(values)
    if nan is not None:
        _state["nan"] = bool(nan)
    try:
        yield
    finally:
        _state.update(old)


def values_checked() -> bool:
    """Whether host-sync value checks run now: on (:func:`checks`), no compile trace."""
    return _state["values"] and not torch.compiler.is_compiling()


def nan_checked() -> bool:
    """Whether NaN/Inf checks run now: asked for, and no ``torch.compile`` trace in progress."""
    return _state["nan"] and not torch.compiler.is_compiling()


def _fmt(shape: Iterable[int]) -> str:
    shape = tuple(shape)
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _dims(pattern: str) -> list[str]:
    dims = pattern.split()
    for d in dims:
        if not (re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", d) or d.isdigit() or d == "*"):
            raise ValueError(f"check_shape: bad dimension {d!r} in pattern {pattern!r}")
    return dims


def check_shape(x: Any, pattern: str, *, name: str, **known: int) -> dict[str, int]:
    """Check ``x`` against a pattern of axis letters (checked against ``known``, e.g. ``N=64``
    from an earlier argument, and earlier uses), integers and ``*``; return the axis sizes.

    Example:
        >>> check_shape(torch.zeros(4, 10), "N K", name="logits")
        {'N': 4, 'K': 10}
    """
    if not isinstance(x, Tensor):
        raise ShapeError(f"{name}: expected a torch.Tensor of shape ({', '.join(_dims(pattern))}),"
                         f" got {type(x).__name__}")
    dims = _dims(pattern)
    sizes: dict[str, int] = dict(known)
    expected = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
    if x.dim() != len(dims):
        raise ShapeError(f"{name}: expected {len(dims)}-D shape {expected},"
                         f" got {_fmt(x.shape)}")
    for d, s in zip(dims, x.shape):
        if d == "*":
            continue
        if d.isdigit():
            if s != int(d):
                raise ShapeError(f"{name}: expected shape {expected}, got {_fmt(x.shape)}")
            continue
        if d in sizes and sizes[d] != s:
            origin = " from earlier arguments" if d in known else ""
            raise ShapeError(f"{name}: expected shape {expected} with {d}={sizes[d]}{origin},"
                             f" got {_fmt(x.shape)}")
        sizes[d] = int(s)
    return sizes


def check_same_length(*pairs: tuple[str, Any]) -> int:
    """Check that several ``(name, tensor or sequence)`` share their first dimension;
    return it."""
    first_name, first = pairs[0]
    n = len(first)
    for name, value in pairs[1:]:
        if len(value) != n:
            raise ShapeError(f"{name}: expected length {n} (from {first_name}), got {len(value)}")
    return n


def check_labels(labels: Any, num_classes: int | None, *, name: str, n: int | None = None,
                 length_from: str = "the batch") -> Tensor:
    """Check an integer label vector: shape ``(N,)``, integer dtype, values in ``[0, K)`` (the
    range while :func:`values_checked`). Raises :class:`ShapeError` / :class:`ValueRangeError`.
    """
    if not isinstance(labels, Tensor):
        raise ShapeError(f"{name}: expected an integer torch.Tensor of shape (N,),"
                         f" got {type(labels).__name__}")
    if labels.dim() != 1:
        raise ShapeError(f"{name}: expected 1-D shape (N,), got {_fmt(labels.shape)}")
    if n is not None and labels.shape[0] != n:
        raise ShapeError(f"{name}: expected shape (N,) with N={n} from {length_from},"
                         f" got {_fmt(labels.shape)}")
    return check_index(labels, num_classes, name=name)


def check_index(index: Tensor, high: int | None, *, name: str, origin: str = "") -> Tensor:
    """An integer tensor (not bool: a mask; not uint8) with values in ``[0, high)``, e.g. rows
    of ``origin`` (-1 would silently wrap). The range is a value check (:func:`values_checked`).
    """
    if (index.dtype.is_floating_point or index.dtype.is_complex
            or index.dtype in (torch.bool, torch.uint8)):
        raise ValueRangeError(f"{name}: expected an integer dtype (int64), got {index.dtype}")
    if high is None or not values_checked() or index.numel() == 0:
        return index
    rows = f" (rows of {origin})" if origin else ""
    if not values_on_host(index):  # CUDA: a device assertion, no host sync
        check_async((index >= 0) & (index < high), f"{name}: expected values in [0, {high}){rows}")
        return index
    lo, hi = int(index.min()), int(index.max())
    if lo < 0 or hi >= high:
        raise ValueRangeError(f"{name}: expected values in [0, {high}){rows},"
                              f" got {lo if lo < 0 else hi}")
    return index


def values_on_host(x: Tensor) -> bool:
    """Whether a value check may read ``x`` on the host (CPU tensors only: no sync there)."""
    return x.device.type == "cpu"


def check_async(cond: Tensor, msg: str) -> None:
    """Assert all of the boolean ``cond`` on its device, no host sync (CUDA: a device-side
    assertion that carries ``msg``; ``meta``: nothing checked)."""
    torch._assert_async(cond.all(), msg)


def check_reduction(reduction: str) -> str:
    """Check ``reduction`` is one of ``"mean" | "sum" | "none"``."""
    return check_choice(reduction, _REDUCTIONS, name="reduction")


def check_finite(x: Tensor, *, name: str, always: bool = False) -> Tensor:
    """Raise if ``x`` holds NaN or Inf, when NaN checks are on (``dgblocks.checks``) or
    ``always`` (a NaN that would silently change a decision, e.g. the central domain)."""
    on = (always and not torch.compiler.is_compiling()) or nan_checked()
    if not (on and x.is_floating_point()):
        return x
    if not values_on_host(x):  # CUDA: a device assertion, no host sync
        check_async(torch.isfinite(x), f"{name}: expected finite values, got NaN or Inf")
    elif not bool(torch.isfinite(x).all()):
        raise ValueRangeError(f"{name}: expected finite values, got NaN or Inf")
    return x


def check_float(x: Tensor, *, name: str) -> Tensor:
    """Check ``x`` has a floating-point dtype (integer features would be silently truncated)."""
    if not x.is_floating_point():
        raise ValueRangeError(f"{name}: expected a floating-point dtype, got {x.dtype}")
    return x


def check_features(x: Any, pattern: str, *, name: str, **known: int) -> dict[str, int]:
    """:func:`check_shape`, a floating-point dtype and :func:`check_finite` in one call."""
    sizes = check_shape(x, pattern, name=name, **known)
    check_float(x, name=name)
    check_finite(x, name=name)
    return sizes


def check_nonnegative_values(x: Tensor, *, name: str, always: bool = False) -> Tensor:
    """Raise if ``x`` holds a negative, NaN or Inf value (priors, weights, distances): a
    value check (:func:`values_checked`, or ``always``); off the CPU a device assertion."""
    check_float(x, name=name)
    on = (always and not torch.compiler.is_compiling()) or values_checked()
    if not on or x.numel() == 0:
        return x
    ok = torch.isfinite(x) & (x >= 0)
    if not values_on_host(x):
        check_async(ok, f"{name}: expected finite values >= 0")
    elif not bool(ok.all()):
        raise ValueRangeError(f"{name}: expected finite values >= 0,"
                              f" got {x[~ok].flatten()[0].item()}")
    return x


def _number(value: Any, name: str, expected: str, test: Any) -> Any:
    """Check a scalar hyper-parameter: a finite real number (or 0-d tensor) passing ``test``."""
    v = value.item() if isinstance(value, Tensor) and value.dim() == 0 else value
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        got = repr(v) if isinstance(v, numbers.Real) else f"{type(value).__name__} {value!r}"
        raise ValueRangeError(f"{name}: expected a finite value {expected}, got {got}")
    if not test(v):
        raise ValueRangeError(f"{name}: expected a value {expected}, got {value!r}")
    return value


def check_positive(value: float, *, name: str) -> float:
    """Check a scalar hyper-parameter is a finite number ``> 0``."""
    return _number(value, name, "> 0", lambda v: v > 0)


def check_nonnegative(value: float, *, name: str) -> float:
    """Check a scalar hyper-parameter is a finite number ``>= 0``."""
    return _number(value, name, ">= 0", lambda v: v >= 0)


def check_probability(value: float, *, name: str, closed: bool = True) -> float:
    """Check a scalar lies in ``[0, 1]`` (``closed``) or ``[0, 1)``."""
    if closed:
        return _number(value, name, "in [0, 1]", lambda v: 0 <= v <= 1)
    return _number(value, name, "in [0, 1)", lambda v: 0 <= v < 1)


def check_choice(value: Any, choices: Sequence[Any], *, name: str) -> Any:
    """Check ``value`` is one of ``choices``."""
    if isinstance(value, Tensor) or value not in choices:
        raise ValueRangeError(f"{name}: expected one of {tuple(choices)}, got {value!r}")
    return value


def check_int(value: Any, *, name: str, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """Check an integer hyper-parameter (not bool) and its bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueRangeError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueRangeError(f"{name}: expected an int >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueRangeError(f"{name}: expected an int <= {maximum}, got {value}")
    return value


def check_generator(generator: Any, *, name: str = "generator") -> Any:
    """Check an optional random source is ``None`` or a ``torch.Generator``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueRangeError(f"{name}: expected a torch.Generator or None,"
                              f" got {type(generator).__name__}")
    return generator


def check_device(x: Tensor, device: torch.device, *, name: str, origin: str) -> Tensor:
    """Check ``x`` is on ``device`` (that of ``origin``): mixing fails deep inside torch."""
    if x.device != device:
        raise ShapeError(f"{name}: expected device {device} (from {origin}), got {x.device}")
    return x
