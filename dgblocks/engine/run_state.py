"""What a checkpoint holds of a run (registered objects, phases done, sampler position, RNGs,
log length) and how a resumed run gets it back: :class:`RunState`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dgblocks._checks import DGBlocksError
from dgblocks.engine.checkpoint import load_latest_checkpoint, save_checkpoint
from dgblocks.engine.resume import check_resume_config
from dgblocks.engine.seeding import rng_state, set_rng_state

__all__ = ["RunState"]


class _GeneratorState:
    def __init__(self, g: torch.Generator) -> None:
        self.g = g

    def state_dict(self) -> dict[str, Tensor]:
        return {"state": self.g.get_state()}

    def load_state_dict(self, s: dict[str, Tensor]) -> None:
        self.g.set_state(s["state"])


class RunState:
    """The objects a run registers, the phases it finished and the checkpoint it resumes from.

    Args:
        path: the checkpoint file (``<out>.ckpt.pt``).
        given: the settings as given (``{"config": ..., "shared": ...}``): what resume compares.
    """

    def __init__(self, path: Path, given: dict[str, Any]) -> None:
        self.path, self.given = path, given
        self.objects: dict[str, Any] = {}
        self.done_phases: dict[str, int] = {}
        self.ckpt: dict[str, Any] | None = None   # the checkpoint being resumed, until used
        self.carried: dict[str, Any] = {}         # states of objects not registered (yet)

    def open(self, resume: Path, args: Any) -> tuple[dict[str, Any], Path]:
        """Load the newest readable checkpoint at ``resume`` (refused when written with other
        settings, unless ``--resume-changed``)."""
        self.ckpt, path = load_latest_checkpoint(resume)
        check_resume_config(self.ckpt.get("given", {}), self.given, args, path)
        self.carried = dict(self.ckpt["objects"])
        self.done_phases = dict(self.ckpt["done_phases"])
        return self.ckpt, path

    def register(self, **objects: Any) -> None:
        """Objects whose ``state_dict`` a checkpoint holds (see :meth:`Run.register`)."""
        for name, obj in objects.items():
            if isinstance(obj, nn.parallel.DistributedDataParallel):
                obj = obj.module
            if isinstance(obj, torch.Generator):
                obj = _GeneratorState(obj)
            if not (hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict")):
                raise DGBlocksError(f"{name}: expected an object with state_dict/load_state_dict,"
                                    f" got {type(obj).__name__}")
            self.objects[name] = obj
            if self.ckpt is not None and name in self.ckpt["objects"]:
                obj.load_state_dict(self.ckpt["objects"][name])

    def save(self, phase: str, step: int, *, batches: Any, log_lines: int,
             config: dict[str, Any]) -> None:
        """Write the checkpoint: objects, phases, sampler position, RNGs."""
        save_checkpoint(self.path, {
            "phase": phase, "step": step, "done_phases": dict(self.done_phases),
            "objects": self.carried | {n: o.state_dict() for n, o in self.objects.items()},
            "batches": batches.state_dict() if batches is not None else {},
            "rng": rng_state(), "state": {}, "log_lines": log_lines, "config": config,
            "given": self.given})

    def resumes_in(self, phase: str) -> bool:
        """True when the checkpoint being resumed was taken inside ``phase``."""
        return self.ckpt is not None and self.ckpt["phase"] == phase

    def restore(self) -> dict[str, Any] | None:
        """Load the checkpoint into every registered object and the RNGs (once); returns it."""
        ck, self.ckpt = self.ckpt, None
        if ck is not None:
            for name, obj in self.objects.items():
                if name in ck["objects"]:
                    obj.load_state_dict(ck["objects"][name])
            set_rng_state(ck["rng"])
        return ck
