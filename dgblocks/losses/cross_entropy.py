r"""Identity cross-entropy with label smoothing (DIR-ReID 4.2; the episodic recipe; BNNeck).

The one-hot target is mixed with the uniform distribution, $q = (1 - \epsilon)\,e_y +
\epsilon / K$, which keeps the ID classifier from growing over-confident on the training
identities (Szegedy et al. 2016), the usual choice for ReID identity losses.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from dgblocks._checks import (
    Reduction,
    ValueRangeError,
    check_device,
    check_features,
    check_finite,
    check_int,
    check_labels,
    check_probability,
    check_reduction,
)
from dgblocks.losses._reduction import reduce

__all__ = ["label_smoothing_ce", "smoothed_target_entropy", "LabelSmoothingCE"]


def _check_eps(eps: float) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise ValueRangeError(f"eps: expected a float in [0, 1], got {type(eps).__name__}")
    return float(check_probability(eps, name="eps"))


def label_smoothing_ce(logits: Tensor, labels: Tensor, *, eps: float = 0.1,
                       reduction: Reduction = "mean") -> Tensor:
    r"""Cross-entropy against the label-smoothed target, computed from ``log_softmax``.

    $$ L_i = -\sum_k q_{ik} \log \mathrm{softmax}(z_i)_k
         = -(1 - \epsilon) \log p_{i y_i} - \frac{\epsilon}{K} \sum_k \log p_{ik} $$

    with $q_{ik} = (1 - \epsilon)[k = y_i] + \epsilon / K$ (the same convention as
    ``torch.nn.functional.cross_entropy(..., label_smoothing=eps)``).

    Args:
        logits: identity-classifier scores $z$.
        labels: identity labels $y$.
        eps: smoothing $\epsilon \in [0, 1]$; 0 is the plain cross-entropy.
        reduction: ``"mean" | "sum" | "none"``.

    Shape:
        logits: (N, K); labels: (N,); output: () or (N,) for "none".

    Invariants:
        - equals the cross-entropy when eps = 0
        - at least the entropy of the smoothed target (smoothed_target_entropy), with equality
          when softmax(logits) equals the target
        - unchanged by adding a constant to each row of logits

    Example:
        >>> label_smoothing_ce(torch.zeros(2, 4), torch.tensor([0, 3]))
        tensor(1.3863)
    """
    sizes = check_features(logits, "N K", name="logits")
    check_labels(labels, sizes["K"], name="labels", n=sizes["N"], length_from="logits")
    check_device(labels, logits.device, name="labels", origin="logits")
    check_reduction(reduction)
    eps = _check_eps(eps)
    check_finite(logits, name="logits")
    z = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    logp = z.log_softmax(dim=-1)  # stable: never log(softmax(z))
    nll = -logp.gather(1, labels.long().unsqueeze(1)).squeeze(1)
    uniform = -logp.mean(dim=-1)
    loss = (1.0 - eps) * nll + eps * uniform
    return reduce(loss, reduction).to(logits.dtype)


def smoothed_target_entropy(num_classes: int, eps: float = 0.1) -> float:
    r"""Entropy of the smoothed target: the minimum of :func:`label_smoothing_ce`.

    $$ H(q) = -a \log a - (K - 1)\, b \log b, \qquad a = 1 - \epsilon + \epsilon / K,
       \quad b = \epsilon / K $$

    Args:
        num_classes: $K \ge 1$.
        eps: smoothing $\epsilon \in [0, 1]$.

    Shape:
        output: a Python float.

    Invariants:
        - 0 when eps = 0; log K when eps = 1
        - label_smoothing_ce(logits, labels, eps) >= smoothed_target_entropy(K, eps)

    Example:
        >>> round(smoothed_target_entropy(10, 0.1), 4)
        0.5003
    """
    check_int(num_classes, name="num_classes", minimum=1)
    eps = _check_eps(eps)
    a, b = 1.0 - eps + eps / num_classes, eps / num_classes

    def xlogx(v: float) -> float:
        return v * math.log(v) if v > 0 else 0.0

    return -xlogx(a) - (num_classes - 1) * xlogx(b)


class LabelSmoothingCE(nn.Module):
    r"""Label-smoothed cross-entropy; see :func:`dgblocks.functional.label_smoothing_ce`.

    Args:
        eps: smoothing $\epsilon \in [0, 1]$ (0.1 in DIR-ReID and most ReID baselines).
        reduction: ``"mean" | "sum" | "none"``.

    Shape:
        logits: (N, K); labels: (N,); output: () or (N,).

    Example:
        >>> LabelSmoothingCE(eps=0.1)(torch.tensor([[4.0, 0.0]]), torch.tensor([0]))
        tensor(0.2181)
    """

    functional_name: ClassVar[str | None] = "label_smoothing_ce"

    def __init__(self, *, eps: float = 0.1, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.eps = _check_eps(eps)
        self.reduction = check_reduction(reduction)

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Label-smoothed cross-entropy (:func:`label_smoothing_ce`).

        Args:
            logits: identity scores, (N, K).
            labels: identity labels in ``[0, K)``, (N,).

        Returns:
            () or (N,) for ``reduction="none"``, in the dtype of ``logits``.
        """
        return label_smoothing_ce(logits, labels, eps=self.eps, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}, reduction={self.reduction!r}"
