"""ADIN's dual-branch feature extractor: a global branch and horizontal-stripe part branches.

ADIN (section 4.2, Fig. 4) appends to the backbone a global branch and a part branch that
splits the final map into horizontal stripes (as PCB/MGN do); the embedding is the
concatenation of the global and the stripe features.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dgblocks._checks import check_int, check_shape

__all__ = ["DualBranch"]


def _reduce(cin: int, dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, dim, 1, bias=False), nn.BatchNorm2d(dim),
                         nn.ReLU(inplace=True))


class DualBranch(nn.Module):
    """Backbone + global branch + ``num_stripes`` horizontal-stripe branches.

    Each branch pools its region of the backbone's final map (global: the whole map; stripe
    ``s``: rows ``[s H/S, (s+1) H/S)``, by adaptive average pooling) and reduces it with its own
    1x1 conv + BN + ReLU to ``dim`` channels.

    Args:
        backbone: a module with ``forward_features(x) -> (B, C, h, w)`` and ``out_channels``
            (every dgblocks backbone).
        num_stripes: number of horizontal stripes (ADIN follows MGN; 4 is a common choice).
        dim: channels of each branch.

    Attributes:
        out_channels: ``(1 + num_stripes) * dim``.

    Shape:
        x: (B, C, H, W); output: (B, (1 + num_stripes) * dim);
        ``forward_parts``: global (B, dim) and stripes (B, num_stripes, dim).

    Example:
        >>> from dgblocks.backbones import MobileNetV2
        >>> net = DualBranch(backbone=MobileNetV2(width_mult=0.25, last_stride=1), dim=32)
        >>> net(torch.zeros(2, 3, 64, 32)).shape
        torch.Size([2, 160])
    """

    def __init__(self, *, backbone: nn.Module, num_stripes: int = 4, dim: int = 256) -> None:
        super().__init__()
        check_int(num_stripes, name="num_stripes", minimum=1)
        check_int(dim, name="dim", minimum=1)
        cin = getattr(backbone, "out_channels", None)
        if not isinstance(cin, int) or not hasattr(backbone, "forward_features"):
            raise ValueError("backbone: expected a module with forward_features and an int "
                             f"out_channels, got {type(backbone).__name__}")
        self.backbone, self.num_stripes, self.dim = backbone, num_stripes, dim
        self.out_channels = (1 + num_stripes) * dim
        self.global_branch = _reduce(cin, dim)
        self.stripes = nn.ModuleList(_reduce(cin, dim) for _ in range(num_stripes))

    def forward_parts(self, x: Tensor) -> tuple[Tensor, Tensor]:
        fmap = self.backbone.forward_features(x)
        check_shape(fmap, "B C H W", name="backbone output")
        g = self.global_branch(nn.functional.adaptive_avg_pool2d(fmap, 1)).flatten(1)
        rows = nn.functional.adaptive_avg_pool2d(fmap, (self.num_stripes, 1))  # (B, C, S, 1)
        parts = [branch(rows[:, :, s:s + 1]).flatten(1) for s, branch in enumerate(self.stripes)]
        return g, torch.stack(parts, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        g, parts = self.forward_parts(x)
        return torch.cat([g, parts.flatten(1)], dim=1)

    def extra_repr(self) -> str:
        return f"num_stripes={self.num_stripes}, dim={self.dim}"
