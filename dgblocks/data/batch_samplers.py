"""Batch samplers: P identities x K instances, domain-balanced and dataset-balanced batches.

All samplers are *batch samplers* (they yield lists of indices): use them as
``DataLoader(dataset, batch_sampler=sampler)``, so a P x K batch can never be cut in two.
They read only the label tensors (``dataset.pids``, ``dataset.domains``), never an image.

Randomness: pass ``generator=`` (its state advances epoch after epoch) or rely on
``seed + epoch`` (call :meth:`set_epoch` like ``DistributedSampler``). Under
``torch.distributed`` every rank draws the same *global* batch of ``batch_size`` indices and
keeps its contiguous slice of ``batch_size / world_size`` (ranks must be built with the same
seed), so N ranks see exactly the concatenated single-rank batch: per-domain statistics
gathered across ranks equal those of the single-process run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from dgblocks import _dist
from dgblocks._checks import ValueRangeError, check_int
from dgblocks._dist import shard
from dgblocks.data._validate import check_generator, check_seed

__all__ = ["RandomIdentitySampler", "DomainBalancedSampler", "DatasetBalancedSampler",
           "dist_info"]

MAX_BATCH = 1 << 20  # images per global batch: more is a typo, not a batch


def dist_info(num_replicas: int | None = None, rank: int | None = None) -> tuple[int, int]:
    """``(world_size, rank)`` from the arguments, else the process group, else ``(1, 0)``."""
    num_replicas = num_replicas if num_replicas is not None else _dist.world_size()
    rank = rank if rank is not None else _dist.rank()
    check_int(num_replicas, name="num_replicas", minimum=1)
    check_int(rank, name="rank", minimum=0, maximum=num_replicas - 1)
    return num_replicas, rank


def _labels(x: Any, name: str) -> Tensor:
    try:
        t = x if isinstance(x, Tensor) else torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueRangeError(f"{name}: expected a 1-D integer tensor, got "
                              f"{type(x).__name__} ({err})") from err
    if t.dim() == 1 and t.numel() == 0:
        raise ValueRangeError(f"{name}: expected at least one label, got an empty tensor")
    if t.dim() != 1 or t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise ValueRangeError(f"{name}: expected a 1-D integer tensor, got {tuple(t.shape)}"
                              f" {t.dtype}")
    return t.long().cpu()


def _pick_k(groups: list[Tensor], chosen: Tensor, k: int, gen: torch.Generator) -> Tensor:
    """K indices of each chosen group: without replacement when it has >= K, else with."""
    out = []
    for g in chosen.tolist():
        members = groups[g]
        if members.numel() >= k:
            out.append(members[torch.randperm(members.numel(), generator=gen)[:k]])
        else:
            out.append(members[torch.randint(members.numel(), (k,), generator=gen)])
    return torch.cat(out)


class _BatchSampler:
    """Shared epoch/generator/sharding logic; subclasses implement ``_global_batch``."""

    def __init__(self, n: int, batch_size: int, num_batches: int | None, generator,
                 seed: int, num_replicas: int | None, rank: int | None) -> None:
        check_int(batch_size, name="batch_size", minimum=1, maximum=MAX_BATCH)
        self.batch_size = batch_size
        self.world, self.rank = dist_info(num_replicas, rank)
        if batch_size % self.world:
            raise ValueRangeError(f"batch_size: expected a multiple of world_size={self.world},"
                                  f" got {batch_size}")
        self.num_batches = num_batches if num_batches is not None else max(1, n // batch_size)
        check_int(self.num_batches, name="num_batches", minimum=1)
        self.generator = check_generator(generator)
        self.seed = check_seed(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Reseed from ``seed + epoch`` (ignored when a ``generator`` was given)."""
        self.epoch = check_int(epoch, name="epoch", minimum=0)

    def __len__(self) -> int:
        return self.num_batches

    def _global_batch(self, gen: torch.Generator) -> Tensor:
        raise NotImplementedError

    def __iter__(self) -> Iterator[list[int]]:
        gen = self.generator or torch.Generator().manual_seed(self.seed + self.epoch)
        for _ in range(self.num_batches):
            yield shard(self._global_batch(gen).tolist(), self.rank, self.world)


