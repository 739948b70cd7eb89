r"""Center loss (Wen et al. 2016; CDVM eq 12 $\mathcal{L}_{cent}$, ADIN $L_I$).

Pulls every feature towards a learned centre of its class. The centres are an
``nn.Parameter`` of :class:`CenterLoss`, trained by the optimiser like any weight (the
"bag of tricks" practice, usually with its own learning rate), not by Wen et al.'s separate
moving-average rule.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from dgblocks._checks import (
    Reduction,
    ShapeError,
    check_device,
    check_features,
    check_generator,
    check_int,
    check_labels,
    check_reduction,
)
from dgblocks._module_checks import check_state_entry
from dgblocks.losses._reduction import loss_dtype, reduce

__all__ = ["center_loss", "CenterLoss"]


def center_loss(features: Tensor, labels: Tensor, centers: Tensor, *,
                reduction: Reduction = "mean") -> Tensor:
    r"""Half the squared Euclidean distance of each feature to the centre of its class.

    $$ L_i = \tfrac12\, \| f_i - c_{y_i} \|_2^2 $$

    The factor $\tfrac12$ follows Wen et al. (the center loss ADIN cites); with
    ``reduction="mean"`` the result is the bag-of-tricks ``CenterLoss`` divided by 2.

    Args:
        features: embeddings $f$.
        labels: integer class labels $y$ in ``[0, K)``.
        centers: class centres $c$ (usually :attr:`CenterLoss.centers`).
        reduction: ``"mean" | "sum" | "none"`` over the batch.

    Shape:
        features: (N, D); labels: (N,); centers: (K, D); output: () or (N,), dtype of
        ``features`` (float32 for half inputs: the value can overflow float16).

    Invariants:
        - non-negative; zero when every feature equals the centre of its class
        - unchanged by translating features and centres together
        - only the centres of classes present in the batch receive a gradient

    Example:
        >>> centers = torch.tensor([[0., 0.], [1., 1.]])
        >>> center_loss(torch.tensor([[3., 4.], [1., 1.]]), torch.tensor([0, 1]), centers,
        ...             reduction="none")
        tensor([12.5000,  0.0000])
    """
    sizes = check_features(features, "N D", name="features")
    csizes = check_features(centers, "K D", name="centers", D=sizes["D"])
    if csizes["K"] == 0:
        raise ShapeError("centers: expected at least one centre (K >= 1), got shape"
                         f" {tuple(centers.shape)}")
    check_labels(labels, csizes["K"], name="labels", n=sizes["N"], length_from="features")
    check_reduction(reduction)
    check_device(centers, features.device, name="centers", origin="features")
    check_device(labels, features.device, name="labels", origin="features")
    ct = torch.promote_types(features.dtype, centers.dtype)
    if ct in (torch.float16, torch.bfloat16):
        ct = torch.float32
    diff = features.to(ct) - centers.to(ct)[labels]
    loss = 0.5 * diff.pow(2).sum(dim=1)
    return reduce(loss, reduction).to(loss_dtype(features.dtype))


class CenterLoss(nn.Module):
    """Center loss with learned centres; see :func:`dgblocks.functional.center_loss`.

    The centres are an ``nn.Parameter`` of shape (K, D), initialised from a standard normal
    (as in the bag-of-tricks baseline); pass ``generator`` for a seeded initialisation.

    Args:
        num_classes: number of classes $K$ (training identities).
        dim: feature dimension $D$.
        reduction: ``"mean" | "sum" | "none"``.
        generator: optional ``torch.Generator`` for the initial centres.

    Shape:
        features: (N, D); labels: (N,); output: () or (N,).

    Example:
        >>> loss = CenterLoss(num_classes=3, dim=2, generator=torch.Generator().manual_seed(0))
        >>> loss.centers.shape
        torch.Size([3, 2])
        >>> with torch.no_grad():
        ...     _ = loss.centers.zero_()
        >>> loss(torch.tensor([[3., 4.]]), torch.tensor([2]))
        tensor(12.5000, grad_fn=<MeanBackward0>)
    """

    functional_name: ClassVar[str | None] = "center_loss"

    def __init__(self, *, num_classes: int, dim: int, reduction: Reduction = "mean",
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.num_classes = check_int(num_classes, name="num_classes", minimum=1)
        self.dim = check_int(dim, name="dim", minimum=1)
        self.reduction = check_reduction(reduction)
        check_generator(generator)
        self.centers = nn.Parameter(torch.randn(num_classes, dim, generator=generator))

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        """Center loss of ``features`` against :attr:`centers` (:func:`center_loss`).

        Args:
            features: embeddings, (N, D); fp16/bf16 are computed in float32.
            labels: class labels in ``[0, num_classes)``, (N,).

        Returns:
            The loss, () or (N,) for ``reduction="none"``; float32 for half ``features``.
        """
        return center_loss(features, labels, self.centers, reduction=self.reduction)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        check_state_entry(state_dict, prefix + "centers", self.centers)  # finite, (K, D)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, dim={self.dim}, reduction={self.reduction!r}"
