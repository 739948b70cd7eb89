r"""Style fusion (CDVM eq 9): invariant and re-styled features fused by a 1x1 convolution.

The re-styled maps come from :class:`dgblocks.layers.style.CrossDomainStyle` (eq 6-8).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from dgblocks._checks import ShapeError, check_choice, check_features, check_int
from dgblocks._module_checks import check_module_input

__all__ = ["StyleFusion"]


class StyleFusion(nn.Module):
    """Fuse invariant and re-styled features with a 1x1 convolution, 2C -> C (CDVM eq 9).

    $\\hat F = \\mathrm{FC}(\\mathrm{cat}(F_{inv}, F_{sty}))$, the FC applied at every position.

    Args:
        channels: $C$, the channels of each input and of the output.
        init: ``"identity"`` (default): the convolution starts as $\\hat F = F_{inv}$ (weight
            $[I \\; 0]$, bias 0), so a from-scratch network's main path is not scrambled by a
            random mix with an untrained local branch; ``"default"``: PyTorch's init (CDVM does
            not give one: it starts from a pretrained ResNet50-IBN).

    Shape:
        f_inv: (B, C, H, W); f_sty: (B, C, H, W); output: (B, C, H, W).

    Invariants:
        - with ``init="identity"``, freshly built: the output equals ``f_inv`` whatever ``f_sty``

    Example:
        >>> fuse = StyleFusion(channels=8)
        >>> fuse(torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)).shape
        torch.Size([2, 8, 4, 4])
        >>> x = torch.randn(1, 8, 2, 2)
        >>> torch.equal(fuse(x, torch.randn(1, 8, 2, 2)), x)
        True
    """

    functional_name: ClassVar[str | None] = None

    def __init__(self, *, channels: int, init: str = "identity") -> None:
        super().__init__()
        self.channels = check_int(channels, name="channels", minimum=1)
        self.init = check_choice(init, ("identity", "default"), name="init")
        self.fc = nn.Conv2d(2 * channels, channels, kernel_size=1)
        if init == "identity":
            with torch.no_grad():
                self.fc.weight.zero_()
                self.fc.weight[:, :channels, 0, 0] = torch.eye(channels)
                self.fc.bias.zero_()

    def forward(self, f_inv: Tensor, f_sty: Tensor) -> Tensor:
        """Fuse the invariant and re-styled maps, ``fc(cat(f_inv, f_sty))``.

        Args:
            f_inv: invariant feature maps $F_{inv}$, (B, C, H, W) with H, W >= 1.
            f_sty: re-styled maps $F_{sty}$ of the same shape; both in the block's dtype and
                on its device (or run under ``torch.autocast``).

        Returns:
            The fused maps (B, C, H, W); the same in training and eval mode.
        """
        s = check_features(f_inv, "B C H W", name="f_inv", C=self.channels)
        if 0 in f_inv.shape[2:]:
            raise ShapeError(f"f_inv: expected H, W >= 1, got {tuple(f_inv.shape)}")
        check_features(f_sty, "B C H W", name="f_sty", **s)
        check_module_input(f_inv, self, name="f_inv")
        check_module_input(f_sty, self, name="f_sty")
        return self.fc(torch.cat([f_inv, f_sty], dim=1))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, init={self.init!r}"
