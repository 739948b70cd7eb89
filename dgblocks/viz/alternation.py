"""ADIN's alternation log as a plot: validation error, thresholds, phases as bands."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from dgblocks.viz._mpl import pyplot, save

if TYPE_CHECKING:
    from dgblocks.layers.alternation import AlternatingSchedule

__all__ = ["plot_alternation"]


def plot_alternation(schedule: AlternatingSchedule, path: str | Path, *, end: int | None = None,
                     title: str = "ADIN alternation") -> Path:
    """Validation error over steps, the two thresholds, and the phases as shaded bands.

    Reads :attr:`~dgblocks.layers.alternation.AlternatingSchedule.checks` and
    :meth:`~dgblocks.layers.alternation.AlternatingSchedule.segments`; writes a PNG at ``path``.
    """
    plt = pyplot()
    end = end if end is not None else max([c["step"] for c in schedule.checks] + [1])
    fig, ax = plt.subplots(figsize=(7, 3.2))
    colours = {"adversarial": "tab:red", "identity": "tab:blue"}
    for a, b, phase in schedule.segments(end):
        ax.axvspan(a, b, color=colours[phase], alpha=0.12, lw=0)
    if schedule.checks:
        ax.plot([c["step"] for c in schedule.checks], [c["error"] for c in schedule.checks],
                "k.-", lw=1, label="identity validation error")
    checks = [c for c in schedule.checks if math.isfinite(c.get("i_target", 0.0))]
    if checks:
        steps = [c["step"] for c in checks]
        for key, colour in (("i_trigger", "tab:red"), ("i_target", "tab:blue")):
            ax.step(steps, [c.get(key, getattr(schedule, key)) for c in checks], where="pre",
                    color=colour, ls="--", lw=1, label=key)
    for phase, c in colours.items():
        ax.fill_between([], [], color=c, alpha=0.12, label=f"{phase} phase")
    ax.set_xlabel("step of the alternation")
    ax.set_ylabel("1 - R1 (held-out ids)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best")
    return save(fig, path)
