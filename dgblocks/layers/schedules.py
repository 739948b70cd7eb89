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

from dgblocks._checks import (
    ValueRangeError,
    check_async,
    check_int,
    check_nonnegative,
    check_positive,
    check_probability,
    values_checked,
    values_on_host,
)
from dgblocks._module_checks import check_state_entry

__all__ = ["dann_coeff", "ConstantSchedule", "DannSchedule"]


def _check_value(value: float, *, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueRangeError(f"{name}: expected a finite float, got {value!r}")
    return float(value)


def _dann(t: Tensor, hi: float, lo: float, gamma: float) -> Tensor:
    span = hi - lo
    return 2.0 * span * torch.sigmoid(gamma * t) - span + lo


def dann_coeff(p: float | Tensor, *, hi: float = 1.0, lo: float = 0.0,
               gamma: float = 10.0) -> Tensor:
    r"""The DANN warm-start coefficient at training progress $p \in [0, 1]$.

    $$ \lambda(p) = \frac{2\,(h - l)}{1 + e^{-\gamma p}} - (h - l) + l $$

    DANN (Ganin et al., 2016) uses $\gamma = 10$; some papers call it ``alpha``.

    Args:
        p: training progress ``step / max_steps`` in $[0, 1]$ (a value outside, or NaN, is
            refused: a tensor's values are a value check, see :func:`dgblocks.checks`).
        hi: the value $h$ approached at the end of training.
        lo: the value $l$ at the start.
        gamma: the steepness $\gamma > 0$.

    Shape:
        p: any shape (or a float); output: the shape of p, floating.

    Invariants:
        - equals lo at p = 0
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
    if not isinstance(p, Tensor):
        check_probability(p, name="p")  # a progress beyond 1 was silently clipped before
    elif p.is_complex() or p.dtype == torch.bool:
        raise ValueRangeError(f"p: expected a real tensor of progress, got {p.dtype}")
    elif values_checked() and p.numel() > 0:
        ok = (p >= 0) & (p <= 1)  # False for NaN
        if not values_on_host(p):  # CUDA: a device assertion, no host sync
            check_async(ok, "p: expected values in [0, 1]")
        elif not bool(ok.all()):
            raise ValueRangeError(f"p: expected values in [0, 1], got {p[~ok].flatten()[0].item()}")
    t = torch.as_tensor(p)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    return _dann(t, hi, lo, gamma)


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
        """The current coefficient (no argument).

        Returns:
            A copy of :attr:`value`, a 0-d float32 tensor on the module's device (no host
            sync); the same in training and eval mode.
        """
        return self.value.clone()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        check_state_entry(state_dict, prefix + "value", self.value, minimum=0)
        check_state_entry(state_dict, prefix + "steps", self.steps, minimum=0)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

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
        """The current coefficient (no argument).

        Returns:
            :func:`dann_coeff` at :attr:`progress`, a 0-d float32 tensor on the module's
            device (no host sync); the same in training and eval mode (only :meth:`step`
            advances it).
        """
        return _dann(self.progress, self.hi, self.lo, self.gamma)  # progress is in [0, 1]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        check_state_entry(state_dict, prefix + "steps", self.steps, minimum=0)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"max_steps={self.max_steps}, hi={self.hi:g}, lo={self.lo:g}, gamma={self.gamma:g}"
