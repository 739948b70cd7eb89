r"""BNNeck (Luo et al. 2019, "Bag of Tricks"; DDAN 4.5): batch norm before the ID classifier.

The metric losses (triplet, centre) see the feature *before* the batch norm, the identity
cross-entropy sees the classifier's logits computed from the feature *after* it, and retrieval
uses the post-BN feature. The BN shift is frozen at zero (as in the paper), so the post-BN
feature stays centred and the bias-free classifier's decision boundaries pass through the
origin.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from torch import Tensor, nn

from dgblocks._checks import (
    ShapeError,
    check_features,
    check_int,
)
from dgblocks._module_checks import check_module_input

__all__ = ["BNNeck", "BNNeckOutput"]


class BNNeckOutput(NamedTuple):
    """What :class:`BNNeck` returns in training mode."""

    feat_pre_bn: Tensor
    """The input feature, for the triplet / centre loss, (N, D)."""
    feat_post_bn: Tensor
    """The batch-normalised feature, for retrieval, (N, D)."""
    logits: Tensor
    """Identity scores from the post-BN feature, for the cross-entropy, (N, K)."""


class BNNeck(nn.Module):
    r"""Batch norm (shift frozen at zero) followed by a bias-free linear identity classifier.

    $$ \hat f = \gamma \odot \frac{f - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad z = W \hat f $$

    In training mode ``forward`` returns a :class:`BNNeckOutput`
    ``(feat_pre_bn, feat_post_bn, logits)``; in eval mode it returns only ``feat_post_bn``,
    the retrieval feature (pass ``return_all=True`` to get the triple in eval mode too, e.g.
    for a validation identity error).

    ``functional_name`` is ``None``: the block *is* its state (the running statistics, the
    scale, the classifier), and it is kept in a real :class:`torch.nn.BatchNorm1d` so that
    :meth:`torch.nn.SyncBatchNorm.convert_sync_batchnorm` replaces it under DDP and the batch
    statistics span all ranks. A pure twin built on
    ``torch.nn.functional.batch_norm`` would bypass that conversion and compute per-rank
    statistics.

    Init follows the paper's code: BN scale 1 and shift 0; classifier weights
    $\mathcal N(0, 0.001^2)$.

    Args:
        dim: feature dimension $D$.
        num_classes: number of training identities $K$.
        bias: learn the BN shift $\beta$ (default ``False``: frozen at zero, as in BNNeck).

    Shape:
        x: (N, D), N >= 2 in training mode; output: (N, D) x 2 and (N, K) in training,
        (N, D) in eval.

    Example:
        >>> neck = BNNeck(dim=8, num_classes=5)
        >>> out = neck(torch.randn(4, 8))
        >>> out.feat_pre_bn.shape, out.feat_post_bn.shape, out.logits.shape
        (torch.Size([4, 8]), torch.Size([4, 8]), torch.Size([4, 5]))
        >>> neck.eval()(torch.randn(1, 8)).shape
        torch.Size([1, 8])
    """

    functional_name: ClassVar[str | None] = None  # see the docstring: SyncBatchNorm conversion

    def __init__(self, *, dim: int, num_classes: int, bias: bool = False) -> None:
        super().__init__()
        self.dim = check_int(dim, name="dim", minimum=1)
        self.num_classes = check_int(num_classes, name="num_classes", minimum=1)
        self.bias = bool(bias)
        self.bn = nn.BatchNorm1d(dim)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(self.bias)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, x: Tensor, *, return_all: bool | None = None) -> BNNeckOutput | Tensor:
        """Batch-normalise ``x`` and, in training mode, classify it.

        Args:
            x: features (the backbone's pooled output), (N, D); N >= 2 in training mode (batch
                statistics). Same dtype and device as the block's parameters, or run under
                ``torch.autocast``.
            return_all: return the :class:`BNNeckOutput` triple; ``None`` means "in training
                mode".

        Returns:
            Training mode: :class:`BNNeckOutput` ``(feat_pre_bn, feat_post_bn, logits)`` with
            ``feat_pre_bn`` the input itself (for the triplet / centre loss), ``feat_post_bn``
            (N, D) normalised with the batch statistics (running statistics updated) and
            ``logits`` (N, K). Eval mode: only ``feat_post_bn``, normalised with the running
            statistics (the retrieval feature), unless ``return_all=True``.
        """
        sizes = check_features(x, "N D", name="x", D=self.dim)
        check_module_input(x, self, name="x")
        if self.training and sizes["N"] < 2:
            raise ShapeError("x: expected N >= 2 in training mode (batch statistics),"
                             f" got {tuple(x.shape)}")
        post = self.bn(x)
        if return_all is None:
            return_all = self.training
        if not return_all:
            return post
        return BNNeckOutput(x, post, self.classifier(post))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_classes={self.num_classes}, bias={self.bias}"
