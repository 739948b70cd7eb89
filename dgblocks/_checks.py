"""Input checks shared by every block (one place, one message format).

Every check raises a subclass of :class:`ValueError` whose message names the argument, what
was expected and what was received, e.g.
``labels: expected shape (N,) with N=64 from features, got (32,)``.

Shape checks read only ``.shape`` and never synchronise with the device. Value checks (label
ranges, finiteness) need one host sync; label-range checks are on by default and can be turned
off on a hot path with :func:`dgblocks.checks`; NaN/Inf checks are off by default and turned on
with ``dgblocks.checks(nan=True)`` (docs/decisions.md, "Value checks are switchable"). While
``torch.compile`` traces a block, value checks are skipped (as with
``checks(values=False, nan=False)``): reading a tensor value would split the graph. Run a step
eagerly first to have the inputs checked.

Only CPU tensors are read on the host; elsewhere (CUDA, ``meta``) a value check is an async
device assertion (:func:`check_async`): no host sync, same message without the offending value.
"""

from __future__ import annotations

import contextlib
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
    "check_async", "values_on_host",
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
    """Temporarily switch the value checks that need a host sync.

    Args:
        values: label-range and similar checks (default on).
        nan: NaN/Inf checks on floating inputs (default off).

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
    """Check ``x`` against a space-separated pattern and return the named axis sizes.

    A pattern item is an axis letter (bound to its size, and checked against ``known`` or an
    earlier use of the same letter), a literal integer, or ``*`` (any size). A leading ``...``
    is not supported: blocks document a fixed rank.

    Args:
        x: the tensor to check.
        pattern: e.g. ``"N K"``, ``"B C H W"``, ``"N 2"``.
        name: the argument name used in the error message.
        **known: sizes fixed by earlier arguments, e.g. ``N=64``.

    Returns:
        A dict from axis letter to size (including ``known``).

    Raises:
        ShapeError: if ``x`` is not a tensor, has the wrong rank, or disagrees with a size.

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
    """Check that several tensors/sequences share their first dimension; return it.

    Example:
        >>> check_same_length(("features", torch.zeros(3, 2)), ("labels", torch.zeros(3)))
        3
    """
    first_name, first = pairs[0]
    n = len(first)
    for name, value in pairs[1:]:
        if len(value) != n:
            raise ShapeError(f"{name}: expected length {n} (from {first_name}), got {len(value)}")
    return n


def check_labels(labels: Any, num_classes: int | None, *, name: str, n: int | None = None,
                 length_from: str = "the batch") -> Tensor:
    """Check an integer label vector: shape ``(N,)``, integer dtype, values in ``[0, K)``.

    The range check costs one host sync and runs only while value checks are enabled
    (:func:`values_checked`: on, and not inside a ``torch.compile`` trace).

    Raises:
        ShapeError: wrong rank or length.
        ValueRangeError: non-integer dtype or a label outside ``[0, num_classes)``.
    """
    if not isinstance(labels, Tensor):
        raise ShapeError(f"{name}: expected an integer torch.Tensor of shape (N,),"
                         f" got {type(labels).__name__}")
    if labels.dim() != 1:
        raise ShapeError(f"{name}: expected 1-D shape (N,), got {_fmt(labels.shape)}")
    if n is not None and labels.shape[0] != n:
        raise ShapeError(f"{name}: expected shape (N,) with N={n} from {length_from},"
                         f" got {_fmt(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueRangeError(f"{name}: expected an integer dtype, got {labels.dtype}")
    if num_classes is not None and values_checked() and labels.numel() > 0:
        if not values_on_host(labels):  # CUDA: a device assertion, no host sync
            check_async((labels >= 0) & (labels < num_classes),
                        f"{name}: expected values in [0, {num_classes})")
            return labels
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise ValueRangeError(f"{name}: expected values in [0, {num_classes}),"
                                  f" got {bad}")
    return labels


def values_on_host(x: Tensor) -> bool:
    """Whether a value check may read ``x`` on the host (CPU tensors only: no sync there)."""
    return x.device.type == "cpu"


def check_async(cond: Tensor, msg: str) -> None:
    """Assert all of the boolean ``cond`` on its device, no host sync (CUDA: a device-side
    assertion that carries ``msg``; ``meta``: nothing checked)."""
    torch._assert_async(cond.all(), msg)


def check_reduction(reduction: str) -> str:
    """Check ``reduction`` is one of ``"mean" | "sum" | "none"``."""
    if reduction not in _REDUCTIONS:
        raise ValueRangeError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


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


def check_positive(value: float, *, name: str) -> float:
    """Check a scalar hyper-parameter is ``> 0``."""
    if not value > 0:
        raise ValueRangeError(f"{name}: expected a value > 0, got {value!r}")
    return value


def check_nonnegative(value: float, *, name: str) -> float:
    """Check a scalar hyper-parameter is ``>= 0``."""
    if not value >= 0:
        raise ValueRangeError(f"{name}: expected a value >= 0, got {value!r}")
    return value


def check_probability(value: float, *, name: str, closed: bool = True) -> float:
    """Check a scalar lies in ``[0, 1]`` (``closed``) or ``[0, 1)``."""
    ok = 0 <= value <= 1 if closed else 0 <= value < 1
    if not ok:
        rng = "[0, 1]" if closed else "[0, 1)"
        raise ValueRangeError(f"{name}: expected a value in {rng}, got {value!r}")
    return value


def check_choice(value: Any, choices: Sequence[Any], *, name: str) -> Any:
    """Check ``value`` is one of ``choices``."""
    if value not in choices:
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
