"""ResNet-50 (He et al. 2016) and ResNet-50-IBN-a (Pan et al. 2018) feature extractors.

Parameter names mirror torchvision's ``resnet50`` (``conv1.weight``, ``layer1.0.conv1.weight``,
``layer1.0.downsample.0.weight``, ...) and, for IBN-a, the official IBN-Net release
(``layer1.0.bn1.IN.weight``, ``layer1.0.bn1.BN.running_mean``), so their checkpoints load
through :func:`dgblocks.backbones.load_pretrained`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dgblocks._checks import check_int, check_probability, check_shape

__all__ = ["IBN", "Bottleneck", "ResNet", "resnet50", "resnet50_ibn_a"]


class IBN(nn.Module):
    """Instance-batch normalisation: IN on the first ``ratio`` of the channels, BN on the rest.

    Shape:
        x: (B, C, H, W); output: same.

    Example:
        >>> IBN(channels=8)(torch.randn(2, 8, 4, 4)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(self, *, channels: int, ratio: float = 0.5) -> None:
        super().__init__()
        check_int(channels, name="channels", minimum=1)
        check_probability(ratio, name="ratio")
        self.channels, self.ratio = channels, ratio
        self.half = int(channels * ratio)
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(channels - self.half)

    def forward(self, x: Tensor) -> Tensor:
        a, b = torch.split(x, [self.half, self.channels - self.half], dim=1)
        return torch.cat([self.IN(a.contiguous()), self.BN(b.contiguous())], dim=1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, ratio={self.ratio}"


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 (x4) with a projection shortcut when shapes change.

    Shape:
        x: (B, in_channels, H, W); output: (B, 4 * planes, H/stride, W/stride).

    Example:
        >>> Bottleneck(in_channels=16, planes=4)(torch.zeros(1, 16, 8, 4)).shape
        torch.Size([1, 16, 8, 4])
    """

    expansion = 4

    def __init__(self, *, in_channels: int, planes: int, stride: int = 1,
                 ibn: bool = False) -> None:
        super().__init__()
        check_int(in_channels, name="in_channels", minimum=1)
        check_int(planes, name="planes", minimum=1)
        check_int(stride, name="stride", minimum=1)
        self.in_channels, self.planes, self.stride, self.ibn = in_channels, planes, stride, ibn
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = IBN(channels=planes) if ibn else nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out, 1, stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(y + shortcut)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, planes={self.planes}, stride={self.stride}, "
                f"ibn={self.ibn}")


class ResNet(nn.Module):
    """Bottleneck ResNet feature extractor returning globally pooled features.

    Args:
        layers: blocks per stage; ``(3, 4, 6, 3)`` is ResNet-50.
        base_width: channels of the stem (64 in the paper; smaller for quick tests).
        last_stride: stride of ``layer4`` (1 is the ReID convention, 2 the ImageNet one).
        ibn: IBN-a, i.e. IBN in ``bn1`` of every block of ``layer1``-``layer3``.
        in_channels: input channels.

    Attributes:
        out_channels: ``8 * 4 * base_width`` (2048 for ResNet-50).
        stage_names: ``("stem", "layer1", ..., "layer4")``; ``stem`` is conv1+bn1+relu+maxpool
            and cannot be replaced (its parameters keep torchvision's names).

    Shape:
        x: (B, in_channels, H, W); output: (B, out_channels);
        ``forward_features``: (B, out_channels, H/s, W/s), s = 16 (last_stride=1) or 32.

    Example:
        >>> net = ResNet(layers=(1, 1, 1, 1), base_width=8)
        >>> net(torch.zeros(2, 3, 64, 32)).shape
        torch.Size([2, 256])
    """

    def __init__(self, *, layers: tuple[int, ...] = (3, 4, 6, 3), base_width: int = 64,
                 last_stride: int = 1, ibn: bool = False, in_channels: int = 3) -> None:
        super().__init__()
        if not isinstance(layers, (tuple, list)) or len(layers) != 4:
            raise ValueError(f"layers: expected 4 stage depths, got {layers!r}")
        for i, n in enumerate(layers):
            check_int(n, name=f"layers[{i}]", minimum=1)
        check_int(base_width, name="base_width", minimum=1)
        check_int(last_stride, name="last_stride", minimum=1, maximum=2)
        check_int(in_channels, name="in_channels", minimum=1)
        self.in_channels = in_channels
        self.layers, self.base_width = tuple(layers), base_width
        self.last_stride, self.ibn = last_stride, ibn
        self.conv1 = nn.Conv2d(in_channels, base_width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = base_width
        strides = (1, 2, 2, last_stride)
        for i, (n, s) in enumerate(zip(layers, strides)):
            planes = base_width * 2**i
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(in_channels=cin, planes=planes, stride=s if j == 0 else 1,
                                         ibn=ibn and i < 3))
                cin = planes * Bottleneck.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.out_channels = cin
        self.stage_names = ("layer1", "layer2", "layer3", "layer4")
        self.pool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: Tensor) -> Tensor:
        check_shape(x, "B C H W", name="x", C=self.in_channels)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.forward_features(x)).flatten(1)

    def extra_repr(self) -> str:
        return (f"layers={self.layers}, base_width={self.base_width}, "
                f"last_stride={self.last_stride}, ibn={self.ibn}")


def resnet50(*, last_stride: int = 1, **kwargs) -> ResNet:
    """ResNet-50 (``layers=(3, 4, 6, 3)``); keyword arguments go to :class:`ResNet`.

    Example:
        >>> resnet50().out_channels
        2048
    """
    return ResNet(layers=(3, 4, 6, 3), last_stride=last_stride, **kwargs)


def resnet50_ibn_a(*, last_stride: int = 1, **kwargs) -> ResNet:
    """ResNet-50-IBN-a: IBN in the first norm of every block of layer1-3 (Pan et al. 2018).

    Example:
        >>> type(resnet50_ibn_a().layer1[0].bn1).__name__
        'IBN'
    """
    return ResNet(layers=(3, 4, 6, 3), last_stride=last_stride, ibn=True, **kwargs)
