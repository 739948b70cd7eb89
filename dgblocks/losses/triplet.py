r"""Batch-hard triplet loss (DDAN eq 2, episodic eq 2-4, CDVM $\mathcal{L}_{tri}$).

For every anchor the hardest positive (the farthest sample with the same label, other than the
anchor itself) and the hardest negative (the nearest sample with a different label) are mined
inside the batch. Mining is a non-differentiable choice made under ``torch.no_grad()``; the
gradient flows through the distances evaluated at the chosen indices.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from dgblocks._checks import (
    Reduction,
    check_choice,
    check_device,
    check_features,
    check_labels,
    check_nonnegative,
    check_reduction,
)
from dgblocks.distances import cosine_distance, grad_safe_eps, pairwise_distance
from dgblocks.losses._reduction import attached_zero, loss_dtype

__all__ = ["batch_hard_mining", "triplet_loss", "TripletLoss"]

TripletMetric = Literal["euclidean", "cosine"]
_METRICS = ("euclidean", "cosine")
_MINING = ("batch_hard",)


def batch_hard_mining(dist: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""Indices of the hardest positive and hardest negative of every anchor.

    $$ p_a = \arg\max_{j \ne a,\ y_j = y_a} d_{aj}, \qquad
       n_a = \arg\min_{j:\ y_j \ne y_a} d_{aj} $$

    Runs under ``torch.no_grad()``; masked entries are filled with ``torch.finfo(dtype)``
    extremes (never ``1e9``, which fp16 cannot represent).

    Args:
        dist: pairwise distances of the batch (only read, never differentiated).
        labels: integer identity labels.

    Returns:
        ``(pos_idx, neg_idx, valid)``: ``valid[a]`` is true when anchor ``a`` has at least one
        positive and one negative; the indices of invalid anchors are arbitrary.

    Shape:
        dist: (N, N); labels: (N,); outputs: (N,) long, (N,) long, (N,) bool.

    Invariants:
        - for a valid anchor, ``pos_idx`` has its label and is not itself; ``neg_idx`` does not
          have its label
        - ``d[a, pos_idx[a]]`` is the largest positive and ``d[a, neg_idx[a]]`` the smallest
          negative distance

    Example:
        >>> x = torch.tensor([[0.], [1.], [3.], [7.]])
        >>> d = (x - x.t()).abs()
        >>> batch_hard_mining(d, torch.tensor([0, 0, 1, 1]))
        (tensor([1, 0, 3, 2]), tensor([2, 2, 1, 1]), tensor([True, True, True, True]))
    """
    n = check_features(dist, "N N", name="dist")["N"]
    check_labels(labels, None, name="labels", n=n, length_from="dist")
    check_device(labels, dist.device, name="labels", origin="dist")
    with torch.no_grad():
        d = dist.detach()
        info = torch.finfo(d.dtype)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(n, dtype=torch.bool, device=d.device)
        pos = same & ~eye
        neg = ~same
        pos_idx = d.masked_fill(~pos, info.min).argmax(dim=1)
        neg_idx = d.masked_fill(~neg, info.max).argmin(dim=1)
        valid = pos.any(dim=1) & neg.any(dim=1)
    return pos_idx, neg_idx, valid


