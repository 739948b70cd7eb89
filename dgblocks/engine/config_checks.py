"""The checks behind :func:`dgblocks.engine.parse_config`: every config value against its
field's type, choices, minimum and maximum, with errors that name the flag."""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Sequence
from typing import Any

from dgblocks._checks import DGBlocksError

__all__ = ["ConfigError", "validate"]

_MISSING = dataclasses.MISSING


class ConfigError(DGBlocksError):
    """A flag or ``--config`` value of the wrong type or out of range (names the flag)."""


def _hints(cls: type) -> dict[str, Any]:
    module = sys.modules.get(cls.__module__)
    return typing.get_type_hints(cls, globalns=vars(module) if module else None)


def _minimum(f: dataclasses.Field, default: Any) -> float | None:
    if "minimum" in f.metadata:
        return f.metadata["minimum"]
    n = f.name
    if n == "steps" or n.endswith("_steps"):
        low = 0
    elif n in ("batch_size", "num_instances") or n.endswith(("_batch_size", "_samples",
                                                                "_every")):
        low = 1
    else:
        return None
    return min(low, default) if isinstance(default, int) else low


def _check_value(v: Any, tp: Any, flag: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return v
        inner = [a for a in args if a is not type(None)]
        return _check_value(v, inner[0], flag) if len(inner) == 1 else v
    if origin is typing.Literal:
        if v not in args:
            raise ConfigError(f"{flag}: expected one of {list(args)}, got {v!r}")
        return v
    if origin in (tuple, list, Sequence) and args:
        if not isinstance(v, (tuple, list)):
            raise ConfigError(f"{flag}: expected a list, got {v!r}")
        return type(v)(_check_value(x, args[0], flag) for x in v)
    bad = (tp is bool and not isinstance(v, bool)
           or tp is int and (isinstance(v, bool) or not isinstance(v, int))
           or tp is float and (isinstance(v, bool) or not isinstance(v, (int, float)))
           or tp is str and not isinstance(v, str))
    if bad:
        kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
        raise ConfigError(f"{flag}: expected {kind[tp]}, got {v!r} ({type(v).__name__})")
    if tp is float and not math.isfinite(v):
        raise ConfigError(f"{flag}: expected a finite number, got {v!r}")
    return float(v) if tp is float else v


def validate(obj: Any) -> None:
    """Check every field of the dataclass instance ``obj`` against its annotation, choices
    and minimum (what :func:`parse_config` does to the flags); a bad value raises
    :class:`ConfigError` naming the flag.

    Example:
        >>> from dataclasses import dataclass
        >>> from dgblocks.engine import arg
        >>> @dataclass
        ... class C:
        ...     steps: int = arg(3, "steps")
        >>> validate(C(steps=-1))
        Traceback (most recent call last):
        ...
        dgblocks.engine.config_checks.ConfigError: --steps: expected an integer >= 0, got -1
    """
    _validate(obj)


def _validate(obj: Any) -> None:
    """Check every field of ``obj`` against its annotation, choices and minimum."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        flag = "--" + f.name.replace("_", "-")
        v = _check_value(getattr(obj, f.name), hints[f.name], flag)
        setattr(obj, f.name, v)
        if "choices" in f.metadata and v not in f.metadata["choices"]:
            raise ConfigError(f"{flag}: expected one of {list(f.metadata['choices'])}, "
                              f"got {v!r}")
        default = f.default if f.default is not _MISSING else None
        low = _minimum(f, default) if isinstance(v, (int, float)) else None
        kind = "an integer" if isinstance(v, int) else "a number"
        if low is not None and v < low:
            raise ConfigError(f"{flag}: expected {kind} >= {low}, got {v!r}")
        high = f.metadata.get("maximum") if isinstance(v, (int, float)) else None
        if high is not None and v > high:
            raise ConfigError(f"{flag}: expected {kind} <= {high}, got {v!r}")
