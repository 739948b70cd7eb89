"""Output safety, checked before any training: every output path can be written, and a run
never destroys what an earlier run left in its folder.

A fresh run (no ``--resume``) whose ``--out`` already holds an earlier run's checkpoint,
metrics or results is refused, naming the files: continue it with ``--resume auto``, replace
it with ``--overwrite``, or choose another ``--out``. A folder that is read-only or full is
found by writing (and removing) a small probe file, so the run stops at once with exit status
2 instead of after hours of training.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dgblocks._checks import DGBlocksError
from dgblocks.engine.checkpoint import previous_path

__all__ = ["OutputError", "run_files", "check_writable", "check_outputs"]

_PROBE = 64 * 1024  # bytes written by the probe: a full disk fails on it


class OutputError(DGBlocksError):
    """An output path that cannot be written, or earlier work a run would destroy."""


def run_files(out: Path) -> list[Path]:
    """Every file a run writes beside its results JSON ``out`` (checkpoints, metrics, plots)."""
    ckpt = out.with_suffix(".ckpt.pt")
    return [out, ckpt, previous_path(ckpt), out.with_suffix(".metrics.jsonl")]


def check_writable(folder: Path, *, flag: str) -> None:
    """Create ``folder`` and write, flush and remove a probe file in it; an ``OSError`` (read
    only, no space, a file in the way) raises :class:`OutputError` naming ``flag`` and the
    folder.

    Example:
        >>> check_writable(Path(tempfile.mkdtemp()), flag="--out")
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise OutputError(f"{flag}: expected a folder path, got {type(folder).__name__}")
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".dgblocks-probe-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(b"\0" * _PROBE)
                f.flush()
                os.fsync(f.fileno())
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as err:
        raise OutputError(f"{flag}: cannot write to {str(folder)!r} ({err.strerror or err}); "
                          "choose a writable folder with free space") from err


def check_outputs(out: Path, *, resume: bool, overwrite: bool,
                  stage_cache: Path | None = None) -> None:
    """Refuse, before training, an ``--out`` that cannot be written or whose folder holds an
    earlier run's files (unless ``resume`` continues it or ``overwrite`` replaces it)."""
    if out.is_dir():
        raise OutputError(f"--out: {str(out)!r} is a folder; expected the results JSON file "
                          "(its checkpoints, metrics and plots go beside it)")
    for p in run_files(out)[1:]:
        if p.is_dir():
            raise OutputError(f"--out: {str(p)!r} is a folder where the run writes a file")
    check_writable(out.parent, flag="--out")
    if stage_cache is not None:
        check_writable(stage_cache, flag="--stage-cache")
    earlier = [str(p) for p in run_files(out) if p.exists()]
    if earlier and not resume and not overwrite:
        raise OutputError(f"--out: {str(out.parent)!r} holds an earlier run's files "
                          f"({', '.join(earlier)}); pass --resume auto to continue it, "
                          "--overwrite to replace it, or another --out")
