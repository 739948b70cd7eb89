"""Checks that involve a block itself (an ``nn.Module``), beside the argument checks of
:mod:`dgblocks._checks`: an input against the block's parameters (device, and dtype outside
``torch.autocast``), and a ``state_dict`` entry against the buffer it is loaded into (a
checkpoint with a float step counter or an out-of-range domain index would otherwise be
loaded silently). Same exceptions and message format as :mod:`dgblocks._checks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from dgblocks._checks import ValueRangeError, _fmt, check_device

__all__ = ["check_dtype", "check_module_input", "check_state_entry", "check_state_mapping"]


def check_dtype(x: Tensor, dtype: torch.dtype, *, name: str, origin: str) -> Tensor:
    """Check a floating ``x`` has ``dtype`` (``origin`` says whose), unless ``torch.autocast``
    is on for its device (autocast casts both sides itself)."""
    if (x.is_floating_point() and x.dtype != dtype and x.device.type != "meta"
            and not torch.is_autocast_enabled(x.device.type)):
        raise ValueRangeError(f"{name}: expected dtype {dtype} ({origin}), got {x.dtype}: cast"
                              " it, convert the block with .to(dtype), or run under autocast")
    return x


def check_module_input(x: Tensor, module: torch.nn.Module, *, name: str) -> Tensor:
    """``x`` on the device of ``module``'s parameters and, outside autocast, of their dtype."""
    p = next(module.parameters(), None)
    if p is not None:
        check_device(x, p.device, name=name, origin="the block's parameters")
        check_dtype(x, p.dtype, name=name, origin="the dtype of the block's parameters")
    return x


def check_state_entry(state: Any, key: str, like: Tensor, *, minimum: float | None = None,
                      maximum: float | None = None) -> None:
    """Check ``state[key]``, if present, fits the buffer ``like`` of a stateful block: a tensor
    of its shape and dtype kind, finite, in ``[minimum, maximum]`` (read on the host: a
    checkpoint is loaded once). Called from the blocks' ``_load_from_state_dict``."""
    if key not in state:
        return
    v, name = state[key], f"state_dict[{key!r}]"
    kind = [like.is_floating_point(), like.is_complex(), like.dtype == torch.bool]
    if (not isinstance(v, Tensor) or v.shape != like.shape
            or [v.is_floating_point(), v.is_complex(), v.dtype == torch.bool] != kind):
        got = f"{v.dtype} {_fmt(v.shape)}" if isinstance(v, Tensor) else type(v).__name__
        raise ValueRangeError(f"{name}: expected a {like.dtype} tensor of shape"
                              f" {_fmt(like.shape)} (or its dtype kind), got {got}")
    if v.device.type == "meta" or v.numel() == 0 or v.dtype == torch.bool:
        return
    if v.is_floating_point() and not bool(torch.isfinite(v).all()):
        raise ValueRangeError(f"{name}: expected finite values, got NaN or Inf")
    lo, hi = v.min().item(), v.max().item()
    if (minimum is not None and lo < minimum) or (maximum is not None and hi > maximum):
        raise ValueRangeError(f"{name}: expected values in [{minimum}, {maximum}], got"
                              f" {lo if minimum is not None and lo < minimum else hi}")


def check_state_mapping(state: Any, *, name: str = "state", keys: tuple[str, ...] = ()) -> Mapping:
    """Check a state given to ``load_state_dict`` is a mapping holding ``keys``."""
    if not isinstance(state, Mapping):
        raise ValueRangeError(f"{name}: expected the mapping of state_dict(),"
                              f" got {type(state).__name__}")
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueRangeError(f"{name}: expected the keys of state_dict(), missing {missing}")
    return state