def triplet_loss(features: Tensor, labels: Tensor, *, margin: float = 0.3,
                 soft_margin: bool = False, metric: TripletMetric = "euclidean",
                 reduction: Reduction = "mean") -> Tensor:
    r"""Batch-hard triplet loss.

    $$ L_a = \max\bigl(0,\ d(f_a, f_{p_a}) - d(f_a, f_{n_a}) + m\bigr) \quad\text{or}\quad
       L_a = \log\bigl(1 + e^{\,d(f_a, f_{p_a}) - d(f_a, f_{n_a})}\bigr) $$

    (the second with ``soft_margin=True``, which ignores $m$), with $p_a, n_a$ from
    :func:`batch_hard_mining` and $d$ from :mod:`dgblocks.distances`.

    Anchors without a positive or without a negative in the batch are *excluded*: they
    contribute 0 to ``"sum"``, appear as 0 in ``"none"``, and ``"mean"`` averages over the valid
    anchors only. A batch without any valid anchor (no positive pair anywhere, one identity,
    ``N <= 1``) returns a zero still attached to the graph.

    Args:
        features: embeddings (the pre-BN feature of a BNNeck).
        labels: integer identity labels.
        margin: $m \ge 0$; unused when ``soft_margin`` is true.
        soft_margin: use the softplus form instead of the hinge.
        metric: ``"euclidean"`` (the papers) or ``"cosine"`` ($1 - \cos$).
        reduction: ``"mean"`` (over valid anchors) | ``"sum"`` | ``"none"``.

    Shape:
        features: (N, D); labels: (N,); output: () or (N,) for "none", dtype of
        ``features`` (float32 for half inputs).

    Invariants:
        - non-negative
        - unchanged by rotating and translating all features together (Euclidean metric)
        - zero when every anchor meets the margin (hardest negative farther than the hardest
          positive by at least $m$)
        - a batch without a positive pair gives a graph-attached zero

    Example:
        >>> f = torch.tensor([[0., 0.], [0., 1.], [3., 0.], [3., 1.]])
        >>> triplet_loss(f, torch.tensor([0, 0, 1, 1]))
        tensor(0.)
        >>> triplet_loss(f, torch.tensor([0, 1, 0, 1]), reduction="none")
        tensor([2.3000, 2.3000, 2.3000, 2.3000])
    """
    n = check_features(features, "N D", name="features")["N"]
    check_labels(labels, None, name="labels", n=n, length_from="features")
    check_device(labels, features.device, name="labels", origin="features")
    check_nonnegative(margin, name="margin")
    check_choice(metric, _METRICS, name="metric")
    check_reduction(reduction)
    if n <= 1:
        zero = attached_zero(features)
        return features.sum(dim=1) * 0 if reduction == "none" else zero
    # fp16/bf16: distances and the hinge in float32, result cast back to the input dtype.
    x = features.float() if features.dtype in (torch.float16, torch.bfloat16) else features
    if metric == "cosine":  # the norm floor keeps the gradient finite in the input dtype
        dist = cosine_distance(x, eps=grad_safe_eps(1e-8, features.dtype))
    else:
        dist = pairwise_distance(x, metric=metric)
    pos_idx, neg_idx, valid = batch_hard_mining(dist, labels)
    d_ap = dist.gather(1, pos_idx[:, None]).squeeze(1)
    d_an = dist.gather(1, neg_idx[:, None]).squeeze(1)
    gap = d_ap - d_an
    per_anchor = nn.functional.softplus(gap) if soft_margin else (gap + margin).clamp_min(0)
    per_anchor = torch.where(valid, per_anchor, torch.zeros_like(per_anchor))
    if reduction == "none":
        out = per_anchor
    elif reduction == "sum":
        out = per_anchor.sum()
    else:  # no host sync: an empty valid set divides 0 by 1
        out = per_anchor.sum() / valid.sum().clamp_min(1).to(per_anchor.dtype)
    return out.to(loss_dtype(features.dtype))  # distances: float32 for half inputs


class TripletLoss(nn.Module):
    """Batch-hard triplet loss; see :func:`dgblocks.functional.triplet_loss`.

    Args:
        margin: hinge margin $m \\ge 0$ (DDAN: 0.3); checked here, at construction.
        mining: ``"batch_hard"`` (the only strategy the papers use).
        soft_margin: softplus instead of the hinge (then ``margin`` is unused).
        metric: ``"euclidean"`` or ``"cosine"``.
        reduction: ``"mean"`` (over valid anchors) | ``"sum"`` | ``"none"``.

    Shape:
        features: (N, D); labels: (N,); output: () or (N,).

    Example:
        >>> loss = TripletLoss(margin=0.3)
        >>> f = torch.tensor([[0., 0.], [0., 1.], [3., 0.], [3., 1.]])
        >>> loss(f, torch.tensor([0, 1, 0, 1]))
        tensor(2.3000)
    """

    functional_name: ClassVar[str | None] = "triplet_loss"

    def __init__(self, *, margin: float = 0.3, mining: str = "batch_hard",
                 soft_margin: bool = False, metric: TripletMetric = "euclidean",
                 reduction: Reduction = "mean") -> None:
        super().__init__()
        self.margin = float(check_nonnegative(margin, name="margin"))
        self.mining = check_choice(mining, _MINING, name="mining")
        self.soft_margin = bool(soft_margin)
        self.metric = check_choice(metric, _METRICS, name="metric")
        self.reduction = check_reduction(reduction)

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        """Batch-hard triplet loss of the batch (:func:`triplet_loss`).

        Args:
            features: embeddings (the pre-BN feature of a BNNeck), (N, D).
            labels: identity labels, (N,).

        Returns:
            () (mean over valid anchors, or sum) or (N,) for ``reduction="none"``; float32
            for fp16/bf16 ``features``.
        """
        return triplet_loss(features, labels, margin=self.margin, soft_margin=self.soft_margin,
                            metric=self.metric, reduction=self.reduction)

    def extra_repr(self) -> str:
        return (f"margin={self.margin}, mining={self.mining!r}, soft_margin={self.soft_margin},"
                f" metric={self.metric!r}, reduction={self.reduction!r}")
