r"""Symmetric KL divergence between temperature softmaxes (DDAN eq 8, identity-wise enhancement).

DDAN compares a sample's *feature* $F(x_n)$ with the ID-pool representations $\hat r_i$ of its
$k$ most similar identities: both are turned into distributions over the feature axis by
$\mathrm{sm}(x) = \mathrm{softmax}(x / \tau)$ with $\tau = 2 \cdot 10^{-3}$, and the symmetric
KL divergence between them is minimised. The inputs are therefore features (any vectors work:
logits too); nothing is normalised inside, the caller chooses the feature.

At $\tau = 2 \cdot 10^{-3}$ a feature of magnitude 10 becomes a logit of magnitude 5000, so the
softmax is nearly one-hot. The loss is computed in at least float32 as
$\frac{1}{\tau}\sum_r (p_r - q_r)(a_r - b_r)$, which equals
$\sum_r (p_r - q_r)(\log p_r - \log q_r)$ because $\log p_r - \log q_r = (a_r - b_r)/\tau$ up
to a constant that $\sum_r (p_r - q_r) = 0$ cancels. The softmaxes are taken of
$(x - \max x)/\tau \le 0$, so no logit overflows: the value is finite whenever it is
representable, for any $\tau$ whose reciprocal is (smaller $\tau$ are refused by name). It
is exactly symmetric and exactly zero for equal inputs. Its value grows like $|x| / \tau$ (about
$10^5$ for features of magnitude 100), beyond the float16 range, so fp16/bf16 inputs give a
float32 loss (as ``torch.autocast`` does for its float32 ops). The gradient flows back in the
input's dtype; it is at most $1 / \tau$ per entry when both softmaxes are saturated (the usual
case), but near a tie between the largest entries it is of order $|x| / \tau^2$ (about $10^6$
at $\tau = 2 \cdot 10^{-3}$), which float32 and bf16 hold and float16 does not: that is the
math of a small temperature, not a rounding problem.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from dgblocks._checks import (
    Reduction,
    ShapeError,
    ValueRangeError,
    check_device,
    check_features,
    check_finite,
    check_positive,
    check_reduction,
    check_shape,
)
from dgblocks.losses._reduction import reduce

__all__ = ["symmetric_kl", "SymmetricKL"]


def _check_tau(tau: float) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau):
        raise ValueRangeError(f"tau: expected a finite float > 0, got {tau!r}")
    return float(check_positive(tau, name="tau"))


def _softmax(x: Tensor, tau: float) -> Tensor:
    # softmax(x / tau) from (x - max x) / tau <= 0: no overflow to +inf for a tiny tau
    return ((x - x.amax(dim=-1, keepdim=True).detach()) / tau).softmax(dim=-1)


def symmetric_kl(a: Tensor, b: Tensor, *, tau: float = 1.0, mask: Tensor | None = None,
                 reduction: Reduction = "mean") -> Tensor:
    r"""Symmetric KL divergence between ``softmax(a / tau)`` and ``softmax(b / tau)``.

    $$ L_i = \mathrm{KL}(p_i \,\|\, q_i) + \mathrm{KL}(q_i \,\|\, p_i)
           = \sum_r (p_{ir} - q_{ir})(\log p_{ir} - \log q_{ir}),
       \qquad p_i = \mathrm{softmax}(a_i / \tau),\ q_i = \mathrm{softmax}(b_i / \tau) $$

    With ``b`` of shape (N, k, D), the $k$ neighbours of each row of ``a`` (DDAN's top-k ID-pool
    entries), $L_i = \frac{1}{k} \sum_j L(a_i, b_{ij})$: ``reduction="sum"`` is then DDAN's
    eq 8. Pool entries carry no gradient in DDAN: pass them detached. ``mask`` (the ``valid``
    of :meth:`dgblocks.memory.IDPool.topk`) restricts the average to the valid neighbours; a
    row without any contributes 0 (still counted by ``"mean"``).

    Args:
        a: features (or logits); the softmax is taken along the last axis.
        b: features of the same size, or $k$ of them per row of ``a``.
        tau: temperature $\tau > 0$ (DDAN: $2 \cdot 10^{-3}$), at least
            ``1 / finfo(dtype).max`` (2.9e-39 in float32) so that $1 / \tau$ is finite.
        mask: which neighbours count, only with a 3-D ``b``; ``None`` means all.
        reduction: ``"mean" | "sum" | "none"`` over the N rows.

    Shape:
        a: (N, D); b: (N, D) or (N, k, D); mask: (N, k) bool;
        output: () or (N,) for "none"; float32 for
        fp16/bf16 inputs (the value can exceed the fp16 range), else the inputs' dtype.

    Invariants:
        - symmetric: symmetric_kl(a, b) == symmetric_kl(b, a)
        - non-negative, and zero when a == b
        - unchanged by adding a constant to each row of a or of b

    Example:
        >>> a = torch.tensor([[1.0, 0.0]])
        >>> symmetric_kl(a, a)
        tensor(0.)
        >>> symmetric_kl(a, torch.tensor([[0.0, 1.0]]))
        tensor(0.9242)
    """
    sizes = check_features(a, "N D", name="a")
    if isinstance(b, Tensor) and b.dim() == 3:
        check_features(b, "N k D", name="b", **sizes)
        if b.shape[1] == 0:
            raise ShapeError(f"b: expected at least one neighbour (k >= 1), got {tuple(b.shape)}")
        if mask is not None:
            check_shape(mask, "N k", name="mask", N=sizes["N"], k=b.shape[1])
            if mask.dtype != torch.bool:
                raise ValueRangeError(f"mask: expected a bool tensor, got {mask.dtype}")
            check_device(mask, a.device, name="mask", origin="a")
    else:
        check_features(b, "N D", name="b", **sizes)
        if mask is not None:
            raise ShapeError("mask: only used when b is (N, k, D), got b of shape"
                             f" {tuple(b.shape)}")
    check_device(b, a.device, name="b", origin="a")
    check_reduction(reduction)
    tau = _check_tau(tau)
    check_finite(a, name="a")
    check_finite(b, name="b")
    # fp16/bf16 -> float32 (float64 stays): computed *and returned* in float32, because the
    # value scales like |x| / tau (~1e5 at tau = 2e-3 and |x| ~ 100) and overflows fp16
    work = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    if 1.0 / tau > torch.finfo(work).max:
        raise ValueRangeError(f"tau: expected a value >= {1 / torch.finfo(work).max:.3g} (1 / tau"
                              f" finite in {work}), got {tau!r}")
    aw, bw = a.to(work), b.to(work)
    if b.dim() == 3:
        aw = aw.unsqueeze(1)  # (N, 1, D) against (N, k, D)
    # (1/tau) sum_r (p_r - q_r)(a_r - b_r) == sum_r (p_r - q_r)(log p_r - log q_r); clamped at
    # 0 against a last-bit negative round-off when a is within rounding of b
    per_row = ((_softmax(aw, tau) - _softmax(bw, tau)) * (aw - bw)).sum(dim=-1)
    per_row = (per_row / tau).clamp_min(0)
    if b.dim() == 3 and mask is None:
        per_row = per_row.mean(dim=1)
    elif b.dim() == 3:
        w = mask.to(per_row.dtype)  # invalid entries may hold anything finite: weight 0
        per_row = (per_row * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0)
    return reduce(per_row, reduction)


class SymmetricKL(nn.Module):
    r"""Symmetric KL between temperature softmaxes; see :func:`dgblocks.functional.symmetric_kl`.

    Args:
        tau: temperature $\tau > 0$, required (DDAN: $2 \cdot 10^{-3}$).
        reduction: ``"mean" | "sum" | "none"``.

    Shape:
        a: (N, D); b: (N, D) or (N, k, D); mask: (N, k); output: () or (N,).

    Example:
        >>> f = torch.tensor([[20.0, 10.0, 0.0]])
        >>> SymmetricKL(tau=2e-3)(f, f.flip(-1).unsqueeze(1))
        tensor(20000.)
    """

    functional_name: ClassVar[str | None] = "symmetric_kl"

    def __init__(self, *, tau: float, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.tau = _check_tau(tau)
        self.reduction = check_reduction(reduction)

    def forward(self, a: Tensor, b: Tensor, mask: Tensor | None = None) -> Tensor:
        """Symmetric KL between ``softmax(a / tau)`` and ``softmax(b / tau)``
        (:func:`symmetric_kl`).

        Args:
            a: features (or logits), (N, D).
            b: features of the same shape, or k per row of ``a``, (N, k, D) (e.g. the ID-pool
                neighbours, detached).
            mask: which of the k neighbours count, (N, k) bool; only with a 3-D ``b``.

        Returns:
            () or (N,) for ``reduction="none"``; float32 for fp16/bf16 inputs.
        """
        return symmetric_kl(a, b, tau=self.tau, mask=mask, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"tau={self.tau:g}, reduction={self.reduction!r}"
