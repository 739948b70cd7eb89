"""``LoopContext``: what a method may ask of the engine's loop while it trains (its
``method.ctx``): the step, extra resumable batch streams, the device, validation, printing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

__all__ = ["LoopContext"]


class LoopContext:
    """What a method may ask of the loop while it trains (``method.ctx``): extra resumable
    batch streams, the device, validation, printing and logging."""

    def __init__(self, run: Any) -> None:
        self._run = run
        self.seed: int = run.args.seed
        self.device: torch.device = run.device
        self.is_main: bool = run.is_main
        self.out: Path = run.out
        self.eval_batch_size: int = run.args.eval_batch_size
        self._batches: Any = None        # the stage's main stream (set by the loop)
        self._streams: list[Any] = []    # streams the method asked for (closed with the stage)

    @property
    def new_epoch(self) -> bool:
        """True when the current step's batch opened a new epoch of the stage's stream."""
        b = getattr(self, "_batches", None)
        return bool(b is not None and b.epoch_started)

    @property
    def step(self) -> int:
        """The step of the current stage being run (0-based)."""
        return self._run.step

    @property
    def progress(self) -> float:
        """Fraction of the current stage done, in [0, 1]."""
        return self._run.progress

    def batches(self, dataset: Any, *, name: str, batch_size: int, sampler: str = "identity",
                num_instances: int = 4) -> Any:
        """Another resumable batch stream (saved in checkpoints as ``name``); batches come on
        the host: ``ctx.to_device(next(stream))``."""
        b = self._run.batches(dataset, batch_size=batch_size, sampler=sampler,
                              num_instances=num_instances)
        self._run.register(**{f"stream:{name}": b})
        self._streams.append(b)
        return b

    def close_streams(self) -> None:
        """Stop the worker processes of the stage's batch streams (they restart when used)."""
        for b in [self._batches, *self._streams]:
            if b is not None:
                b.close()
        self._batches, self._streams = None, []

    def to_device(self, batch: Any) -> Any:
        """``batch`` on the run's device (non-blocking)."""
        return self._run.to_device(batch)

    def validation_error(self, model: Any, val: Any) -> float:
        """1 - R1/100 of ``model`` on the held-out split ``val``
        (:func:`dgblocks.eval.validation_error`)."""
        from dgblocks.eval import validation_error

        return validation_error(model, val, batch_size=self.eval_batch_size, device=self.device)

    def print(self, *a: Any) -> None:
        """``print`` on rank 0."""
        self._run.print(*a)

    def log(self, step: int, phase: str, **metrics: Any) -> None:
        """One metrics record at ``step`` of ``phase`` (rank 0)."""
        self._run.logger.log(step, phase, **metrics)
