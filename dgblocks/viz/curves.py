"""CMC curves and training curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dgblocks._checks import ShapeError
from dgblocks.viz._mpl import palette, pyplot, save

__all__ = ["plot_cmc", "plot_training_curves"]


def plot_cmc(curves: Mapping[str, tuple[Any, Any]], path: str | Path, *,
             title: str = "CMC") -> Path:
    """One CMC curve per target: ``{name: (ranks, matching rate in %)}`` (as returned by
    ``dgblocks.eval.cmc_curve``).

    Example:
        >>> import tempfile, os
        >>> p = plot_cmc({"a": ([1, 2, 3], [50.0, 70.0, 90.0])},
        ...              os.path.join(tempfile.mkdtemp(), "cmc.png"))
        >>> p.exists()
        True
    """
    if not curves:
        raise ShapeError("curves: expected at least one (ranks, cmc) curve, got none")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for colour, (name, (ranks, cmc)) in zip(palette(len(curves)), curves.items()):
        ranks, cmc = np.asarray(ranks), np.asarray(cmc)
        if ranks.shape != cmc.shape:
            raise ShapeError(f"curves[{name!r}]: expected ranks and cmc of one shape, "
                             f"got {ranks.shape} and {cmc.shape}")
        ax.plot(ranks, cmc, marker=".", color=colour, label=name)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return save(fig, path)


def plot_training_curves(records: Sequence[Mapping[str, Any]], path: str | Path, *,
                         keys: Sequence[str] | None = None) -> Path:
    """One panel per logged metric against the step, one line per phase (from the JSONL
    metrics of a run, ``dgblocks.engine.read_jsonl``).

    Example:
        >>> import tempfile, os
        >>> recs = [{"step": s, "phase": "train", "loss": 1.0 / (s + 1)} for s in range(5)]
        >>> plot_training_curves(recs, os.path.join(tempfile.mkdtemp(), "c.png")).exists()
        True
    """
    if keys is None:
        keys = sorted({k for r in records for k, v in r.items()
                       if k not in ("step", "phase") and isinstance(v, (int, float))})
    if not keys:
        raise ShapeError("records: expected at least one numeric metric, got none")
    plt = pyplot()
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    phases = list(dict.fromkeys(r.get("phase", "") for r in records))
    colours = dict(zip(phases, palette(len(phases))))
    for ax, key in zip(axes.flat, keys):
        for phase in phases:
            pts = [(r["step"], r[key]) for r in records
                   if r.get("phase", "") == phase and isinstance(r.get(key), (int, float))]
            if pts:
                s, v = zip(*pts)
                ax.plot(s, v, color=colours[phase], label=phase or None)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(phases) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    return save(fig, path)
