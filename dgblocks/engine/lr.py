"""Learning-rate factors shared by every method: linear warm-up, then cosine, step or constant."""

from __future__ import annotations

import math
from collections.abc import Sequence

from dgblocks._checks import DGBlocksError, check_int

__all__ = ["SCHEDULES", "warmup_cosine", "lr_factor"]

SCHEDULES = ("cosine", "step", "constant")


def warmup_cosine(step: int, *, total: int, warmup: float) -> float:
    """LR factor: linear warm-up over ``warmup * total`` steps, then cosine decay to 0.

    ``factor(s) = (s + 1) / w`` for ``s < w = max(1, int(warmup * total))``, then
    ``0.5 * (1 + cos(pi * (s - w) / max(1, total - w)))``. Use with
    ``torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total=T, warmup=0.1))``.

    Example:
        >>> [round(warmup_cosine(s, total=10, warmup=0.2), 3) for s in (0, 1, 2, 6, 10)]
        [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    check_int(step, name="step", minimum=0)
    check_int(total, name="total", minimum=0)
    _fraction(warmup, "warmup")
    w = max(1, int(warmup * total))
    if step < w:
        return (step + 1) / w
    return 0.5 * (1 + math.cos(math.pi * min(step - w, total - w) / max(1, total - w)))


def _fraction(v: float, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
        raise DGBlocksError(f"{name}: expected a fraction in [0, 1], got {v!r}")
    return float(v)


def lr_factor(step: int, *, total: int, schedule: str = "cosine", warmup: float = 0.1,
              milestones: Sequence[float] = (2 / 3,), gamma: float = 0.1) -> float:
    r"""The factor applied to the base learning rate at ``step`` of a ``total``-step run.

    - ``cosine``: :func:`warmup_cosine` (linear warm-up over ``warmup * total`` steps, then
      cosine to 0; at least one warm-up step);
    - ``step``: linear warm-up over ``int(warmup * total)`` steps (none when 0), then
      $\gamma^{m(s)}$ with $m(s)$ the number of milestones (fractions of ``total``) passed:
      $s \ge \lfloor f \cdot total \rfloor$ (the papers' "x0.1 every 40 of 100 epochs" is
      ``milestones=(0.4, 0.8)``);
    - ``constant``: linear warm-up over ``int(warmup * total)`` steps (none when 0), then 1.

    Args:
        step: the optimiser steps taken so far (``LambdaLR``'s epoch counter).
        total: the run's length in steps.
        schedule: ``"cosine" | "step" | "constant"``.
        warmup: warm-up fraction in [0, 1].
        milestones: ``step`` decay points as fractions of ``total``, increasing.
        gamma: ``step`` decay factor in (0, 1].

    Example:
        >>> [lr_factor(s, total=9, schedule="step", warmup=0.0) for s in (0, 5, 6)]
        [1.0, 1.0, 0.1]
        >>> [lr_factor(s, total=10, schedule="constant", warmup=0.2) for s in (0, 1, 5)]
        [0.5, 1.0, 1.0]
    """
    check_int(step, name="step", minimum=0)
    check_int(total, name="total", minimum=0)
    if schedule not in SCHEDULES:
        raise DGBlocksError(f"schedule: expected one of {SCHEDULES}, got {schedule!r}")
    _fraction(warmup, "warmup")
    if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
        raise DGBlocksError(f"milestones: expected fractions of the run, got {milestones!r}")
    milestones = [_fraction(m, "milestones") for m in milestones]
    if milestones != sorted(milestones):
        raise DGBlocksError(f"milestones: expected increasing fractions, got {milestones}")
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0.0 < gamma <= 1.0:
        raise DGBlocksError(f"gamma: expected a factor in (0, 1], got {gamma!r}")
    if schedule == "cosine":
        return warmup_cosine(step, total=total, warmup=warmup)
    w = int(warmup * total)
    if step < w:
        return (step + 1) / w
    if schedule == "constant":
        return 1.0
    passed = sum(step >= int(m * total) for m in milestones)
    return gamma ** passed
