"""The small CNN encoder of DIR-ReID's rotated-digits experiments (Table 6)."""

from __future__ import annotations

from torch import Tensor, nn

from dgblocks._checks import check_int, check_shape
from dgblocks.backbones._args import check_pair

__all__ = ["DigitsCNN"]


class DigitsCNN(nn.Module):
    """Conv(32, 5)-BN-ReLU, MaxPool(2, 2), Conv(64, 5)-BN-ReLU, MaxPool(2, 2), Linear(out_dim).

    DIR-ReID Table 6 with ``out_dim=2`` (2-D latent spaces for plotting); convolutions are
    unpadded, so a 28x28 image gives a 64x4x4 map before the linear layer.

    Args:
        out_dim: output features (DIR-ReID: 2).
        in_channels: 1 for grey digits, 3 for RGB.
        image_size: (H, W) of the input, needed to size the linear layer.

    Attributes:
        out_channels: ``out_dim``.

    Shape:
        x: (B, in_channels, H, W) with (H, W) = image_size; output: (B, out_dim).

    Example:
        >>> DigitsCNN(out_dim=2)(torch.zeros(4, 1, 28, 28)).shape
        torch.Size([4, 2])
    """

    def __init__(self, *, out_dim: int = 2, in_channels: int = 1,
                 image_size: tuple[int, int] = (28, 28)) -> None:
        super().__init__()
        check_int(out_dim, name="out_dim", minimum=1)
        check_int(in_channels, name="in_channels", minimum=1)
        h, w = check_pair(image_size, name="image_size", allow_int=False)
        fh, fw = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
        if fh < 1 or fw < 1:
            raise ValueError(f"image_size: expected at least (16, 16), got {tuple(image_size)}")
        self.out_dim, self.in_channels, self.image_size = out_dim, in_channels, (h, w)
        self.out_channels = out_dim
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, 5), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2))
        self.fc = nn.Linear(64 * fh * fw, out_dim)

    def forward_features(self, x: Tensor) -> Tensor:
        check_shape(x, "B C H W", name="x", C=self.in_channels, H=self.image_size[0],
                    W=self.image_size[1])
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.forward_features(x).flatten(1))

    def extra_repr(self) -> str:
        return (f"out_dim={self.out_dim}, in_channels={self.in_channels}, "
                f"image_size={self.image_size}")
