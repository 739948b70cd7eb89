"""Metrics to JSONL (and TensorBoard when installed), written by rank 0 only."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from torch import Tensor

from dgblocks._checks import DGBlocksError

__all__ = ["MetricsLogger", "read_jsonl"]


def _scalar(v: Any) -> Any:
    """A JSON value: tensors averaged on the host; NaN and infinities as ``null`` (strict
    JSON has no such numbers; the non-finite-loss guard reports them)."""
    if isinstance(v, Tensor):
        v = v.detach().float().mean().item() if v.numel() else math.nan
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = float(v)
        return v if math.isfinite(v) else None
    return v


class MetricsLogger:
    """Append ``{"step": s, "phase": p, **metrics}`` records to a JSONL file.

    Args:
        path: the JSONL file (created with its folder); ``None`` logs nothing (other ranks).
        tensorboard: also write TensorBoard scalars when ``torch.utils.tensorboard`` works.
    """

    def __init__(self, path: str | Path | None, *, tensorboard: bool = True) -> None:
        self.path = Path(path) if path is not None else None
        self._tb = None
        self.lines = 0  # records in the file: a checkpoint saves it, resume truncates to it
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                self.lines = len(read_jsonl(self.path))
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self._tb = SummaryWriter(str(self.path.with_suffix(".tb")))
                except Exception:  # tensorboard not installed
                    self._tb = None

    def truncate(self, phase: str, step: int, done_phases: set[str], *,
                 lines: int | None = None) -> None:
        """Drop records a killed run wrote after its last checkpoint (called on resume):
        all but the first ``lines`` (the count the checkpoint saved), or, for a checkpoint
        without it, those of unfinished phases from ``step`` of ``phase`` on."""
        if self.path is None or not self.path.exists():
            return
        records = read_jsonl(self.path)
        if lines is not None:
            keep = records[:lines]
        else:
            keep = [r for r in records
                    if r.get("phase") in done_phases or (r.get("phase") == phase
                                                         and r.get("step", 0) < step)]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in keep))
        self.lines = len(keep)

    def log(self, step: int, phase: str = "train", **metrics: Any) -> dict[str, Any]:
        """Write one record (tensors are averaged and moved to the host here, not before)."""
        record = {"step": int(step), "phase": phase} | {k: _scalar(v) for k, v in metrics.items()}
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(record, allow_nan=False, default=str) + "\n")
            self.lines += 1
            if self._tb is not None:
                for k, v in record.items():
                    if isinstance(v, float):
                        self._tb.add_scalar(f"{phase}/{k}", v, step)
        return record

    def sync(self) -> None:
        """Flush the file to disk (before a checkpoint that counts its lines)."""
        if self.path is not None and self.path.exists():
            with self.path.open("rb+") as f:
                os.fsync(f.fileno())

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSONL file, skipping lines that are torn, not UTF-8 or not a JSON
    object (a crash mid-write, a corrupted file)."""
    if not isinstance(path, (str, os.PathLike)):
        raise DGBlocksError(f"path: expected a file path, got {type(path).__name__} {path!r}")
    out = []
    for line in Path(path).read_bytes().splitlines():
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(record, dict):
            out.append(record)
    return out
