"""Backbones by name: the one switch every recipe's ``--backbone`` goes through.

The leaderboard (``recipes/leaderboard.py``) compares methods with the *same* backbone, so every
recipe builds it here rather than with its own ``if`` chain.
"""

from __future__ import annotations

from torch import nn

from dgblocks._checks import check_positive
from dgblocks.backbones.mobilenetv2 import MobileNetV2
from dgblocks.backbones.resnet import ResNet, resnet50, resnet50_ibn_a

BACKBONES = ("resnet_tiny", "resnet_small", "mobilenetv2", "dualnorm", "resnet50",
             "resnet50_ibn_a")


def build_backbone(name: str, *, width: float = 0.5, ibn: bool = False,
                   last_channel: int | None = None) -> nn.Module:
    """A backbone by name, with the ReID convention ``last_stride=1``.

    Names:
        ``resnet_tiny``: ResNet with one bottleneck per stage, stem width 16 (512-d output;
        learns on the synthetic benchmark within a CPU budget: the synthetic default).
        ``resnet_small``: the same with stem width 8 (256-d; CDVM's second-order steps).
        ``mobilenetv2`` / ``dualnorm``: MobileNetV2 with width multiplier ``width``; ``dualnorm``
        puts instance norm on the first 6 blocks (DualNorm / DDAN+DualNorm).
        ``resnet50`` / ``resnet50_ibn_a``: the papers' backbones (torchvision names, so
        ImageNet weights load with :func:`~dgblocks.backbones.load_pretrained`).

    Args:
        name: one of :data:`BACKBONES`.
        width: MobileNetV2 width multiplier (ignored by the ResNets).
        ibn: IBN-a in the small ResNets (``resnet50_ibn_a`` always has it).
        last_channel: MobileNetV2's output width (``None``: its default 1280 x max(1, width)).

    Every backbone has ``out_channels``, ``forward_features`` and ``stage_names``.

    Example:
        >>> build_backbone("resnet_tiny").out_channels
        512
        >>> build_backbone("mobilenetv2", width=0.5, last_channel=256).out_channels
        256
    """
    if name not in BACKBONES:
        raise ValueError(f"name: expected one of {', '.join(BACKBONES)}, got {name!r}")
    check_positive(width, name="width")
    if name in ("resnet_tiny", "resnet_small"):
        return ResNet(layers=(1, 1, 1, 1), base_width=16 if name == "resnet_tiny" else 8,
                      last_stride=1, ibn=ibn)
    if name in ("mobilenetv2", "dualnorm"):
        return MobileNetV2(width_mult=width, last_stride=1, last_channel=last_channel,
                           instance_norm_blocks=6 if name == "dualnorm" else 0)
    return (resnet50 if name == "resnet50" else resnet50_ibn_a)(last_stride=1)
