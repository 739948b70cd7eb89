"""Resumable, sharded batch iteration fed by persistent worker processes.

Each epoch draws its batches from a sampler built with a generator seeded by
``(seed, epoch)``; every rank keeps its contiguous slice of each global batch
(:func:`dgblocks._dist.shard`, the one sharding function). The state is
``(epoch, batch position)``: restoring it continues with the very batch an uninterrupted run
would draw next, without touching any global RNG.

The batches do not depend on the number of workers: the main process decides every batch
(one endless batch sampler that crosses epochs), and each item is loaded under its own seed,
``(seed, epoch, position, slot in the global batch)``, so randomness in a dataset's
``__getitem__`` (a per-item ``transform`` drawing from torch's global RNG) gives the same
images with 0, 1 or N workers and after a resume. With 0 workers the item seeds are applied
inside ``torch.random.fork_rng``: the training process's RNG is left as it was.

Worker processes are started once and kept (``persistent_workers``): across epochs, and
across :meth:`Batches.load_state_dict`, which only resets the loader's queue. They prefetch
``prefetch`` batches each; batches come back in page-locked memory with ``pin_memory``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from dgblocks._checks import check_int
from dgblocks._dist import shard
from dgblocks.data._validate import check_flag, check_seed
from dgblocks.engine.seeding import derive_seed
from dgblocks.engine.workers import MAX_WORKERS, Seeded, default_workers

__all__ = ["Batches", "random_sampler", "index_sampler", "move_to", "default_workers"]

SamplerFn = Callable[[torch.Generator], Iterable[Any]]


def random_sampler(n: int) -> SamplerFn:
    """A sampler factory giving a random permutation of ``range(n)`` each epoch.

    Example:
        >>> sorted(random_sampler(4)(torch.Generator().manual_seed(0)))
        [0, 1, 2, 3]
    """
    return lambda g: torch.randperm(n, generator=g).tolist()


class _Endless:
    """The batch sampler: this rank's share of every global batch from the current position
    on, epoch after epoch (iterated again after each :meth:`Batches.load_state_dict`)."""

    def __init__(self, owner: Batches) -> None:
        self.owner = owner

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        b = self.owner
        epoch, pos = b.epoch, b.position
        while True:
            order = b._batches(epoch)
            for p in range(pos, len(order)):
                keys = [(i, derive_seed(b.seed, epoch, p, k)) for k, i in enumerate(order[p])]
                yield shard(keys, b.rank, b.world_size)
            epoch, pos = epoch + 1, 0


class Batches:
    """An endless iterator of collated batches with a saveable position.

    Args:
        dataset: a map-style dataset.
        batch_size: global batch size (split across ranks).
        sampler: ``sampler(generator) -> indices`` called once per epoch: a flat order (cut
            into batches of ``batch_size``) or the global batches themselves (lists).
        seed: base seed of the per-epoch generators and of the per-item seeds.
        rank: this process's index; its share of every batch is slice ``rank`` of
            ``world_size`` contiguous slices.
        world_size: number of processes sharing each batch.
        workers: worker processes loading items (persistent); 0 loads in the main process,
            -1 picks :func:`default_workers`; at most 256. The batches do not depend on it.
        drop_last: drop the last incomplete batch of an epoch (default; flat orders only).
        pin_memory: page-locked batches (fast, asynchronous copies to a GPU).
        prefetch: batches each worker loads ahead.

    Attributes:
        epoch: current epoch (0-based); position: batches already consumed in it;
        epoch_started: True when the last batch returned opened a new epoch.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> b = Batches(TensorDataset(torch.arange(6)), batch_size=2, sampler=random_sampler(6))
        >>> [next(b)[0].tolist() for _ in range(2)], b.state_dict()
        ([[1, 5], [3, 4]], {'epoch': 0, 'position': 2})
    """

    def __init__(self, dataset: Dataset, *, batch_size: int, sampler: SamplerFn, seed: int = 0,
                 rank: int = 0, world_size: int = 1, workers: int = 0,
                 drop_last: bool = True, collate_fn: Callable[[list], Any] | None = None,
                 pin_memory: bool = False, prefetch: int = 2) -> None:
        check_int(batch_size, name="batch_size", minimum=1)
        check_int(world_size, name="world_size", minimum=1)
        check_int(rank, name="rank", minimum=0, maximum=world_size - 1)
        check_int(workers, name="workers", minimum=-1, maximum=MAX_WORKERS)
        check_int(prefetch, name="prefetch", minimum=1, maximum=64)
        check_seed(seed)
        check_flag(drop_last, name="drop_last")
        check_flag(pin_memory, name="pin_memory")
        if not callable(sampler):
            raise ValueError(f"sampler: expected sampler(generator) -> indices, got "
                             f"{type(sampler).__name__}")
        if collate_fn is not None and not callable(collate_fn):
            raise ValueError(f"collate_fn: expected a callable or None, got "
                             f"{type(collate_fn).__name__}")
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise ValueError(f"dataset: expected a map-style dataset (__getitem__, __len__), "
                             f"got {type(dataset).__name__}")
        if batch_size % world_size:
            raise ValueError(f"batch_size: expected a multiple of the world size {world_size}, "
                             f"got {batch_size}")
        self.dataset, self.batch_size, self.sampler = dataset, batch_size, sampler
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.workers = default_workers(dataset, world_size=world_size) if workers < 0 else workers
        self.drop_last, self.collate_fn = drop_last, collate_fn
        self.pin_memory, self.prefetch = pin_memory, prefetch
        self.epoch, self.position, self.epoch_started = 0, 0, False
        self._orders: dict[int, list[list[int]]] = {}
        self._loader: DataLoader | None = None
        self._it: Iterator[Any] | None = None

    def _batches(self, epoch: int) -> list[list[int]]:
        """The global batches of ``epoch`` (cached while the loader may still need them)."""
        if epoch not in self._orders:
            for old in [e for e in self._orders if e < self.epoch]:
                del self._orders[old]
            self._orders[epoch] = self._draw(epoch)
        return self._orders[epoch]

    def _draw(self, epoch: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
        order = list(self.sampler(g))
        if order and isinstance(order[0], (list, tuple, torch.Tensor)):  # global batches
            batches = [[int(i) for i in b] for b in order]
            bad = [len(b) for b in batches if len(b) != self.batch_size]
            if bad:
                raise ValueError(f"batch_size: the sampler gave batches of {bad[0]} indices in "
                                 f"epoch {epoch}, expected {self.batch_size}")
        else:
            idx = [int(i) for i in order]
            cut = len(idx) // self.batch_size * self.batch_size if self.drop_last else len(idx)
            batches = [idx[i:i + self.batch_size] for i in range(0, cut, self.batch_size)]
        if not batches:
            raise ValueError(f"batch_size: the sampler gave {len(order)} indices in epoch "
                             f"{epoch}, fewer than one batch of {self.batch_size}")
        n = len(self.dataset)  # type: ignore[arg-type]
        lo, hi = min(min(b) for b in batches), max(max(b) for b in batches)
        if lo < 0 or hi >= n:
            raise ValueError(f"sampler: expected indices in [0, {n}) (the dataset's items), "
                             f"got {lo if lo < 0 else hi} in epoch {epoch}")
        return batches

    def __len__(self) -> int:
        """Batches in the current epoch."""
        return len(self._batches(self.epoch))

    def _make_loader(self) -> DataLoader:
        g = torch.Generator().manual_seed(derive_seed(self.seed, 7))  # never the global RNG
        kwargs: dict[str, Any] = {"collate_fn": self.collate_fn} if self.collate_fn else {}
        if self.workers > 0:
            kwargs |= {"persistent_workers": True, "prefetch_factor": self.prefetch}
        return DataLoader(Seeded(self.dataset), batch_sampler=_Endless(self),
                          num_workers=self.workers, generator=g, pin_memory=self.pin_memory,
                          **kwargs)

    def __iter__(self) -> Batches:
        return self

    def __next__(self) -> Any:
        if self.position >= len(self):
            self.epoch, self.position = self.epoch + 1, 0
        if self._it is None:
            if self._loader is None:  # never bool(loader): that asks for its length
                self._loader = self._make_loader()
            self._it = iter(self._loader)  # persistent workers: reset, not restarted
        self.epoch_started = self.position == 0
        batch = next(self._it)
        self.position += 1
        return batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._orders, self._it = {}, None

    def close(self) -> None:
        """Stop the worker processes (they also stop when this object is collected)."""
        self._it = None
        if self._loader is not None and getattr(self._loader, "_iterator", None) is not None:
            self._loader._iterator._shutdown_workers()  # type: ignore[union-attr]
            self._loader._iterator = None
        self._loader = None


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
    """An epoch's order from one of dgblocks.data's batch samplers: its *global* batches
    (``num_replicas=1``; :class:`Batches` shards them), or a flat permutation for
    ``"random"``."""
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
    return lambda g: list(make(g))
