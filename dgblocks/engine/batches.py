"""Resumable, sharded batch iteration: the sampler position survives a checkpoint.

Each epoch draws its index order from a sampler built with a generator seeded by
``(seed, epoch)``, cuts it into global batches, and gives every rank its contiguous slice.
The state is ``(epoch, batch position)``; restoring it continues with the very batch an
uninterrupted run would draw next, without touching any global RNG.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from dgblocks._checks import check_int
from dgblocks.engine.distributed import shard
from dgblocks.engine.seeding import derive_seed

__all__ = ["Batches", "random_sampler", "index_sampler", "move_to"]

SamplerFn = Callable[[torch.Generator], Iterable[int]]


def random_sampler(n: int) -> SamplerFn:
    """A sampler factory giving a random permutation of ``range(n)`` each epoch.

    Example:
        >>> sorted(random_sampler(4)(torch.Generator().manual_seed(0)))
        [0, 1, 2, 3]
    """
    return lambda g: torch.randperm(n, generator=g).tolist()


class Batches:
    """An endless iterator of collated batches with a saveable position.

    Args:
        dataset: a map-style dataset.
        batch_size: global batch size (split across ranks).
        sampler: ``sampler(generator) -> iterable of indices`` called once per epoch.
        seed: base seed of the per-epoch generators.
        rank: this process's index; its share of every batch is slice ``rank`` of
            ``world_size`` contiguous slices.
        world_size: number of processes sharing each batch.
        workers: DataLoader workers (0 loads in the main process: exact resume).
        drop_last: drop the last incomplete batch of an epoch (default).
        pin_memory: page-locked batches (fast, asynchronous copies to a GPU).

    Attributes:
        epoch: current epoch (0-based); position: batches already consumed in it;
        epoch_started: True when the last batch returned opened a new epoch.
    """

    def __init__(self, dataset: Dataset, *, batch_size: int, sampler: SamplerFn, seed: int = 0,
                 rank: int = 0, world_size: int = 1, workers: int = 0,
                 drop_last: bool = True, collate_fn: Callable[[list], Any] | None = None,
                 pin_memory: bool = False) -> None:
        check_int(batch_size, name="batch_size", minimum=1)
        if batch_size % world_size:
            raise ValueError(f"batch_size: expected a multiple of the world size {world_size}, "
                             f"got {batch_size}")
        self.dataset, self.batch_size, self.sampler = dataset, batch_size, sampler
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.workers, self.drop_last, self.collate_fn = workers, drop_last, collate_fn
        self.pin_memory = pin_memory
        self.epoch, self.position, self.epoch_started = 0, 0, False
        self._order: list[list[int]] | None = None
        self._it: Iterator[Any] | None = None

    def _epoch_batches(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
        idx = [int(i) for i in self.sampler(g)]
        cut = len(idx) // self.batch_size * self.batch_size if self.drop_last else len(idx)
        batches = [idx[i:i + self.batch_size] for i in range(0, cut, self.batch_size)]
        if not batches:
            raise ValueError(f"batch_size: the sampler gave {len(idx)} indices in epoch "
                             f"{self.epoch}, fewer than one batch of {self.batch_size}")
        return batches

    def __len__(self) -> int:
        """Batches in the current epoch."""
        if self._order is None:
            self._order = self._epoch_batches()
        return len(self._order)

    def _loader(self) -> Iterator[Any]:
        mine = [shard(b, self.rank, self.world_size) for b in self._order[self.position:]]
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, self.position, 7))
        kwargs = {"collate_fn": self.collate_fn} if self.collate_fn is not None else {}
        return iter(DataLoader(self.dataset, batch_sampler=mine, num_workers=self.workers,
                               generator=g, persistent_workers=False,
                               pin_memory=self.pin_memory, **kwargs))

    def __iter__(self) -> Batches:
        return self

    def __next__(self) -> Any:
        if self._order is None:
            self._order = self._epoch_batches()
        if self.position >= len(self._order):
            self.epoch, self.position, self._it = self.epoch + 1, 0, None
            self._order = self._epoch_batches()
        if self._it is None:
            self._it = self._loader()
        self.epoch_started = self.position == 0
        batch = next(self._it)
        self.position += 1
        return batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order, self._it = None, None


def move_to(batch: Any, device: torch.device) -> Any:
    """``batch`` (tensors, nested in lists, tuples and dicts) on ``device``, copied without
    blocking the host (from pinned memory the copy overlaps compute)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    return batch


def index_sampler(kind: str, dataset: Any, batch_size: int, num_instances: int
             ) -> Callable[[torch.Generator], Any]:
    """An epoch's flat index order from one of dgblocks.data's batch samplers (unsharded:
    :class:`Batches` shards)."""
    if kind == "random":
        return random_sampler(len(dataset))
    from dgblocks.data import batch_samplers as samplers

    if kind == "identity":
        def make(g: torch.Generator) -> Any:
            return samplers.RandomIdentitySampler(
                dataset.pids, batch_size=batch_size, num_instances=num_instances, generator=g,
                num_replicas=1, rank=0)
    elif kind == "domain":
        def make(g: torch.Generator) -> Any:
            return samplers.DomainBalancedSampler(
                dataset.pids, dataset.domains, batch_size=batch_size,
                num_instances=num_instances, generator=g, num_replicas=1, rank=0)
    else:
        raise ValueError(f"sampler: expected 'identity', 'domain', 'random' or a callable, "
                         f"got {kind!r}")
    return lambda g: [i for batch in make(g) for i in batch]
