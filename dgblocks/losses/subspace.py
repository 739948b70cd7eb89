r"""Subspace attribute constraints of CDVM (eq 10-11): diversity $L_v$ and consistency $L_c$.

A hyper-network predicts, for every sample $i$, one importance weight per channel subspace,
$\mathcal{W}_i = (w_{i1}, \dots, w_{iV})$ (``W`` of shape (B, V), see ``SubspaceHypernet``).

- $L_v$ ("per-identity local hierarchy") acts *within* a sample: the V weights of one
  pedestrian should differ from each other by at least $m_1$. $w_m$ is the scalar weight of
  subspace $m$ of that sample, so $\|w_m - w_n\|_2 = |w_m - w_n|$.
- $L_c$ ("cross-domain global consistency") acts *across* samples: the weight vectors of any
  two pedestrians of the batch should lie within $m_2$ of each other.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from dgblocks._checks import (
    Reduction,
    check_device,
    check_features,
    check_labels,
    check_nonnegative,
    check_reduction,
)
from dgblocks.distances import euclidean_distance
from dgblocks.losses._reduction import attached_zero, loss_dtype, reduce

__all__ = ["subspace_diversity", "subspace_consistency", "SubspaceDiversity",
           "SubspaceConsistency"]


def _compute(W: Tensor) -> Tensor:
    return W.float() if W.dtype in (torch.float16, torch.bfloat16) else W


def subspace_diversity(W: Tensor, *, m1: float = 0.1, reduction: Reduction = "mean") -> Tensor:
    r"""Diversity of the subspace weights within each sample (CDVM eq 10, $L_v$).

    $$ L_{v,i} = \frac{1}{V(V-1)} \sum_{m=1}^{V} \sum_{n \ne m} \bigl[m_1 - |w_{im} - w_{in}|
       \bigr]_+^2 $$

    ``"mean"`` averages $L_{v,i}$ over the batch. ``V = 1`` (no pair of subspaces) or an empty
    batch gives a graph-attached zero.

    Args:
        W: per-sample subspace weights from the hyper-network.
        m1: margin $m_1 \ge 0$ (CDVM: 0.1).
        reduction: ``"mean" | "sum" | "none"`` over the batch.

    Shape:
        W: (B, V); output: () or (B,) for "none", dtype of ``W``.

    Invariants:
        - in [0, m1^2]
        - zero when the weights of every sample are pairwise at least m1 apart
        - unchanged by adding a constant to all weights of a sample
        - unchanged by permuting the subspaces

    Example:
        >>> subspace_diversity(torch.tensor([[0.0, 0.5, 1.0], [0.2, 0.2, 0.25]]),
        ...                    reduction="none")
        tensor([0.0000, 0.0050])
    """
    b, v = check_features(W, "B V", name="W").values()
    check_nonnegative(m1, name="m1")
    check_reduction(reduction)
    if v < 2 or b == 0:
        return W.sum(dim=1) * 0 if reduction == "none" else attached_zero(W)
    w = _compute(W)
    gap = (w[:, :, None] - w[:, None, :]).abs()  # (B, V, V); abs'(0) = 0: finite gradient
    hinge = (m1 - gap).clamp_min(0).pow(2)
    off = ~torch.eye(v, dtype=torch.bool, device=W.device)
    per_sample = (hinge * off).sum(dim=(1, 2)) / (v * (v - 1))
    return reduce(per_sample, reduction).to(W.dtype)


def subspace_consistency(W: Tensor, labels: Tensor | None = None, *, m2: float = 0.1,
                         reduction: Reduction = "mean") -> Tensor:
    r"""Consistency of the subspace weights across samples (CDVM eq 10, $L_c$).

    $$ L_{c,i} = \frac{1}{|P_i|} \sum_{j \in P_i} \bigl[\|\mathcal{W}_i - \mathcal{W}_j\|_2 -
       m_2\bigr]_+^2, \qquad P_i = \{ j \ne i \} $$

    so that ``"mean"`` is the paper's $\frac{1}{B(B-1)}\sum_i\sum_{j\ne i}$. The paper pairs
    every two pedestrians of the batch ("consistency across all pedestrians"); passing
    ``labels`` restricts $P_i$ to the samples of the same identity (a per-identity variant).
    Samples without a partner are excluded: 0 in ``"none"``, left out of ``"mean"``. ``B = 1``
    or no pair at all gives a graph-attached zero.

    Args:
        W: per-sample subspace weights from the hyper-network.
        labels: optional identity labels restricting the pairs to one identity.
        m2: margin $m_2 \ge 0$ (CDVM: 0.1).
        reduction: ``"mean"`` (over samples with a partner) | ``"sum"`` | ``"none"``.

    Shape:
        W: (B, V); labels: (B,); output: () or (B,) for "none", dtype of ``W``.

    Invariants:
        - non-negative
        - zero when all weight vectors lie within m2 of each other
        - unchanged by adding the same vector to every row of W
        - unchanged by permuting the samples (with their labels) or the subspaces

    Example:
        >>> W = torch.tensor([[0.0, 0.0], [0.3, 0.4], [0.0, 0.05]])
        >>> subspace_consistency(W, reduction="none")
        tensor([0.0800, 0.1452, 0.0652])
        >>> subspace_consistency(W, torch.tensor([0, 1, 0]), reduction="none")
        tensor([0., 0., 0.])
    """
    b = check_features(W, "B V", name="W")["B"]
    if labels is not None:
        check_labels(labels, None, name="labels", n=b, length_from="W")
        check_device(labels, W.device, name="labels", origin="W")
    check_nonnegative(m2, name="m2")
    check_reduction(reduction)
    if b < 2:
        return W.sum(dim=1) * 0 if reduction == "none" else attached_zero(W)
    w = _compute(W)
    dist = euclidean_distance(w)  # (B, B), finite gradient at equal rows
    if labels is None:  # every sample pairs with the B - 1 others: no masks, no counts
        hinge = (dist - m2).clamp_min(0).pow(2).fill_diagonal_(0.0)
        return reduce(hinge.sum(dim=1) / (b - 1), reduction).to(loss_dtype(W.dtype))
    pair = ~torch.eye(b, dtype=torch.bool, device=W.device)
    pair = pair & (labels[:, None] == labels[None, :])
    hinge = (dist - m2).clamp_min(0).pow(2) * pair
    count = pair.sum(dim=1)
    per_sample = hinge.sum(dim=1) / count.clamp_min(1).to(hinge.dtype)
    if reduction == "mean":  # over samples with a partner; no host sync
        out = per_sample.sum() / (count > 0).sum().clamp_min(1).to(hinge.dtype)
    else:
        out = reduce(per_sample, reduction)
    return out.to(loss_dtype(W.dtype))  # float32 for half W: a squared distance can overflow


class SubspaceDiversity(nn.Module):
    """Subspace-weight diversity $L_v$; see :func:`dgblocks.functional.subspace_diversity`.

    Args:
        m1: margin $m_1 \\ge 0$ (CDVM: 0.1).
        reduction: ``"mean" | "sum" | "none"``.

    Shape:
        W: (B, V); output: () or (B,).

    Example:
        >>> SubspaceDiversity(m1=0.1)(torch.tensor([[0.0, 0.5, 1.0]]))
        tensor(0.)
    """

    functional_name: ClassVar[str | None] = "subspace_diversity"

    def __init__(self, *, m1: float = 0.1, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.m1 = float(check_nonnegative(m1, name="m1"))
        self.reduction = check_reduction(reduction)

    def forward(self, W: Tensor) -> Tensor:
        """Diversity hinge of each sample's subspace weights (:func:`subspace_diversity`).

        Args:
            W: subspace weights from the hyper-network, (B, V).

        Returns:
            () or (B,) for ``reduction="none"``, in the dtype of ``W``.
        """
        return subspace_diversity(W, m1=self.m1, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"m1={self.m1}, reduction={self.reduction!r}"


class SubspaceConsistency(nn.Module):
    """Subspace-weight consistency $L_c$; see :func:`dgblocks.functional.subspace_consistency`.

    Args:
        m2: margin $m_2 \\ge 0$ (CDVM: 0.1).
        reduction: ``"mean" | "sum" | "none"``.

    Shape:
        W: (B, V); labels: (B,) optional; output: () or (B,).

    Example:
        >>> SubspaceConsistency(m2=0.1)(torch.tensor([[0.0, 0.0], [0.0, 0.05]]))
        tensor(0.)
    """

    functional_name: ClassVar[str | None] = "subspace_consistency"

    def __init__(self, *, m2: float = 0.1, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.m2 = float(check_nonnegative(m2, name="m2"))
        self.reduction = check_reduction(reduction)

    def forward(self, W: Tensor, labels: Tensor | None = None) -> Tensor:
        """Consistency hinge of the subspace weights across samples
        (:func:`subspace_consistency`).

        Args:
            W: subspace weights from the hyper-network, (B, V).
            labels: identity labels, (B,); restricts the pairs to one identity. None: all.

        Returns:
            () or (B,) for ``reduction="none"``; float32 for fp16/bf16 ``W``.
        """
        return subspace_consistency(W, labels, m2=self.m2, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"m2={self.m2}, reduction={self.reduction!r}"
