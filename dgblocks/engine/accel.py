"""Speed switches a recipe gets from the engine: mixed precision, ``torch.compile``, sync checks.

``--amp bf16`` runs every training step under ``torch.autocast`` (bfloat16 on CUDA and on the
CPU; parameters, optimiser state and the losses' reductions stay float32), ``--compile``
compiles the forward of the modules a recipe hands to ``run.prepare`` (in place: the module,
its ``state_dict`` and checkpoints are unchanged), and ``DGBLOCKS_SYNC_DEBUG_STEP=k`` makes
step ``k`` of every ``run.steps`` loop run under ``torch.cuda.set_sync_debug_mode("error")``
(a CUDA test: any host synchronisation in a recipe's training step raises).

fp16 autocast is not offered: it needs a loss scaler around every ``backward`` of the
recipes' hand-written steps; bfloat16 has float32's range and needs none.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

__all__ = ["AMP_MODES", "autocast", "compile_module", "sync_debug", "sync_debug_step"]

AMP_MODES = ("none", "bf16")


def autocast(device: torch.device | str, amp: str = "none") -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``amp`` on ``device`` (``"none"``: a context that does nothing).

    Example:
        >>> import torch
        >>> with autocast("cpu", "bf16"):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.bfloat16
        >>> with autocast("cpu", "none"):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.float32
    """
    if amp not in AMP_MODES:
        raise ValueError(f"amp: expected one of {', '.join(AMP_MODES)}, got {amp!r}")
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def compile_module(module: nn.Module, *, backend: str = "inductor", **kwargs: Any) -> nn.Module:
    """Compile ``module``'s forward in place (``nn.Module.compile``) and return it.

    The module object stays the same, so optimisers, ``run.register`` and checkpoints see the
    usual parameter names. Only calls of the module itself are compiled: a recipe that calls
    its sub-modules directly runs those eagerly. Double backward through a compiled graph is
    not supported by ``torch.compile``: CDVM's second-order meta step needs
    ``--first-order`` or ``--no-meta`` with ``--compile``.
    """
    module.compile(backend=backend, **kwargs)
    return module


@contextlib.contextmanager
def sync_debug(device: torch.device | str, enabled: bool = True) -> Iterator[None]:
    """Raise on any host synchronisation with ``device`` inside the block (CUDA only; on other
    devices, or with ``enabled=False``, nothing happens)."""
    if not enabled or torch.device(device).type != "cuda":
        yield
        return
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(0)


def sync_debug_step() -> int:
    """The step checked by :func:`sync_debug` in ``run.steps`` (``DGBLOCKS_SYNC_DEBUG_STEP``;
    -1: none)."""
    return int(os.environ.get("DGBLOCKS_SYNC_DEBUG_STEP", "-1") or -1)
