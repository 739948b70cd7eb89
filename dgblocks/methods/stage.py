"""What the engine hands a method (``Batch``) and what a method declares (``Stage``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from torch import Tensor

from dgblocks._checks import DGBlocksError, check_choice, check_int

__all__ = ["Batch", "Stage", "SAMPLERS"]

SAMPLERS = ("identity", "domain", "random")


class Batch(NamedTuple):
    """One training batch as the engine hands it to :meth:`Method.update` (unpacks like the
    datasets' 5-tuples: ``x, pid, cam, dom, ts = batch``)."""

    images: Tensor
    pids: Tensor
    camids: Tensor
    domains: Tensor
    times: Tensor


@dataclass(frozen=True)
class Stage:
    """One training stage: ``steps`` calls of ``update`` (default :meth:`Method.update`) on
    batches drawn by ``sampler`` from ``data`` (default: the benchmark's merged sources).

    Args:
        name: the stage's name (checkpoints, logs, progress bars).
        steps: optimiser steps of the stage (0: skipped, its end hook still runs).
        update: the step function of this stage; ``None``: :meth:`Method.update`.
        data: the dataset the batches come from; ``None``: ``bench.train``.
        sampler: ``"identity"`` (P x K), ``"domain"`` (equal per source) or ``"random"``.
        batch_size: images per step.
        num_instances: K images per identity (identity and domain samplers).
        cache: names of the sub-modules (and keys of ``Method.state``) the stage produces;
            non-empty makes the stage reusable across runs through the engine's stage cache.
        settings: the config fields the stage reads (the cache key); ``None``: all of them.
        clocks: advance the method's gradient-reversal schedules after each step.
    """

    name: str
    steps: int
    update: Callable[[Batch], dict[str, Any]] | None = None
    data: Any = None
    sampler: str = "identity"
    batch_size: int = 64
    num_instances: int = 4
    cache: tuple[str, ...] = ()
    settings: tuple[str, ...] | None = None
    clocks: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise DGBlocksError(f"name: expected a non-empty stage name, got {self.name!r}")
        check_int(self.steps, name="steps", minimum=0)
        check_choice(self.sampler, SAMPLERS, name="sampler")
        check_int(self.batch_size, name="batch_size", minimum=1)
        check_int(self.num_instances, name="num_instances", minimum=1)
        if self.update is not None and not callable(self.update):
            raise DGBlocksError(f"update: expected a callable or None, got {self.update!r}")
        for field_name in ("cache", "settings"):
            v = getattr(self, field_name)
            if v is not None and (isinstance(v, str) or not all(isinstance(n, str) for n in v)):
                raise DGBlocksError(f"{field_name}: expected a tuple of names, got {v!r}")
