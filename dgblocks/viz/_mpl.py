"""Matplotlib with the non-interactive Agg backend (plots are written as PNG, never shown)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend; a clear error when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - matplotlib is in the viz extra
        raise ImportError("dgblocks.viz needs matplotlib: pip install 'dgblocks[viz]'") from err
    return plt


def save(fig: Any, path: str | Path) -> Path:
    """Save ``fig`` as a PNG at ``path`` (folders created) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return path


def palette(n: int) -> list[Any]:
    """``n`` distinguishable colours (tab10, then tab20, then hsv)."""
    plt = pyplot()
    name = "tab10" if n <= 10 else "tab20" if n <= 20 else "hsv"
    cmap = plt.get_cmap(name)
    return [cmap(i if n <= 20 else i / n) for i in range(n)]
