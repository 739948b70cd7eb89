r"""Reverse-gradient cross-entropy (ADIN eq 4, option #1 "RG").

The nuisance classifier's cross-entropy is computed behind a gradient-reversal layer: its
*value* is the ordinary cross-entropy $L_N$, its *gradient* is that of $L_{adv} = -\lambda L_N$.
Minimising it therefore pushes whatever produced the logits to make the nuisance (camera, time,
domain) unpredictable.

The reversal sits on the logits, so every parameter upstream of them, the classifier's
included, receives the reversed gradient. That is ADIN's setting, where the nuisance heads are
re-trained by their own optimiser on the plain cross-entropy. To train a classifier normally
while reversing only the encoder's gradient (DANN), put a
:class:`~dgblocks.layers.GradientReversal` between encoder and classifier and use a plain
cross-entropy instead.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgblocks._checks import (
    Reduction,
    check_device,
    check_features,
    check_finite,
    check_labels,
    check_reduction,
)
from dgblocks.layers.grl import GradientReversal, grad_reverse
from dgblocks.losses._reduction import reduce

__all__ = ["reverse_cross_entropy", "ReverseCrossEntropy"]


def reverse_cross_entropy(logits: Tensor, labels: Tensor, coeff: float | Tensor = 1.0, *,
                          reduction: Reduction = "mean") -> Tensor:
    r"""Cross-entropy whose gradient w.r.t. the logits is reversed and scaled by $\lambda$.

    $$ L_i = -\log \mathrm{softmax}(z_i)_{y_i}, \qquad
       \frac{\partial L}{\partial z} \leftarrow -\lambda\, \frac{\partial L}{\partial z} $$

    Args:
        logits: nuisance-classifier scores $z$.
        labels: nuisance labels $y$ (camera id, time period, domain).
        coeff: $\lambda \ge 0$, a float or a 0-d tensor (e.g. from a
            :class:`~dgblocks.layers.DannSchedule`).
        reduction: ``"mean" | "sum" | "none"``.

    Shape:
        logits: (N, K); labels: (N,); output: () or (N,) for "none".

    Invariants:
        - the value equals the cross-entropy
        - the gradient w.r.t. the logits is -coeff times the cross-entropy's
        - unchanged by adding a constant to each row of logits

    Example:
        >>> z = torch.zeros(2, 4, requires_grad=True)
        >>> loss = reverse_cross_entropy(z, torch.tensor([0, 3]))
        >>> loss
        tensor(1.3863, grad_fn=<MeanBackward0>)
        >>> loss.backward(); z.grad[0]
        tensor([ 0.3750, -0.1250, -0.1250, -0.1250])
    """
    sizes = check_features(logits, "N K", name="logits")
    check_labels(labels, sizes["K"], name="labels", n=sizes["N"], length_from="logits")
    check_device(labels, logits.device, name="labels", origin="logits")
    check_reduction(reduction)
    check_finite(logits, name="logits")
    z = grad_reverse(logits, coeff)
    if z.dtype in (torch.float16, torch.bfloat16):
        z = z.float()  # CE from log_softmax in float32: finite for |logits| ~ 1e4
    loss = F.cross_entropy(z, labels.long(), reduction="none")  # int32 labels too
    return reduce(loss, reduction).to(logits.dtype)


class ReverseCrossEntropy(nn.Module):
    r"""Reverse-gradient cross-entropy; see :func:`dgblocks.functional.reverse_cross_entropy`.

    Holds a :class:`~dgblocks.layers.GradientReversal` (``self.grl``), so the coefficient can be
    constant or follow a schedule whose step is saved in the ``state_dict``; :meth:`step`
    advances it.

    Args:
        coeff: a constant $\lambda$ (default 1 when no schedule is given).
        schedule: a coefficient schedule (e.g. ``DannSchedule(max_steps=...)``).
        reduction: ``"mean" | "sum" | "none"``.

    Shape:
        logits: (N, K); labels: (N,); output: () or (N,).

    Example:
        >>> ReverseCrossEntropy(coeff=0.5)(torch.zeros(3, 2), torch.tensor([0, 1, 1]))
        tensor(0.6931)
    """

    functional_name: ClassVar[str | None] = "reverse_cross_entropy"

    def __init__(self, *, coeff: float | None = None, schedule: nn.Module | None = None,
                 reduction: Reduction = "mean") -> None:
        super().__init__()
        self.grl = GradientReversal(coeff=coeff, schedule=schedule)
        self.reduction = check_reduction(reduction)

    def step(self, n: int = 1) -> None:
        """Advance the coefficient schedule by ``n`` steps."""
        self.grl.step(n)

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Cross-entropy whose gradient is reversed with the current coefficient
        (:func:`reverse_cross_entropy`); the schedule advances only with :meth:`step`.

        Args:
            logits: nuisance-classifier scores, (N, K).
            labels: nuisance labels in ``[0, K)``, (N,).

        Returns:
            The cross-entropy value, () or (N,) for ``reduction="none"``, dtype of ``logits``.
        """
        return reverse_cross_entropy(logits, labels, self.grl.coeff, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
