"""Atomic checkpoints, loaded with ``weights_only=True``.

A checkpoint is written to a temporary file in the same folder, flushed to disk and renamed
over the previous one (``os.replace`` is atomic on POSIX and Windows), so a run killed while
saving leaves the previous checkpoint intact. A truncated or corrupt file raises
:class:`CheckpointError` naming it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint"]


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupt or not a dgblocks checkpoint."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file + fsync + rename).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
        >>> _ = save_checkpoint(p, {"step": 3})
        >>> load_checkpoint(p)["step"]
        3
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": "dgblocks-checkpoint-v1", **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def load_checkpoint(path: str | Path, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, bad pickle, unsafe global, ...
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupt: "
                              f"{type(err).__name__}: {err}") from err
    if not isinstance(state, dict) or state.get("format") != "dgblocks-checkpoint-v1":
        raise CheckpointError(f"checkpoint {str(path)!r} is not a dgblocks checkpoint")
    return state
