r"""Subspace hyper-network (CDVM 3.4): one learned importance weight per channel group.

The feature's channels are sliced into $V$ groups (subspaces); a small network predicts, from
the pooled feature, one weight $w_v \in (0, 1)$ per group and sample, and the feature is
re-weighted group by group:

$$ W_b = \mathrm{sigmoid}\big(\mathrm{MLP}(\mathrm{GAP}(F_b))\big) \in (0, 1)^V, \qquad
   \tilde F_{b, c} = W_{b, v(c)}\, F_{b, c} . $$

The weights are returned beside the feature for CDVM's subspace losses (eq 10-11:
:class:`dgblocks.losses.SubspaceDiversity` and :class:`dgblocks.losses.SubspaceConsistency`).
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from torch import Tensor, nn

from dgblocks._checks import (
    ShapeError,
    ValueRangeError,
    check_choice,
    check_finite,
    check_float,
    check_int,
)
from dgblocks._module_checks import check_module_input

__all__ = ["SubspaceHypernet", "SubspaceOutput"]


class SubspaceOutput(NamedTuple):
    """The re-weighted feature and the group weights $W$ (B, V)."""

    feature: Tensor
    weights: Tensor


class SubspaceHypernet(nn.Module):
    """Per-sample importance of V channel groups, and the re-weighted feature (CDVM 3.4).

    Args:
        channels: $C$; must be divisible by ``groups``.
        groups: $V$, the number of subspaces (4 in CDVM).
        hidden: width of the hyper-network's hidden layer (default ``max(C // 16, 8)``).
        gate: ``"softmax"`` (V x softmax: relative weights with mean 1) or ``"sigmoid"``
            (independent gates in (0, 1)).

    Shape:
        x: (B, C, H, W) or (B, C); output: feature of the shape of ``x``, weights (B, V).

    Example:
        >>> net = SubspaceHypernet(channels=8, groups=4)
        >>> out = net(torch.randn(3, 8, 5, 5))
        >>> out.feature.shape, out.weights.shape
        (torch.Size([3, 8, 5, 5]), torch.Size([3, 4]))
    """

    functional_name: ClassVar[str | None] = None

    def __init__(self, *, channels: int, groups: int = 4, hidden: int | None = None,
                 gate: str = "softmax") -> None:
        super().__init__()
        self.channels = check_int(channels, name="channels", minimum=1)
        self.groups = check_int(groups, name="groups", minimum=1)
        if channels % groups:
            raise ValueRangeError(f"groups: expected a divisor of channels={channels},"
                                  f" got {groups}")
        self.hidden = check_int(max(channels // 16, 8) if hidden is None else hidden,
                                name="hidden", minimum=1)
        self.gate = check_choice(gate, ("softmax", "sigmoid"), name="gate")
        self.net = nn.Sequential(nn.Linear(channels, self.hidden), nn.ReLU(inplace=True),
                                 nn.Linear(self.hidden, groups))

    def forward(self, x: Tensor) -> SubspaceOutput:
        """Re-weight the V channel groups of ``x`` by their predicted importance.

        Args:
            x: feature maps (B, C, H, W) with H, W >= 1, or pooled features (B, C); the
                block's dtype and device (or run under ``torch.autocast``).

        Returns:
            :class:`SubspaceOutput` ``(feature, weights)``: ``x`` with each channel multiplied
            by its group's weight (shape of ``x``), and the weights (B, V) for the subspace
            losses; the same in training and eval mode.
        """
        if (not isinstance(x, Tensor) or x.dim() not in (2, 4) or x.shape[1] != self.channels
                or (x.dim() == 4 and 0 in x.shape[2:])):
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(f"x: expected shape (B, C, H, W) or (B, C) with C={self.channels}"
                             f" (and H, W >= 1), got {shape}")
        check_float(x, name="x")
        check_finite(x, name="x")
        check_module_input(x, self, name="x")
        pooled = x.mean((2, 3)) if x.dim() == 4 else x
        z = self.net(pooled)  # (B, V)
        w = z.sigmoid() if self.gate == "sigmoid" else z.softmax(dim=1) * self.groups
        per_channel = w.repeat_interleave(self.channels // self.groups, dim=1)
        if x.dim() == 4:
            per_channel = per_channel[:, :, None, None]
        return SubspaceOutput(x * per_channel, w)

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, groups={self.groups}, hidden={self.hidden}, "
                f"gate={self.gate!r}")
