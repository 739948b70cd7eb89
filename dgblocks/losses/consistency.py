r"""Cross-domain consistency loss (episodic DG re-ID, eq 1).

The same anchor image $x^i_a$ of domain $i$ goes through two frozen extractors pretrained on
domains $j$ and $k$, then through the shared encoder $E$; the two encodings
$v_a^{i\to j}$ and $v_a^{i\to k}$ should coincide.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from dgblocks._checks import (
    Reduction,
    ShapeError,
    check_features,
    check_reduction,
)
from dgblocks.losses._reduction import loss_dtype, reduce

__all__ = ["consistency_loss", "ConsistencyLoss"]


def consistency_loss(v_ij: Tensor, v_ik: Tensor, *, reduction: Reduction = "mean") -> Tensor:
    r"""Euclidean distance between two encodings of the same anchor (not squared).

    $$ L_a = \bigl\| v_a^{i\to j} - v_a^{i\to k} \bigr\|_2, \qquad
       L_{consis} = \mathbb{E}_a\, L_a $$

    The norm has a finite (zero) gradient where the two encodings are equal: the square root
    is only taken of strictly positive squared distances.

    Args:
        v_ij: encodings $E(F_j(x_a))$ of the anchors through the domain-$j$ extractor.
        v_ik: encodings $E(F_k(x_a))$ of the same anchors through the domain-$k$ extractor.
        reduction: ``"mean" | "sum" | "none"`` over the anchors.

    Shape:
        v_ij: (N, D); v_ik: (N, D); output: () or (N,) for "none", dtype of ``v_ij``
        (float32 for half inputs).

    Invariants:
        - non-negative; zero exactly where the two encodings are equal
        - symmetric in its two arguments
        - unchanged by applying the same rotation and translation to both arguments

    Example:
        >>> consistency_loss(torch.tensor([[0., 0.], [1., 1.]]),
        ...                  torch.tensor([[3., 4.], [1., 1.]]), reduction="none")
        tensor([5., 0.])
    """
    sizes = check_features(v_ij, "N D", name="v_ij")
    check_features(v_ik, "N D", name="v_ik", **sizes)
    if v_ik.device != v_ij.device:
        raise ShapeError(f"v_ik: expected device {v_ij.device} (from v_ij), got {v_ik.device}")
    check_reduction(reduction)
    ct = torch.promote_types(v_ij.dtype, v_ik.dtype)
    if ct in (torch.float16, torch.bfloat16):
        ct = torch.float32
    sq = (v_ij.to(ct) - v_ik.to(ct)).pow(2).sum(dim=1)
    zero = sq == 0  # not `sq > 0`: a NaN row must give NaN, not 0
    # sqrt of the non-zero values only (zeros get sqrt(1)): no 0 * inf = NaN gradient
    dist = torch.where(zero, torch.zeros_like(sq),
                       torch.where(zero, torch.ones_like(sq), sq).sqrt())
    return reduce(dist, reduction).to(loss_dtype(v_ij.dtype))  # a distance: float32 for half


class ConsistencyLoss(nn.Module):
    """Cross-domain consistency loss; see :func:`dgblocks.functional.consistency_loss`.

    Args:
        reduction: ``"mean" | "sum" | "none"`` over the anchors.

    Shape:
        v_ij: (N, D); v_ik: (N, D); output: () or (N,).

    Example:
        >>> a, b = torch.tensor([[0., 0.], [1., 1.]]), torch.tensor([[3., 4.], [1., 1.]])
        >>> ConsistencyLoss()(a, b)
        tensor(2.5000)
    """

    functional_name: ClassVar[str | None] = "consistency_loss"

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, v_ij: Tensor, v_ik: Tensor) -> Tensor:
        """Euclidean distance between two encodings of the same anchors
        (:func:`consistency_loss`).

        Args:
            v_ij: encodings through the domain-j extractor, (N, D).
            v_ik: encodings of the same anchors through the domain-k extractor, (N, D).

        Returns:
            () or (N,) for ``reduction="none"``; float32 for fp16/bf16 inputs.
        """
        return consistency_loss(v_ij, v_ik, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
