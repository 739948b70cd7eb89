"""DDP glue: process-group set-up from ``torchrun``'s environment, sharding, gathered encoding.

:func:`shard` is :func:`dgblocks._dist.shard`, re-exported (the one sharding function).

``torchrun --nproc_per_node=N recipes/<name>.py`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``;
:func:`init_distributed` then starts NCCL on GPUs and gloo on CPU. Without those variables
everything here is a no-op, so the same recipe runs on one process unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

from dgblocks._dist import (
    all_gather_cat,
    has_process_group,
    is_distributed,
    rank,
    shard,
    world_size,
)

__all__ = ["DistInfo", "init_distributed", "shutdown_distributed", "resolve_device",
           "shard", "gathered_encode", "wrap_ddp", "barrier", "is_main"]


@dataclass(frozen=True)
class DistInfo:
    """Rank, world size and the device this process uses."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> ``cuda:<local_rank>`` when CUDA is available, else ``cpu``.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda":
        spec = f"cuda:{local_rank}"
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: expected an available device, got {spec!r} without CUDA")
    return device


def init_distributed(device: str = "auto") -> DistInfo:
    """Start the process group when launched by ``torchrun`` (NCCL on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world > 1 and not has_process_group():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                                timeout=timedelta(minutes=10))
    return DistInfo(rank(), world_size(), local_rank, dev)


def shutdown_distributed() -> None:
    """Destroy the process group if one was started."""
    if has_process_group():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    """``dist.barrier()`` when distributed; nothing otherwise."""
    if is_distributed():
        dist.barrier()


def is_main() -> bool:
    """True on rank 0 (and without a process group)."""
    return rank() == 0


def gathered_encode(encode: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """Wrap ``encode`` so that each rank encodes its share of every batch and the features are
    all-gathered: every rank returns the full ``(B, D)`` features of the same batch.

    All ranks must call the wrapped function on the same batches (evaluation does). A no-op
    wrapper without a process group.
    """
    if not is_distributed():
        return encode

    def wrapped(x: Tensor) -> Tensor:
        w, r = world_size(), rank()
        bounds = [len(x) * i // w for i in range(w + 1)]
        with torch.no_grad():
            return all_gather_cat(encode(x[bounds[r]:bounds[r + 1]]).contiguous())

    return wrapped


def wrap_ddp(module: nn.Module, *, device: torch.device, find_unused_parameters: bool = False,
             sync_bn: bool = False) -> nn.Module:
    """``DistributedDataParallel(module)`` when distributed; the module itself otherwise.

    ``sync_bn=True`` converts BatchNorm layers to SyncBatchNorm (in place) on CUDA, so batch
    statistics span every rank; PyTorch's SyncBatchNorm has no CPU kernel, so on CPU (gloo)
    each rank normalises with its own share of the batch.
    """
    if not is_distributed():
        return module
    if sync_bn and device.type == "cuda":
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids,
                                               find_unused_parameters=find_unused_parameters)
