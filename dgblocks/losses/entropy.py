r"""Negative entropy (DIR-ReID eq 3-4, ADIN eq 5, DDAN eq 5) and its calibrated form (ADIN eq 6).

Minimising the negative entropy of a classifier's softmax drives its predictions towards the
uniform distribution: used adversarially, it removes the classifier's target (domain, camera,
time) from the features that feed it.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from dgblocks._checks import (
    Reduction,
    ShapeError,
    ValueRangeError,
    check_device,
    check_features,
    check_int,
    check_labels,
    check_nonnegative_values,
    check_reduction,
    check_shape,
)
from dgblocks._module_checks import check_state_entry
from dgblocks.losses._reduction import reduce

__all__ = [
    "neg_entropy",
    "calibrated_neg_entropy",
    "class_prior",
    "NegEntropy",
    "CalibratedNegEntropy",
]


def _per_class(logits: Tensor) -> Tensor:
    # Stable: never log(softmax(x) + eps). Computed in at least float32 (autocast-safe).
    z = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    logp = z.log_softmax(dim=-1)
    return logp.exp() * logp  # (N, K); 0 * -inf cannot occur: log_softmax is finite


def neg_entropy(logits: Tensor, *, weights: Tensor | None = None,
                reduction: Reduction = "mean") -> Tensor:
    r"""Negative Shannon entropy of ``softmax(logits)`` along the last axis.

    $$ L_i = \sum_k w_k\, c_{ik} \log c_{ik}, \qquad c_i = \mathrm{softmax}(z_i) $$

    Args:
        logits: unnormalised class scores $z$.
        weights: per-class weights $w$ (CaNE's nuisance prior); ``None`` means 1.
        reduction: ``"mean" | "sum" | "none"`` over the batch.

    Shape:
        logits: (N, K); weights: (K,); output: () or (N,) for "none".

    Invariants:
        - in [-log K, 0] when weights is None; -log K exactly at uniform logits
        - unchanged by adding a constant to each row of logits
        - permuting classes (with their weights) leaves it unchanged

    Example:
        >>> neg_entropy(torch.zeros(4, 10))
        tensor(-2.3026)
    """
    sizes = check_features(logits, "N K", name="logits")
    if sizes["K"] == 0:
        raise ShapeError("logits: expected at least one class (K >= 1), got K=0")
    check_reduction(reduction)
    per_class = _per_class(logits)
    if weights is not None:
        check_shape(weights, "K", name="weights", K=sizes["K"])
        check_nonnegative_values(weights, name="weights")
        per_class = per_class * weights.to(per_class.device, per_class.dtype)  # moved on use
    loss = per_class.sum(dim=-1)
    return reduce(loss, reduction).to(logits.dtype if logits.is_floating_point() else loss.dtype)


def class_prior(labels: Tensor, num_classes: int) -> Tensor:
    r"""Empirical class frequencies $p_k = \frac{1}{N}\sum_i [y_i = k]$ (CaNE's prior).

    Args:
        labels: integer nuisance labels (camera id, time period, ...).
        num_classes: number of nuisance classes $K$; classes never seen get 0.

    Shape:
        labels: (N,); output: (K,) float32 on the labels' device.

    Invariants:
        - non-negative and sums to 1

    Example:
        >>> class_prior(torch.tensor([0, 0, 1, 2]), 4)
        tensor([0.5000, 0.2500, 0.2500, 0.0000])
    """
    check_int(num_classes, name="num_classes", minimum=1)
    check_labels(labels, num_classes, name="labels")
    if labels.numel() == 0:
        raise ShapeError("labels: expected at least one label to estimate a prior, got shape (0,)")
    ones = torch.ones(labels.shape, dtype=torch.float32, device=labels.device)
    counts = ones.new_zeros(num_classes).index_add_(0, labels, ones)  # bincount syncs on CUDA
    return counts / counts.sum()


def calibrated_neg_entropy(logits: Tensor, prior: Tensor, *, labels: Tensor | None = None,
                           focal: bool = False, reduction: Reduction = "mean") -> Tensor:
    r"""Calibrated negative entropy (CaNE, ADIN eq 6).

    $$ L_i = \sum_k p_k\, c_{ik} \log c_{ik} $$

    With ``focal=True`` (the per-sample variant), each sample is instead weighted by the prior
    of its own nuisance class: $L_i = p_{y_i} \sum_k c_{ik} \log c_{ik}$.

    Args:
        logits: nuisance-classifier scores.
        prior: nuisance-class frequencies $p$ in the training set (see :func:`class_prior`).
        labels: nuisance labels $y$; required when ``focal`` is true.
        focal: use the per-sample weighting.
        reduction: ``"mean" | "sum" | "none"``.

    Shape:
        logits: (N, K); prior: (K,); labels: (N,); output: () or (N,).

    Invariants:
        - equals neg_entropy / K for a uniform prior
        - in [-max(p) log K, 0]
        - permuting classes together with the prior leaves it unchanged

    Example:
        >>> calibrated_neg_entropy(torch.zeros(2, 4), torch.full((4,), 0.25))
        tensor(-0.3466)
    """
    sizes = check_features(logits, "N K", name="logits")
    check_shape(prior, "K", name="prior", K=sizes["K"])
    check_nonnegative_values(prior, name="prior")  # the module's rule: negative, NaN refused
    prior = prior.to(logits.device)  # a prior counted on the CPU works with CUDA logits
    if not focal:
        if labels is not None:
            raise ValueRangeError("labels: only used when focal=True, got a tensor")
        return neg_entropy(logits, weights=prior, reduction=reduction)
    if labels is None:
        raise ValueRangeError("labels: required when focal=True, got None")
    check_labels(labels, sizes["K"], name="labels", n=sizes["N"], length_from="logits")
    check_device(labels, logits.device, name="labels", origin="logits")
    per_sample = neg_entropy(logits, reduction="none").to(prior.dtype) * prior[labels]
    return reduce(per_sample, check_reduction(reduction)).to(logits.dtype)


class NegEntropy(nn.Module):
    """Negative entropy of the softmax; see :func:`dgblocks.functional.neg_entropy`.

    Args:
        reduction: ``"mean" | "sum" | "none"``.

    Shape:
        logits: (N, K); output: () or (N,).

    Example:
        >>> NegEntropy()(torch.zeros(3, 2))
        tensor(-0.6931)
    """

    functional_name: ClassVar[str | None] = "neg_entropy"

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, logits: Tensor) -> Tensor:
        """Negative entropy of ``softmax(logits)`` (:func:`neg_entropy`).

        Args:
            logits: class scores, (N, K).

        Returns:
            () or (N,) for ``reduction="none"``, in the dtype of ``logits``.
        """
        return neg_entropy(logits, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CalibratedNegEntropy(nn.Module):
    """Calibrated negative entropy (CaNE); see :func:`dgblocks.functional.calibrated_neg_entropy`.

    The prior is a buffer (saved in the ``state_dict``, moved with ``.to()``). Build it from a
    given tensor, or count it from the training labels with :meth:`from_labels`.

    Args:
        prior: nuisance-class frequencies, shape (K,), non-negative.
        focal: weight each sample by the prior of its own class (then ``forward`` needs labels).
        reduction: ``"mean" | "sum" | "none"``.

    Shape:
        logits: (N, K); labels: (N,); output: () or (N,).

    Example:
        >>> loss = CalibratedNegEntropy.from_labels(torch.tensor([0, 0, 0, 1]), num_classes=2)
        >>> loss.prior
        tensor([0.7500, 0.2500])
        >>> loss(torch.zeros(5, 2))
        tensor(-0.3466)
    """

    functional_name: ClassVar[str | None] = "calibrated_neg_entropy"
    prior: Tensor

    def __init__(self, *, prior: Tensor, focal: bool = False,
                 reduction: Reduction = "mean") -> None:
        super().__init__()
        if check_shape(prior, "K", name="prior")["K"] == 0:
            raise ShapeError("prior: expected at least one class, got shape (0,)")
        if not prior.is_floating_point() or not bool((torch.isfinite(prior) & (prior >= 0)).all()):
            raise ValueRangeError("prior: expected non-negative (finite) floating class"
                                  f" frequencies, got {prior.tolist()}")
        self.register_buffer("prior", prior.detach().clone())
        self.focal = bool(focal)
        self.reduction = check_reduction(reduction)

    @classmethod
    def from_labels(cls, labels: Tensor, *, num_classes: int, focal: bool = False,
                    reduction: Reduction = "mean") -> CalibratedNegEntropy:
        """Build the loss with the prior counted from training labels (:func:`class_prior`)."""
        return cls(prior=class_prior(labels, num_classes), focal=focal, reduction=reduction)

    def forward(self, logits: Tensor, labels: Tensor | None = None) -> Tensor:
        """Calibrated negative entropy with the stored prior (:func:`calibrated_neg_entropy`).

        Args:
            logits: nuisance-classifier scores, (N, K) with K the prior's length.
            labels: nuisance labels, (N,); required with ``focal=True``, refused otherwise.

        Returns:
            () or (N,) for ``reduction="none"``, in the dtype of ``logits``.
        """
        check_shape(logits, "N K", name="logits", K=self.prior.numel())
        if self.prior.device != logits.device:  # follow the inputs once, not a copy per step
            self.prior = self.prior.to(logits.device)
        return calibrated_neg_entropy(logits, self.prior, labels=labels, focal=self.focal,
                                      reduction=self.reduction)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        check_state_entry(state_dict, prefix + "prior", self.prior, minimum=0)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f"num_classes={self.prior.numel()}, focal={self.focal},"
                f" reduction={self.reduction!r}")
