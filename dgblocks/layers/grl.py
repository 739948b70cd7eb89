r"""Gradient reversal (DANN; CDVM eq 3; ADIN option 1) and its coefficient schedule.

The gradient-reversal layer is the identity in the forward pass and multiplies the incoming
gradient by $-\lambda$ in the backward pass, so that a feature extractor placed before it
*maximises* the loss that a classifier placed after it minimises. $\lambda$ is constant or
follows the DANN warm start, which grows it from ``lo`` to ``hi`` over training.

Schedules keep their step counter in a buffer: it is saved in the ``state_dict`` and survives a
resume (TLlib's warm-start GRL keeps it in a Python attribute and restarts the warm-up).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import ClassVar

import torch
from torch import Tensor, nn

from dgblocks._checks import ShapeError, ValueRangeError, check_finite, check_nonnegative
from dgblocks.layers.schedules import ConstantSchedule

__all__ = ["grad_reverse", "GradientReversal", "unrolled_reversals"]

# Stack of active unrolled_reversals() recorders (innermost last).
_RECORDERS: list[list[tuple[Tensor, float | Tensor]]] = []


@contextlib.contextmanager
def unrolled_reversals() -> Iterator[list[tuple[Tensor, float | Tensor]]]:
    r"""Inside this context :func:`grad_reverse` is a plain identity that records its output.

    Yields the list of ``(output, coeff)`` pairs, one per reversal evaluated inside. A caller
    that differentiates a gradient (second-order meta-learning) needs it: autograd applies a
    gradient-reversal layer's pseudo-derivative $-\lambda$ on every path through it, also on
    the paths by which the *forward value* enters the first gradient, so the derivative of a
    reversed gradient comes out multiplied by $-\lambda$ once too often. With the reversal
    unrolled, the reversed gradient is assembled exactly as
    $g = \nabla_\theta L + J_h^\top\,(-(1+\lambda)\,\nabla_h L)$ at each recorded output $h$
    (see :func:`dgblocks.meta.meta_objective`), and autograd differentiates it correctly.

    Example:
        >>> x = torch.ones(2, requires_grad=True)
        >>> with unrolled_reversals() as rec:
        ...     y = grad_reverse(x, 0.5)
        >>> len(rec), torch.autograd.grad(y.sum(), x)[0]  # identity inside the context
        (1, tensor([1., 1.]))
    """
    rec: list[tuple[Tensor, float | Tensor]] = []
    _RECORDERS.append(rec)
    try:
        yield rec
    finally:
        _RECORDERS.remove(rec)


def _check_coeff(coeff: float | Tensor, *, name: str = "coeff") -> None:
    if isinstance(coeff, Tensor):
        if coeff.dim() != 0:
            raise ShapeError(f"{name}: expected a scalar tensor of shape (), got"
                             f" {tuple(coeff.shape)}")
        return  # a tensor value is not inspected: that would cost a host sync per step
    if isinstance(coeff, bool) or not isinstance(coeff, (int, float)):
        raise ValueRangeError(f"{name}: expected a float or a 0-d tensor,"
                              f" got {type(coeff).__name__}")
    if not math.isfinite(coeff):
        raise ValueRangeError(f"{name}: expected a finite value >= 0, got {coeff!r}")
    check_nonnegative(coeff, name=name)


class _GradReverse(torch.autograd.Function):
    # setup_context + generate_vmap_rule make it work under torch.func (CDVM meta-learning);
    # the backward is itself differentiable, so second-order gradients flow through it.
    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, coeff: float | Tensor) -> Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[override]
        _, coeff = inputs
        if isinstance(coeff, Tensor):
            ctx.save_for_backward(coeff)
            ctx.coeff = None
        else:
            ctx.coeff = float(coeff)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        coeff = ctx.saved_tensors[0].to(grad.dtype) if ctx.coeff is None else ctx.coeff
        return grad * -coeff, None


def grad_reverse(x: Tensor, coeff: float | Tensor = 1.0) -> Tensor:
    r"""Identity in the forward pass; multiplies the gradient by $-\lambda$ in the backward pass.

    $$ R_\lambda(x) = x, \qquad \frac{\partial R_\lambda}{\partial x} = -\lambda I $$

    Args:
        x: any tensor (features before a domain or nuisance classifier).
        coeff: $\lambda \ge 0$, a float or a 0-d tensor (e.g. from a schedule; a tensor is not
            inspected, so no host sync happens).

    Shape:
        x: any shape; output: the shape of x.

    Invariants:
        - the forward pass is the identity
        - the gradient is exactly -coeff times the upstream gradient
        - coeff = 0 blocks the gradient

    Example:
        >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> y = grad_reverse(x, 0.5)
        >>> y.sum().backward()
        >>> x.grad
        tensor([-0.5000, -0.5000])
    """
    if not isinstance(x, Tensor):
        raise ShapeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    _check_coeff(coeff)
    if isinstance(coeff, Tensor) and coeff.device not in (x.device, torch.device("cpu")):
        raise ShapeError(f"coeff: expected device {x.device} (from x) or the CPU, got"
                         f" {coeff.device}")
    check_finite(x, name="x")  # an identity, but dgblocks.checks(nan=True) asks for NaN here
    if _RECORDERS:  # unrolled_reversals(): identity, recorded for the caller
        out = x.view_as(x)
        _RECORDERS[-1].append((out, coeff))
        return out
    return _GradReverse.apply(x, coeff)


class GradientReversal(nn.Module):
    r"""Gradient-reversal layer; see :func:`dgblocks.functional.grad_reverse`.

    The coefficient is either constant (``coeff``) or follows a ``schedule``
    (:class:`ConstantSchedule`, :class:`DannSchedule`, or any module with ``step()`` whose
    ``forward()`` returns a 0-d tensor). The schedule advances when :meth:`step` is called, once
    per optimiser step, by the training loop. With ``auto_step=True`` it instead advances after
    every forward pass in training mode (convenient when the layer runs exactly once per step).

    Args:
        coeff: a constant $\lambda \ge 0$ (default 1 when no schedule is given).
        schedule: a schedule module; exclusive with ``coeff``.
        auto_step: advance the schedule on each training-mode forward.

    Shape:
        x: any shape; output: the shape of x.

    Example:
        >>> from dgblocks.layers import DannSchedule
        >>> grl = GradientReversal(schedule=DannSchedule(max_steps=10))
        >>> x = torch.ones(2, 3, requires_grad=True)
        >>> grl.step(5); grl(x).sum().backward()
        >>> x.grad[0]
        tensor([-0.9866, -0.9866, -0.9866])
    """

    functional_name: ClassVar[str | None] = "grad_reverse"

    def __init__(self, *, coeff: float | None = None, schedule: nn.Module | None = None,
                 auto_step: bool = False) -> None:
        super().__init__()
        if schedule is not None and coeff is not None:
            raise ValueRangeError("schedule: expected either coeff or schedule, got both")
        if schedule is None:
            coeff = 1.0 if coeff is None else coeff
            if isinstance(coeff, Tensor):
                raise ValueRangeError("coeff: expected a float, got a tensor")
            _check_coeff(coeff)
            schedule = ConstantSchedule(value=float(coeff))
        elif not (isinstance(schedule, nn.Module) and callable(getattr(schedule, "step", None))):
            raise ValueRangeError("schedule: expected an nn.Module with a step() method,"
                                  f" got {type(schedule).__name__}")
        self.schedule = schedule
        self.auto_step = bool(auto_step)

    @property
    def coeff(self) -> Tensor:
        """The current coefficient (0-d tensor)."""
        return self.schedule()

    def step(self, n: int = 1) -> None:
        """Advance the schedule by ``n`` steps."""
        self.schedule.step(n)

    def forward(self, x: Tensor) -> Tensor:
        """Identity on ``x``; its gradient is multiplied by minus the current coefficient
        (:func:`grad_reverse`).

        Args:
            x: any tensor, e.g. features before a domain classifier.

        Returns:
            ``x`` itself (same shape, dtype and values), in training and eval mode; with
            ``auto_step=True`` a training-mode call also advances the schedule by one step.
        """
        out = grad_reverse(x, self.schedule())
        if self.auto_step and self.training:
            self.schedule.step()
        return out

    def extra_repr(self) -> str:
        return f"auto_step={self.auto_step}"
