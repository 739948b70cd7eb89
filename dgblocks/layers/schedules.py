r"""Schedules of the gradient-reversal coefficient: constant, and the DANN warm start.

A schedule is a small module whose ``forward()`` returns the current coefficient as a 0-d tensor
(no host sync) and whose ``step(n)`` advances a step counter. The counter is a buffer: it is
saved in the ``state_dict`` and survives a resume (TLlib's warm-start GRL keeps it in a Python
attribute and restarts the warm-up after a resume).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from dgblocks._checks import ValueRangeError, check_int, check_nonnegative, check_positive

__all__ = ["dann_coeff", "ConstantSchedule", "DannSchedule"]


def _check_value(value: float, *, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueRangeError(f"{name}: expected a finite float, got {value!r}")
    return float(value)


def dann_coeff(p: float | Tensor, *, hi: float = 1.0, lo: float = 0.0,
               gamma: float = 10.0) -> Tensor:
    r"""The DANN warm-start coefficient at training progress $p$ (clipped to $[0, 1]$).

    $$ \lambda(p) = \frac{2\,(h - l)}{1 + e^{-\gamma p}} - (h - l) + l $$

    DANN (Ganin et al., 2016) uses $\gamma = 10$; some papers call it ``alpha``.

    Args:
        p: training progress, ``step / max_steps``; values outside $[0, 1]$ are clipped.
        hi: the value $h$ approached at the end of training.
        lo: the value $l$ at the start.
        gamma: the steepness $\gamma > 0$.

    Shape:
        p: any shape (or a float); output: the shape of p, floating.

    Invariants:
        - equals lo at p <= 0
        - non-decreasing in p when hi >= lo, and within [lo, hi]
        - at p = 1 within 2 (hi - lo) / (1 + e^gamma) of hi

    Example:
        >>> dann_coeff(0.0)
        tensor(0.)
        >>> dann_coeff(torch.tensor([0.1, 0.5, 1.0]))
        tensor([0.4621, 0.9866, 0.9999])
    """
    for value, name in ((hi, "hi"), (lo, "lo"), (gamma, "gamma")):
        _check_value(value, name=name)
    check_positive(gamma, name="gamma")
    if isinstance(p, bool) or not isinstance(p, (int, float, Tensor)):
        raise ValueRangeError(f"p: expected a float or a tensor of progress, got {p!r}")
    t = torch.as_tensor(p)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    t = t.clamp(0.0, 1.0)
    span = hi - lo
    return 2.0 * span * torch.sigmoid(gamma * t) - span + lo


class ConstantSchedule(nn.Module):
    r"""A constant gradient-reversal coefficient, with the same step counter as the others.

    Args:
        value: the coefficient $\lambda \ge 0$.

    Shape:
        output: () float32 on the module's device.

    Example:
        >>> s = ConstantSchedule(value=0.3)
        >>> s.step(); s()
        tensor(0.3000)
        >>> s.steps
        tensor(1)
    """

    functional_name: ClassVar[str | None] = None  # nothing to compute: the value is the block
    value: Tensor
    steps: Tensor

    def __init__(self, *, value: float = 1.0) -> None:
        super().__init__()
        check_nonnegative(_check_value(value, name="value"), name="value")
        self.register_buffer("value", torch.tensor(float(value)))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def step(self, n: int = 1) -> None:
        """Advance the step counter by ``n`` (in place, no host sync)."""
        self.steps.add_(check_int(n, name="n", minimum=0))

    def forward(self) -> Tensor:
        return self.value.clone()

    def extra_repr(self) -> str:
        return f"value={float(self.value):g}"


class DannSchedule(nn.Module):
    r"""The DANN warm start: the coefficient grows from ``lo`` to ``hi`` over ``max_steps``.

    ``forward()`` returns :func:`dgblocks.functional.dann_coeff` at the progress
    ``p = min(steps / max_steps, 1)``; :meth:`step` advances ``steps``, a buffer saved in the
    ``state_dict``, so a resumed run continues the warm-up where it stopped.

    Args:
        max_steps: number of :meth:`step` calls after which ``p = 1`` (total training steps).
        hi: the final coefficient.
        lo: the initial coefficient, ``0 <= lo <= hi``.
        gamma: the steepness (DANN: 10; also written alpha).

    Shape:
        output: () float32 on the module's device.

    Example:
        >>> s = DannSchedule(max_steps=100)
        >>> s()
        tensor(0.)
        >>> s.step(50); s()
        tensor(0.9866)
    """

    functional_name: ClassVar[str | None] = "dann_coeff"
    steps: Tensor

    def __init__(self, *, max_steps: int, hi: float = 1.0, lo: float = 0.0,
                 gamma: float = 10.0) -> None:
        super().__init__()
        self.max_steps = check_int(max_steps, name="max_steps", minimum=1)
        hi, lo, gamma = (_check_value(v, name=n) for v, n in ((hi, "hi"), (lo, "lo"),
                                                              (gamma, "gamma")))
        check_nonnegative(lo, name="lo")
        if hi < lo:
            raise ValueRangeError(f"hi: expected a value >= lo={lo!r}, got {hi!r}")
        self.hi, self.lo = float(hi), float(lo)
        self.gamma = float(check_positive(gamma, name="gamma"))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def step(self, n: int = 1) -> None:
        """Advance the step counter by ``n`` (in place, no host sync)."""
        self.steps.add_(check_int(n, name="n", minimum=0))

    @property
    def progress(self) -> Tensor:
        """Training progress ``p = min(steps / max_steps, 1)``, a 0-d float32 tensor."""
        return (self.steps.to(torch.float32) / self.max_steps).clamp(max=1.0)

    def forward(self) -> Tensor:
        return dann_coeff(self.progress, hi=self.hi, lo=self.lo, gamma=self.gamma)

    def extra_repr(self) -> str:
        return f"max_steps={self.max_steps}, hi={self.hi:g}, lo={self.lo:g}, gamma={self.gamma:g}"
