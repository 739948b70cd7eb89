r"""Batch-hard mining fused with the Euclidean distance matrix, and the triplet loss on top.

The kernel (Triton, where available) returns only the mined indices; the two selected
distances per anchor are then recomputed in PyTorch, with the expression of
:mod:`dgblocks.distances`, so autograd differentiates them as the eager loss does. The eager
functions :func:`dgblocks.losses.triplet.batch_hard_mining` and
:func:`dgblocks.losses.triplet.triplet_loss` are both the fallback and the reference.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from dgblocks._checks import (
    Reduction,
    check_finite,
    check_labels,
    check_nonnegative,
    check_reduction,
    check_shape,
)
from dgblocks.distances import euclidean_distance
from dgblocks.kernels._dispatch import kernel_module, resolve_fused
from dgblocks.losses import triplet as _eager
from dgblocks.losses._reduction import attached_zero

__all__ = ["BatchHard", "batch_hard", "triplet_loss"]

_KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_EPS = 1e-12  # dgblocks.distances.euclidean_distance's floor


class BatchHard(NamedTuple):
    """Result of :func:`batch_hard`: distances (differentiable), indices and validity."""

    d_ap: Tensor
    d_an: Tensor
    pos_idx: Tensor
    neg_idx: Tensor
    valid: Tensor


def _pair_distance(x: Tensor, sq: Tensor, idx: Tensor) -> Tensor:
    # d(x_a, x_idx[a]) exactly as dgblocks.distances builds it (expansion, clamp, zero diagonal).
    d2 = (sq + sq[idx]) - 2.0 * (x * x[idx]).sum(1)
    d2 = d2.clamp_min(0.0)
    self_pair = idx == torch.arange(x.shape[0], device=x.device)
    d2 = torch.where(self_pair, torch.zeros_like(d2), d2)
    return d2.clamp_min(_EPS).sqrt()


def batch_hard(features: Tensor, labels: Tensor, *, use_fused: bool | None = None) -> BatchHard:
    r"""Hardest positive and hardest negative Euclidean distance of every anchor.

    $$ p_a = \arg\max_{j \ne a,\ y_j = y_a} d_{aj}, \quad
       n_a = \arg\min_{j:\ y_j \ne y_a} d_{aj}, \quad
       d_{aj} = \sqrt{\max(\|f_a - f_j\|_2^2, \epsilon)} $$

    The fused path mines without writing the (B, B) distance matrix to memory, then recomputes
    the 2B selected distances in PyTorch (they carry the gradient). The eager path is
    :func:`dgblocks.losses.triplet.batch_hard_mining` on
    :func:`dgblocks.distances.euclidean_distance`. Distances are computed in float32 for
    float16/bfloat16 features (float64 stays float64, on the eager path) and returned in that
    compute dtype.

    Args:
        features: embeddings $f$.
        labels: integer identity labels $y$.
        use_fused: ``None`` picks automatically, ``True`` demands the kernel, ``False`` eager.

    Returns:
        :class:`BatchHard` ``(d_ap, d_an, pos_idx, neg_idx, valid)``; ``valid[a]`` is true when
        anchor ``a`` has a positive and a negative; invalid anchors have index 0 and their
        distances are meaningless (as in the eager mining).

    Shape:
        features: (B, D); labels: (B,); every output: (B,).

    Invariants:
        - same indices as the eager mining (ties go to the smallest index), unless two
          candidate distances differ only by float32 round-off
        - ``d_ap[a] = d(f_a, f_{pos_idx[a]})`` and ``d_an[a] = d(f_a, f_{neg_idx[a]})``

    Example:
        >>> f = torch.tensor([[0.], [1.], [3.], [7.]])
        >>> r = batch_hard(f, torch.tensor([0, 0, 1, 1]), use_fused=False)
        >>> r.pos_idx, r.neg_idx, r.d_an
        (tensor([1, 0, 3, 2]), tensor([2, 2, 1, 1]), tensor([3., 2., 2., 6.]))
    """
    n = check_shape(features, "N D", name="features")["N"]
    check_labels(labels, None, name="labels", n=n, length_from="features")
    check_finite(features, name="features")
    x = features.float() if features.dtype in (torch.float16, torch.bfloat16) else features
    fused = resolve_fused(use_fused, features, dtype_ok=features.dtype in _KERNEL_DTYPES)
    if fused and n > 0 and features.shape[1] > 0:
        if labels.device != features.device:
            raise ValueError(f"labels: expected device {features.device} (from features),"
                             f" got {labels.device}")
        pos_idx, neg_idx, valid = kernel_module("_triplet_triton").batch_hard_indices(x, labels)
        sq = x.pow(2).sum(1)
        d_ap, d_an = _pair_distance(x, sq, pos_idx), _pair_distance(x, sq, neg_idx)
        return BatchHard(d_ap, d_an, pos_idx, neg_idx, valid)
    dist = euclidean_distance(x)
    pos_idx, neg_idx, valid = _eager.batch_hard_mining(dist, labels)
    d_ap = dist.gather(1, pos_idx[:, None]).squeeze(1)
    d_an = dist.gather(1, neg_idx[:, None]).squeeze(1)
    return BatchHard(d_ap, d_an, pos_idx, neg_idx, valid)


def triplet_loss(features: Tensor, labels: Tensor, *, margin: float = 0.3,
                 soft_margin: bool = False, reduction: Reduction = "mean",
                 use_fused: bool | None = None) -> Tensor:
    r"""Batch-hard triplet loss (Euclidean) on :func:`batch_hard`: fused mining when possible.

    $$ L_a = \max\bigl(0,\ d(f_a, f_{p_a}) - d(f_a, f_{n_a}) + m\bigr) \quad\text{or}\quad
       L_a = \log\bigl(1 + e^{\,d(f_a, f_{p_a}) - d(f_a, f_{n_a})}\bigr) $$

    Same contract as :func:`dgblocks.losses.triplet.triplet_loss` with ``metric="euclidean"``
    (which is what the eager path calls): invalid anchors are excluded, ``"mean"`` averages
    over valid anchors, a batch without a valid anchor gives a graph-attached zero.

    Args:
        features: embeddings.
        labels: integer identity labels.
        margin: $m \ge 0$; unused when ``soft_margin`` is true.
        soft_margin: softplus instead of the hinge.
        reduction: ``"mean"`` (over valid anchors) | ``"sum"`` | ``"none"``.
        use_fused: ``None`` picks automatically, ``True`` demands the kernel, ``False`` eager.

    Shape:
        features: (N, D); labels: (N,); output: () or (N,) for "none", dtype of ``features``.

    Invariants:
        - equals the eager ``triplet_loss`` (and its gradient) when the mined indices agree
        - non-negative; zero when every anchor meets the margin

    Example:
        >>> f = torch.tensor([[0., 0.], [0., 1.], [3., 0.], [3., 1.]])
        >>> triplet_loss(f, torch.tensor([0, 1, 0, 1]), use_fused=False)
        tensor(2.3000)
    """
    n = check_shape(features, "N D", name="features")["N"]
    check_labels(labels, None, name="labels", n=n, length_from="features")
    check_nonnegative(margin, name="margin")
    check_reduction(reduction)
    fused = resolve_fused(use_fused, features, dtype_ok=features.dtype in _KERNEL_DTYPES)
    if not fused:
        return _eager.triplet_loss(features, labels, margin=margin, soft_margin=soft_margin,
                                   metric="euclidean", reduction=reduction)
    if n <= 1:
        zero = attached_zero(features)
        return features.sum(dim=1) * 0 if reduction == "none" else zero
    r = batch_hard(features, labels, use_fused=True)
    gap = r.d_ap - r.d_an
    per_anchor = nn.functional.softplus(gap) if soft_margin else (gap + margin).clamp_min(0)
    per_anchor = torch.where(r.valid, per_anchor, torch.zeros_like(per_anchor))
    if reduction == "none":
        out = per_anchor
    elif reduction == "sum":
        out = per_anchor.sum()
    else:  # no host sync: an empty valid set divides 0 by 1
        out = per_anchor.sum() / r.valid.sum().clamp_min(1).to(per_anchor.dtype)
    return out.to(features.dtype)
