"""``LocalContext``: what a :class:`~dgblocks.methods.Method` gets outside the engine's loop
(a test, a notebook, a loop of one's own); the engine replaces it with its loop context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dgblocks._checks import DGBlocksError
from dgblocks.engine.batches import Batches, index_sampler, move_to

__all__ = ["LocalContext"]


class LocalContext:
    """A method's loop context without the engine: the step counts :meth:`Method.step`
    calls, every batch stream starts at epoch 0, validation runs on the method's device.

    Args:
        method: the method it serves (its device).
        seed: seed of the batch streams it makes.
        eval_batch_size: images per validation batch.
        out: where a method may write its plots.

    Example:
        >>> from torch import nn
        >>> ctx = LocalContext(nn.Linear(2, 2))
        >>> ctx.step, ctx.new_epoch, ctx.is_main
        (0, False, True)
    """

    def __init__(self, method: Any, *, seed: int = 0, eval_batch_size: int = 128,
                 out: str | Path = "runs/local/results.json") -> None:
        if not callable(getattr(method, "parameters", None)):
            raise DGBlocksError(f"method: expected an nn.Module, got {type(method).__name__}")
        self._method, self.seed, self.eval_batch_size = method, seed, eval_batch_size
        self.out, self.step, self.new_epoch, self.is_main = Path(out), 0, False, True
        self.progress = 0.0

    @property
    def device(self) -> Any:
        p = next(self._method.parameters(), None)
        return p.device if p is not None else "cpu"

    def batches(self, dataset: Any, *, name: str, batch_size: int, sampler: str = "identity",
                num_instances: int = 4) -> Batches:
        """A batch stream over ``dataset`` (``name`` is for the engine's checkpoints)."""
        return Batches(dataset, batch_size=batch_size, seed=self.seed,
                       sampler=index_sampler(sampler, dataset, batch_size, num_instances))

    def to_device(self, batch: Any) -> Any:
        return move_to(batch, self.device)

    def validation_error(self, model: Any, val: Any) -> float:
        from dgblocks.eval import validation_error

        return validation_error(model, val, batch_size=self.eval_batch_size, device=self.device)

    def print(self, *a: Any) -> None:
        print(*a, flush=True)

    def log(self, step: int, phase: str, **metrics: Any) -> None:
        """Nothing is logged outside the engine."""
