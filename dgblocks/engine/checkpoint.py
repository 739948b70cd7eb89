"""Atomic, checksummed checkpoints, loaded with ``weights_only=True``; the last two are kept.

A checkpoint is written to a temporary file in the same folder, flushed to disk and renamed
over the previous one (``os.replace`` is atomic on POSIX and Windows), so a run killed while
saving leaves the previous checkpoint intact. The one it replaces is kept beside it as
``<name>.prev<suffix>`` (:func:`previous_path`). The state is serialised once and stored with
the SHA-256 of those bytes, so a flipped block of bytes is detected on load. A truncated or
corrupt file raises :class:`CheckpointError` naming it; :func:`load_latest_checkpoint` then
warns, naming it, and falls back to the previous checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from dgblocks._checks import DGBlocksError

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "load_latest_checkpoint",
           "previous_path"]

_FORMAT = "dgblocks-checkpoint-v2"  # {"format", "sha256", "payload": uint8 tensor}
_FORMAT_V1 = "dgblocks-checkpoint-v1"  # the state itself, no checksum (still read)


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupt or not a dgblocks checkpoint."""


def previous_path(path: str | Path) -> Path:
    """Where :func:`save_checkpoint` keeps the checkpoint it replaced.

    Example:
        >>> previous_path("runs/x/results.ckpt.pt").name
        'results.ckpt.prev.pt'
    """
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _path(path: Any, name: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise DGBlocksError(f"{name}: expected a file path, got {type(path).__name__} {path!r}")
    return Path(path)


def _fsync_dir(folder: Path) -> None:
    try:  # make a rename durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def save_checkpoint(path: str | Path, state: dict[str, Any], *, keep_previous: bool = True
                    ) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file + fsync + rename), with the
    SHA-256 of its bytes; ``keep_previous`` moves the file it replaces to
    :func:`previous_path` first.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
        >>> _ = save_checkpoint(p, {"step": 3})
        >>> load_checkpoint(p)["step"]
        3
    """
    path = _path(path)
    if not isinstance(state, dict):
        raise DGBlocksError(f"state: expected a dict, got {type(state).__name__}")
    if path.is_dir():  # never rename a folder (or anything not a checkpoint) out of the way
        raise DGBlocksError(f"path: {str(path)!r} is a folder, expected a checkpoint file")
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({"format": _FORMAT_V1, **state}, buf)
    data = buf.getbuffer()
    payload = torch.frombuffer(data, dtype=torch.uint8)  # torch.save output is never empty
    wrapped = {"format": _FORMAT, "sha256": hashlib.sha256(data).hexdigest(), "payload": payload}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(wrapped, f)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous and path.exists():
            os.replace(path, previous_path(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: str | Path, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``), its
    checksum verified."""
    path = _path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and state.get("format") == _FORMAT:
            data = state["payload"].numpy().tobytes()
            if hashlib.sha256(data).hexdigest() != state["sha256"]:
                raise CheckpointError("checksum mismatch (the payload bytes were altered)")
            state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, bad pickle, unsafe global, checksum, ...
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupt: "
                              f"{type(err).__name__}: {err}") from err
    if not isinstance(state, dict) or state.get("format") != _FORMAT_V1:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a dgblocks checkpoint")
    return state


def load_latest_checkpoint(path: str | Path, *, map_location: Any = "cpu"
                           ) -> tuple[dict[str, Any], Path]:
    """``(state, file)`` of the newest readable checkpoint: ``path``, else (with a warning
    naming ``path``) :func:`previous_path`. Raises :class:`CheckpointError` when neither
    can be read."""
    path = Path(path)
    errors = []
    for p in (path, previous_path(path)):
        try:
            state = load_checkpoint(p, map_location=map_location)
        except CheckpointError as err:
            errors.append(err)
            continue
        if p != path:
            warnings.warn(f"{errors[0]}; resuming from the previous checkpoint {str(p)!r}",
                          RuntimeWarning, stacklevel=2)
        return state, p
    if not previous_path(path).exists():
        raise errors[0]
    raise CheckpointError(f"{errors[0]}; the previous one is unreadable too: {errors[1]}")
