"""tqdm bars for training steps and evaluation, shown on rank 0 only."""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar(*, total: int, initial: int = 0, desc: str = "", enabled: bool = True,
                 **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr; ``enabled=False`` (other ranks, ``--no-progress``) hides it.

    The environment variable ``TQDM_DISABLE=1`` (as tqdm itself reads it) also hides it, so
    sweeps and CI logs stay readable.

    Example:
        >>> bar = progress_bar(total=3, enabled=False)
        >>> bar.update(1); bar.close()
    """
    if os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes"):
        enabled = False
    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, leave=False, **kwargs)
