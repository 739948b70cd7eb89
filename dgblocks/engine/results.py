"""The results JSON of a run: config, commit, seeds, environment and metrics per target.

Its ``summary`` (average and worst target) is :func:`dgblocks.eval.summarize`.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from dgblocks._checks import DGBlocksError
from dgblocks.engine.checkpoint import _fsync_dir

__all__ = ["git_commit", "environment", "write_json", "jsonable"]


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The current commit hash (with ``-dirty`` when the tree has changes), or ``None``."""
    cwd = str(cwd or Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=cwd, timeout=10).stdout.strip()
        if not sha:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, cwd=cwd, timeout=10).stdout
        return sha + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    """Versions, device and threads: enough to judge whether two results compare."""
    return {"python": platform.python_version(), "torch": torch.__version__,
            "machine": platform.machine(), "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def jsonable(value: Any, *, where: str = "payload") -> Any:
    """``value`` as strict JSON: tuples as lists, paths as strings, tensors and numpy values
    as numbers or lists, NaN and infinities as ``null``; anything else raises a
    :class:`~dgblocks.DGBlocksError` naming where it is (never a silent ``str()``).

    Example:
        >>> jsonable({"a": (1, float("nan")), "b": Path("x")})
        {'a': [1, None], 'b': 'x'}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, where=f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, torch.Tensor) or type(value).__module__ == "numpy":
        return jsonable(value.tolist(), where=where)
    raise DGBlocksError(f"{where}: expected a JSON value, got {type(value).__name__}")


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented strict JSON (:func:`jsonable`), atomically and durably:
    temporary file, fsync, rename, fsync of the folder; a failed write leaves no temporary
    file behind."""
    if not isinstance(payload, dict):
        raise DGBlocksError(f"payload: expected a dict, got {type(payload).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise DGBlocksError(f"path: expected a file path, got {type(path).__name__}")
    path = Path(path)
    text = json.dumps(jsonable(payload), indent=2, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path
