"""MobileNetV2 (Sandler et al. 2018) with a width multiplier, and its DualNorm IN variant.

Parameter names mirror torchvision's ``mobilenet_v2`` (``features.0.0.weight``,
``features.1.conv.0.0.weight``, ...), so torchvision checkpoints load without renaming and
timm ones through :func:`dgblocks.backbones.load_pretrained`.
"""

from __future__ import annotations

from torch import Tensor, nn

from dgblocks._checks import check_int, check_shape
from dgblocks.backbones._args import check_real

__all__ = ["MobileNetV2", "InvertedResidual", "make_divisible"]

# (expansion t, channels c, repeats n, stride s): Table 2 of the paper, as in torchvision.
_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round ``v`` to the nearest multiple of ``divisor`` without going below 90% of it.

    Example:
        >>> make_divisible(32 * 0.5)
        16
    """
    check_real(v, name="v")
    check_int(divisor, name="divisor", minimum=1)
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def _conv_bn_act(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (3x3) -> project (1x1, linear), residual when shapes agree.

    ``instance_norm=True`` adds an affine ``InstanceNorm2d`` on the block output (named
    ``inorm``): the DualNorm backbone's IN in the early blocks.

    Shape:
        x: (B, in_channels, H, W); output: (B, out_channels, H/stride, W/stride).

    Example:
        >>> block = InvertedResidual(in_channels=16, out_channels=24, stride=2, expand_ratio=6)
        >>> block(torch.zeros(2, 16, 8, 4)).shape
        torch.Size([2, 24, 4, 2])
    """

    def __init__(self, *, in_channels: int, out_channels: int, stride: int, expand_ratio: int,
                 instance_norm: bool = False) -> None:
        super().__init__()
        check_int(in_channels, name="in_channels", minimum=1)
        check_int(out_channels, name="out_channels", minimum=1)
        check_int(stride, name="stride", minimum=1, maximum=2)
        check_int(expand_ratio, name="expand_ratio", minimum=1)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride, self.expand_ratio = stride, expand_ratio
        hidden = int(round(in_channels * expand_ratio))
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_act(in_channels, hidden, 1, 1))
        layers += [_conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False),
                   nn.BatchNorm2d(out_channels)]
        self.conv = nn.Sequential(*layers)
        self.inorm = nn.InstanceNorm2d(out_channels, affine=True) if instance_norm else None

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        y = x + y if self.use_res_connect else y
        return self.inorm(y) if self.inorm is not None else y

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"stride={self.stride}, expand_ratio={self.expand_ratio}")


class MobileNetV2(nn.Module):
    """MobileNetV2 feature extractor returning globally pooled features.

    Args:
        width_mult: channel multiplier (0.5 is fast enough for 64x32 images on 2 CPU cores).
        last_stride: stride of the 160-channel stage (1 keeps a larger final map, as ReID
            backbones usually do; 2 is the ImageNet network).
        in_channels: input channels (3 for RGB, 1 for grey).
        instance_norm_blocks: number of leading inverted-residual blocks (of 17) that get an
            affine IN on their output: 0 is plain MobileNetV2, 6 (the blocks up to the
            32-channel stage) is the DualNorm-style backbone (``MobileNetV2.dualnorm``).
        last_channel: channels of the final 1x1 conv; ``None`` gives torchvision's
            ``make_divisible(1280 * max(1, width_mult))``.

    Attributes:
        out_channels: dimension of the pooled feature.
        stage_names: dotted names of the 19 entries of ``features`` (stem, 17 blocks, head),
            for :func:`dgblocks.backbones.replace_stage` / ``insert_after``.

    Shape:
        x: (B, in_channels, H, W); output: (B, out_channels);
        ``forward_features``: (B, out_channels, H/s, W/s), s = 32 (16 when last_stride=1).

    Example:
        >>> net = MobileNetV2(width_mult=0.5)
        >>> net(torch.zeros(2, 3, 64, 32)).shape
        torch.Size([2, 1280])
    """

    def __init__(self, *, width_mult: float = 1.0, last_stride: int = 2, in_channels: int = 3,
                 instance_norm_blocks: int = 0, last_channel: int | None = None) -> None:
        super().__init__()
        check_real(width_mult, name="width_mult")
        check_int(last_stride, name="last_stride", minimum=1, maximum=2)
        check_int(in_channels, name="in_channels", minimum=1)
        check_int(instance_norm_blocks, name="instance_norm_blocks", minimum=0, maximum=17)
        self.width_mult, self.last_stride, self.in_channels = width_mult, last_stride, in_channels
        self.instance_norm_blocks = instance_norm_blocks
        cin = make_divisible(32 * width_mult)
        self.out_channels = (last_channel if last_channel is not None
                             else make_divisible(1280 * max(1.0, width_mult)))
        check_int(self.out_channels, name="last_channel", minimum=1)
        layers: list[nn.Module] = [_conv_bn_act(in_channels, cin, 3, 2)]
        for t, c, n, s in _SETTING:
            cout = make_divisible(c * width_mult)
            if c == 160:
                s = last_stride
            for i in range(n):
                layers.append(InvertedResidual(
                    in_channels=cin, out_channels=cout, stride=s if i == 0 else 1,
                    expand_ratio=t, instance_norm=len(layers) <= instance_norm_blocks))
                cin = cout
        layers.append(_conv_bn_act(cin, self.out_channels, 1, 1))
        self.features = nn.Sequential(*layers)
        self.stage_names = tuple(f"features.{i}" for i in range(len(layers)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        _init_weights(self)

    @classmethod
    def dualnorm(cls, **kwargs) -> MobileNetV2:
        """The DualNorm-style backbone: IN on the blocks up to the 32-channel stage."""
        kwargs.setdefault("instance_norm_blocks", 6)
        return cls(**kwargs)

    def forward_features(self, x: Tensor) -> Tensor:
        check_shape(x, "B C H W", name="x", C=self.in_channels)
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.forward_features(x)).flatten(1)

    def extra_repr(self) -> str:
        return (f"width_mult={self.width_mult}, last_stride={self.last_stride}, "
                f"instance_norm_blocks={self.instance_norm_blocks}, "
                f"out_channels={self.out_channels}")


def _init_weights(model: nn.Module) -> None:
    """Kaiming-normal convs, unit norms, small linear layers (torchvision's scheme), except
    that depthwise convs use ``fan_in`` (9): torch's ``fan_out`` ignores groups, which shrinks
    every depthwise output ~C-fold and, in eval mode with barely-updated running statistics,
    collapses the features of short runs to a constant. The BN scale closing each residual
    block starts at 0 (Goyal et al., 2017): from scratch the 10 residual blocks otherwise add
    unit-variance noise to the signal and the network barely learns (docs/decisions.md)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            depthwise = m.groups > 1 and m.groups == m.in_channels
            nn.init.kaiming_normal_(m.weight, mode="fan_in" if depthwise else "fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in model.modules():  # zero-init residual: every residual block starts as the identity
        if isinstance(m, InvertedResidual) and m.use_res_connect:
            nn.init.zeros_(m.conv[-1].weight)  # the projection's BN scale (Goyal et al., 2017)
