"""A cache for a recipe's stage-1 result (a pretrained model, its features), keyed by every
setting the stage reads.

DDAN's central-domain baseline and episodic's per-domain extractors take longer than the stage
they feed; re-running stage 2 (an ablation, another seed of stage 2) loads them instead. The
file is written atomically (temporary file + ``os.replace``, via
:func:`~dgblocks.engine.save_checkpoint`), so an interrupted run never leaves half a cache, and
its name carries the hash of the settings, so a changed setting never loads a stale result. A
file that cannot be read (truncated, another format, a different key) is reported with a
warning naming it and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dgblocks._checks import DGBlocksError
from dgblocks.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


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
        if not name or "/" in name:
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
