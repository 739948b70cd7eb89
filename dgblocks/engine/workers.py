"""Worker processes of :class:`dgblocks.engine.batches.Batches`: how many to start, and items loaded
under their own seeds (so that the number of workers never changes an image)."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import Dataset, get_worker_info

from dgblocks._checks import check_int

__all__ = ["default_workers", "Seeded", "MAX_WORKERS"]

MAX_WORKERS = 256  # a typo must not fork thousands of processes


def default_workers(dataset: Any, *, cpus: int | None = None, world_size: int = 1) -> int:
    """Worker processes worth starting for ``dataset``: 0 when its images are in memory (a
    tensor: indexing is cheaper than a process hop), else ``min(4, cpus / world_size)``, at
    least 1 (files: decoding overlaps the training step).

    Example:
        >>> from dgblocks.data import ReIDDataset
        >>> default_workers(ReIDDataset(torch.zeros(2, 3, 4, 2, dtype=torch.uint8),
        ...                             pids=[0, 1], camids=[0, 0]))
        0
        >>> default_workers(ReIDDataset(paths=["a.jpg"], pids=[0], camids=[0]), cpus=16)
        4
    """
    check_int(world_size, name="world_size", minimum=1)
    if cpus is not None:
        check_int(cpus, name="cpus", minimum=1)
    origin = getattr(dataset, "origin", None)
    base = origin[0] if isinstance(origin, tuple) and origin else dataset
    if getattr(base, "paths", None) is None:
        return 0
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    return max(1, min(4, cpus // world_size))


class Seeded(Dataset):
    """Loads ``(index, seed)`` keys: ``dataset[index]`` under ``torch.manual_seed(seed)``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitems__(self, keys: list[tuple[int, int]]) -> list[Any]:
        def load() -> list[Any]:
            out = []
            for i, s in keys:
                torch.default_generator.manual_seed(s)  # CPU only: cuda seeding is slow
                out.append(self.dataset[i])
            return out

        if get_worker_info() is not None:  # a worker's RNG serves nothing else
            return load()
        with torch.random.fork_rng(devices=[]):
            return load()

    def __getitem__(self, key: tuple[int, int]) -> Any:
        return self.__getitems__([key])[0]
