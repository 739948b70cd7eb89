"""Reductions shared by the losses (and their fused kernels): ``reduce`` and ``attached_zero``.

Not checks: they compute. A degenerate batch returns a zero still attached to the graph, so
DDP sees every parameter used.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgblocks._checks import _REDUCTIONS, ValueRangeError

__all__ = ["reduce", "attached_zero", "loss_dtype"]


def reduce(loss: Tensor, reduction: str) -> Tensor:
    """Apply ``"mean" | "sum" | "none"`` to a per-sample loss.

    The mean of an empty tensor is a graph-attached zero, never NaN.
    """
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        if loss.numel() == 0:
            return loss.sum() * 0
        return loss.mean()
    raise ValueRangeError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")


def loss_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of an unbounded loss value (a distance): float32 for half inputs, whose
    float16 range (65504) a squared distance at feature scale 1e3 already exceeds."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def attached_zero(*tensors: Tensor) -> Tensor:
    """A scalar zero that is still attached to the graph of ``tensors``.

    Degenerate batches return this so that DDP sees every parameter used.
    """
    total = None
    for t in tensors:
        z = (t * 0).sum()
        total = z if total is None else total + z
    if total is None:
        raise ValueError("attached_zero: expected at least one tensor")
    return total
