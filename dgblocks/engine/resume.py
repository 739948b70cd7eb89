"""Guards around a run: resume refuses a checkpoint written with other settings, and a user
mistake on the command line ends in one line (status 2) instead of a traceback."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

from dgblocks._checks import DGBlocksError
from dgblocks.engine.checkpoint import CheckpointError

__all__ = ["ResumeError", "config_changes", "check_resume_config", "install_error_handler"]

# shared flags that change where or how fast a run goes, not what it computes
UNCOMPARED = frozenset({"out", "resume", "resume_changed", "device", "config", "threads",
                        "ckpt_every", "log_every", "plots", "eval_batch_size", "workers",
                        "check_data", "deterministic", "compile", "compile_backend",
                         "stage_cache", "overwrite",
                         "source_val_every", "curve_targets"})


class ResumeError(DGBlocksError):
    """``--resume`` of a checkpoint written with other settings (names the flags)."""


def config_changes(saved: dict[str, Any], current: dict[str, Any], *,
                   skip: frozenset[str] = frozenset()) -> list[str]:
    """``"--flag saved -> current"`` for every key whose value differs (keys only in one of
    them are ignored: an older checkpoint, a newer flag).

    Example:
        >>> config_changes({"seed": 0, "steps": 8}, {"seed": 1, "steps": 8})
        ['--seed 0 -> 1']
    """
    return [f"--{k.replace('_', '-')} {saved[k]!r} -> {current[k]!r}"
            for k in sorted(saved.keys() & current.keys() - skip) if saved[k] != current[k]]


def check_resume_config(saved: dict[str, Any], given: dict[str, Any], args: Any,
                        path: str | Path) -> None:
    """Raise :class:`ResumeError` when the settings ``given`` now (``{"config": ...,
    "shared": ...}`` as parsed) differ from those ``saved`` in the checkpoint; with
    ``--resume-changed``, warn and continue."""
    changes = config_changes(saved.get("config", {}), given["config"])
    changes += config_changes(saved.get("shared", {}), given["shared"], skip=UNCOMPARED)
    if not changes:
        return
    msg = (f"--resume: checkpoint {str(path)!r} was written with other settings: "
           f"{', '.join(changes)}")
    if not getattr(args, "resume_changed", False):
        raise ResumeError(f"{msg}; rerun with the saved values, or pass --resume-changed to "
                          "continue with the new ones")
    warnings.warn(f"{msg}; continuing with the new ones (--resume-changed)", RuntimeWarning,
                  stacklevel=2)


def install_error_handler(name: str) -> None:
    """From the command line: a :class:`~dgblocks.DGBlocksError` (a bad flag, config value,
    dataset or checkpoint) prints ``<name>: error: <message>`` and exits with status 2;
    other exceptions (bugs) keep their traceback. ``DGBLOCKS_TRACEBACK=1`` keeps them all."""
    previous = sys.excepthook

    def hook(tp: type[BaseException], value: BaseException, tb: Any) -> None:
        if issubclass(tp, (DGBlocksError, CheckpointError)) and not os.environ.get(
                "DGBLOCKS_TRACEBACK"):
            sys.stdout.flush()
            sys.stderr.write(f"{name}: error: {value}\n")
            sys.stderr.flush()
            os._exit(2)
        previous(tp, value, tb)

    sys.excepthook = hook
