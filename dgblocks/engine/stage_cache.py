"""A cache for a method's earlier stages (a pretrained model, its features), keyed by every
setting the stage reads: :func:`stage_cache` builds the one key every stage uses.

DDAN's central-domain baseline and episodic's per-domain extractors take longer than the stage
they feed; re-running the last stage (an ablation, another variant) loads them instead. The
file is written atomically (temporary file + ``os.replace``, via
:func:`~dgblocks.engine.save_checkpoint`), so an interrupted run never leaves half a cache, and
its name carries the hash of the settings, so a changed setting never loads a stale result. A
file that cannot be read (truncated, another format, a different key) is reported with a
warning naming it and recomputed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dgblocks._checks import DGBlocksError
from dgblocks.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["StageCache", "settings_key", "stage_key", "stage_cache"]


def settings_key(settings: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of ``settings`` as sorted JSON (tuples become lists;
    other values are written with ``str``).

    Example:
        >>> settings_key({"steps": 4, "lr": 1e-3}) == settings_key({"lr": 1e-3, "steps": 4})
        True
        >>> settings_key({"steps": 4}) == settings_key({"steps": 5})
        False
    """
    if not isinstance(settings, Mapping):
        raise DGBlocksError(f"settings: expected a mapping, got {type(settings).__name__}")
    text = json.dumps(dict(settings), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class StageCache:
    """One cached stage result: ``folder / f"{name}-{settings_key(settings)}.pt"``.

    Args:
        folder: where the cache files live (created on the first save).
        name: the file-name prefix (``"stage1"``, ``"F0"``, ...).
        settings: every setting the stage reads (data, seed, model, optimiser, steps); a
            change in any of them gives another file.

    Example:
        >>> import tempfile
        >>> cache = StageCache(tempfile.mkdtemp(), "stage1", {"steps": 4})
        >>> cache.load() is None
        True
        >>> _ = cache.save({"w": torch.ones(2)})
        >>> cache.load()["w"]
        tensor([1., 1.])
    """

    def __init__(self, folder: str | Path, name: str, settings: Mapping[str, Any]) -> None:
        if not isinstance(name, str) or not name or "/" in name:
            raise DGBlocksError(f"name: expected a non-empty file-name prefix, got {name!r}")
        self.key = settings_key(settings)
        self.settings = json.dumps(dict(settings), sort_keys=True, default=str)
        self.path = Path(folder) / f"{name}-{self.key}.pt"

    def load(self, *, map_location: Any = "cpu") -> dict[str, Any] | None:
        """The cached payload, or ``None`` when there is none or it cannot be read (warned)."""
        if not self.path.exists():
            return None
        try:
            state = load_checkpoint(self.path, map_location=map_location)
            if state.get("key") != self.key or not isinstance(state.get("payload"), dict):
                raise CheckpointError("written with other settings or in another format")
        except CheckpointError as err:
            warnings.warn(f"stage cache {str(self.path)!r} is unreadable ({err}); recomputing",
                          RuntimeWarning, stacklevel=2)
            return None
        return state["payload"]

    def save(self, payload: dict[str, Any]) -> Path:
        """Write ``payload`` (tensors, state dicts, lists, numbers, strings) atomically."""
        if not isinstance(payload, dict):
            raise DGBlocksError(f"payload: expected a dict, got {type(payload).__name__}")
        return save_checkpoint(self.path, {"key": self.key, "settings": self.settings,
                                           "payload": payload}, keep_previous=False)

    def __repr__(self) -> str:
        return f"StageCache({str(self.path)!r})"


def stage_key(run: Any, method: Any, stage: Any) -> dict[str, Any]:
    """Everything that decides what ``stage`` of ``method`` produces: the method and
    stage, the data (flags, image size, the training set's size and domains), the config
    fields the stage reads (``stage.settings``; all when ``None``), the seed, and how the run
    computes (device type, ``--amp``, ``--compile``, ``--threads``, ``--deterministic``,
    world size): a CPU float32 stage is never reused by a CUDA bf16 run."""
    a, cfg, bench = run.args, method.cfg, run.bench
    fields = stage.settings if stage.settings is not None else [
        f.name for f in dataclasses.fields(cfg)]
    data = stage.data if stage.data is not None else bench.train
    return {"method": type(method).__qualname__, "stage": stage.name,
            "steps": stage.steps, "sampler": stage.sampler, "batch_size": stage.batch_size,
            "num_instances": stage.num_instances,
            "data": {"data": a.data, "data_root": a.data_root, "protocol": a.protocol,
                     "smoke": a.smoke, "image_size": getattr(run, "image_size", None),
                     "benchmark": bench.name, "domains": list(bench.domain_names),
                     "images": len(data), "ids": bench.num_ids},
            "settings": {f: getattr(cfg, f) for f in fields},
            "run": {"seed": a.seed, "device": run.device.type, "amp": a.amp,
                    "compile": a.compile and a.compile_backend, "threads": a.threads,
                    "deterministic": a.deterministic, "world_size": run.dist.world_size}}


def stage_cache(run: Any, method: Any, stage: Any) -> StageCache:
    """The cache of ``stage`` of ``method``: ``--stage-cache`` (default: the folder
    ``stage_cache`` beside ``--out``), keyed by :func:`stage_key`."""
    folder = Path(run.args.stage_cache) if run.args.stage_cache else run.out.parent / "stage_cache"
    return StageCache(folder, f"{type(method).__name__.lower()}-{stage.name}",
                      stage_key(run, method, stage))
