"""Backbones by name: the one switch every recipe's ``--backbone`` goes through.

The leaderboard (``scripts/launch/leaderboard.py``) compares methods with the *same*
backbone, so every recipe builds it here rather than with its own ``if`` chain.
"""

from __future__ import annotations

from torch import nn

from dgblocks._checks import check_positive
from dgblocks.backbones.mobilenetv2 import MobileNetV2
from dgblocks.backbones.resnet import ResNet, resnet50, resnet50_ibn_a
from dgblocks.backbones.vit import vit_b16, vit_tiny

BACKBONES = ("resnet_tiny", "resnet_small", "mobilenetv2", "dualnorm", "resnet50",
             "resnet50_ibn_a", "vit_tiny", "vit_b16")


def build_backbone(name: str, *, width: float = 0.5, ibn: bool = False,
                   last_channel: int | None = None, image_size: tuple[int, int] = (256, 128),
                   patch_stride: int | None = None, style: str = "timm") -> nn.Module:
    """A backbone by name, with the ReID convention ``last_stride=1``.

    Names:
        ``resnet_tiny``: ResNet with one bottleneck per stage, stem width 16 (512-d output;
        learns on the synthetic benchmark within a CPU budget: the synthetic default).
        ``resnet_small``: the same with stem width 8 (256-d; CDVM's second-order steps).
        ``mobilenetv2`` / ``dualnorm``: MobileNetV2 with width multiplier ``width``; ``dualnorm``
        puts instance norm on the first 6 blocks (DualNorm / DDAN+DualNorm).
        ``resnet50`` / ``resnet50_ibn_a``: the papers' backbones (torchvision names, so
        ImageNet weights load with :func:`~dgblocks.backbones.load_pretrained`).
        ``vit_b16``: ViT-B/16 (768-d [CLS] feature); ``vit_tiny``: a 4-block, 192-d ViT for
        tests and CPU runs (:class:`~dgblocks.backbones.VisionTransformer`).

    Args:
        name: one of :data:`BACKBONES`.
        width: MobileNetV2 width multiplier (ignored by the ResNets).
        ibn: IBN-a in the small ResNets (``resnet50_ibn_a`` always has it).
        last_channel: MobileNetV2's output width (``None``: its default 1280 x max(1, width));
            for a ViT, a final ``proj`` to this width, returned instead of the [CLS] feature.
        image_size: (H, W) a ViT's position embedding is laid out for (CNNs: ignored).
        patch_stride: a ViT's patch step (``None``: 16, non-overlapping; TransReID: 12).
        style: a ViT's ``"timm"`` or ``"clip"`` layout, to match the weights to load.

    Every backbone has ``out_channels``, ``forward_features`` and ``stage_names``; a CNN's
    ``forward_features`` is a map (B, C, h, w), a ViT's the token sequence (B, 1 + N, D).

    Example:
        >>> build_backbone("resnet_tiny").out_channels
        512
        >>> build_backbone("mobilenetv2", width=0.5, last_channel=256).out_channels
        256
        >>> build_backbone("vit_b16", image_size=(256, 128), patch_stride=12).grid
        (21, 10)
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
    if name.startswith("vit"):
        proj = {} if last_channel is None else {"proj_dim": last_channel, "output": "proj"}
        return (vit_b16 if name == "vit_b16" else vit_tiny)(
            style=style, image_size=image_size, patch_stride=patch_stride, **proj)
    return (resnet50 if name == "resnet50" else resnet50_ibn_a)(last_stride=1)