class RandomIdentitySampler(_BatchSampler):
    """P identities x K instances per batch (``batch_size = P * K``).

    Each batch draws P distinct identities uniformly and K images of each (without
    replacement when the identity has at least K, else with replacement).

    Args:
        pids: identity label per dataset item, ``(N,)``.
        batch_size: global batch size ``P * K``.
        num_instances: K.
        num_batches: batches per epoch (default ``N // batch_size``).
        generator: torch generator; else ``seed + epoch``.
        num_replicas: distributed world size (default: from the process group, else 1).
        rank: this process's rank (default: from the process group, else 0).

    Example:
        >>> s = RandomIdentitySampler(torch.arange(8) // 2, batch_size=4, num_instances=2)
        >>> tuple(len(set(b)) for b in s)
        (4, 4)
    """

    def __init__(self, pids: Any, *, batch_size: int = 64, num_instances: int = 4,
                 num_batches: int | None = None, generator: torch.Generator | None = None,
                 seed: int = 0, num_replicas: int | None = None, rank: int | None = None):
        self.pids = _labels(pids, "pids")
        super().__init__(len(self.pids), batch_size, num_batches, generator, seed,
                         num_replicas, rank)
        check_int(num_instances, name="num_instances", minimum=1)
        if batch_size % num_instances:
            raise ValueRangeError(f"batch_size: expected a multiple of num_instances="
                                  f"{num_instances}, got {batch_size}")
        self.k, self.p = num_instances, batch_size // num_instances
        uniq, inv = self.pids.unique(return_inverse=True)
        if uniq.numel() < self.p:
            raise ValueRangeError(f"batch_size: expected P = batch_size / num_instances <= "
                                  f"{uniq.numel()} identities, got P={self.p}")
        order = torch.argsort(inv, stable=True)
        self.groups = list(torch.split(order, torch.bincount(inv).tolist()))

    def _global_batch(self, gen: torch.Generator) -> Tensor:
        chosen = torch.randperm(len(self.groups), generator=gen)[: self.p]
        return _pick_k(self.groups, chosen, self.k, gen)


class DomainBalancedSampler(_BatchSampler):
    """P x K batches with an equal share of identities (hence images) from every domain.

    Each batch holds ``P / D`` identities of each of the D domains, K images each; per-domain
    statistics (style moments, central-domain features) then rest on equal sample counts.
    ``batch_size`` must be a multiple of ``D * K``.

    Example:
        >>> pids, doms = torch.arange(16) // 2, torch.arange(16) // 8
        >>> s = DomainBalancedSampler(pids, doms, batch_size=8, num_instances=2)
        >>> tuple(int((doms[b] == 0).sum()) for b in s)
        (4, 4)
    """

    def __init__(self, pids: Any, domains: Any, *, batch_size: int = 64, num_instances: int = 4,
                 num_batches: int | None = None, generator: torch.Generator | None = None,
                 seed: int = 0, num_replicas: int | None = None, rank: int | None = None):
        self.pids, self.domains = _labels(pids, "pids"), _labels(domains, "domains")
        if self.domains.numel() != self.pids.numel():
            raise ValueRangeError(f"domains: expected length {self.pids.numel()} (from pids),"
                                  f" got {self.domains.numel()}")
        super().__init__(len(self.pids), batch_size, num_batches, generator, seed,
                         num_replicas, rank)
        check_int(num_instances, name="num_instances", minimum=1)
        doms = self.domains.unique()
        self.num_domains, self.k = int(doms.numel()), num_instances
        if batch_size % (self.num_domains * num_instances):
            raise ValueRangeError(f"batch_size: expected a multiple of num_domains * "
                                  f"num_instances = {self.num_domains * num_instances}, "
                                  f"got {batch_size}")
        self.p_dom = batch_size // (self.num_domains * num_instances)
        self.groups_by_domain = []
        for d in doms.tolist():
            idx = (self.domains == d).nonzero().squeeze(1)
            uniq, inv = self.pids[idx].unique(return_inverse=True)
            if uniq.numel() < self.p_dom:
                raise ValueRangeError(f"batch_size: domain {d} has {uniq.numel()} identities,"
                                      f" fewer than the {self.p_dom} needed per batch")
            order = idx[torch.argsort(inv, stable=True)]
            self.groups_by_domain.append(list(torch.split(order, torch.bincount(inv).tolist())))

    def _global_batch(self, gen: torch.Generator) -> Tensor:
        parts = []
        for groups in self.groups_by_domain:
            chosen = torch.randperm(len(groups), generator=gen)[: self.p_dom]
            parts.append(_pick_k(groups, chosen, self.k, gen))
        return torch.cat(parts)


class DatasetBalancedSampler(_BatchSampler):
    """Batches with ``batch_size / D`` random images from each domain (no identity structure).

    Example:
        >>> doms = torch.tensor([0] * 10 + [1] * 2)
        >>> s = DatasetBalancedSampler(doms, batch_size=4)
        >>> tuple(int((doms[b] == 1).sum()) for b in s)
        (2, 2, 2)
    """

    def __init__(self, domains: Any, *, batch_size: int = 64, num_batches: int | None = None,
                 generator: torch.Generator | None = None, seed: int = 0,
                 num_replicas: int | None = None, rank: int | None = None):
        self.domains = _labels(domains, "domains")
        super().__init__(len(self.domains), batch_size, num_batches, generator, seed,
                         num_replicas, rank)
        doms = self.domains.unique()
        if batch_size % doms.numel():
            raise ValueRangeError(f"batch_size: expected a multiple of the {doms.numel()}"
                                  f" domains, got {batch_size}")
        self.per = batch_size // doms.numel()
        self.members = [(self.domains == d).nonzero().squeeze(1) for d in doms.tolist()]

    def _global_batch(self, gen: torch.Generator) -> Tensor:
        return _pick_k(self.members, torch.arange(len(self.members)), self.per, gen)
