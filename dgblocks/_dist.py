r"""Distributed primitives for blocks whose statistics span the batch.

When ``torch.distributed`` is initialised with more than one rank, the blocks that compute
batch-level statistics (per-domain style moments, ID-pool updates, domain-balanced sampling)
gather or sum across ranks, so that N ranks give what one rank gives on the concatenated batch.
Without a process group (or with a world of size 1) every function here returns its input and
costs nothing.

Gradient convention: the objective of a data-parallel run is the *sum* of the per-rank losses
(DDP then averages parameter gradients, i.e. divides by N, exactly as it does for any loss).
Under this convention the gradient of a gathered or summed tensor with respect to a rank's
local input is the sum over ranks of the gradients each rank computed, so both
:func:`all_gather_cat` and :func:`all_reduce_sum` all-reduce (sum) the incoming gradient in
their backward pass, as ``torch.distributed.nn.functional`` does.

Example:
    >>> x = torch.arange(3.0)
    >>> is_distributed()
    False
    >>> all_gather_cat(x) is x, all_reduce_sum(x) is x
    (True, True)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from dgblocks._checks import ValueRangeError

__all__ = ["has_process_group", "is_distributed", "world_size", "rank", "all_gather_cat",
           "all_reduce_sum", "broadcast", "shard"]


def has_process_group() -> bool:
    """True when ``torch.distributed`` is available and a process group is initialised.

    The one place that asks; :func:`world_size`, :func:`rank` and :func:`is_distributed` (and
    every caller in dgblocks) go through it.
    """
    return dist.is_available() and dist.is_initialized()


def is_distributed() -> bool:
    """True when a process group is initialised with more than one rank."""
    return world_size() > 1


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return dist.get_world_size() if has_process_group() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if has_process_group() else 0


def _gather_sizes(n: int, device: torch.device) -> list[int]:
    size = torch.tensor([n], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    return [int(s) for s in sizes]  # one host sync: only on the distributed path


def _gather(x: Tensor) -> tuple[Tensor, list[int]]:
    """Concatenate ``x`` from every rank along dim 0 (sizes may differ between ranks)."""
    sizes = _gather_sizes(x.shape[0], x.device)
    m = max(sizes)
    dtype = x.dtype
    xs = x.to(torch.uint8) if dtype == torch.bool else x  # gloo has no bool collectives
    if xs.shape[0] < m:
        pad = xs.new_zeros((m - xs.shape[0], *xs.shape[1:]))
        xs = torch.cat([xs, pad])
    bufs = [torch.empty_like(xs) for _ in sizes]
    dist.all_gather(bufs, xs.contiguous())
    out = torch.cat([b[:s] for b, s in zip(bufs, sizes)])
    return out.to(dtype), sizes


class _AllGatherCat(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        out, sizes = _gather(x)
        ctx.sizes, ctx.rank = sizes, dist.get_rank()
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]]


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        out = x.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def all_gather_cat(x: Tensor) -> Tensor:
    r"""Concatenate ``x`` from every rank along the first axis, in rank order.

    $$ \mathrm{out} = \mathrm{cat}(x^{(0)}, x^{(1)}, \dots, x^{(N-1)}) $$

    Ranks may hold different first-axis sizes (one extra small collective exchanges them).
    Differentiable: the gradient of the local slice is the sum of the ranks' gradients of that
    slice (see the module docstring). Boolean and integer tensors are gathered without autograd.
    A no-op (returns ``x`` itself) without a process group.

    Shape:
        x: (n_r, *); output: (sum_r n_r, *).
    """
    if not is_distributed():
        return x
    if x.requires_grad and torch.is_grad_enabled():
        return _AllGatherCat.apply(x)
    return _gather(x)[0]


def all_reduce_sum(x: Tensor) -> Tensor:
    r"""Element-wise sum of ``x`` over ranks; differentiable; a no-op without a process group.

    $$ \mathrm{out} = \sum_r x^{(r)} $$

    Shape:
        x: any shape, the same on every rank; output: the shape of ``x``.
    """
    if not is_distributed():
        return x
    if x.requires_grad and torch.is_grad_enabled():
        return _AllReduceSum.apply(x)
    out = x.contiguous().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def broadcast(x: Tensor, src: int = 0) -> Tensor:
    r"""Every rank receives rank ``src``'s ``x`` (random draws shared across ranks); no grad.

    $$ \mathrm{out}^{(r)} = x^{(\mathrm{src})} $$

    A no-op (returns ``x`` itself) without a process group.

    Shape:
        x: any shape, the same on every rank; output: the shape of ``x``.
    """
    if not is_distributed():
        return x
    out = x.detach().contiguous().clone()
    dist.broadcast(out, src=src)
    return out


def shard(batch: list[int], rank_: int, world: int) -> list[int]:
    """Rank ``rank_``'s contiguous slice of a global batch (P x K batches keep whole identities
    on a rank when P is divisible by the world size).

    The one place that shards: the batch samplers of :mod:`dgblocks.data.batch_samplers` and
    :class:`dgblocks.engine.batches.Batches` both call it.

    Example:
        >>> shard([0, 1, 2, 3, 4, 5, 6, 7], 1, 2)
        [4, 5, 6, 7]
    """
    if not isinstance(batch, (list, tuple, range)):
        raise ValueRangeError(f"batch: expected a list of indices, got {type(batch).__name__}")
    for value, name in ((world, "world"), (rank_, "rank_")):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueRangeError(f"{name}: expected an int, got {type(value).__name__} "
                                  f"{value!r}")
    if world < 1:
        raise ValueRangeError(f"world: expected an int >= 1 (processes), got {world}")
    if not 0 <= rank_ < world:
        raise ValueRangeError(f"rank_: expected an int in [0, {world - 1}], got {rank_}")
    if len(batch) % world:
        raise ValueRangeError(f"batch_size: expected a multiple of the world size {world}, "
                              f"got {len(batch)}")
    n = len(batch) // world
    return list(batch[rank_ * n:(rank_ + 1) * n])
